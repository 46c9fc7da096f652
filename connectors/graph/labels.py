"""Sensitivity labels: the tenant's label list, reading a file's labels, and assigning one.

assignSensitivityLabel is asynchronous, metered and throttled (100 per 5 minutes per tenant): Graph answers
202 with a monitor URL, and the label is applied only when the monitor says "completed". The monitor URL is
returned in a `LabelJob` so the caller can persist it and, after a restart, continue polling with `wait`
instead of assigning (and paying) again. Per-item refusals are outcomes, not exceptions: 402 (metered billing
not enabled), 423 (double-key encrypted, decryption not supported or deferred) and "not supported".
"""

from dataclasses import dataclass
from typing import Literal

from msgraph.generated.drives.item.items.item.assign_sensitivity_label.assign_sensitivity_label_post_request_body import (  # noqa: E501
    AssignSensitivityLabelPostRequestBody,
)
from msgraph.generated.models.sensitivity_label_assignment_method import SensitivityLabelAssignmentMethod
from msgraph.graph_service_client import GraphServiceClient

from connectors.base import ConnectorError, Locked, NotFound, PaymentRequired, Throttled
from connectors.graph.budget import Claim, Scope
from connectors.graph.errors import TEMPORARY_LOCK_CODES, is_temporary_lock
from connectors.graph.files import SINGLE_ITEM_RU, WRITE_RU
from connectors.graph.models import (
    AsyncJobStatus,
    CollectionPage,
    ExtractSensitivityLabelsResponse,
    LabelAssignment,
    SensitivityLabel,
)
from connectors.graph.requests import sharepoint_claims, tenant_claims
from connectors.graph.transport import GraphTransport
from connectors.graph.writes import write_once

LabelStatus = Literal[
    "applied",  # the monitor reported completion
    "already_applied",  # the file already carried the label (found while settling an ambiguous failure)
    "pending",  # still running when we stopped polling: keep `monitor_url` and call `wait` later
    "deferred",  # 423 fileDecryptionDeferred: try again later
    "failed",  # the monitor reported failure
    "locked",  # 423 double-key encrypted / decryption not supported: permanent for this file
    "payment_required",  # 402: metered APIs are not enabled for the app; fix billing, do not retry
    "not_supported",  # e.g. an IRM-protected label that cannot be applied app-only
]
PERMANENT_STATUSES = frozenset({"failed", "locked", "payment_required", "not_supported"})
NOT_SUPPORTED_CODES = frozenset({"notSupported", "NotSupported", "invalidRequest.notSupported"})
# The same codes a 423 carries, when the monitor reports them as the job's failure.
PERMANENT_LOCK_CODES = frozenset({"fileDoubleKeyEncrypted", "fileDecryptionNotSupported"})
MONITOR_RUNNING = frozenset({"notStarted", "inProgress", "running", "waiting", "accepted", None})
ASSIGN_LABEL_SCOPE = Scope.tenant("assignSensitivityLabel")
MONITOR_SCOPE = Scope.tenant("monitor")


@dataclass(frozen=True, slots=True)
class LabelJob:
    """An accepted assignment: persist it to resume polling after a restart."""

    drive_id: str
    item_id: str
    label_id: str
    monitor_url: str | None


@dataclass(frozen=True, slots=True)
class LabelOutcome:
    status: LabelStatus
    drive_id: str
    item_id: str
    label_id: str
    monitor_url: str | None = None
    code: str | None = None
    detail: str | None = None

    @property
    def is_permanent(self) -> bool:
        return self.status in PERMANENT_STATUSES

    @property
    def is_applied(self) -> bool:
        return self.status in ("applied", "already_applied")


@dataclass(frozen=True)
class MonitorPolicy:
    first_poll_s: float = 1.0
    max_poll_s: float = 30.0
    # How long one `wait` call polls before handing back a "pending" outcome with the monitor URL.
    max_wait_s: float = 600.0


class LabelOperations:
    def __init__(
        self, transport: GraphTransport, sdk: GraphServiceClient, *, monitor: MonitorPolicy | None = None
    ) -> None:
        self._transport = transport
        self._sdk = sdk
        self.monitor = monitor or MonitorPolicy()

    async def tenant_labels(self) -> list[SensitivityLabel]:
        request = self._sdk.security.data_security_and_governance.sensitivity_labels.to_get_request_information()
        labels: list[SensitivityLabel] = []
        while True:
            response = await self._transport.send(request, claims=tenant_claims("labels"))
            page = response.parse(CollectionPage[SensitivityLabel])
            labels.extend(page.value)
            if not page.next_link:
                return labels
            request = self._transport.request_for_link(page.next_link, request)

    async def extract(self, drive_id: str, item_id: str) -> list[LabelAssignment]:
        """The labels the file carries (extractSensitivityLabels: a POST, but it changes nothing)."""
        item = self._sdk.drives.by_drive_id(drive_id).items.by_drive_item_id(item_id)
        request = item.extract_sensitivity_labels.to_post_request_information()
        response = await self._transport.send(request, claims=sharepoint_claims(SINGLE_ITEM_RU))
        return response.parse(ExtractSensitivityLabelsResponse).value.labels

    async def has_label(self, drive_id: str, item_id: str, label_id: str) -> bool:
        wanted = label_id.lower()
        return any(found.sensitivity_label_id.lower() == wanted for found in await self.extract(drive_id, item_id))

    async def start(
        self,
        drive_id: str,
        item_id: str,
        label_id: str,
        *,
        justification: str | None = None,
        method: SensitivityLabelAssignmentMethod = SensitivityLabelAssignmentMethod.Privileged,
    ) -> LabelJob | LabelOutcome:
        """Ask Graph to assign the label; a LabelJob to `wait` on, or the outcome if Graph refused at once."""
        body = AssignSensitivityLabelPostRequestBody(
            sensitivity_label_id=label_id, assignment_method=method, justification_text=justification
        )
        item = self._sdk.drives.by_drive_id(drive_id).items.by_drive_item_id(item_id)
        request = item.assign_sensitivity_label.to_post_request_information(body)
        claims: list[Claim] = [*sharepoint_claims(WRITE_RU), Claim(ASSIGN_LABEL_SCOPE)]
        try:
            result = await write_once(
                lambda: self._transport.send(request, claims=claims, idempotent=False),
                lambda: self.has_label(drive_id, item_id, label_id),
                what=f"assignSensitivityLabel {item_id}",
            )
        except (PaymentRequired, Locked, NotFound) as refused:
            return self._refused(refused, drive_id, item_id, label_id)
        except ConnectorError as refused:
            if refused.code not in NOT_SUPPORTED_CODES or isinstance(refused, Throttled):
                raise
            return self._refused(refused, drive_id, item_id, label_id)
        if result.response is None:
            return LabelOutcome("already_applied", drive_id, item_id, label_id)
        location = result.response.headers.get("location")
        monitor_url = self._transport.check_link(location, "monitor") if location else None
        return LabelJob(drive_id, item_id, label_id, monitor_url)

    async def wait(self, job: LabelJob) -> LabelOutcome:
        """Poll the monitor (no Authorization: it is pre-authenticated) with backoff until it settles."""
        clock = self._transport.clock
        started = clock.monotonic()
        interval = self.monitor.first_poll_s
        while True:
            status = await self._poll(job)
            if status is not None:
                return status
            if clock.monotonic() - started + interval > self.monitor.max_wait_s:
                return LabelOutcome("pending", job.drive_id, job.item_id, job.label_id, monitor_url=job.monitor_url)
            await clock.sleep(interval)
            interval = min(interval * 2, self.monitor.max_poll_s)

    async def assign(
        self,
        drive_id: str,
        item_id: str,
        label_id: str,
        *,
        justification: str | None = None,
        method: SensitivityLabelAssignmentMethod = SensitivityLabelAssignmentMethod.Privileged,
    ) -> LabelOutcome:
        started = await self.start(drive_id, item_id, label_id, justification=justification, method=method)
        if isinstance(started, LabelOutcome):
            return started
        return await self.wait(started)

    async def _poll(self, job: LabelJob) -> LabelOutcome | None:
        """The outcome if the job has settled, None while it runs."""
        if job.monitor_url is None:
            # Graph accepted without a monitor: the file's own labels are the only progress signal.
            applied = await self.has_label(job.drive_id, job.item_id, job.label_id)
            return LabelOutcome("applied", job.drive_id, job.item_id, job.label_id) if applied else None
        try:
            response = await self._transport.send_unauthenticated("GET", job.monitor_url, claims=[Claim(MONITOR_SCOPE)])
        except NotFound:
            # Monitors are short-lived; once gone, the file itself says whether the label landed.
            applied = await self.has_label(job.drive_id, job.item_id, job.label_id)
            status: LabelStatus = "applied" if applied else "failed"
            code = None if applied else "monitorGone"
            return LabelOutcome(status, job.drive_id, job.item_id, job.label_id, code=code)
        if response.status == 303:
            return LabelOutcome("applied", job.drive_id, job.item_id, job.label_id)
        state = response.parse(AsyncJobStatus)
        if state.status == "completed":
            return LabelOutcome("applied", job.drive_id, job.item_id, job.label_id)
        if state.status in MONITOR_RUNNING:
            return None
        code = state.failure_code
        if code in TEMPORARY_LOCK_CODES:
            return LabelOutcome("deferred", job.drive_id, job.item_id, job.label_id, code=code)
        if code in PERMANENT_LOCK_CODES:
            return LabelOutcome("locked", job.drive_id, job.item_id, job.label_id, code=code)
        return LabelOutcome(
            "failed", job.drive_id, job.item_id, job.label_id, code=code or state.status, detail=state.failure_message
        )

    @staticmethod
    def _refused(error: ConnectorError, drive_id: str, item_id: str, label_id: str) -> LabelOutcome:
        status: LabelStatus
        if isinstance(error, PaymentRequired):
            status = "payment_required"
        elif isinstance(error, Locked):
            status = "deferred" if is_temporary_lock(error) else "locked"
        elif isinstance(error, NotFound):
            status = "failed"
        else:
            status = "not_supported"
        return LabelOutcome(status, drive_id, item_id, label_id, code=error.code, detail=error.message)
