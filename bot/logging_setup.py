"""Structured logging: one JSON object per line on stderr, with credentials redacted from every line."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from aiohttp.http_exceptions import HttpProcessingError

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}

# aiohttp logs these when its HTTP parser refuses a request, with the raw bytes it choked on (an over-long
# Authorization header, for one); they are also where a later change could start logging a request
AIOHTTP_LOGGERS = ("aiohttp.server", "aiohttp.web", "aiohttp.access", "aiohttp.internal", "aiohttp.client")

REDACTED = "[redacted]"
_SECRETS = (
    # raw request bytes quoted by aiohttp's parser errors: b'Bearer eyJ…' or b"…", whatever the header
    (re.compile(r"""(?<!\w)b(['"])(?:\\.|(?!\1).)*(?:\1|$)""", re.DOTALL), f"b'{REDACTED}'"),
    # an Authorization header written out, with any scheme: "Authorization: Basic …", "'authorization': '…'"
    (re.compile(r"""(?i)(authorization['"]?\s*[:=]\s*['"]?)[^'"\r\n,}]+"""), rf"\1{REDACTED}"),
    # a token after "Bearer" (words as short as "scheme" or "token" are prose, not credentials)
    (re.compile(r"(?i)\bbearer\s+[\w~+/.-]{8,}=*"), f"Bearer {REDACTED}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)?"), REDACTED),  # a JWT
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record's message, exception and stack text without credentials; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: the handler reports that as usual
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info:
            # the exception's text, not the object, goes on: its message may quote the request
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class ClientFaultsAreWarnings(logging.Filter):
    """aiohttp's server logs a request it cannot read (a broken gzip body, an over-long header line) at ERROR, with a
    traceback, though it answers the client 400: the fault is the client's, and an operator's alert on errors should
    not fire for it. Such records become warnings that name the fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        fault = record.exc_info[1] if record.exc_info else None
        if fault is not None and not isinstance(fault, HttpProcessingError):
            fault = fault.__cause__  # the body's fault, met again when aiohttp reads what the handler left unread
        if record.levelno >= logging.ERROR and isinstance(fault, HttpProcessingError):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = "a client sent a request that could not be read: %s", (type(fault).__name__,)
        return True


def install_redaction(handler: logging.Handler | None = None) -> None:
    """Redacts records at aiohttp's loggers (whatever handler writes them: pytest's too) and, if given, every
    record `handler` writes; aiohttp's errors about unreadable requests become warnings. Safe to call more than
    once."""
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, ClientFaultsAreWarnings) for f in server.filters):
        server.filters.insert(0, ClientFaultsAreWarnings())  # before RedactSecrets, which keeps only the text
    targets: list[logging.Filterer] = [logging.getLogger(name) for name in AIOHTTP_LOGGERS]
    if handler is not None:
        targets.append(handler)
    for target in targets:
        if not any(isinstance(f, RedactSecrets) for f in target.filters):
            target.addFilter(RedactSecrets())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:  # already formatted (and redacted) by RedactSecrets
            entry["exc"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    install_redaction(handler)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # our middleware writes the access line
