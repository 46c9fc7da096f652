// Steward on Azure: Container Apps (the API, the scheduler and a migration job, all from one image), a PostgreSQL
// flexible server, a Key Vault for the app registration's certificate and the other secrets, and one
// user-assigned managed identity that reads Key Vault and pulls the image.
//
// Deploy in two phases (infra/RUNBOOK.md): first with deployApps=false (Key Vault, database, environment), then
// put the certificate and secrets into Key Vault, then deploy again with deployApps=true.

targetScope = 'resourceGroup'

@description('Prefix of every resource name: lowercase letters and digits.')
@minLength(3)
@maxLength(12)
param name string = 'steward'

@description('Azure region of every resource but the bot (global).')
param location string = resourceGroup().location

@description('Container image, e.g. contoso.azurecr.io/steward:0.1.0.')
param image string

@description('Registry of the image when it is private (pulled with the managed identity, which needs AcrPull); empty for a public image.')
param registryServer string = ''

@description('Entra ID tenant (directory) id that Steward manages.')
param tenantId string = subscription().tenantId

@description('Application (client) id of Steward\'s app registration, the one holding the Graph application permissions.')
param clientId string

@description('Client id of the "Steward web" app registration: the audience of bearer tokens for the API.')
param apiAudience string

@description('Azure Bot app id for Teams approval cards; empty to use a Workflows webhook instead.')
param teamsBotAppId string = ''

@description('PostgreSQL administrator login.')
param postgresAdminLogin string = 'steward'

@description('PostgreSQL administrator password; it only ever lands in Key Vault (inside the database URL).')
@secure()
@minLength(16)
param postgresAdminPassword string

@description('Object id of the operator who uploads the certificate and secrets (granted Key Vault Administrator); empty to grant access yourself.')
param operatorObjectId string = ''

@description('Deploy the container apps and the bot (phase 2), once Key Vault holds the certificate and the secrets.')
param deployApps bool = true

var suffix = uniqueString(resourceGroup().id)
var keyVaultName = take('${name}-kv-${suffix}', 24)
var apiAppName = '${name}-api'
// Built-in role definition ids.
var keyVaultSecretsUserRole = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultAdministratorRole = '00482a5a-887f-4fb3-b363-3b7fe8e74483'
var secretsMountPath = '/etc/steward/secrets'

resource logs 'Microsoft.OperationalInsights/workspaces@2022-10-01' = {
  name: '${name}-logs-${suffix}'
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${name}-identity'
  location: location
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
  }
}

resource identityReadsSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, keyVaultSecretsUserRole)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRole)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource operatorAdministersVault 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorObjectId)) {
  name: guid(vault.id, operatorObjectId, keyVaultAdministratorRole)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultAdministratorRole)
    principalId: operatorObjectId
    principalType: 'User'
  }
}

resource postgres 'Microsoft.DBforPostgreSQL/flexibleServers@2022-12-01' = {
  name: '${name}-pg-${suffix}'
  location: location
  sku: {
    name: 'Standard_B1ms'
    tier: 'Burstable'
  }
  properties: {
    version: '15'
    administratorLogin: postgresAdminLogin
    administratorLoginPassword: postgresAdminPassword
    storage: {
      storageSizeGB: 32
    }
    backup: {
      backupRetentionDays: 14
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: {
      mode: 'Disabled'
    }
  }
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2022-12-01' = {
  parent: postgres
  name: 'steward'
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

// Container Apps reach the server over its public endpoint (TLS required); see the runbook for private networking.
resource allowAzureServices 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2022-12-01' = {
  parent: postgres
  name: 'AllowAzureServices'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

resource databaseUrl 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'database-url'
  properties: {
    value: 'postgresql://${postgresAdminLogin}:${uriComponent(postgresAdminPassword)}@${postgres.properties.fullyQualifiedDomainName}:5432/${database.name}?ssl=require'
  }
}

resource environment 'Microsoft.App/managedEnvironments@2023-05-01' = {
  name: '${name}-env'
  location: location
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logs.properties.customerId
        sharedKey: logs.listKeys().primarySharedKey
      }
    }
  }
}

var publicBaseUrl = 'https://${apiAppName}.${environment.properties.defaultDomain}'

// Every secret is a Key Vault reference read with the managed identity: nothing secret is in this template's state.
var baseSecrets = [
  {
    name: 'database-url'
    keyVaultUrl: '${vault.properties.vaultUri}secrets/database-url'
    identity: identity.id
  }
  {
    // The app registration's certificate, imported into Key Vault as PEM (private key + certificate).
    name: 'graph-certificate.pem'
    keyVaultUrl: '${vault.properties.vaultUri}secrets/steward-graph'
    identity: identity.id
  }
  {
    name: 'webhook-secrets'
    keyVaultUrl: '${vault.properties.vaultUri}secrets/webhook-secrets'
    identity: identity.id
  }
]
var botSecrets = empty(teamsBotAppId) ? [] : [
  {
    name: 'teams-bot-app-secret'
    keyVaultUrl: '${vault.properties.vaultUri}secrets/teams-bot-app-secret'
    identity: identity.id
  }
]
var appSecrets = concat(baseSecrets, botSecrets)

var baseEnv = [
  {
    name: 'STEWARD_ENV'
    value: 'production'
  }
  {
    name: 'STEWARD_TENANT_ID'
    value: tenantId
  }
  {
    name: 'STEWARD_CLIENT_ID'
    value: clientId
  }
  {
    name: 'STEWARD_CLIENT_CERTIFICATE_PATH'
    value: '${secretsMountPath}/graph-certificate.pem'
  }
  {
    name: 'STEWARD_DATABASE_URL'
    secretRef: 'database-url'
  }
  {
    name: 'STEWARD_API_AUDIENCE'
    value: apiAudience
  }
  {
    name: 'STEWARD_WEBHOOK_SECRETS'
    secretRef: 'webhook-secrets'
  }
  {
    name: 'STEWARD_PUBLIC_BASE_URL'
    value: publicBaseUrl
  }
  {
    name: 'STEWARD_LOG_FORMAT'
    value: 'json'
  }
]
var botEnv = empty(teamsBotAppId) ? [] : [
  {
    name: 'STEWARD_TEAMS_BOT_APP_ID'
    value: teamsBotAppId
  }
  {
    name: 'STEWARD_TEAMS_BOT_APP_SECRET'
    secretRef: 'teams-bot-app-secret'
  }
]
var appEnv = concat(baseEnv, botEnv)

var registries = empty(registryServer) ? [] : [
  {
    server: registryServer
    identity: identity.id
  }
]
var secretVolumes = [
  {
    name: 'secrets'
    storageType: 'Secret'
    secrets: [
      {
        secretRef: 'graph-certificate.pem'
        path: 'graph-certificate.pem'
      }
    ]
  }
]
var secretMounts = [
  {
    volumeName: 'secrets'
    mountPath: secretsMountPath
  }
]
var identityBinding = {
  type: 'UserAssigned'
  userAssignedIdentities: {
    '${identity.id}': {}
  }
}

resource api 'Microsoft.App/containerApps@2023-05-01' = if (deployApps) {
  name: apiAppName
  location: location
  identity: identityBinding
  properties: {
    managedEnvironmentId: environment.id
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        targetPort: 8000
        transport: 'auto'
        allowInsecure: false
      }
      secrets: appSecrets
      registries: registries
    }
    template: {
      containers: [
        {
          name: 'api'
          image: image
          args: [
            'serve'
            '--host'
            '0.0.0.0'
            '--port'
            '8000'
          ]
          env: appEnv
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
          probes: [
            {
              type: 'Liveness'
              httpGet: {
                path: '/healthz'
                port: 8000
              }
              periodSeconds: 15
            }
            {
              type: 'Readiness'
              httpGet: {
                path: '/readyz'
                port: 8000
              }
              periodSeconds: 10
            }
          ]
          volumeMounts: secretMounts
        }
      ]
      scale: {
        minReplicas: 1
        maxReplicas: 3
      }
      volumes: secretVolumes
    }
  }
  dependsOn: [
    identityReadsSecrets
    databaseUrl
  ]
}

resource scheduler 'Microsoft.App/containerApps@2023-05-01' = if (deployApps) {
  name: '${name}-scheduler'
  location: location
  identity: identityBinding
  properties: {
    managedEnvironmentId: environment.id
    configuration: {
      activeRevisionsMode: 'Single'
      secrets: appSecrets
      registries: registries
    }
    template: {
      containers: [
        {
          name: 'scheduler'
          image: image
          args: [
            'scheduler'
          ]
          env: appEnv
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
          volumeMounts: secretMounts
        }
      ]
      // One leader at a time (a lease in the database); a second replica would only wait.
      scale: {
        minReplicas: 1
        maxReplicas: 1
      }
      volumes: secretVolumes
    }
  }
  dependsOn: [
    identityReadsSecrets
    databaseUrl
  ]
}

resource migrate 'Microsoft.App/jobs@2023-05-01' = if (deployApps) {
  name: '${name}-migrate'
  location: location
  identity: identityBinding
  properties: {
    environmentId: environment.id
    configuration: {
      triggerType: 'Manual'
      replicaTimeout: 600
      replicaRetryLimit: 1
      manualTriggerConfig: {
        parallelism: 1
        replicaCompletionCount: 1
      }
      secrets: appSecrets
      registries: registries
    }
    template: {
      containers: [
        {
          name: 'migrate'
          image: image
          args: [
            'db'
            'upgrade'
          ]
          env: appEnv
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
          volumeMounts: secretMounts
        }
      ]
      volumes: secretVolumes
    }
  }
  dependsOn: [
    identityReadsSecrets
    databaseUrl
  ]
}

resource bot 'Microsoft.BotService/botServices@2022-09-15' = if (deployApps && !empty(teamsBotAppId)) {
  name: '${name}-bot-${suffix}'
  location: 'global'
  kind: 'azurebot'
  sku: {
    name: 'F0'
  }
  properties: {
    displayName: 'Steward'
    endpoint: '${publicBaseUrl}/api/messages'
    msaAppId: teamsBotAppId
    msaAppType: 'SingleTenant'
    msaAppTenantId: tenantId
  }
}

resource teamsChannel 'Microsoft.BotService/botServices/channels@2022-09-15' = if (deployApps && !empty(teamsBotAppId)) {
  parent: bot
  name: 'MsTeamsChannel'
  location: 'global'
  properties: {
    channelName: 'MsTeamsChannel'
    properties: {
      isEnabled: true
    }
  }
}

output keyVaultName string = vault.name
output identityClientId string = identity.properties.clientId
output postgresHost string = postgres.properties.fullyQualifiedDomainName
output apiUrl string = publicBaseUrl
output graphNotificationUrl string = '${publicBaseUrl}/v1/notifications/graph'
output graphLifecycleNotificationUrl string = '${publicBaseUrl}/v1/notifications/graph/lifecycle'
output adminWebhookUrl string = '${publicBaseUrl}/v1/webhooks/admin'
output botMessagingEndpoint string = '${publicBaseUrl}/api/messages'
