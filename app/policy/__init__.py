"""Policy as code: the policy file model, its loader, label resolution and customer notices."""

from app.policy.json_schema import export_json_schema
from app.policy.labels import LabelMap, LabelMappingError, TenantLabel, resolve_labels
from app.policy.loader import (
    DEFAULT_POLICY_PATH,
    PolicyFileError,
    PolicyProblem,
    check_policy_file,
    default_policy,
    load_policy,
    parse_policy,
)
from app.policy.notices import NoticeRenderError, RenderedNotice, render_notice
from app.policy.schemas import CATEGORY_ORDER, Category, Policy

__all__ = [
    "CATEGORY_ORDER",
    "DEFAULT_POLICY_PATH",
    "Category",
    "LabelMap",
    "LabelMappingError",
    "NoticeRenderError",
    "Policy",
    "PolicyFileError",
    "PolicyProblem",
    "RenderedNotice",
    "TenantLabel",
    "check_policy_file",
    "default_policy",
    "export_json_schema",
    "load_policy",
    "parse_policy",
    "render_notice",
    "resolve_labels",
]
