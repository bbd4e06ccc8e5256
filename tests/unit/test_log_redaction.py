"""The logging filter that keeps credentials out of every log line."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from bot.logging_setup import AIOHTTP_LOGGERS, JsonFormatter, RedactSecrets, install_redaction, redact

SECRET = "s3cr3t-T0ken-value"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"Got more than 8190 bytes when reading: b'Bearer {SECRET}{SECRET}...'.",
            "Got more than 8190 bytes when reading: b'[redacted]'.",
        ),
        (f'Invalid header value char:\n\n  b"Authorization: {SECRET}\\x01"\n     ^', None),
        (f"Bad status line b'{SECRET}", None),  # cut off before its closing quote
        (f"{{'Authorization': 'Basic {SECRET}', 'Accept': '*/*'}}", "{'Authorization': '[redacted]', 'Accept': '*/*'}"),
        (f"authorization={SECRET}", "authorization=[redacted]"),
        (f"sending with bearer {SECRET} now", "sending with Bearer [redacted] now"),
        ("token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl end", "token [redacted] end"),
        # prose about tokens is kept
        ("Authorization must use the Bearer scheme", "Authorization must use the Bearer scheme"),
        ("missing bearer token", "missing bearer token"),
        ("missing Authorization header", "missing Authorization header"),
        ("the job's state and web's", "the job's state and web's"),
    ],
)
def test_redact(text: str, expected: str | None) -> None:
    redacted = redact(text)
    assert SECRET not in redacted
    if expected is not None:
        assert redacted == expected
    assert redact(redacted) == redacted  # a second filter on the way changes nothing


def record(msg: str, *args: object, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_the_filter_redacts_the_message_and_its_arguments() -> None:
    entry = record("request from %s with %r", "127.0.0.1", f"Bearer {SECRET}")
    assert RedactSecrets().filter(entry) is True
    assert entry.getMessage() == "request from 127.0.0.1 with 'Bearer [redacted]'"


def test_the_filter_leaves_a_clean_record_as_it_was() -> None:
    entry = record("request from %s", "127.0.0.1")
    RedactSecrets().filter(entry)
    assert (entry.msg, entry.args) == ("request from %s", ("127.0.0.1",))


def test_the_filter_redacts_the_exception_text_and_drops_the_exception() -> None:
    try:
        raise ValueError(f"Got more than 8190 bytes when reading: b'Bearer {SECRET}...'")
    except ValueError:
        entry = record("Error handling request from %s", "127.0.0.1", exc_info=sys.exc_info())
    RedactSecrets().filter(entry)
    assert entry.exc_info is None and entry.exc_text is not None
    assert "ValueError" in entry.exc_text and SECRET not in entry.exc_text
    line = json.loads(JsonFormatter().format(entry))
    assert "b'[redacted]'" in line["exc"] and SECRET not in json.dumps(line)
    assert SECRET not in logging.Formatter().format(entry)


def test_a_record_whose_arguments_do_not_fit_is_let_through_for_the_handler_to_report() -> None:
    entry = record("%d apples", "not a number")
    assert RedactSecrets().filter(entry) is True
    assert entry.args == ("not a number",)


def test_installing_twice_adds_one_filter() -> None:
    handler = logging.StreamHandler()
    install_redaction(handler)
    install_redaction(handler)
    for target in (handler, *(logging.getLogger(name) for name in AIOHTTP_LOGGERS)):
        assert sum(isinstance(f, RedactSecrets) for f in target.filters) == 1


def test_a_request_the_client_broke_is_a_warning_not_an_error() -> None:
    """aiohttp logs an unreadable request (a broken gzip body, met again when it drains the body; an over-long header
    line) at ERROR: the fault is the client's, so it becomes a warning naming it; other errors stay errors."""
    from aiohttp.http_exceptions import ContentEncodingError, LineTooLong
    from aiohttp.web_protocol import RequestPayloadError

    from bot.logging_setup import ClientFaultsAreWarnings

    def record(fault: BaseException) -> logging.LogRecord:
        try:
            raise fault
        except BaseException:
            return logging.LogRecord(
                "aiohttp.server", logging.ERROR, "", 0, "Unhandled exception", None, sys.exc_info()
            )

    drained = RequestPayloadError("Can not decode content-encoding: gzip")
    drained.__cause__ = ContentEncodingError("Can not decode content-encoding: gzip")
    for fault, name in ((drained, "ContentEncodingError"), (LineTooLong("b'Bearer x'", "8190"), "LineTooLong")):
        seen = record(fault)
        assert ClientFaultsAreWarnings().filter(seen)
        assert (seen.levelname, seen.getMessage()) == (
            "WARNING",
            f"a client sent a request that could not be read: {name}",
        )
    ours = record(RuntimeError("a bug of ours"))
    ClientFaultsAreWarnings().filter(ours)
    assert (ours.levelname, ours.getMessage()) == ("ERROR", "Unhandled exception")
