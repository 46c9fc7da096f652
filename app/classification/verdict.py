"""The classification verdict: category, target label and what the labeler should do, each with its reason."""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from app.classification.attribution import Attributor, CurrentLabel, CustomerAttribution, ItemMetadata
from app.classification.detectors import Finding, IdentifierHasher, IdentifierScanner
from app.classification.extraction import ExtractionError, extract_text
from app.classification.registry import CustomerIndex, CustomerRecord, normalize_path
from app.policy.labels import LabelMap, TenantLabel
from app.policy.schemas import CATEGORY_ORDER, Category, Policy

_RANK = {category: rank for rank, category in enumerate(CATEGORY_ORDER)}


class LabelAction(StrEnum):
    APPLY = "apply"
    KEEP_HIGHER = "keep-higher"  # the item already has a label at least as sensitive: never downgrade
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Verdict:
    item_id: str
    customers: tuple[CustomerAttribution, ...]
    category: Category
    category_reason: str
    label: TenantLabel | None  # the label the category maps to, when the policy labels that category
    action: LabelAction
    action_reason: str

    @property
    def customer_ids(self) -> tuple[str, ...]:
        return tuple(attribution.customer_id for attribution in self.customers)

    def explain(self) -> list[str]:
        lines = [
            f"{attribution.customer_id}: {reason.rule} ({reason.detail})"
            for attribution in self.customers
            for reason in attribution.reasons
        ]
        lines.append(f"category {self.category}: {self.category_reason}")
        lines.append(f"{self.action}: {self.action_reason}")
        return lines


@dataclass(frozen=True, slots=True)
class ContentScan:
    findings: tuple[Finding, ...]
    skipped: str | None = None  # why the content was not read (ExtractionError.reason)
    truncated: bool = False


def decide_label_action(
    target: TenantLabel | None, current: CurrentLabel | None, labels: LabelMap, *, override_manual: bool
) -> tuple[LabelAction, str]:
    if target is None:
        return LabelAction.SKIP, "the policy does not label this category"
    if current is None:
        return LabelAction.APPLY, "no label yet"
    if current.id == target.id:
        return LabelAction.SKIP, "already carries the label"
    current_label = labels.by_id.get(current.id)
    if current_label is None:
        return LabelAction.SKIP, "current label is not a label of this tenant; reported, not touched"
    if current_label.priority >= target.priority:
        return LabelAction.KEEP_HIGHER, f"current label {current_label.name!r} is at least as sensitive"
    if current.manual and not override_manual:
        return LabelAction.SKIP, f"lower label {current_label.name!r} was chosen by a person; reported, not touched"
    return LabelAction.APPLY, f"raises {current_label.name!r}"


class Classifier:
    """Attribution + category + label action for items, against one policy, registry and tenant label set.

    Build it once per sync (the registry is indexed here); `classify` then costs a few dict lookups for an
    item without text.
    """

    def __init__(
        self,
        policy: Policy,
        customers: Iterable[CustomerRecord],
        labels: LabelMap,
        *,
        hasher: IdentifierHasher,
        reference_year: int | None = None,
    ) -> None:
        self.policy = policy
        self.index = CustomerIndex(customers, policy, hasher=hasher)
        self.scanner = IdentifierScanner(policy.classification, hasher=hasher, reference_year=reference_year)
        self._attributor = Attributor(self.index, policy)
        self._labels = labels
        self._apply_to = frozenset(policy.labels.apply_to)
        self._override_manual = policy.labels.override_manual_labels
        settings = policy.classification
        self._min_confidence = settings.min_confidence
        self._unattributed: dict[str, Category] = {
            name: detector.unattributed_category
            for name, detector in (("mst", settings.detectors.mst), ("cccd", settings.detectors.cccd),
                                   ("phone", settings.detectors.phone))
            if detector.unattributed_category is not None
        }  # fmt: skip
        self._unattributed.update(
            {rule.id: rule.unattributed_category for rule in settings.patterns if rule.unattributed_category}
        )

    def scan_text(self, text: str) -> tuple[Finding, ...]:
        return tuple(self.scanner.scan(text))

    def scan_content(self, data: bytes, *, filename: str | None = None, content_type: str | None = None) -> ContentScan:
        """Findings in a file's content; the text exists only inside this call."""
        limits = self.policy.classification.text_extraction
        if not limits.enabled:
            return ContentScan(findings=(), skipped="extraction-disabled")
        try:
            extracted = extract_text(data, limits, filename=filename, content_type=content_type)
        except ExtractionError as error:
            return ContentScan(findings=(), skipped=error.reason)
        return ContentScan(findings=self.scan_text(extracted.text), truncated=extracted.truncated)

    def classify(self, item: ItemMetadata) -> Verdict:
        customers = self._attributor.attribute(item)
        category, category_reason = self._category(item, customers)
        target = self._labels.by_category[category] if category in self._apply_to else None
        action, action_reason = decide_label_action(
            target, item.current_label, self._labels, override_manual=self._override_manual
        )
        return Verdict(item.id, customers, category, category_reason, target, action, action_reason)

    def _category(self, item: ItemMetadata, customers: tuple[CustomerAttribution, ...]) -> tuple[Category, str]:
        protected = [c.customer_id for c in customers if c.customer_id in self.index.do_not_disclose]
        if protected:
            return "highly_confidential", f"customer {', '.join(protected)} asked not to disclose"
        if item.path and self.index.public_locations:
            normalized = normalize_path(item.path)
            if any(pattern.match(normalized) for pattern in self.index.public_locations):
                return "public", "published location"
        if customers:
            return self.policy.classification.customer_data, "customer data"
        flagged: Category | None = None
        flagged_by = ""
        for finding in item.findings:
            key = finding.rule_id if finding.detector == "pattern" else finding.detector
            category = self._unattributed.get(key)
            if category and finding.confidence >= self._min_confidence:
                if flagged is None or _RANK[category] > _RANK[flagged]:
                    flagged, flagged_by = category, key
        if flagged:
            return flagged, f"{flagged_by} identifier without a known customer"
        return "internal", "no customer attributed"
