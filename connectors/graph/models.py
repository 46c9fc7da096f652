"""Typed views of the Graph JSON Steward reads, parsed from raw bytes with pydantic v2.

Only the fields Steward uses are modelled; everything else is ignored. Parsing a 1,000-message page this way
takes tens of milliseconds, against about ten seconds through msgraph-sdk's Kiota models (sdk-notes.md 5).
"""

from datetime import datetime
from typing import Generic, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

T = TypeVar("T")

MSIP_LABELS_PROPERTY_ID = "String {00020386-0000-0000-C000-000000000046} Name msip_labels"


class GraphModel(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True, frozen=True)


class CollectionPage(GraphModel, Generic[T]):
    """One page of a collection or delta response."""

    value: list[T] = Field(default_factory=list)
    next_link: str | None = Field(default=None, alias="@odata.nextLink")
    delta_link: str | None = Field(default=None, alias="@odata.deltaLink")


# Directory -------------------------------------------------------------------------------------------------


class User(GraphModel):
    id: str
    display_name: str | None = None
    user_principal_name: str | None = None
    mail: str | None = None
    user_type: str | None = None
    account_enabled: bool | None = None
    job_title: str | None = None


class UserRegistrationDetails(GraphModel):
    id: str
    user_principal_name: str | None = None
    user_display_name: str | None = None
    user_type: str | None = None
    is_admin: bool | None = None
    is_mfa_registered: bool = False
    is_mfa_capable: bool = False
    methods_registered: list[str] = Field(default_factory=list)
    last_updated_date_time: datetime | None = None


# Mail ------------------------------------------------------------------------------------------------------


class EmailAddress(GraphModel):
    name: str | None = None
    address: str | None = None


class Recipient(GraphModel):
    email_address: EmailAddress | None = None


class Removed(GraphModel):
    reason: str | None = None


class ExtendedProperty(GraphModel):
    id: str
    value: str | None = None


class MailFolder(GraphModel):
    id: str
    display_name: str | None = None
    parent_folder_id: str | None = None
    child_folder_count: int | None = None
    total_item_count: int | None = None


class Message(GraphModel):
    id: str
    etag: str | None = Field(default=None, alias="@odata.etag")
    change_key: str | None = None
    subject: str | None = None
    # "from" is a Python keyword.
    sender_from: Recipient | None = Field(default=None, validation_alias=AliasChoices("from", "sender_from"))
    to_recipients: list[Recipient] = Field(default_factory=list)
    cc_recipients: list[Recipient] = Field(default_factory=list)
    bcc_recipients: list[Recipient] = Field(default_factory=list)
    received_date_time: datetime | None = None
    sent_date_time: datetime | None = None
    conversation_id: str | None = None
    parent_folder_id: str | None = None
    internet_message_id: str | None = None
    has_attachments: bool | None = None
    categories: list[str] = Field(default_factory=list)
    single_value_extended_properties: list[ExtendedProperty] = Field(default_factory=list)
    removed: Removed | None = Field(default=None, alias="@removed")

    @property
    def is_removed(self) -> bool:
        return self.removed is not None

    def extended_property(self, property_id: str) -> str | None:
        wanted = property_id.casefold()
        return next(
            (prop.value for prop in self.single_value_extended_properties if prop.id.casefold() == wanted), None
        )


# Files -----------------------------------------------------------------------------------------------------


class Identity(GraphModel):
    id: str | None = None
    display_name: str | None = None
    email: str | None = None


class IdentitySet(GraphModel):
    user: Identity | None = None
    application: Identity | None = None


class FileFacet(GraphModel):
    mime_type: str | None = None


class FolderFacet(GraphModel):
    child_count: int | None = None


class DeletedFacet(GraphModel):
    state: str | None = None


class ItemReference(GraphModel):
    drive_id: str | None = None
    drive_type: str | None = None
    id: str | None = None
    site_id: str | None = None
    path: str | None = None


class SharedFacet(GraphModel):
    scope: str | None = None


class DriveItem(GraphModel):
    id: str
    name: str | None = None
    size: int | None = None
    e_tag: str | None = Field(default=None, validation_alias=AliasChoices("eTag", "e_tag"))
    c_tag: str | None = Field(default=None, validation_alias=AliasChoices("cTag", "c_tag"))
    file: FileFacet | None = None
    folder: FolderFacet | None = None
    deleted: DeletedFacet | None = None
    parent_reference: ItemReference | None = None
    created_date_time: datetime | None = None
    last_modified_date_time: datetime | None = None
    created_by: IdentitySet | None = None
    last_modified_by: IdentitySet | None = None
    shared: SharedFacet | None = None
    web_url: str | None = None
    download_url: str | None = Field(default=None, alias="@microsoft.graph.downloadUrl")

    @property
    def is_deleted(self) -> bool:
        return self.deleted is not None


class Site(GraphModel):
    id: str
    name: str | None = None
    display_name: str | None = None
    web_url: str | None = None


class Drive(GraphModel):
    id: str
    name: str | None = None
    drive_type: str | None = None
    web_url: str | None = None
    owner: IdentitySet | None = None


# Labels, retention, holds ----------------------------------------------------------------------------------


class SensitivityLabel(GraphModel):
    id: str
    name: str | None = None
    display_name: str | None = None
    description: str | None = None
    color: str | None = None
    priority: int | None = None
    tool_tip: str | None = None
    is_enabled: bool | None = None
    applicable_to: str | None = None
    has_protection: bool | None = None


class LabelAssignment(GraphModel):
    sensitivity_label_id: str
    assignment_method: str | None = None
    tenant_id: str | None = None


class ExtractedLabels(GraphModel):
    labels: list[LabelAssignment] = Field(default_factory=list)


class ExtractSensitivityLabelsResponse(GraphModel):
    # Graph nests the result under "value" (graph-facts.md 2.3).
    value: ExtractedLabels = Field(default_factory=ExtractedLabels)


class AsyncJobError(GraphModel):
    code: str | None = None
    message: str | None = None


class AsyncJobStatus(GraphModel):
    """A long-running action's monitor body (assignSensitivityLabel). The failure shape is not documented for
    this action (graph-facts.md 2.2): both a nested `error` and OneDrive's flat errorCode/statusDescription
    are read."""

    status: str | None = None
    percentage_complete: float | None = None
    resource_id: str | None = None
    status_description: str | None = None
    error_code: str | None = None
    error: AsyncJobError | None = None

    @property
    def failure_code(self) -> str | None:
        return (self.error.code if self.error else None) or self.error_code

    @property
    def failure_message(self) -> str | None:
        return (self.error.message if self.error else None) or self.status_description


class RetentionSettings(GraphModel):
    behavior_during_retention_period: str | None = None
    is_delete_allowed: bool | None = None
    is_record_locked: bool | None = None
    is_content_update_allowed: bool | None = None
    is_label_update_allowed: bool | None = None


class ItemRetentionLabel(GraphModel):
    name: str | None = None
    is_label_applied_explicitly: bool | None = None
    label_applied_date_time: datetime | None = None
    retention_settings: RetentionSettings | None = None

    @property
    def blocks_deletion(self) -> bool:
        """Deletion is off the table while the label retains the item (graph-facts.md 10)."""
        settings = self.retention_settings
        if settings is None:
            return False
        retaining = (settings.behavior_during_retention_period or "").startswith("retain")
        return settings.is_delete_allowed is False or retaining or bool(settings.is_record_locked)


class EdiscoveryCase(GraphModel):
    id: str
    display_name: str | None = None
    status: str | None = None


class Custodian(GraphModel):
    id: str
    email: str | None = None
    display_name: str | None = None
    status: str | None = None
    hold_status: str | None = None


class SiteReference(GraphModel):
    id: str | None = None
    web_url: str | None = None


class UserSource(GraphModel):
    id: str | None = None
    email: str | None = None
    site_web_url: str | None = None
    included_sources: str | None = None
    hold_status: str | None = None


class SiteSource(GraphModel):
    id: str | None = None
    hold_status: str | None = None
    site: SiteReference | None = None


# Subscriptions ---------------------------------------------------------------------------------------------


class Subscription(GraphModel):
    # clientState is deliberately not modelled: it is a shared secret and must not travel further.
    id: str
    resource: str | None = None
    change_type: str | None = None
    notification_url: str | None = None
    lifecycle_notification_url: str | None = None
    expiration_date_time: datetime | None = None
    application_id: str | None = None
    creator_id: str | None = None
