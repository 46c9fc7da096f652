"""Writes that must not happen twice: settle an ambiguous failure by reading the state, never by replaying.

A POST such as permanentDelete, assignSensitivityLabel, sendMail or a subscription create can time out or get
a 5xx *after* Graph ran it. Replaying it blindly can destroy or send twice. The transport therefore raises
`OutcomeUnknown` for these calls, and `write_once` asks the state instead: if the effect is there, the write
counts as done (`settled_by_read`); if it is certainly not there, sending again is no longer blind. If the
state cannot be read either, `OutcomeUnknown` goes to the caller, who records it for a human or a later run.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from connectors.base import ConnectorError
from connectors.graph.errors import OutcomeUnknown
from connectors.graph.transport import GraphResponse

WriteStatus = Literal["applied", "already_applied"]


@dataclass(frozen=True, slots=True)
class WriteResult:
    # applied: our request did it. already_applied: the state shows it done (by an earlier or ambiguous call).
    status: WriteStatus
    # True when an ambiguous failure (or a 404 on delete) was settled by reading the state back.
    settled_by_read: bool = False
    client_request_id: str | None = None
    request_id: str | None = None
    # What the write returned, for the few that return something (move: the message; subscribe: the record).
    response: GraphResponse | None = None


async def write_once(
    send: Callable[[], Awaitable[GraphResponse]],
    is_done: Callable[[], Awaitable[bool]],
    *,
    what: str,
) -> WriteResult:
    try:
        response = await send()
    except OutcomeUnknown as ambiguous:
        done = await _read_state(is_done, what, ambiguous)
        if done:
            return WriteResult("already_applied", settled_by_read=True, client_request_id=ambiguous.client_request_id)
        # The state proves the first attempt did nothing, so this second one is not a blind replay.
        response = await send()
        return _applied(response, settled_by_read=True)
    return _applied(response)


async def confirm_absent(is_gone: Callable[[], Awaitable[bool]], error: ConnectorError, *, what: str) -> WriteResult:
    """A delete answered 404/403: count it as done only when a read confirms the item is gone."""
    if await _read_state(is_gone, what, error):
        return WriteResult("already_applied", settled_by_read=True, client_request_id=error.client_request_id)
    raise error


async def _read_state(check: Callable[[], Awaitable[bool]], what: str, cause: ConnectorError) -> bool:
    try:
        return await check()
    except ConnectorError as unreadable:
        raise OutcomeUnknown(
            f"{what}: {cause.message}; reading the state back failed too ({unreadable})",
            status_code=cause.status_code,
            code=cause.code,
            request_id=cause.request_id,
            client_request_id=cause.client_request_id,
        ) from unreadable


def _applied(response: GraphResponse, *, settled_by_read: bool = False) -> WriteResult:
    return WriteResult(
        "applied",
        settled_by_read=settled_by_read,
        client_request_id=response.client_request_id,
        request_id=response.request_id,
        response=response,
    )
