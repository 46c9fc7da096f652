"""The labeler: puts the policy's sensitivity label on data-map items whose label is due.

Before writing, it reads the item's current label and lets the policy decide (app.classification.verdict):
a label at least as sensitive is kept (never downgraded), a lower label a person chose is kept unless the policy
says otherwise, and a label of another tenant is left alone; each of these is recorded with its reason.

Files go through assignSensitivityLabel: the monitor URL is committed before polling, so a restart resumes the
job instead of assigning (and paying) again. 402 and 423 are permanent outcomes for the item; after a 402 no more
files are sent this cycle (metered billing is a tenant setting, every call would be refused). Mail gets the
connector's mail label (msip_labels header + category, read back).
"""

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.classification import CurrentLabel, LabelAction, decide_label_action
from app.datamap.repository import DatamapItemRepository, reading
from app.db.base import utc_now
from app.models import DatamapItem, LabelState
from app.policy.labels import LabelMap, TenantLabel
from app.policy.schemas import Policy
from connectors.base import ConnectorError, Locked, NotFound
from connectors.graph.connector import GraphConnector
from connectors.graph.errors import Parked, is_temporary_lock
from connectors.graph.labels import NOT_SUPPORTED_CODES, LabelJob, LabelOutcome
from connectors.graph.mail import MailLabel
from connectors.graph.models import LabelAssignment

log = logging.getLogger(__name__)

# Office Open XML and PDF: what SharePoint writes label metadata into (other types answer "not supported").
LABELABLE_MIME_TYPES = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.ms-word.document.macroenabled.12",
        "application/vnd.ms-excel.sheet.macroenabled.12",
        "application/vnd.ms-powerpoint.presentation.macroenabled.12",
        "application/pdf",
    }
)
DUE_STATES = (LabelState.pending, LabelState.deferred)
BATCH = 200
DETAIL_MAX = 500
StopReason = Literal["payment_required", "parked"]


@dataclass
class LabelCounters:
    applied: int = 0
    already_labeled: int = 0
    kept_higher: int = 0
    skipped: int = 0
    failed: int = 0
    deferred: int = 0
    in_progress: int = 0
    errors: int = 0
    # Why labeling stopped before the end of the queue (the rest stays pending for the next cycle).
    stopped: StopReason | None = None


@dataclass(frozen=True, slots=True)
class _Outcome:
    state: str
    reason: str | None
    detail: str | None = None


class _Stop(Exception):
    def __init__(self, reason: StopReason) -> None:
        self.reason = reason


class Labeler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        connector: GraphConnector,
        *,
        labels: LabelMap,
        policy: Policy,
        tenant_id: str,
        counters: LabelCounters | None = None,
    ) -> None:
        self._sessions = sessions
        self._connector = connector
        self._labels = labels
        self._override_manual = policy.labels.override_manual_labels
        self._tenant_id = tenant_id
        self._canonical = {label_id.lower(): label_id for label_id in labels.by_id}
        self.counters = counters or LabelCounters()

    async def run(self) -> LabelCounters:
        """Label every due message and file; then settle the file jobs (this cycle's and earlier ones)."""
        try:
            async for row in self._rows("message", DUE_STATES):
                await self._label_message(row)
            async for row in self._rows("file", DUE_STATES):
                await self._start_file(row)
        except _Stop as stop:
            self.counters.stopped = stop.reason
        try:
            # Accepted jobs are settled even after a 402: Graph took them, only new ones would be refused.
            async for row in self._rows("file", (LabelState.in_progress,)):
                await self._settle_file(row)
        except _Stop as stop:
            self.counters.stopped = self.counters.stopped or stop.reason
        return self.counters

    async def _rows(self, kind: str, states: tuple[str, ...]) -> AsyncIterator[DatamapItem]:
        after = 0
        while True:
            async with reading(self._sessions) as session:
                rows = await DatamapItemRepository(session).with_label_state(
                    states, kind=kind, after_pk=after, limit=BATCH
                )
            if not rows:
                return
            for row in rows:
                yield row
            after = rows[-1].id

    # Mail --------------------------------------------------------------------------------------------------

    async def _label_message(self, row: DatamapItem) -> None:
        target = await self._target(row)
        if target is None:
            return
        user_id, message_id = row.container_id, row.item_id
        try:
            current = self._mail_label(await self._connector.mail.read_label(user_id, message_id))
            outcome = self._decide(target, current)
            if outcome is None:
                await self._connector.mail.write_label(
                    user_id, message_id, label_id=target.id, label_name=target.name, tenant_id=self._tenant_id
                )
                outcome = _Outcome(LabelState.labeled, "applied")
        except Parked:
            raise _Stop("parked") from None
        except ConnectorError as error:
            outcome = self._unsettled(error, row)
        await self._record(row, outcome, applied_id=target.id)

    def _mail_label(self, label: MailLabel | None) -> CurrentLabel | None:
        if label is None:
            return None
        # Our category names the label we wrote; a header without it (or naming another label) is a person's.
        ours = label.name is not None and label.category == f"{self._connector.mail.label_category_prefix}{label.name}"
        return CurrentLabel(id=self._canonical.get(label.label_id.lower(), label.label_id), manual=not ours)

    # Files -------------------------------------------------------------------------------------------------

    async def _start_file(self, row: DatamapItem) -> None:
        target = await self._target(row)
        if target is None:
            return
        if (row.mime_type or "").lower() not in LABELABLE_MIME_TYPES:
            await self._record(row, _Outcome(LabelState.skipped, "unsupported_type", row.mime_type))
            return
        drive_id, item_id = row.container_id, row.item_id
        try:
            current = self._file_label(await self._connector.labels.extract(drive_id, item_id), row)
            outcome = self._decide(target, current)
            if outcome is None:
                started = await self._connector.labels.start(drive_id, item_id, target.id)
                if isinstance(started, LabelJob):
                    # Committed before any polling: a restart resumes this job rather than paying for another.
                    outcome = _Outcome(LabelState.in_progress, "monitor_pending")
                    await self._record(row, outcome, monitor_url=started.monitor_url, count=False)
                    return
                outcome = self._from_connector(started)
        except Parked:
            raise _Stop("parked") from None
        except Locked as locked:
            temporary = is_temporary_lock(locked)
            outcome = _Outcome(
                LabelState.deferred if temporary else LabelState.failed,
                "decryption_deferred" if temporary else "locked",
                locked.code,
            )
        except ConnectorError as error:
            if error.code in NOT_SUPPORTED_CODES:
                outcome = _Outcome(LabelState.failed, "not_supported", error.code)
            else:
                outcome = self._unsettled(error, row)
        await self._record(row, outcome, applied_id=target.id)
        if outcome.reason == "payment_required":
            raise _Stop("payment_required")

    async def _settle_file(self, row: DatamapItem) -> None:
        job = LabelJob(row.container_id, row.item_id, row.target_label_id or "", row.label_monitor_url)
        try:
            outcome = self._from_connector(await self._connector.labels.wait(job))
        except Parked:
            raise _Stop("parked") from None
        except ConnectorError as error:
            self.counters.errors += 1
            log.warning("label.monitor_failed item=%s error=%s", row.id, type(error).__name__)
            return  # still in progress: the monitor URL stays for the next cycle
        await self._record(row, outcome, applied_id=row.target_label_id, monitor_url=row.label_monitor_url)

    def _file_label(self, assignments: list[LabelAssignment], row: DatamapItem) -> CurrentLabel | None:
        ours = [
            assignment
            for assignment in assignments
            if (assignment.tenant_id or self._tenant_id).lower() == self._tenant_id.lower()
        ]
        if not ours:
            return None
        found = ours[0]
        label_id = self._canonical.get(found.sensitivity_label_id.lower(), found.sensitivity_label_id)
        # "privileged" is a person's explicit choice, unless it is the label Steward itself applied.
        manual = (found.assignment_method or "").lower() == "privileged" and label_id != row.label_applied_id
        return CurrentLabel(id=label_id, manual=manual)

    # Decisions and bookkeeping -----------------------------------------------------------------------------

    async def _target(self, row: DatamapItem) -> TenantLabel | None:
        target = self._labels.by_id.get(row.target_label_id or "")
        if target is None:
            # The tenant's labels changed since the item was classified; the next classification re-targets it.
            await self._record(row, _Outcome(LabelState.skipped, "target_label_unknown", row.target_label_id))
        return target

    def _decide(self, target: TenantLabel, current: CurrentLabel | None) -> _Outcome | None:
        """None: apply the target label; otherwise why not (the policy's rule, app.classification.verdict)."""
        action, reason = decide_label_action(target, current, self._labels, override_manual=self._override_manual)
        if action == LabelAction.APPLY:
            return None
        if action == LabelAction.KEEP_HIGHER:
            return _Outcome(LabelState.kept_higher, "higher_label_kept", reason)
        if current is not None and current.id == target.id:
            return _Outcome(LabelState.labeled, "already_labeled")
        if current is not None and current.id not in self._labels.by_id:
            return _Outcome(LabelState.skipped, "foreign_label", reason)
        return _Outcome(LabelState.skipped, "manual_label_kept", reason)

    @staticmethod
    def _from_connector(result: LabelOutcome) -> _Outcome:
        match result.status:
            case "applied":
                return _Outcome(LabelState.labeled, "applied")
            case "already_applied":
                return _Outcome(LabelState.labeled, "already_labeled")
            case "pending":
                return _Outcome(LabelState.in_progress, "monitor_pending")
            case "deferred":
                return _Outcome(LabelState.deferred, "decryption_deferred", result.code)
            case "locked" | "payment_required" | "not_supported":
                return _Outcome(LabelState.failed, result.status, result.code)
            case _ if result.code == "monitorGone":
                # The job vanished and the label is not on the file: assign again next cycle.
                return _Outcome(LabelState.deferred, "monitor_gone")
            case _:
                detail = ": ".join(part for part in (result.code, result.detail) if part)
                return _Outcome(LabelState.failed, "failed", detail or None)

    def _unsettled(self, error: ConnectorError, row: DatamapItem) -> _Outcome:
        if isinstance(error, NotFound):
            return _Outcome(LabelState.deferred, "gone")  # the next delta page reports its removal
        self.counters.errors += 1
        log.warning("label.error item=%s kind=%s error=%s", row.id, row.kind, type(error).__name__)
        return _Outcome(LabelState.deferred, "error", str(error))

    async def _record(
        self,
        row: DatamapItem,
        outcome: _Outcome,
        *,
        applied_id: str | None = None,
        monitor_url: str | None = None,
        count: bool = True,
    ) -> None:
        async with self._sessions() as session, session.begin():
            stored = await session.get(DatamapItem, row.id)
            if stored is None:
                return  # removed by a sync in the meantime
            stored.label_state, stored.label_reason = outcome.state, outcome.reason
            stored.label_detail = outcome.detail[:DETAIL_MAX] if outcome.detail else None
            stored.label_updated_at = utc_now()
            stored.label_monitor_url = monitor_url if outcome.state == LabelState.in_progress else None
            if outcome.state == LabelState.labeled:
                stored.label_applied_id = applied_id
        if count:
            self._count(outcome)

    def _count(self, outcome: _Outcome) -> None:
        counters = self.counters
        if outcome.state == LabelState.labeled:
            if outcome.reason == "applied":
                counters.applied += 1
            else:
                counters.already_labeled += 1
        elif outcome.state == LabelState.kept_higher:
            counters.kept_higher += 1
        elif outcome.state == LabelState.skipped:
            counters.skipped += 1
        elif outcome.state == LabelState.failed:
            counters.failed += 1
        elif outcome.state == LabelState.deferred:
            counters.deferred += 1
        else:
            counters.in_progress += 1
