import pytest

from app.policy import NoticeRenderError, Policy, parse_policy, render_notice

DELETION = {
    "customer_name": "Công ty TNHH Minh Phát",
    "trigger": "customer request",
    "deleted_at": "2026-03-01",
    "item_count": 42,
    "proof_id": "P-123",
    "proof_retention_years": 7,
    "contact_email": "privacy@example.com",
}
DISCLOSURE = {
    "customer_name": "Riverside Trading Co., Ltd.",
    "authority": "Cơ quan điều tra",
    "legal_basis": "Bộ luật Tố tụng hình sự",
    "data_description": "hộp thư liên quan đến hợp đồng HĐ-2024/0001",
    "objection_deadline": "2026-03-15",
    "contact_email": "privacy@example.com",
}


@pytest.mark.parametrize("language", ["vi", "en"])
def test_deletion_confirmation(language):
    notice = render_notice(Policy(), "deletion_confirmation", language, DELETION)
    assert "MMGROUP" in notice.subject
    assert "42" in notice.body
    assert "P-123" in notice.body
    assert "Công ty TNHH Minh Phát" in notice.body


@pytest.mark.parametrize(("language", "objection"), [("vi", "phản đối"), ("en", "object")])
def test_compelled_disclosure_offers_the_chance_to_object(language, objection):
    notice = render_notice(Policy(), "compelled_disclosure", language, DISCLOSURE)
    assert objection in notice.body
    assert "2026-03-15" in notice.body
    assert "Cơ quan điều tra" in notice.body


def test_missing_values_are_refused():
    with pytest.raises(NoticeRenderError, match="needs authority"):
        render_notice(Policy(), "compelled_disclosure", "en", {k: v for k, v in DISCLOSURE.items() if k != "authority"})


def test_subject_cannot_carry_a_line_break():
    values = {**DELETION, "customer_name": "Evil\r\nBcc: someone@example.com"}
    notice = render_notice(Policy(), "deletion_confirmation", "en", values)
    assert "\n" not in notice.subject
    assert "\r" not in notice.subject


def test_policy_templates_run_sandboxed():
    policy = parse_policy(
        "notices:\n  deletion_confirmation:\n    en:\n"
        "      subject: s\n"
        "      body: '{{ customer_name.__class__.__mro__ }}'\n"
    )
    with pytest.raises(NoticeRenderError, match="unsafe|not safely|access"):
        render_notice(policy, "deletion_confirmation", "en", DELETION)
