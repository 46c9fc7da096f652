"""Standard Webhooks signatures: the spec's published test vector, rotation, tolerance, raw-byte signing."""

import base64
import json
from collections.abc import Callable

import pytest

from app.webhooks.signatures import VerifiedDelivery, WebhookVerificationError, secret_key, sign, verify

# The vector published with the Standard Webhooks reference libraries (standard-webhooks/standard-webhooks).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
# A signature of the right shape made with some other key.
OTHER_SIGNATURE = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="


def headers(
    signature: str = VECTOR_SIGNATURE, timestamp: int = VECTOR_TIMESTAMP, delivery_id: str = VECTOR_ID
) -> dict[str, str]:
    return {"webhook-id": delivery_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def at(moment: float) -> Callable[[], float]:
    return lambda: moment


KEY = secret_key(VECTOR_SECRET)


def test_the_spec_vector_signs_as_published() -> None:
    assert sign(KEY, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_the_spec_vector_verifies() -> None:
    verified = verify(headers(), VECTOR_BODY, [KEY], clock=at(VECTOR_TIMESTAMP))
    assert verified == VerifiedDelivery(VECTOR_ID, VECTOR_TIMESTAMP)


def test_the_whsec_prefix_is_optional_in_the_key() -> None:
    assert secret_key(VECTOR_SECRET.removeprefix("whsec_")) == KEY


def test_one_valid_signature_among_several_passes() -> None:
    # The reference libraries' "valid multi sig" case: other versions and stale signatures around the good one.
    signature = " ".join([OTHER_SIGNATURE, OTHER_SIGNATURE.replace("v1,", "v2,"), VECTOR_SIGNATURE, OTHER_SIGNATURE])
    verify(headers(signature), VECTOR_BODY, [KEY], clock=at(VECTOR_TIMESTAMP))


def test_any_configured_secret_may_match_during_rotation() -> None:
    new_key = b"n" * 32
    verify(headers(), VECTOR_BODY, [new_key, KEY], clock=at(VECTOR_TIMESTAMP))
    signed_with_new = sign(new_key, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
    verify(headers(signed_with_new), VECTOR_BODY, [new_key, KEY], clock=at(VECTOR_TIMESTAMP))
    with pytest.raises(WebhookVerificationError, match="no valid signature"):
        verify(headers(signed_with_new), VECTOR_BODY, [KEY], clock=at(VECTOR_TIMESTAMP))


@pytest.mark.parametrize("signature", [OTHER_SIGNATURE, VECTOR_SIGNATURE.replace("v1,", "v1a,"), "v1,", "garbage"])
def test_a_wrong_signature_fails(signature: str) -> None:
    with pytest.raises(WebhookVerificationError, match="no valid signature"):
        verify(headers(signature), VECTOR_BODY, [KEY], clock=at(VECTOR_TIMESTAMP))


def test_the_raw_bytes_are_signed_so_a_reserialised_body_fails() -> None:
    reserialised = json.dumps(json.loads(VECTOR_BODY), separators=(",", ":")).encode()
    assert reserialised != VECTOR_BODY
    with pytest.raises(WebhookVerificationError):
        verify(headers(), reserialised, [KEY], clock=at(VECTOR_TIMESTAMP))


def test_the_id_and_timestamp_are_signed_too() -> None:
    with pytest.raises(WebhookVerificationError):
        verify(headers(delivery_id="msg_other"), VECTOR_BODY, [KEY], clock=at(VECTOR_TIMESTAMP))
    with pytest.raises(WebhookVerificationError):
        verify(headers(timestamp=VECTOR_TIMESTAMP + 1), VECTOR_BODY, [KEY], clock=at(VECTOR_TIMESTAMP))


@pytest.mark.parametrize("offset", [-299, -300, 0, 299, 300])
def test_timestamps_within_five_minutes_either_way_pass(offset: int) -> None:
    verify(headers(), VECTOR_BODY, [KEY], clock=at(VECTOR_TIMESTAMP + offset))


@pytest.mark.parametrize("offset", [-301, 301, -86_400])
def test_timestamps_further_away_fail_past_and_future(offset: int) -> None:
    # The clock is offset the other way: a delivery stamped 301 s in the past or in the future.
    with pytest.raises(WebhookVerificationError, match="more than 300 seconds"):
        verify(headers(), VECTOR_BODY, [KEY], clock=at(VECTOR_TIMESTAMP - offset))


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_header_is_required(missing: str) -> None:
    incomplete = {name: value for name, value in headers().items() if name != missing}
    with pytest.raises(WebhookVerificationError, match="headers are required"):
        verify(incomplete, VECTOR_BODY, [KEY], clock=at(VECTOR_TIMESTAMP))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("webhook-id", "msg.with.dots"),
        ("webhook-id", "x" * 256),
        ("webhook-timestamp", "1614265330.5"),
        ("webhook-timestamp", "-1"),
    ],
)
def test_malformed_ids_and_timestamps_fail(field: str, value: str) -> None:
    with pytest.raises(WebhookVerificationError):
        verify({**headers(), field: value}, VECTOR_BODY, [KEY], clock=at(VECTOR_TIMESTAMP))


def test_no_key_verifies_nothing() -> None:
    with pytest.raises(WebhookVerificationError):
        verify(headers(), VECTOR_BODY, [], clock=at(VECTOR_TIMESTAMP))


def test_secret_key_decodes_base64() -> None:
    assert secret_key("whsec_" + base64.b64encode(b"k" * 24).decode()) == b"k" * 24
