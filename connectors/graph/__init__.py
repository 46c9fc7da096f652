"""Microsoft Graph: app-only sign-in (MSAL) and the msgraph-sdk client, for graph.microsoft.com or the local tenant."""
