"""The Teams peers an approval needs: a Workflows webhook, the Bot Framework channel and its Bot Connector.

- workflows.py: "When a Teams webhook request is received" trigger URLs that accept Adaptive Cards.
- botframework.py: the channel's OpenID metadata and keys (which sign what Teams sends a bot), and the bot's
  client-credentials token for the connector.
- connector.py: the Bot Connector REST API v3 a bot calls to post, reply, update and read members.
- control.py: /_emulator/teams: settings, what was posted, and "press a card button" (a signed invoke to the bot).

Pointing Microsoft's Teams SDK (microsoft-teams-apps 2.x) here takes settings only, all in GET
/_emulator/teams/config: `cloud=with_overrides(PUBLIC, openid_metadata_url=<openid_metadata_url>,
token_issuer=<issuer>)`, `service_url=<service_url>`, a `token=` callable doing client credentials for
<bot_app_id>/<bot_app_secret> with <token_scope> at <token_endpoint>, and SSL_CERT_FILE naming the emulator's CA.
Keep the SDK's `login_endpoint` at its default: an issuer it prefixes is taken for an Entra token.
"""

from fastapi import APIRouter

from emulator.teams import botframework, connector, workflows
from emulator.teams.control import control_router, conversation_activities, teams_config, workflow_posts
from emulator.teams.state import TeamsState, teams_state

router = APIRouter()
router.include_router(botframework.router)
router.include_router(connector.router)
router.include_router(workflows.router)

__all__ = [
    "TeamsState",
    "control_router",
    "conversation_activities",
    "router",
    "teams_config",
    "teams_state",
    "workflow_posts",
]
