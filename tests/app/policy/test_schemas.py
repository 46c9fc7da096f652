import json

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from app.policy import DEFAULT_POLICY_PATH, Policy, default_policy, export_json_schema
from app.policy.json_schema import SCHEMA_PATH, schema_text


class TestDefaults:
    """The defaults are the company's privacy policy (privacy-policy-vi.txt)."""

    def test_shipped_file_spells_out_exactly_the_model_defaults(self):
        assert default_policy() == Policy()

    def test_customer_data_is_confidential_and_do_not_disclose_highly(self):
        policy = Policy()
        assert policy.classification.customer_data == "confidential"
        assert policy.labels.names.confidential == "Confidential"
        assert policy.labels.names.highly_confidential == "Highly Confidential"
        assert policy.labels.names.public == "Public"
        assert policy.labels.names.internal == "General"
        assert policy.labels.apply_to == ["confidential", "highly_confidential"]

    def test_public_information_lists_what_the_policy_calls_public(self):
        assert set(Policy().public_information.kinds) == {
            "legal_name",
            "person_name",
            "business_address",
            "business_phone",
            "self_published",
        }

    def test_retention_and_the_three_deletion_triggers(self):
        policy = Policy()
        assert policy.retention.inactivity_months == 12
        triggers = policy.deletion
        assert triggers.customer_request.enabled
        assert triggers.inactivity.enabled
        assert triggers.company_decision.enabled

    def test_approvals_disposal_and_contract_pattern(self):
        policy = Policy()
        assert policy.approvals.quorum == 2
        assert not policy.approvals.requester_may_approve
        assert (
            policy.approvals.reminder_after_hours < policy.approvals.escalate_after_hours < policy.approvals.ttl_hours
        )
        assert policy.disposal.proof_retention_years == 7
        assert [rule.regex for rule in policy.classification.patterns] == [r"HĐ-\d{4}/\d{4}"]

    def test_models_are_immutable(self):
        with pytest.raises(ValidationError):
            Policy().retention.inactivity_months = 1


class TestJsonSchema:
    def test_committed_schema_equals_the_generated_one(self):
        # Regenerate with: .venv/bin/python -m app.policy write-schema
        assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text()

    def test_default_policy_file_validates_against_the_schema(self):
        schema = export_json_schema()
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.validate(yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8")), schema)

    def test_schema_rejects_unknown_keys_like_the_model(self):
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"approvals": {"quorom": 2}}, schema)
