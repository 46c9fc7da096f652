"""Every card Steward sends validates against the Adaptive Card 1.5 schema Teams renders."""

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from app.models import PlanStatus
from app.teams.cards import PlanCardView, message_activity, notice_card, plan_card

SCHEMA_PATH = Path(__file__).resolve().parents[4] / "shared" / "reference" / "adaptive-card-1.5.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def assert_valid_card(validator: jsonschema.protocols.Validator, card: dict[str, Any]) -> None:
    errors = sorted(validator.iter_errors(card), key=lambda error: list(error.path))
    assert errors == [], [f"{list(e.path)}: {e.message}" for e in errors]
    assert card["version"] in ("1.4", "1.5")


def view(status: str = "pending_approval", **changes: Any) -> PlanCardView:
    values: dict[str, Any] = {
        "plan_id": "a" * 32,
        "status": status,
        "trigger": "inactivity",
        "reason": "inactivity: deletion due since 2026-01-01",
        "customers": ["Công ty TNHH Thương mại Sao Việt (C0003)"],
        "requested_by": "Steward scheduler",
        "messages": 12,
        "files": 4,
        "total_bytes": 5_300_000,
        "exclusions": {"legal_hold": 2, "shared_with_other_customer": 1},
        "approvals": ["Nguyễn Văn An"],
        "required": 2,
        "expires_at": "2026-12-01T00:00:00+00:00",
        "manifest_hash": "f" * 64,
        "cap_reasons": ["6000 items is over the cap of 5000 per plan"],
    }
    values.update(changes)
    return PlanCardView(**values)


@pytest.mark.parametrize("status", [status.value for status in PlanStatus if status != PlanStatus.dry_run])
@pytest.mark.parametrize("mode", ["bot", "webhook"])
def test_plan_cards_validate_in_every_state(validator: jsonschema.protocols.Validator, status: str, mode: str) -> None:
    card = plan_card(view(status), base_url="https://steward.example", mode=mode)  # type: ignore[arg-type]
    assert_valid_card(validator, card)
    assert_valid_card(validator, message_activity(card)["attachments"][0]["content"])


def test_bot_card_has_execute_buttons_carrying_only_plan_and_hash(validator: jsonschema.protocols.Validator) -> None:
    card = plan_card(view(), base_url="https://steward.example", mode="bot")

    actions = {action["title"]: action for action in card["actions"]}
    assert card["version"] == "1.5"
    assert actions["Approve"]["type"] == actions["Reject"]["type"] == "Action.Execute"
    assert actions["Approve"]["data"] == {"plan_id": "a" * 32, "manifest_hash": "f" * 64}
    assert actions["Review"] == {
        "type": "Action.OpenUrl",
        "title": "Review",
        "url": f"https://steward.example/plans/{'a' * 32}",
    }
    facts = {fact["title"]: fact["value"] for fact in card["body"][2]["facts"]}
    assert facts["Customer"].endswith("(C0003)")
    assert facts["To delete"] == "12 messages, 4 files (5.1 MB)"
    assert facts["Excluded"] == "legal_hold × 2, shared_with_other_customer × 1"
    assert facts["Approvals"] == "1 of 2"


def test_webhook_card_uses_links_only(validator: jsonschema.protocols.Validator) -> None:
    card = plan_card(view(), base_url="https://steward.example", mode="webhook")

    assert {action["type"] for action in card["actions"]} == {"Action.OpenUrl"}
    approve = next(action for action in card["actions"] if action["title"] == "Approve")
    assert approve["url"] == f"https://steward.example/plans/{'a' * 32}?decision=approve&manifest={'f' * 64}"


def test_decided_cards_offer_no_decision(validator: jsonschema.protocols.Validator) -> None:
    card = plan_card(view("approved"), base_url="https://steward.example", mode="bot")
    assert [action["title"] for action in card["actions"]] == ["Review"]


def test_notice_cards_validate(validator: jsonschema.protocols.Validator) -> None:
    assert_valid_card(validator, notice_card("Nothing changed", "self-approval is not allowed"))
