"""The customer's notice of a compelled disclosure: one mail, Vietnamese first, then English (policy templates)."""

from datetime import datetime, timedelta, timezone

from app.policy import Policy, RenderedNotice, render_notice
from app.policy.notices import Language

# Vietnam keeps one offset all year; deadlines are shown in the customer's local time.
VIETNAM = timezone(timedelta(hours=7), "GMT+7")
LANGUAGES: tuple[Language, ...] = ("vi", "en")
SEPARATOR = "\n\n----------------------------------------\n\n"


def deadline_text(moment: datetime, language: str) -> str:
    local = moment.astimezone(VIETNAM)
    if language == "vi":
        return f"{local:%H:%M} ngày {local:%d/%m/%Y} (GMT+7)"
    return f"{local.day} {local:%B %Y}, {local:%H:%M} (GMT+7)"


def render_disclosure_notice(
    policy: Policy,
    *,
    customer_name: str,
    authority: str,
    legal_basis: str,
    data_description: str,
    objection_deadline: datetime,
    contact_email: str,
) -> RenderedNotice:
    parts = [
        render_notice(
            policy,
            "compelled_disclosure",
            language,
            {
                "customer_name": customer_name,
                "authority": authority,
                "legal_basis": legal_basis,
                "data_description": data_description,
                "objection_deadline": deadline_text(objection_deadline, language),
                "contact_email": contact_email,
            },
        )
        for language in LANGUAGES
    ]
    return RenderedNotice(
        subject=" / ".join(part.subject for part in parts), body=SEPARATOR.join(p.body for p in parts)
    )
