"""Golden scenarios: each YAML file under golden/ is a small tenant (customers, items, events, policy
overrides) with the attribution, category, label action and inactivity the policy must produce."""

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from app.classification import (
    ActivityEvent,
    Classifier,
    CurrentLabel,
    CustomerRecord,
    IdentifierHasher,
    ItemMetadata,
    activity_from_item,
    activity_status,
    latest_activity,
)
from app.policy import parse_policy, resolve_labels
from tests.app.classification.documents import docx, pdf, xlsx

GOLDEN = Path(__file__).with_name("golden")
SCENARIOS = sorted(GOLDEN.glob("*.yaml"))
TENANT_LABELS = [
    ("lbl-public", "Public", 0),
    ("lbl-general", "General", 1),
    ("lbl-conf", "Confidential", 2),
    ("lbl-highly", "Highly Confidential", 3),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt expectation must fail, not pass silently


class Customer(Strict):
    id: str
    legal_name: str = ""
    domains: list[str] = []
    contact_emails: list[str] = []
    contact_phones: list[str] = []
    business_phone: str | None = None
    tax_codes: list[str] = []
    guest_ids: list[str] = []
    do_not_disclose: bool = False
    service_ended_at: datetime | None = None
    registered_at: datetime | None = None


class Label(Strict):
    name: str | None = None
    id: str | None = None
    manual: bool = False


class Document(Strict):
    format: Literal["docx", "xlsx", "pdf"]
    content: list[str] | list[list[str | int]]


class ItemExpectation(Strict):
    customers: dict[str, list[str]]
    category: Literal["public", "internal", "confidential", "highly_confidential"]
    action: Literal["apply", "keep-higher", "skip"]
    label: str | None = None
    findings: list[str] | None = None


class Item(Strict):
    id: str
    kind: Literal["message", "file"]
    participants: list[str] = []
    path: str | None = None
    site: str | None = None
    shared_with: list[str] = []
    modified_by: list[str] = []
    text: str | None = None
    document: Document | None = None
    current_label: Label | None = None
    timestamp: datetime | None = None
    expect: ItemExpectation


class Event(Strict):
    customer: str
    kind: Literal["purchase", "support_ticket", "imported"]
    at: datetime


class ActivityExpectation(Strict):
    state: Literal["active", "inactive", "service_ended", "unknown"]
    last_activity_at: datetime | None = None
    last_activity_kind: str | None = None
    deletion_due: bool
    deletion_trigger: Literal["inactivity", "service_ended"] | None = None


class Scenario(Strict):
    description: str
    now: datetime
    policy: dict[str, Any] = {}
    customers: list[Customer]
    events: list[Event] = []
    items: list[Item] = Field(default_factory=list)
    expect_activity: dict[str, ActivityExpectation] = {}


def test_there_are_enough_scenarios():
    assert len(SCENARIOS) >= 20


@pytest.mark.parametrize("path", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_scenario(path: Path):
    scenario = Scenario.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    policy = parse_policy(yaml.safe_dump(scenario.policy), source=f"{path.name}:policy")
    labels = resolve_labels(policy, TENANT_LABELS)
    label_ids = {name: label_id for label_id, name, _ in TENANT_LABELS}
    classifier = Classifier(
        policy,
        [_record(customer) for customer in scenario.customers],
        labels,
        hasher=IdentifierHasher(b"golden"),
        reference_year=scenario.now.year,
    )

    events = [ActivityEvent(event.customer, event.kind, event.at) for event in scenario.events]
    for item in scenario.items:
        findings = classifier.scan_text(item.text) if item.text else ()
        if item.document:
            scan = classifier.scan_content(_build(item.document), filename=f"{item.id}.{item.document.format}")
            assert scan.skipped is None, scan.skipped
            findings += scan.findings
        current = None
        if item.current_label:
            current_id = item.current_label.id or label_ids[item.current_label.name or ""]
            current = CurrentLabel(current_id, manual=item.current_label.manual)
        metadata = ItemMetadata(
            id=item.id,
            kind=item.kind,
            participants=tuple(item.participants),
            path=item.path,
            site=item.site,
            shared_with=tuple(item.shared_with),
            modified_by=tuple(item.modified_by),
            findings=findings,
            current_label=current,
            timestamp=item.timestamp,
        )
        verdict = classifier.classify(metadata)
        explanation = "\n  ".join([f"item {item.id}:", *verdict.explain()])
        got = {
            attribution.customer_id: sorted({reason.rule for reason in attribution.reasons})
            for attribution in verdict.customers
        }
        expected = {customer: sorted(rules) for customer, rules in item.expect.customers.items()}
        assert got == expected, explanation
        assert verdict.category == item.expect.category, explanation
        assert verdict.action == item.expect.action, explanation
        assert (verdict.label.name if verdict.label else None) == item.expect.label, explanation
        if item.expect.findings is not None:
            assert sorted(finding.detector for finding in findings) == sorted(item.expect.findings), explanation
        events.extend(activity_from_item(metadata, verdict))

    latest = latest_activity(events, now=scenario.now)
    customers = {customer.id: customer for customer in scenario.customers}
    for customer_id, expected_activity in scenario.expect_activity.items():
        customer = customers[customer_id]
        status = activity_status(
            customer_id,
            last=latest.get(customer_id),
            now=scenario.now,
            policy=policy,
            service_ended_at=customer.service_ended_at,
            registered_at=customer.registered_at,
        )
        got_activity = {
            "state": status.state,
            "last_activity_at": status.last_activity_at,
            "last_activity_kind": status.last_activity_kind,
            "deletion_due": status.deletion_due,
            "deletion_trigger": status.deletion_trigger,
        }
        assert got_activity == expected_activity.model_dump(), f"activity of {customer_id}: {status}"


def _record(customer: Customer) -> CustomerRecord:
    return CustomerRecord(
        id=customer.id,
        legal_name=customer.legal_name,
        domains=tuple(customer.domains),
        contact_emails=tuple(customer.contact_emails),
        contact_phones=tuple(customer.contact_phones),
        business_phone=customer.business_phone,
        tax_codes=tuple(customer.tax_codes),
        guest_ids=tuple(customer.guest_ids),
        do_not_disclose=customer.do_not_disclose,
    )


def _build(document: Document) -> bytes:
    if document.format == "docx":
        return docx(*[str(line) for line in document.content])
    if document.format == "pdf":
        return pdf(*[str(line) for line in document.content])
    return xlsx([row if isinstance(row, list) else [row] for row in document.content])
