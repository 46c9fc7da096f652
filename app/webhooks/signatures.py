"""Standard Webhooks signatures (symmetric, v1): our own implementation of the spec.

A sender signs `{webhook-id}.{webhook-timestamp}.{raw body}` with HMAC-SHA256 and sends `v1,<base64>` in
`webhook-signature`, several space-separated entries while it rotates secrets. Secrets are `whsec_<base64>`; the
HMAC key is the decoded bytes. The receiver refuses timestamps more than five minutes off (either way), compares in
constant time over the raw bytes (a re-serialised body fails), and accepts any of its configured secrets.
"""

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from app.config import WEBHOOK_SECRET_PREFIX

TOLERANCE_S = 300
SIGNATURE_VERSION = "v1"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
# The id is signed between dots and used as the deduplication key: no dots, nothing odd, bounded.
_DELIVERY_ID = re.compile(r"^[A-Za-z0-9_\-:]{1,255}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


class WebhookVerificationError(Exception):
    """The delivery is not authentic (or not fresh); `reason` is safe to tell the sender."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class VerifiedDelivery:
    id: str
    timestamp: int


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret (the prefix is optional, as in the reference libraries)."""
    return base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)


def sign(key: bytes, delivery_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature entry for one secret."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def verify(
    headers: Mapping[str, str],
    body: bytes,
    keys: Sequence[bytes],
    *,
    tolerance_s: int = TOLERANCE_S,
    clock: Callable[[], float] = time.time,
) -> VerifiedDelivery:
    """Check a delivery's headers and raw body; raises WebhookVerificationError unless one signature matches."""
    delivery_id = headers.get(ID_HEADER)
    timestamp_text = headers.get(TIMESTAMP_HEADER)
    signatures = headers.get(SIGNATURE_HEADER)
    if not delivery_id or not timestamp_text or not signatures:
        raise WebhookVerificationError(
            f"the {ID_HEADER}, {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers are required"
        )
    if not _DELIVERY_ID.match(delivery_id):
        raise WebhookVerificationError(f"{ID_HEADER} must be 1-255 letters, digits, '_', '-' or ':'")
    if not _TIMESTAMP.match(timestamp_text):
        raise WebhookVerificationError(f"{TIMESTAMP_HEADER} must be a Unix time in seconds")
    timestamp = int(timestamp_text)
    if abs(clock() - timestamp) > tolerance_s:
        raise WebhookVerificationError(f"{TIMESTAMP_HEADER} is more than {tolerance_s} seconds away from now")
    presented = [
        value.encode("ascii", "replace")
        for version, _, value in (entry.partition(",") for entry in signatures.split(" "))
        if version == SIGNATURE_VERSION and value
    ]
    for key in keys:
        expected = sign(key, delivery_id, timestamp, body).partition(",")[2].encode("ascii")
        if any(hmac.compare_digest(expected, candidate) for candidate in presented):
            return VerifiedDelivery(delivery_id, timestamp)
    raise WebhookVerificationError("no valid signature")
