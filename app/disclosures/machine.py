"""The disclosure state machine: every status change is one of these moves, and only from the listed states.

    objection_window --object--> objected --uphold--> stayed
           |                        |--reject---> released --export--> exported
           |                        '--narrow---> released --narrow--> released
           '--release (window over, no objection)--> released
    any state but closed --close--> closed

`stayed` is final apart from closing: an upheld objection stops the disclosure for good, so nothing can ever
leave a demand that was stayed. Export approvals are not moves (the status does not change) but are only taken
in `released`. The extra conditions of a move (the objection deadline, the approvals an export needs) are
checked by the service next to the data they read.
"""

from collections.abc import Mapping
from enum import StrEnum

from app.exceptions import Conflict
from app.models import DisclosureStatus

S = DisclosureStatus


class Move(StrEnum):
    object = "object"
    uphold = "uphold"
    reject = "reject"
    narrow = "narrow"
    release = "release"
    export = "export"
    close = "close"


TRANSITIONS: Mapping[tuple[DisclosureStatus, Move], DisclosureStatus] = {
    (S.objection_window, Move.object): S.objected,
    (S.objected, Move.object): S.objected,
    (S.objected, Move.uphold): S.stayed,
    (S.objected, Move.reject): S.released,
    (S.objected, Move.narrow): S.released,
    # The authority may also narrow a released demand itself; the new scope needs fresh approvals.
    (S.released, Move.narrow): S.released,
    (S.objection_window, Move.release): S.released,
    (S.released, Move.export): S.exported,
    **{(status, Move.close): S.closed for status in S if status is not S.closed},
}
# Statuses in which nothing may leave, whatever else happens.
EXPORT_BLOCKED = frozenset({S.objection_window, S.objected, S.stayed, S.exported, S.closed})


class TransitionRefused(Conflict):
    """The move is not allowed from the demand's current status."""


def next_status(current: str, move: Move) -> DisclosureStatus:
    status = DisclosureStatus(current)
    target = TRANSITIONS.get((status, move))
    if target is None:
        allowed = sorted(m.value for (s, m) in TRANSITIONS if s is status)
        hint = f"; allowed now: {', '.join(allowed)}" if allowed else ""
        raise TransitionRefused(f"cannot {move.value} a demand that is {status.value}{hint}")
    return target
