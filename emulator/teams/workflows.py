"""A Power Automate flow triggered by "When a Teams webhook request is received" that posts to a channel.

The trigger URL is a Logic Apps shared-access URL: `/workflows/{id}/triggers/manual/paths/invoke` with
api-version, sp (permissions), sv (version) and sig (HMAC signature) in the query. Missing or wrong signature ->
401, unknown workflow -> 404, accepted -> 202 with an empty body and the run id in x-ms-workflow-run-id.

Real flows accept any JSON with 202 and fail later in the run ("'attachments' is of type 'Null'"); the product
cannot read run history, so this emulator refuses such payloads at once with a 400 that names the problem.
Cards that Teams would post but could not act on (Action.Submit / Action.Execute, version above 1.5) are stored
with warnings, because the flow bot only honours Action.OpenUrl (teams-notes section 6).
"""

from __future__ import annotations

import hmac
import uuid
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from emulator.state import utc_now
from emulator.teams.http import TeamsHttpError, TeamsRoute, read_json_object, tenant_of
from emulator.teams.state import ADAPTIVE_CARD_CONTENT_TYPE, Workflow, WorkflowPost, teams_state

API_VERSION = "2016-06-01"
PERMISSIONS = "/triggers/manual/run"
SIGNATURE_VERSION = "1.0"
MAX_PAYLOAD_BYTES = 28 * 1024
# Teams renders Adaptive Cards up to schema 1.5.
MAX_CARD_VERSION = (1, 5)
FLOW_BOT_ACTIONS = frozenset({"Action.OpenUrl", "Action.ShowCard", "Action.ToggleVisibility"})

router = APIRouter(route_class=TeamsRoute)


def webhook_url(base: str, workflow: Workflow) -> str:
    return (
        f"{base}/workflows/{workflow.id}/triggers/manual/paths/invoke"
        f"?api-version={API_VERSION}&sp={quote(PERMISSIONS, safe='')}&sv={SIGNATURE_VERSION}"
        f"&sig={workflow.signature(PERMISSIONS, SIGNATURE_VERSION)}"
    )


def _error(status: int, code: str, message: str) -> TeamsHttpError:
    return TeamsHttpError(status, {"error": {"code": code, "message": message}})


def _invalid_content(message: str) -> TeamsHttpError:
    return _error(400, "InvalidRequestContent", message)


def _card_version(card: dict[str, Any]) -> tuple[int, ...] | None:
    version = card.get("version")
    if not isinstance(version, str):
        return None
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return None


def _actions(node: Any) -> list[str]:
    """Every action type used anywhere in a card (body, actions, selectAction, nested ShowCard cards)."""
    found: list[str] = []
    if isinstance(node, dict):
        node_type = node.get("type")
        if isinstance(node_type, str) and node_type.startswith("Action."):
            found.append(node_type)
        for value in node.values():
            found.extend(_actions(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_actions(item))
    return found


def card_warnings(card: dict[str, Any]) -> list[str]:
    warnings: list[str] = []
    version = _card_version(card)
    if version is not None and version > MAX_CARD_VERSION:
        warnings.append(f"Teams renders Adaptive Cards up to version 1.5; this card is {card['version']}.")
    for action in sorted(set(_actions(card)) - FLOW_BOT_ACTIONS):
        warnings.append(f"{action} does not work on a card posted by the flow bot; only Action.OpenUrl does.")
    return warnings


def _cards(payload: dict[str, Any]) -> list[dict[str, Any]]:
    if payload.get("type") != "message":
        raise _invalid_content("The payload's 'type' must be 'message'.")
    attachments = payload.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        raise _invalid_content("'attachments' is of type 'Null': the payload needs an array of card attachments.")
    cards: list[dict[str, Any]] = []
    for index, attachment in enumerate(attachments):
        if not isinstance(attachment, dict) or attachment.get("contentType") != ADAPTIVE_CARD_CONTENT_TYPE:
            raise _invalid_content(f"attachments[{index}].contentType must be '{ADAPTIVE_CARD_CONTENT_TYPE}'.")
        content = attachment.get("content")
        if not isinstance(content, dict) or content.get("type") != "AdaptiveCard":
            raise _invalid_content(f"attachments[{index}].content must be an AdaptiveCard object.")
        if _card_version(content) is None:
            raise _invalid_content(f"attachments[{index}].content.version must be a version such as '1.5'.")
        cards.append(content)
    return cards


@router.post("/workflows/{workflow_id}/triggers/manual/paths/invoke")
async def run_trigger(workflow_id: str, request: Request) -> Response:
    tenant = tenant_of(request)
    state = teams_state(tenant)
    workflow = state.workflows.get(workflow_id)
    if workflow is None:
        raise _error(404, "WorkflowNotFound", f"The workflow '{workflow_id}' could not be found.")
    query = request.query_params
    signature = query.get("sig")
    if not signature:
        raise _error(
            401, "DirectApiAuthorizationRequired", "The request must be authenticated only by Shared Access scheme."
        )
    permissions, version = query.get("sp") or "", query.get("sv") or ""
    expected = workflow.signature(permissions, version)
    if permissions != PERMISSIONS or version != SIGNATURE_VERSION or not hmac.compare_digest(signature, expected):
        raise _error(401, "DirectApiInvalidAuthorizationSignature", "The provided callback URL signature is not valid.")
    raw = await request.body()
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise _error(413, "RequestEntityTooLarge", "The message is larger than the 28 KB Teams accepts.")
    payload = await read_json_object(request, _invalid_content)
    cards = _cards(payload)
    run_id = f"08584{uuid.uuid4().int % 10**20:020d}CU00"
    post = WorkflowPost(
        run_id=run_id,
        workflow_id=workflow.id,
        received=utc_now(),
        cards=cards,
        warnings=[warning for card in cards for warning in card_warnings(card)],
    )
    with tenant.lock:
        workflow.posts.append(post)
    return Response(
        status_code=202,
        headers={
            "x-ms-workflow-run-id": run_id,
            "x-ms-correlation-id": str(uuid.uuid4()),
            "x-ms-workflow-name": workflow.id,
        },
    )
