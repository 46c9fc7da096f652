"""The policy file's model. Defaults encode the company's privacy policy (shared/reference/privacy-policy-vi.txt).

Every model forbids unknown keys and coerces nothing, so a typo or a quoted number is an error naming its line
instead of a setting silently ignored.
"""

import re
from typing import Annotated, ClassVar, Literal, get_args

from jinja2 import TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

Category = Literal["public", "internal", "confidential", "highly_confidential"]
CATEGORY_ORDER: tuple[Category, ...] = ("public", "internal", "confidential", "highly_confidential")
PublicKind = Literal["legal_name", "person_name", "business_address", "business_phone", "self_published"]
LocationKey = Literal["id", "legal_name", "domain"]
TextFormat = Literal["docx", "xlsx", "pdf", "txt", "html"]

RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="lower-case letters, digits, '-'")]
Percent = Annotated[int, Field(ge=0, le=100)]
CUSTOMER_PLACEHOLDER = "{customer}"
MIB = 1024 * 1024


def _require_unique_ids(ids: list[str]) -> None:
    duplicates = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
    if duplicates:
        raise ValueError(f"duplicate id(s): {', '.join(duplicates)}")


def _check_wildcards(segments: list[str], *, allow_placeholder: bool) -> None:
    for segment in segments:
        if "*" in segment and segment not in ("*", "**"):
            raise ValueError(f"wildcards must be whole segments ('*' or '**'), not {segment!r}")
        if "{" in (segment.replace(CUSTOMER_PLACEHOLDER, "") if allow_placeholder else segment):
            raise ValueError("the only placeholder is '{customer}'" if allow_placeholder else "no placeholders here")


def path_segments(pattern: str) -> list[str]:
    return [segment for segment in pattern.strip("/").split("/") if segment]


class PolicyModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Organization(PolicyModel):
    name: str = Field("MMGROUP", min_length=1, description="Company name used in customer notices.")


class PublicInformation(PolicyModel):
    """What the company may disclose about a customer. A customer's do-not-disclose flag always overrides this."""

    kinds: list[PublicKind] = Field(
        default_factory=lambda: list(get_args(PublicKind)),
        description="Kinds of customer information that are public unless the customer set do-not-disclose.",
    )
    customer_references: bool = Field(
        True, description="The company may say it sold a product/service to a customer (name + product only)."
    )


class Retention(PolicyModel):
    inactivity_months: int = Field(12, ge=1, le=120, description="A customer is inactive after this many months.")


class CustomerRequestTrigger(PolicyModel):
    enabled: bool = True
    complete_within_days: int = Field(30, ge=1, le=365, description="Deadline to finish a customer's request.")
    send_confirmation: bool = Field(True, description="Mail the customer the deletion confirmation notice.")


class InactivityTrigger(PolicyModel):
    enabled: bool = True
    grace_days: int = Field(30, ge=0, le=365, description="Wait after the inactivity period before deletion is due.")
    service_ended_grace_days: int = Field(
        30, ge=0, le=730, description="Wait after the service end date before deletion is due."
    )


class CompanyDecisionTrigger(PolicyModel):
    enabled: bool = True
    require_reason: bool = Field(True, description="A company-initiated deletion plan must state its purpose.")
    extra_approvals: int = Field(0, ge=0, le=5, description="Approvals required on top of the normal quorum.")


class DeletionTriggers(PolicyModel):
    """The three cases in which the policy deletes customer information."""

    customer_request: CustomerRequestTrigger = CustomerRequestTrigger()
    inactivity: InactivityTrigger = InactivityTrigger()
    company_decision: CompanyDecisionTrigger = CompanyDecisionTrigger()


class Approvals(PolicyModel):
    quorum: int = Field(2, ge=1, le=10, description="Distinct approvers needed for a deletion plan.")
    requester_may_approve: bool = False
    reminder_after_hours: int = Field(24, ge=1, le=720)
    escalate_after_hours: int = Field(48, ge=1, le=720)
    ttl_hours: int = Field(72, ge=1, le=2160, description="An approval request expires after this long.")
    max_items_per_plan: int = Field(5000, ge=1, description="Above this, a plan needs extra approvals.")
    max_plans_per_hour: int = Field(10, ge=1, description="Above this rate, a plan needs extra approvals.")
    extra_approvals_above_cap: int = Field(1, ge=1, le=5)

    @field_validator("escalate_after_hours")
    @classmethod
    def _escalate_after_reminder(cls, value: int, info: ValidationInfo) -> int:
        reminder = info.data.get("reminder_after_hours")
        if reminder is not None and value <= reminder:
            raise ValueError(f"must be later than reminder_after_hours ({reminder})")
        return value

    @field_validator("ttl_hours")
    @classmethod
    def _expire_after_escalation(cls, value: int, info: ValidationInfo) -> int:
        escalate = info.data.get("escalate_after_hours")
        if escalate is not None and value <= escalate:
            raise ValueError(f"must be later than escalate_after_hours ({escalate})")
        return value


class Disposal(PolicyModel):
    soft_delete_grace_days: int = Field(
        14, ge=0, le=93, description="Deleted items stay recoverable this long before permanent deletion."
    )
    proof_retention_years: int = Field(7, ge=1, le=30, description="How long proofs of disposal are kept.")


class LabelNames(PolicyModel):
    """Sensitivity label NAMES per category; resolved to the tenant's label ids at start-up."""

    public: str = Field("Public", min_length=1)
    internal: str = Field("General", min_length=1)
    confidential: str = Field("Confidential", min_length=1)
    highly_confidential: str = Field("Highly Confidential", min_length=1)


class Labels(PolicyModel):
    names: LabelNames = LabelNames()
    apply_to: list[Category] = Field(
        default_factory=lambda: list(CATEGORY_ORDER[2:]),
        description="Categories the labeler applies; items of other categories are left as they are.",
    )
    override_manual_labels: bool = Field(
        False, description="Replace a lower label a person chose by hand (never a higher one)."
    )


class Participants(PolicyModel):
    enabled: bool = True
    match_subdomains: bool = True
    match_contact_addresses: bool = True
    ignored_domains: list[str] = Field(
        default_factory=lambda: [
            "gmail.com",
            "googlemail.com",
            "outlook.com",
            "hotmail.com",
            "live.com",
            "msn.com",
            "yahoo.com",
            "yahoo.com.vn",
            "icloud.com",
            "proton.me",
            "protonmail.com",
        ],
        description="Shared mail providers: never a customer domain; their users match by exact contact address.",
    )

    @field_validator("ignored_domains")
    @classmethod
    def _lower_case_domains(cls, value: list[str]) -> list[str]:
        return [domain.strip().lower() for domain in value]


class LocationRule(PolicyModel):
    """A folder path or site name pattern in which one segment names the customer.

    Segments are separated by '/'; '*' matches one segment, '**' any number; '{customer}' (optionally after a
    literal prefix such as 'KH-{customer}') is compared with the customer's keys. Matching ignores case, accents
    and punctuation, and also accepts a segment that starts with a key ('C0001 - Minh Phat' matches id C0001).
    """

    id: RuleId
    scope: Literal["path", "site"]
    pattern: str = Field(min_length=1)
    keys: list[LocationKey] = Field(default_factory=lambda: list(get_args(LocationKey)), min_length=1)

    @field_validator("pattern")
    @classmethod
    def _one_customer_segment(cls, value: str) -> str:
        segments = path_segments(value)
        holders = [segment for segment in segments if CUSTOMER_PLACEHOLDER in segment]
        if len(holders) != 1 or value.count(CUSTOMER_PLACEHOLDER) != 1:
            raise ValueError("needs exactly one '{customer}' placeholder")
        if not holders[0].endswith(CUSTOMER_PLACEHOLDER):
            raise ValueError("'{customer}' must end its path segment (a literal prefix such as 'KH-' is allowed)")
        _check_wildcards(segments, allow_placeholder=True)
        return value


class SharingRule(PolicyModel):
    guests: bool = Field(True, description="Shared with a customer's guest account.")
    customer_addresses: bool = Field(True, description="Shared with a customer domain or contact address.")


class IdentifierRule(PolicyModel):
    tax_code: bool = Field(True, description="Text contains the customer's MST (a branch code matches its parent).")
    contact_phone: bool = Field(True, description="Text contains a phone number of one of the customer's contacts.")


class Attribution(PolicyModel):
    participants: Participants = Participants()
    locations: list[LocationRule] = Field(
        default_factory=lambda: [
            LocationRule(id="customer-folder", scope="path", pattern="**/Customers/{customer}"),
            LocationRule(id="customer-folder-vi", scope="path", pattern="**/Khách hàng/{customer}"),
            LocationRule(id="customer-site", scope="site", pattern="KH-{customer}"),
        ]
    )
    sharing: SharingRule = SharingRule()
    modified_by_guest: bool = Field(True, description="Modified by one of the customer's guest accounts.")
    identifiers: IdentifierRule = IdentifierRule()

    @field_validator("locations")
    @classmethod
    def _unique_location_ids(cls, value: list[LocationRule]) -> list[LocationRule]:
        _require_unique_ids([rule.id for rule in value])
        return value


class DetectorSettings(PolicyModel):
    enabled: bool = True
    unattributed_category: Category | None = Field(
        None,
        description="Category for an item no customer is attributed to but that holds a finding of this "
        "detector at min_confidence or above; null leaves such items to the other rules.",
    )


class Detectors(PolicyModel):
    mst: DetectorSettings = DetectorSettings()
    cccd: DetectorSettings = DetectorSettings()
    phone: DetectorSettings = DetectorSettings()


class PatternRule(PolicyModel):
    """A policy-defined identifier such as a contract number."""

    id: RuleId
    name: str = Field(min_length=1)
    regex: str = Field(min_length=1, max_length=500)
    ignore_case: bool = False
    keywords: list[str] = Field(default_factory=list)
    confidence: Percent = 75
    confidence_with_keyword: Percent = 85
    unattributed_category: Category | None = None

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as error:
            raise ValueError(f"not a valid regular expression: {error}") from None
        if compiled.match(""):
            raise ValueError("must not match the empty string")
        return value


class TextExtraction(PolicyModel):
    enabled: bool = True
    formats: list[TextFormat] = Field(default_factory=lambda: list(get_args(TextFormat)))
    max_input_bytes: int = Field(20 * MIB, ge=1, description="Larger files are not read (metadata rules only).")
    max_uncompressed_bytes: int = Field(100 * MIB, ge=1, description="Cap on the XML inflated from a docx/xlsx.")
    max_text_chars: int = Field(2_000_000, ge=1, description="Text beyond this is not scanned.")
    max_pdf_pages: int = Field(300, ge=1)


class Classification(PolicyModel):
    customer_data: Literal["confidential", "highly_confidential"] = Field(
        "confidential", description="Category of customer data (do-not-disclose customers always get highly)."
    )
    min_confidence: Percent = Field(75, description="Findings below this never decide a category on their own.")
    keyword_proximity_chars: int = Field(300, ge=0, le=5000)
    detectors: Detectors = Detectors()
    patterns: list[PatternRule] = Field(
        default_factory=lambda: [
            PatternRule(
                id="contract-number",
                name="Số hợp đồng / Contract number",
                regex=r"HĐ-\d{4}/\d{4}",
                keywords=["hợp đồng", "contract"],
            )
        ]
    )
    public_locations: list[str] = Field(
        default_factory=list,
        description="Folder path patterns ('*', '**' segments) holding published material: items there are public "
        "unless a do-not-disclose customer is attributed.",
    )
    text_extraction: TextExtraction = TextExtraction()

    @field_validator("public_locations")
    @classmethod
    def _plain_path_patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not path_segments(pattern):
                raise ValueError("a pattern needs at least one segment")
            _check_wildcards(path_segments(pattern), allow_placeholder=False)
        return value

    @field_validator("patterns")
    @classmethod
    def _unique_pattern_ids(cls, value: list[PatternRule]) -> list[PatternRule]:
        _require_unique_ids([rule.id for rule in value])
        return value


_TEMPLATES = SandboxedEnvironment(autoescape=False)


class NoticeText(PolicyModel):
    """A Jinja2 subject and body; only the variables the sender supplies may be used."""

    variables: ClassVar[frozenset[str]] = frozenset()
    subject: str = Field(min_length=1)
    body: str = Field(min_length=1)

    @field_validator("subject", "body")
    @classmethod
    def _template_uses_known_variables(cls, value: str) -> str:
        try:
            used = meta.find_undeclared_variables(_TEMPLATES.parse(value))
        except TemplateSyntaxError as error:
            raise ValueError(f"template error on template line {error.lineno}: {error.message}") from None
        unknown = sorted(used - cls.variables)
        if unknown:
            raise ValueError(f"unknown variable(s) {', '.join(unknown)}; allowed: {', '.join(sorted(cls.variables))}")
        return value


class CompelledDisclosureText(NoticeText):
    variables = frozenset(
        {
            "company_name",
            "customer_name",
            "authority",
            "legal_basis",
            "data_description",
            "objection_deadline",
            "contact_email",
        }
    )


class DeletionConfirmationText(NoticeText):
    variables = frozenset(
        {
            "company_name",
            "customer_name",
            "trigger",
            "deleted_at",
            "item_count",
            "proof_id",
            "proof_retention_years",
            "contact_email",
        }
    )


class CompelledDisclosureNotice(PolicyModel):
    vi: CompelledDisclosureText = CompelledDisclosureText(
        subject="[{{ company_name }}] Thông báo về yêu cầu tiết lộ thông tin của {{ customer_name }}",
        body=(
            "Kính gửi {{ customer_name }},\n\n"
            "{{ company_name }} đã nhận được yêu cầu tiết lộ Thông tin bí mật của Quý khách từ {{ authority }} "
            "theo {{ legal_basis }}.\n"
            "Thông tin được yêu cầu: {{ data_description }}.\n\n"
            "Theo chính sách bảo mật thông tin, chúng tôi thông báo để Quý khách có cơ hội phản đối việc tiết lộ. "
            "Nếu Quý khách phản đối, vui lòng phản hồi trước {{ objection_deadline }} qua {{ contact_email }}. "
            "Nếu tòa án hoặc cơ quan có thẩm quyền chấp thuận bằng văn bản việc phản đối, xin Quý khách thông báo "
            "ngay cho chúng tôi để trì hoãn hoặc ngưng việc tiết lộ trong khuôn khổ pháp luật cho phép.\n\n"
            "Trân trọng,\n{{ company_name }}\n"
        ),
    )
    en: CompelledDisclosureText = CompelledDisclosureText(
        subject="[{{ company_name }}] Notice of a compelled disclosure request concerning {{ customer_name }}",
        body=(
            "Dear {{ customer_name }},\n\n"
            "{{ company_name }} has received a request from {{ authority }} under {{ legal_basis }} to disclose "
            "your Confidential Information.\n"
            "Information requested: {{ data_description }}.\n\n"
            "Under our privacy policy we are notifying you so that you have the opportunity to object to the "
            "disclosure. If you object, please reply before {{ objection_deadline }} to {{ contact_email }}. If a "
            "court or competent authority approves your objection in writing, please tell us promptly so that we "
            "can delay or stop the disclosure as far as the law allows.\n\n"
            "Kind regards,\n{{ company_name }}\n"
        ),
    )


class DeletionConfirmationNotice(PolicyModel):
    vi: DeletionConfirmationText = DeletionConfirmationText(
        subject="[{{ company_name }}] Xác nhận đã xóa thông tin của {{ customer_name }}",
        body=(
            "Kính gửi {{ customer_name }},\n\n"
            "{{ company_name }} xác nhận đã xóa {{ item_count }} mục dữ liệu của Quý khách vào {{ deleted_at }} "
            "(lý do: {{ trigger }}).\n"
            "Mã biên bản xóa: {{ proof_id }}. Biên bản được lưu trong {{ proof_retention_years }} năm và không "
            "chứa nội dung dữ liệu đã xóa.\n\n"
            "Mọi thắc mắc xin gửi về {{ contact_email }}.\n\n"
            "Trân trọng,\n{{ company_name }}\n"
        ),
    )
    en: DeletionConfirmationText = DeletionConfirmationText(
        subject="[{{ company_name }}] Confirmation that your information was deleted ({{ customer_name }})",
        body=(
            "Dear {{ customer_name }},\n\n"
            "{{ company_name }} confirms that {{ item_count }} items of your data were deleted on {{ deleted_at }} "
            "(reason: {{ trigger }}).\n"
            "Proof of disposal: {{ proof_id }}. The proof is kept for {{ proof_retention_years }} years and holds "
            "none of the deleted content.\n\n"
            "Questions: {{ contact_email }}.\n\n"
            "Kind regards,\n{{ company_name }}\n"
        ),
    )


class Notices(PolicyModel):
    compelled_disclosure: CompelledDisclosureNotice = CompelledDisclosureNotice()
    deletion_confirmation: DeletionConfirmationNotice = DeletionConfirmationNotice()


class Policy(PolicyModel):
    """Steward's policy file. An empty file means the company's policy as shipped."""

    model_config = ConfigDict(title="Steward policy")

    version: Literal[1] = 1
    organization: Organization = Organization()
    public_information: PublicInformation = PublicInformation()
    retention: Retention = Retention()
    deletion: DeletionTriggers = DeletionTriggers()
    approvals: Approvals = Approvals()
    disposal: Disposal = Disposal()
    labels: Labels = Labels()
    attribution: Attribution = Attribution()
    classification: Classification = Classification()
    notices: Notices = Notices()
