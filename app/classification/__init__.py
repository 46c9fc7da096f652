"""Classification: Vietnamese identifier detectors, text extraction, customer attribution, verdicts and the
activity clock. Pure code: no database, no Graph, no web framework."""

from app.classification.activity import (
    ActivityEvent,
    ActivityStatus,
    activity_from_item,
    activity_status,
    latest_activity,
)
from app.classification.attribution import CurrentLabel, CustomerAttribution, ItemMetadata, Reason
from app.classification.detectors import Finding, IdentifierHasher, IdentifierScanner
from app.classification.extraction import ExtractedText, ExtractionError, extract_text, html_to_text
from app.classification.registry import CustomerRecord
from app.classification.verdict import Classifier, ContentScan, LabelAction, Verdict, decide_label_action

__all__ = [
    "ActivityEvent",
    "ActivityStatus",
    "Classifier",
    "ContentScan",
    "CurrentLabel",
    "CustomerAttribution",
    "CustomerRecord",
    "ExtractedText",
    "ExtractionError",
    "Finding",
    "IdentifierHasher",
    "IdentifierScanner",
    "ItemMetadata",
    "LabelAction",
    "Reason",
    "Verdict",
    "activity_from_item",
    "activity_status",
    "decide_label_action",
    "extract_text",
    "html_to_text",
    "latest_activity",
]
