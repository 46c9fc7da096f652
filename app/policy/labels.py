"""Resolving the policy's label names to the tenant's sensitivity labels (done once at start-up)."""

from collections.abc import Iterable
from dataclasses import dataclass

from app.policy.schemas import CATEGORY_ORDER, Category, Policy


@dataclass(frozen=True, slots=True)
class TenantLabel:
    id: str
    name: str
    priority: int  # higher = more sensitive, as Microsoft Purview orders labels


class LabelMappingError(Exception):
    """The policy names a label the tenant does not have, or the tenant orders the mapped labels differently."""


@dataclass(frozen=True, slots=True)
class LabelMap:
    by_category: dict[Category, TenantLabel]
    by_id: dict[str, TenantLabel]  # every tenant label, so an item's current label can be ranked

    def for_category(self, category: Category) -> TenantLabel:
        return self.by_category[category]


def resolve_labels(policy: Policy, tenant_labels: Iterable[tuple[str, str, int] | TenantLabel]) -> LabelMap:
    """Map each category to the tenant label with the policy's name; raise LabelMappingError on any mismatch."""
    labels = [label if isinstance(label, TenantLabel) else TenantLabel(*label) for label in tenant_labels]
    by_name: dict[str, list[TenantLabel]] = {}
    for label in labels:
        by_name.setdefault(label.name.casefold(), []).append(label)
    names = policy.labels.names
    by_category: dict[Category, TenantLabel] = {}
    problems: list[str] = []
    for category in CATEGORY_ORDER:
        wanted = getattr(names, category)
        candidates = by_name.get(wanted.casefold(), [])
        if not candidates:
            known = ", ".join(sorted(repr(label.name) for label in labels)) or "none"
            problems.append(f"labels.names.{category}: no sensitivity label named {wanted!r} (tenant has: {known})")
        elif len(candidates) > 1:
            problems.append(f"labels.names.{category}: {len(candidates)} tenant labels are named {wanted!r}")
        else:
            by_category[category] = candidates[0]
    if not problems:
        problems.extend(_order_problems(by_category))
    if problems:
        raise LabelMappingError("; ".join(problems))
    return LabelMap(by_category=by_category, by_id={label.id: label for label in labels})


def _order_problems(by_category: dict[Category, TenantLabel]) -> list[str]:
    # "Never downgrade" compares priorities, so more sensitive categories must map to higher-priority labels.
    problems = []
    for lower, higher in zip(CATEGORY_ORDER, CATEGORY_ORDER[1:], strict=False):
        if by_category[lower].priority >= by_category[higher].priority:
            problems.append(
                f"label {by_category[higher].name!r} ({higher}) must have a higher priority than "
                f"{by_category[lower].name!r} ({lower}) in the tenant"
            )
    return problems
