"""JSON batching ($batch) on the SDK's request adapter, with per-sub-request retry.

msgraph-core's batch classes are unusable (they send `depends_on` instead of `dependsOn` and drop JSON
response bodies, sdk-notes.md 3), so batches are built here from SDK-built requests and sent through the same
transport as everything else (auth, budget, retries of the outer request).

- At most 20 sub-requests per batch and at most 4 per mailbox (Outlook runs 4 of a batch's requests against
  one mailbox in parallel; more self-throttle). Each sub-request counts against its own scope's budget, and a
  batch holds as many of a mailbox's 4 concurrency slots as it sends to that mailbox.
- Responses are matched by id (Graph returns them in any order).
- Only the sub-requests that were throttled or failed transiently are sent again, after their own
  Retry-After (their scope pauses for every worker, as for direct calls). A Retry-After at or beyond the park
  threshold parks that sub-request's unit instead. Non-idempotent sub-requests are not re-sent after an
  ambiguous 5xx; their result carries OutcomeUnknown for the caller to settle.
- Steps that depend on others (dependsOn) travel in their own, sequential batch: Graph requires a batch to be
  either fully parallel or fully sequential.
"""

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from kiota_abstractions.headers_collection import HeadersCollection
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from pydantic import BaseModel, ConfigDict, Field

from connectors.base import ConnectorError
from connectors.graph.budget import Claim, Scope
from connectors.graph.errors import RETRYABLE_STATUSES, OutcomeUnknown, Parked, error_from_response, parse_retry_after
from connectors.graph.transport import PER_ATTEMPT_HEADERS, GraphTransport

M = TypeVar("M", bound=BaseModel)

MAX_BATCH_SIZE = 20
MAX_PER_MAILBOX = 4
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True)
class BatchStep:
    id: str
    request: RequestInformation
    scope: Scope
    units: int = 1  # budget units: 1 request for a mailbox, the resource units for SharePoint
    depends_on: tuple[str, ...] = ()
    idempotent: bool = True


@dataclass(frozen=True)
class BatchItemResult:
    id: str
    status: int
    headers: dict[str, str]  # lower-case names
    body: Any  # the decoded JSON body (or a base64 string for binary content), None when empty
    attempts: int
    error: ConnectorError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def parse(self, model: type[M]) -> M:
        if self.error is not None:
            raise self.error
        return model.model_validate(self.body if self.body is not None else {})


class _ResponseItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    status: int
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None


class _BatchResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    responses: list[_ResponseItem] = Field(default_factory=list)


@dataclass
class _Round:
    """What one round of sending decided: results, steps to send again (with their latest failure, kept as
    the result if they run out of attempts), and how long to back off before the next round."""

    results: dict[str, BatchItemResult] = field(default_factory=dict)
    again: dict[str, tuple[BatchStep, BatchItemResult]] = field(default_factory=dict)
    backoff_s: float = 0.0


class BatchExecutor:
    def __init__(self, transport: GraphTransport) -> None:
        self._transport = transport

    async def run(self, steps: Sequence[BatchStep]) -> dict[str, BatchItemResult]:
        """Send the steps in as few batches as the rules allow; one result per step id."""
        _check_steps(steps)
        pending = {step.id: step for step in steps}
        results: dict[str, BatchItemResult] = {}
        attempts: Counter[str] = Counter()
        while pending:
            for step_id in pending:
                attempts[step_id] += 1
            rounds = await asyncio.gather(*(self._send(batch, attempts) for batch in _pack(list(pending.values()))))
            pending = {}
            backoff = 0.0
            for outcome in rounds:
                results.update(outcome.results)
                backoff = max(backoff, outcome.backoff_s)
                for step_id, (step, failure) in outcome.again.items():
                    if attempts[step_id] >= self._transport.retry.max_attempts:
                        results[step_id] = failure
                    else:
                        pending[step_id] = step
            if pending and backoff > 0:
                await self._transport.clock.sleep(backoff)
        return {step.id: results[step.id] for step in steps}

    async def _send(self, batch: list[BatchStep], attempts: Counter[str]) -> _Round:
        sequential = any(step.depends_on for step in batch)
        request = self._batch_request(batch)
        claims = _claims(batch, sequential)
        outcome = _Round()
        try:
            response = await self._transport.send(
                request, claims=claims, idempotent=all(step.idempotent for step in batch)
            )
        except ConnectorError as failed:
            # The whole batch failed after the transport's own retries: every step shares that outcome.
            status = failed.status_code or 0
            for step in batch:
                outcome.results[step.id] = BatchItemResult(step.id, status, {}, None, attempts[step.id], failed)
            return outcome
        by_id = {item.id.lower(): item for item in _BatchResponse.model_validate_json(response.content).responses}
        retried_ids: set[str] = set()
        for step in batch:
            item = by_id.get(step.id.lower())
            if item is None:
                missing = ConnectorError(f"the $batch response has no answer for request {step.id}")
                outcome.results[step.id] = BatchItemResult(step.id, 0, {}, None, attempts[step.id], missing)
                continue
            result = self._result(step, item, attempts[step.id])
            if result.error is None:
                outcome.results[step.id] = result
                continue
            result, backoff = await self._retry_decision(step, result)
            if backoff is None:
                outcome.results[step.id] = result
                continue
            outcome.again[step.id] = (step, result)
            retried_ids.add(step.id.lower())
            outcome.backoff_s = max(outcome.backoff_s, backoff)
        # A 424 only says its dependency failed; if that dependency is being sent again, so is the dependent.
        for step in batch:
            failed_dependency = outcome.results.get(step.id)
            if (
                failed_dependency is not None
                and failed_dependency.status == 424
                and retried_ids.intersection(_lower(step.depends_on))
            ):
                del outcome.results[step.id]
                outcome.again[step.id] = (step, failed_dependency)
        return outcome

    async def _retry_decision(self, step: BatchStep, result: BatchItemResult) -> tuple[BatchItemResult, float | None]:
        """The result to keep and None, or the failure and the seconds to back off before sending it again
        (0 when a throttle pause on the step's scope already makes the next send wait)."""
        if result.status not in RETRYABLE_STATUSES:
            return result, None
        transport = self._transport
        request_id = result.error.request_id if result.error else None
        retry_after = parse_retry_after(result.headers.get("retry-after"), transport.clock.now())
        throttle = result.status == 429 or (result.status == 503 and retry_after is not None)
        if not throttle and not step.idempotent:
            unknown = OutcomeUnknown(
                f"batched request {step.id} answered {result.status}; it may or may not have happened",
                status_code=result.status,
                request_id=request_id,
            )
            return replace(result, error=unknown), None
        delay = retry_after if retry_after is not None else transport.backoff(result.attempts)
        if throttle:
            transport.budget.throttled(step.scope, delay)
        if delay >= transport.budget.park_threshold_s:
            parked = Parked(
                f"Graph asked to wait {delay:.0f}s for batched request {step.id}",
                not_before=transport.clock.now() + timedelta(seconds=delay),
                unit=str(step.scope),
                retry_after_s=delay,
                status_code=result.status,
                request_id=request_id,
            )
            return replace(result, error=await transport.park(parked, [Claim(step.scope)])), None
        return result, 0.0 if throttle else delay

    def _result(self, step: BatchStep, item: _ResponseItem, attempts: int) -> BatchItemResult:
        headers = {name.lower(): str(value) for name, value in item.headers.items()}
        error = None
        if item.status >= 400:
            content = json.dumps(item.body).encode() if isinstance(item.body, dict) else b""
            now = self._transport.clock.now()
            error = error_from_response(item.status, headers, content, client_request_id=None, now=now)
        return BatchItemResult(step.id, item.status, headers, item.body, attempts, error)

    def _batch_request(self, batch: list[BatchStep]) -> RequestInformation:
        base_url = self._transport.adapter.base_url.rstrip("/")
        base_path = urlsplit(base_url).path
        in_batch = {step.id.lower() for step in batch}
        items = []
        for step in batch:
            request = step.request
            request.path_parameters["baseurl"] = base_url
            url = urlsplit(str(request.url))
            path = url.path[len(base_path) :] if url.path.startswith(base_path) else url.path
            method = request.http_method.value if request.http_method else "GET"
            relative = path + (f"?{url.query}" if url.query else "")
            item: dict[str, Any] = {"id": step.id, "method": method, "url": relative}
            headers = {
                name: ", ".join(sorted(values))
                for name, values in request.headers.get_all().items()
                if name not in PER_ATTEMPT_HEADERS
            }
            if request.content:
                item["body"] = json.loads(request.content)
            elif method in WRITE_METHODS:
                # Graph requires a body and Content-Type on every batched write, even body-less actions.
                item["body"] = {}
            if "body" in item:
                headers.setdefault("content-type", "application/json")
            if headers:
                item["headers"] = headers
            # A dependency that succeeded in an earlier round is not in this batch: nothing to wait for.
            depends_on = [d for d in step.depends_on if d.lower() in in_batch]
            if depends_on:
                item["dependsOn"] = depends_on
            items.append(item)
        request = RequestInformation(Method.POST)
        request.url = f"{base_url}/$batch"
        request.headers = HeadersCollection()
        request.headers.try_add("Content-Type", "application/json")
        request.content = json.dumps({"requests": items}).encode()
        return request


def _check_steps(steps: Sequence[BatchStep]) -> None:
    ids = [step.id.lower() for step in steps]
    if len(ids) != len(set(ids)):
        raise ValueError("batch step ids must be unique (case-insensitively)")
    known = set(ids)
    for step in steps:
        unknown = [d for d in step.depends_on if d.lower() not in known]
        if unknown:
            raise ValueError(f"step {step.id} depends on unknown steps {unknown}")
        if step.scope.kind == "mailbox" and step.units > MAX_PER_MAILBOX:
            raise ValueError(f"step {step.id} claims {step.units} mailbox requests; a request is one")


def _pack(steps: list[BatchStep]) -> list[list[BatchStep]]:
    """Independent steps in parallel batches (<= 20, <= 4 per mailbox); each dependency chain on its own."""
    by_id = {step.id.lower(): step for step in steps}
    chained = {step.id.lower() for step in steps if step.depends_on} | {
        dependency.lower() for step in steps for dependency in step.depends_on if dependency.lower() in by_id
    }
    batches: list[list[BatchStep]] = []
    for group in _chains([by_id[step_id] for step_id in by_id if step_id in chained]):
        if len(group) > MAX_BATCH_SIZE:
            raise ValueError(f"a chain of {len(group)} dependent steps cannot fit one batch of {MAX_BATCH_SIZE}")
        batches.append(group)
    open_batches: list[tuple[list[BatchStep], Counter[Scope]]] = []
    for step in steps:
        if step.id.lower() in chained:
            continue
        for members, per_mailbox in open_batches:
            if len(members) < MAX_BATCH_SIZE and (
                step.scope.kind != "mailbox" or per_mailbox[step.scope] < MAX_PER_MAILBOX
            ):
                members.append(step)
                per_mailbox[step.scope] += 1
                break
        else:
            open_batches.append(([step], Counter({step.scope: 1})))
    batches.extend(members for members, _ in open_batches)
    return batches


def _chains(steps: list[BatchStep]) -> list[list[BatchStep]]:
    """Connected groups of dependent steps, each in dependency order (dependencies first)."""
    by_id = {step.id.lower(): step for step in steps}
    parent = {step_id: step_id for step_id in by_id}

    def root(step_id: str) -> str:
        while parent[step_id] != step_id:
            step_id = parent[step_id]
        return step_id

    for step in steps:
        for dependency in step.depends_on:
            if dependency.lower() in by_id:
                parent[root(step.id.lower())] = root(dependency.lower())
    groups: dict[str, list[BatchStep]] = {}
    for step_id, step in by_id.items():
        groups.setdefault(root(step_id), []).append(step)
    ordered = []
    for members in groups.values():
        done: set[str] = set()
        order: list[BatchStep] = []
        while len(order) < len(members):
            progressed = False
            for step in members:
                key = step.id.lower()
                if key not in done and all(d.lower() in done or d.lower() not in by_id for d in step.depends_on):
                    order.append(step)
                    done.add(key)
                    progressed = True
            if not progressed:
                raise ValueError("batch steps depend on each other in a cycle")
        ordered.append(order)
    return ordered


def _lower(ids: Sequence[str]) -> set[str]:
    return {step_id.lower() for step_id in ids}


def _claims(batch: list[BatchStep], sequential: bool) -> list[Claim]:
    claims: list[Claim] = []
    mailbox_counts: Counter[Scope] = Counter()
    for step in batch:
        if step.scope.kind == "mailbox":
            mailbox_counts[step.scope] += 1
        else:
            claims.append(Claim(step.scope, units=step.units, slots=0))
    for scope, count in mailbox_counts.items():
        # A sequential batch runs one request at a time; a parallel one up to 4 against the mailbox at once.
        claims.append(Claim(scope, units=count, slots=1 if sequential else min(count, MAX_PER_MAILBOX)))
    return claims
