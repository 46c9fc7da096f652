import pytest

from app.policy import LabelMappingError, Policy, TenantLabel, parse_policy, resolve_labels

TENANT = [
    ("id-public", "Public", 0),
    ("id-general", "General", 1),
    ("id-conf", "Confidential", 2),
    ("id-highly", "Highly Confidential", 3),
    ("id-other", "Legal Privileged", 4),
]


def test_names_resolve_to_tenant_ids():
    labels = resolve_labels(Policy(), TENANT)
    assert labels.for_category("public").id == "id-public"
    assert labels.for_category("internal").id == "id-general"
    assert labels.for_category("confidential").id == "id-conf"
    assert labels.for_category("highly_confidential") == TenantLabel("id-highly", "Highly Confidential", 3)
    # Every tenant label is known, so an item's current label can be ranked even if the policy does not map it.
    assert labels.by_id["id-other"].priority == 4


def test_name_match_ignores_case():
    tenant = [(label_id, name.upper(), priority) for label_id, name, priority in TENANT]
    assert resolve_labels(Policy(), tenant).for_category("confidential").id == "id-conf"


def test_unknown_name_is_a_startup_error_naming_the_key():
    policy = parse_policy("labels:\n  names:\n    confidential: Secret\n")
    with pytest.raises(LabelMappingError) as caught:
        resolve_labels(policy, TENANT)
    assert "labels.names.confidential: no sensitivity label named 'Secret'" in str(caught.value)
    assert "'Confidential'" in str(caught.value)  # lists what the tenant has


def test_ambiguous_name_is_an_error():
    with pytest.raises(LabelMappingError, match="2 tenant labels are named 'Public'"):
        resolve_labels(Policy(), [*TENANT, ("id-public-2", "Public", 9)])


def test_tenant_order_must_agree_with_category_order():
    swapped = [("a", "Public", 0), ("b", "General", 1), ("c", "Confidential", 3), ("d", "Highly Confidential", 2)]
    with pytest.raises(LabelMappingError, match="'Highly Confidential' .* must have a higher priority"):
        resolve_labels(Policy(), swapped)


def test_empty_tenant():
    with pytest.raises(LabelMappingError, match="tenant has: none"):
        resolve_labels(Policy(), [])
