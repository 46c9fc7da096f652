"""Scenario "classifier": local processing speed, items per second per core, with no Graph in the way.

The items are the seeded tenant's own messages and files, described as the sync describes them (participants;
folder path, site and modifier), classified by the real Classifier with the shipped policy. "With text" adds what
a content scan costs: the message body (derived from the seed, as the emulator serves it) through the identifier
scanner, then classification with its findings. Timed on the process's CPU clock, single-threaded, so the rate is
per core.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from app.classification import Classifier, ItemMetadata
from bench.steward import build_classifier
from bench.tenant import TenantInfo
from emulator.mail.content import body_text
from emulator.mail.store import Message as SeededMessage
from emulator.seed import SeedConfig, build_tenant, registry_rows
from emulator.state import Tenant

TEXT_SAMPLE = 5_000  # bodies scanned for the "with text" rate


@dataclass(frozen=True)
class ClassifierRun:
    items: int
    cpu_s: float
    text_items: int
    text_cpu_s: float


def _describe(tenant: Tenant) -> tuple[list[ItemMetadata], list[tuple[ItemMetadata, SeededMessage]]]:
    mail: list[tuple[ItemMetadata, SeededMessage]] = []
    for mailbox in tenant.mail.mailboxes.values():
        for message in mailbox.messages():
            addresses = (message.sender, *message.to, *message.cc)
            item = ItemMetadata(
                id=mailbox.immutable_id(message), kind="message", participants=tuple(a[1] for a in addresses)
            )
            mail.append((item, message))
    files: list[ItemMetadata] = []
    store = tenant.files
    for stored in store.items.values():
        if stored.is_folder or stored.parent_id is None:
            continue
        names: list[str] = []
        parent = store.items.get(stored.parent_id)
        while parent is not None and parent.parent_id is not None:
            names.append(parent.name)
            parent = store.items.get(parent.parent_id)
        drive = store.drives[stored.drive_id]
        files.append(
            ItemMetadata(
                id=stored.id,
                kind="file",
                path=f"/drives/{drive.id}/root:/" + "/".join(reversed(names)),
                site=store.sites[drive.site_id].web_url,
                modified_by=(stored.modified_by,),
            )
        )
    return [item for item, _ in mail] + files, mail


def _classifier(tenant: Tenant) -> Classifier:
    info = TenantInfo(
        endpoints={},
        base_url="",
        profile={},
        messages=0,
        files=0,
        mailboxes=0,
        drives=0,
        registry=registry_rows(tenant),
        labels=[(label.id, label.name, label.priority) for label in tenant.labels],
    )
    return build_classifier(info)


async def measure(config: SeedConfig) -> ClassifierRun:
    tenant = build_tenant(config)
    classifier = _classifier(tenant)
    items, mail = _describe(tenant)
    started = time.process_time()
    for item in items:
        classifier.classify(item)
    cpu_s = time.process_time() - started

    # Bodies are derived before the clock starts: generating them is the tenant's work, not Steward's.
    sample = [(item, body_text(message)) for item, message in mail[:TEXT_SAMPLE]]
    started = time.process_time()
    for item, body in sample:
        findings = classifier.scan_text(body)
        classifier.classify(ItemMetadata(id=item.id, kind="message", participants=item.participants, findings=findings))
    text_cpu_s = time.process_time() - started
    return ClassifierRun(len(items), cpu_s, len(sample), text_cpu_s)
