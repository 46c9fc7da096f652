"""Rendering the customer notices the policy defines (plain-text mail, Vietnamese or English)."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from app.policy.schemas import NoticeText, Policy

NoticeKind = Literal["compelled_disclosure", "deletion_confirmation"]
Language = Literal["vi", "en"]

# Sandboxed because the templates come from the policy file; StrictUndefined so a missing value is an error
# rather than a blank in a mail to a customer.
_ENVIRONMENT = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)


class NoticeRenderError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class RenderedNotice:
    subject: str
    body: str


def render_notice(policy: Policy, kind: NoticeKind, language: Language, values: Mapping[str, object]) -> RenderedNotice:
    template: NoticeText = getattr(getattr(policy.notices, kind), language)
    missing = sorted(type(template).variables - values.keys() - {"company_name"})
    if missing:
        raise NoticeRenderError(f"{kind} notice needs {', '.join(missing)}")
    context = {"company_name": policy.organization.name, **values}
    try:
        subject = _ENVIRONMENT.from_string(template.subject).render(context)
        body = _ENVIRONMENT.from_string(template.body).render(context)
    except TemplateError as error:  # undefined values, or the sandbox refusing an attribute
        raise NoticeRenderError(f"{kind} notice: {error.message}") from None
    # A subject is one header line: a value with a line break must not inject headers.
    return RenderedNotice(subject=" ".join(subject.split()), body=body)
