"""Process-wide logging: one line per event, with secrets, tokens and message content redacted.

Log an event name and its fields:
    log.info("webhooks.admin_event_stored", extra={"delivery_id": delivery_id, "type": event_type})
The JSON format writes {"ts", "level", "logger", "event", "request_id", ...fields}. Field names must not clash with
LogRecord's own attributes (message, name, msg, args, ...): logging raises on those.

Redaction happens in the formatter, so it covers every logger (ours, httpx, uvicorn, SQLAlchemy):
- fields whose name says secret/token/password/authorization/cookie/clientState/signature/key material, and
  message content (body, bodyPreview, content...), at any depth of dicts and lists;
- in free text (messages, %-arguments, tracebacks): bearer tokens, JWTs, whsec_ secrets, credentials in URLs and
  secret-named query or JSON parameters.
"""

import json
import logging
import re
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from app.observability.request_id import current_request_id

REDACTED = "[REDACTED]"

# Field names are compared lower-cased with everything but letters and digits removed ("client_State" -> clientstate).
_SECRET_NAME_PARTS = (
    "secret",
    "password",
    "passwd",
    "token",
    "authorization",
    "cookie",
    "clientstate",
    "signature",
    "privatekey",
    "assertion",
    "apikey",
    "credential",
)
# Not "code": error codes are worth logging; OAuth codes are caught as authorization_code or in URLs (?code=).
_CONTENT_NAMES = frozenset({"body", "bodypreview", "uniquebody", "content", "contentbytes", "codeverifier"})
_SENSITIVE_PARAMETERS = (
    r"client_secret|clientsecret|password|client_?state|access_token|refresh_token|id_token|code_verifier|"
    r"client_assertion|validationtoken|sig|signature|token|secret"
)
_TEXT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]+=*"), rf"\1 {REDACTED}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]+"), REDACTED),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@"), rf"\1{REDACTED}@"),
    (re.compile(rf"(?i)([?&;\s]|^)({_SENSITIVE_PARAMETERS})=[^&\s]+"), rf"\1\2={REDACTED}"),
    # An OAuth authorization code in a redirect URL; "code=" elsewhere is usually an error code worth keeping.
    (re.compile(r"([?&])code=[^&\s]+"), rf"\1code={REDACTED}"),
    (
        re.compile(
            rf"(?i)([\"']?(?:{_SENSITIVE_PARAMETERS}|authorization|body|content)[\"']?\s*:\s*)(\"[^\"]*\"|'[^']*')"
        ),
        rf'\1"{REDACTED}"',
    ),
)
# LogRecord attributes: everything else on a record came from `extra` and is a field of the event.
# (uvicorn adds color_message: the same message with terminal colours.)
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


def _normalised(name: str) -> str:
    return "".join(character for character in name.lower() if character.isalnum())


def is_sensitive_name(name: str) -> bool:
    normalised = _normalised(name)
    return normalised in _CONTENT_NAMES or any(part in normalised for part in _SECRET_NAME_PARTS)


def redact_text(text: str) -> str:
    for pattern, replacement in _TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact(value: Any) -> Any:
    """A copy of `value` safe to log: sensitive fields replaced at any depth, free text scrubbed."""
    if isinstance(value, Mapping):
        return {str(key): REDACTED if is_sensitive_name(str(key)) else redact(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_text(str(value))


def _message(record: logging.LogRecord) -> str:
    args: Any = record.args
    if args:
        args = redact(args) if isinstance(args, Mapping) else tuple(redact(arg) for arg in args)
        try:
            return redact_text(str(record.msg) % args)
        except (TypeError, ValueError):
            return redact_text(f"{record.msg} {args}")
    return redact_text(str(record.msg))


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: REDACTED if is_sensitive_name(key) else redact(value)
        for key, value in record.__dict__.items()
        if key not in _RECORD_ATTRIBUTES and not key.startswith("_")
    }


def _exception(record: logging.LogRecord) -> str | None:
    if record.exc_info and record.exc_info[0] is not None:
        return redact_text("".join(traceback.format_exception(*record.exc_info)).rstrip())
    return None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: {"ts", "level", "logger", "event", "request_id", ...fields, "exception"}."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": _message(record),
        }
        request_id = current_request_id()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in _fields(record).items():
            entry.setdefault(key, value)
        exception = _exception(record)
        if exception is not None:
            entry["exception"] = exception
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger event key=value...` for a terminal, redacted the same way."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%d %H:%M:%S")
        parts = [moment, record.levelname, record.name, _message(record)]
        request_id = current_request_id()
        if request_id is not None:
            parts.append(f"request_id={request_id}")
        parts.extend(
            f"{key}={json.dumps(value, ensure_ascii=False, default=str)}" for key, value in _fields(record).items()
        )
        line = " ".join(parts)
        exception = _exception(record)
        return f"{line}\n{exception}" if exception is not None else line


def build_handler(log_format: str = "json") -> logging.Handler:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return handler


def configure_logging(level: str, log_format: str = "json") -> None:
    # Like basicConfig, leaves a root logger that already has handlers (a test runner's) alone.
    logging.basicConfig(level=level, handlers=[build_handler(log_format)])
    # httpx logs every request URL at INFO; Graph URLs carry mailbox ids and search terms.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLevelName(level)))
