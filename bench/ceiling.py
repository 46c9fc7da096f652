"""The throttle-bound ceiling: the shortest wall time the profile's limits allow for the requests a sync needed.

It takes the successful Graph requests of the run (as the emulator logged them; throttled ones are left out, a
perfect client would not have sent them) and assumes zero processing time on either side, so only latency and
limits count. With L the profile's mean latency, C the Outlook concurrency per mailbox, W requests per Outlook
window of `window_s`, B SharePoint resource units per minute:

    mailbox m  (n_m requests; chain_m = 1 folder listing + the most delta pages of one of its folders, which
                must follow one another):
        t_m  = max(ceil(n_m / C), chain_m) * L + (ceil(n_m / W) - 1) * window_s
    SharePoint (U resource units at the emulator's costs; chain = site listing pages + 1 drive listing + the
                most delta pages of one drive):
        t_sp = max((ceil(U / B) - 1) * 60 s + L, chain * L)
    ceiling  = (user listing pages) * L + max(t_m for every mailbox, t_sp)

Mailboxes and SharePoint proceed in parallel once the user list is known, so the slowest of them bounds the run.
This is a lower bound: a real run also pays the tenant's page rendering and the client's parsing.

Labels have a ceiling of their own, reported next to it: assignSensitivityLabel is limited to 100 calls per
5 minutes per tenant, and a mail label costs 3 requests (read, PATCH, read back) on the mailbox's 4 slots.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from bench.requestlog import Record
from emulator.limits import RU_WINDOW_S, SHAREPOINT_PATH, resource_units

ASSIGN_LABEL_LIMIT = 100  # per tenant per ASSIGN_LABEL_WINDOW_S (SharePoint's documented limit)
ASSIGN_LABEL_WINDOW_S = 300.0
MAIL_LABEL_REQUESTS = 3  # read the current label, PATCH, read back


def _delta_source(record: Record) -> str | None:
    """The folder or drive a delta request enumerates (its nextLinks share the path)."""
    if "/delta" not in record.path:
        return None
    return record.path.split("/delta", 1)[0]


def throttle_ceiling(profile: Mapping[str, Any], records: Iterable[Record]) -> float:
    latency_s = profile["latency_ms"] / 1000
    done = [r for r in records if r.status < 400 and r.batch_id is None]
    user_pages = sum(1 for r in done if r.path.rstrip("/").endswith("/users"))

    per_mailbox: Counter[str] = Counter()
    delta_pages: Counter[tuple[str | None, str]] = Counter()
    sharepoint_units = 0
    site_list_pages = 0
    for record in done:
        source = _delta_source(record)
        if record.mailbox:
            per_mailbox[record.mailbox] += 1
        if source is not None:
            delta_pages[(record.mailbox, source)] += 1
        if SHAREPOINT_PATH.match(record.path):
            sharepoint_units += resource_units(record.method, record.path, record.query)
            site_list_pages += "getallsites" in record.path.lower()

    longest: dict[str | None, int] = defaultdict(int)
    for (mailbox, _), pages in delta_pages.items():
        longest[mailbox] = max(longest[mailbox], pages)

    bounds = [0.0]
    for mailbox, count in per_mailbox.items():
        rounds = max(math.ceil(count / profile["outlook_concurrency"]), 1 + longest[mailbox])
        windows = math.ceil(count / profile["outlook_requests_per_window"]) - 1
        bounds.append(rounds * latency_s + windows * profile["outlook_window_s"])
    if sharepoint_units:
        minutes = math.ceil(sharepoint_units / profile["ru_per_minute"]) - 1
        chain = site_list_pages + 1 + longest[None]
        bounds.append(max(minutes * RU_WINDOW_S + latency_s, chain * latency_s))
    return user_pages * latency_s + max(bounds)


def label_ceiling(profile: Mapping[str, Any], *, files_due: int, messages_due: Mapping[str, int]) -> float:
    """The shortest time the limits allow to label what the classifier targeted."""
    latency_s = profile["latency_ms"] / 1000
    files_s = (math.ceil(files_due / ASSIGN_LABEL_LIMIT) - 1) * ASSIGN_LABEL_WINDOW_S if files_due else 0.0
    mail_s = max(
        (
            math.ceil(count * MAIL_LABEL_REQUESTS / profile["outlook_concurrency"]) * latency_s
            for count in messages_due.values()
        ),
        default=0.0,
    )
    return max(files_s + (latency_s if files_due else 0.0), mail_s)
