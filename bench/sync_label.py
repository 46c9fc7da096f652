"""Scenario "sync_label": a full sync of every mailbox folder and every drive, through Steward's Graph layer and
through a naive msgraph-sdk loop, against the same tenant and profile in the same run.

Steward: GraphConnector (shared budget, pydantic parsing, large pages, all mailboxes and drives concurrently).
Naive: GraphServiceClient with the SDK's default retry, one request at a time, default page sizes, Kiota models.
Both must see the same number of items, or the run is void.
"""

import asyncio
import math
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from connectors.base import Throttled
from connectors.graph.auth import ClientSecret, MsalCredential
from connectors.graph.budget import ThrottleBudget
from connectors.graph.client import GraphClient, build_graph_client
from connectors.graph.connector import GraphConnector
from connectors.graph.transport import steward_user_agent

MAIL_PAGE_SIZE = 1_000


@dataclass
class RunResult:
    seconds: float
    items: int
    requests: int
    peak_rss_mb: float
    unhandled_429: int


class RssSampler:
    """Peak resident memory of this process while a block runs (sampled every 50 ms)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._process = psutil.Process()

    @contextmanager
    def sampling(self) -> Iterator["RssSampler"]:
        self.peak = self._process.memory_info().rss
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._process.memory_info().rss)


def _credential(info: dict[str, Any]) -> MsalCredential:
    return MsalCredential(
        tenant_id=info["tenant_id"],
        client_id=info["client_id"],
        credential=ClientSecret(info["client_secret"]),
        authority_host=info["base_url"],
        ca_bundle=Path(info["ca_bundle"]),
    )


def _client(info: dict[str, Any], credential: MsalCredential) -> GraphClient:
    return build_graph_client(
        credential, base_url=info["graph_url"], allowed_hosts=["127.0.0.1"], ca_bundle=Path(info["ca_bundle"])
    )


class RequestLog:
    """Counts what the emulator recorded between two marks (its log is the ground truth of what was sent)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self._control = httpx.AsyncClient(base_url=info["control_url"], verify=info["ca_bundle"], timeout=120)

    async def clear(self) -> None:
        await self._control.delete("/requests")

    async def graph_requests(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        body = (await self._control.get("/requests", params={"path_prefix": "/v1.0/", "top": "1000"})).json()
        while True:
            records.extend(body["value"])
            if not body.get("nextLink"):
                return records
            # The nextLink carries its own query; passing params (even empty ones) would replace it.
            body = (await self._control.get(body["nextLink"])).json()

    async def aclose(self) -> None:
        await self._control.aclose()


async def steward_sync(info: dict[str, Any], profile: dict[str, Any]) -> RunResult:
    credential = _credential(info)
    client = _client(info, credential)
    budget = ThrottleBudget(
        mailbox_concurrency=profile["outlook_concurrency"],
        mailbox_requests_per_window=profile["outlook_requests_per_window"],
        mailbox_window_s=profile["outlook_window_s"],
        sharepoint_ru_limits=[(profile["ru_per_minute"], 60.0)],
    )
    graph = GraphConnector(
        client,
        budget=budget,
        user_agent=steward_user_agent("Bench", "0.1.0"),
        allowed_hosts=["127.0.0.1"],
        token_refresh=credential.force_refresh,
    )
    unhandled = 0
    items = 0

    async def guarded(work: Awaitable[int]) -> None:
        nonlocal unhandled, items
        try:
            count = await work  # awaited first: `items += await work` would read `items` before the await
        except Throttled:
            unhandled += 1
            return
        items += count

    async def folder(user_id: str, folder_id: str) -> int:
        count = 0
        async for page in graph.mail.message_delta(user_id, folder_id, page_size=MAIL_PAGE_SIZE):
            count += len(page.items)
        return count

    async def mailbox(user_id: str) -> int:
        folders = await graph.mail.mail_folders(user_id)
        counts = await asyncio.gather(*(folder(user_id, f.id) for f in folders))
        return sum(counts)

    async def drive(drive_id: str) -> int:
        return sum([len(page.items) async for page in graph.files.drive_delta(drive_id)])

    async def drives_of_site(site_id: str) -> int:
        drives = await graph.files.site_drives(site_id)
        return sum(await asyncio.gather(*(drive(d.id) for d in drives)))

    async def user_drive(user_id: str) -> int:
        found = await graph.files.user_drive(user_id)
        return await drive(found.id) if found else 0

    started = time.perf_counter()
    try:
        users = [user async for user in graph.directory.staff_mailboxes()]
        sites = [site async for page in graph.files.sites() for site in page.items]
        work: list[Awaitable[int]] = [mailbox(u.id) for u in users]
        work += [user_drive(u.id) for u in users]
        work += [drives_of_site(s.id) for s in sites if "-my.sharepoint.com" not in (s.web_url or "")]
        await asyncio.gather(*(guarded(w) for w in work))
    finally:
        seconds = time.perf_counter() - started
        await client.aclose()
        await credential.close()
    return RunResult(seconds, items, 0, 0.0, unhandled)


async def naive_sync(info: dict[str, Any]) -> RunResult:
    """What a first msgraph-sdk integration looks like: sequential, default pages, default retry, Kiota models."""
    credential = _credential(info)
    client = _client(info, credential)
    sdk = client.sdk
    unhandled = 0
    items = 0

    async def collect(builder: Any, config: RequestConfiguration[Any] | None = None) -> list[Any]:
        """Every item of a collection: the builder's GET, then its with_url(@odata.nextLink) until the end."""
        nonlocal unhandled
        values: list[Any] = []
        try:
            page = await builder.get(request_configuration=config)
            while page is not None:
                values.extend(page.value or [])
                link = getattr(page, "odata_next_link", None)
                page = await builder.with_url(link).get() if link else None
        except ODataError as error:
            if error.response_status_code != 429:
                raise
            unhandled += 1
        return values

    started = time.perf_counter()
    try:
        members_only = RequestConfiguration(
            query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                filter="userType eq 'Member'", select=["id", "mail", "userType"]
            )
        )
        members = [u for u in await collect(sdk.users, members_only) if u.mail]
        for user in members:
            user_builder = sdk.users.by_user_id(user.id)
            pending = await collect(user_builder.mail_folders)
            while pending:
                current = pending.pop()
                folder_builder = user_builder.mail_folders.by_mail_folder_id(current.id)
                if current.child_folder_count:
                    pending += await collect(folder_builder.child_folders)
                items += len(await collect(folder_builder.messages.delta))
        drive_ids = []
        for user in members:
            drive = await sdk.users.by_user_id(user.id).drive.get()
            if drive is not None and drive.id:
                drive_ids.append(drive.id)
        for site in await collect(sdk.sites.get_all_sites):
            if "-my.sharepoint.com" not in (site.web_url or ""):
                drive_ids += [d.id for d in await collect(sdk.sites.by_site_id(site.id).drives)]
        for drive_id in drive_ids:
            items += len(await collect(sdk.drives.by_drive_id(drive_id).items.by_drive_item_id("root").delta))
    finally:
        seconds = time.perf_counter() - started
        await client.aclose()
        await credential.close()
    return RunResult(seconds, items, 0, 0.0, unhandled)


def throttle_ceiling(profile: dict[str, Any], requests: list[dict[str, Any]]) -> float:
    """The shortest time the emulator's limits allow for the requests Steward needed.

    Per mailbox: its requests at most 4 at a time, but never fewer rounds than its longest chain (the folder
    list, then one folder's delta pages one after another), each round at least the profile's mean latency,
    and no more requests per window than the profile allows. SharePoint: its resource units at the per-minute
    budget (the first minute's budget is free). Mailboxes and SharePoint proceed in parallel after the user
    list, so the slowest of them bounds the whole sync.
    """
    latency_s = profile["latency_ms"] / 1000
    per_mailbox = Counter(r["mailbox"] for r in requests if r["mailbox"] and not r["batchId"])
    delta_pages = Counter(
        (r["mailbox"], r["path"].split("/messages/delta", 1)[0]) for r in requests if "/messages/delta" in r["path"]
    )
    longest_chain: Counter[str] = Counter()
    for (mailbox, _), pages in delta_pages.items():
        longest_chain[mailbox] = max(longest_chain[mailbox], 1 + pages)
    directory_rounds = sum(1 for r in requests if r["path"].rstrip("/").endswith("/users"))
    bounds = [0.0]
    for mailbox, count in per_mailbox.items():
        rounds = max(math.ceil(count / profile["outlook_concurrency"]), longest_chain[mailbox])
        windows = max(0, math.ceil(count / profile["outlook_requests_per_window"]) - 1)
        bounds.append(rounds * latency_s + windows * profile["outlook_window_s"])
    units = sum(_resource_units(r) for r in requests if _is_sharepoint(r["path"]))
    if units:
        minutes = max(0, math.ceil(units / profile["ru_per_minute"]) - 1)
        bounds.append(minutes * 60.0 + latency_s)
    return directory_rounds * latency_s + max(bounds)


def _is_sharepoint(path: str) -> bool:
    from emulator.limits import SHAREPOINT_PATH

    return SHAREPOINT_PATH.match(path) is not None


def _resource_units(record: dict[str, Any]) -> int:
    from emulator.limits import resource_units

    return resource_units(record["method"], record["path"], record["query"])


async def run(info: dict[str, Any]) -> dict[str, Any]:
    profile = info["profile"]
    log = RequestLog(info)
    sampler = RssSampler()
    try:
        await log.clear()
        with sampler.sampling():
            steward = await steward_sync(info, profile)
        steward_requests = await log.graph_requests()
        steward.requests = len(steward_requests)
        steward.peak_rss_mb = sampler.peak / 2**20
        print(f"  Steward: {steward.items} items in {steward.seconds:.1f} s, {steward.requests} requests", flush=True)
        await log.clear()
        with sampler.sampling():
            naive = await naive_sync(info)
        naive_requests = await log.graph_requests()
        naive.requests = len(naive_requests)
        naive.peak_rss_mb = sampler.peak / 2**20
    finally:
        await log.aclose()
    if steward.items != naive.items:
        raise RuntimeError(f"the two syncs disagree: Steward saw {steward.items} items, the naive loop {naive.items}")
    ceiling = throttle_ceiling(profile, steward_requests)
    throttled = Counter(r["status"] for r in steward_requests)[429]
    return {
        "items": steward.items,
        "steward_s": round(steward.seconds, 2),
        "naive_s": round(naive.seconds, 2),
        "ratio": round(naive.seconds / steward.seconds, 2),
        "ceiling_s": round(ceiling, 2),
        "ceiling_fraction": round(ceiling / steward.seconds, 3),
        "requests_per_1000_items": round(steward.requests / steward.items * 1000, 2),
        "naive_requests_per_1000_items": round(naive.requests / naive.items * 1000, 2),
        "peak_rss_mb": round(steward.peak_rss_mb, 1),
        "naive_peak_rss_mb": round(naive.peak_rss_mb, 1),
        "unhandled_429": steward.unhandled_429,
        "naive_unhandled_429": naive.unhandled_429,
        "throttled_responses": throttled,
    }
