"""An Authorization header too long for aiohttp's parser is refused with a 4xx, and no log line carries its token.

aiohttp refuses a header line over 8 KB and logs, at aiohttp.server, "Error handling request" with the LineTooLong
exception, whose message quotes the first 100 bytes of the line: the token. Checked in-process (caplog) and in a
real `nurture serve` process (its stderr).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bot.app import create_app
from tests.conftest import Keys, make_settings
from tests.support.serve import dev_serve, stderr_of

MARK = "zebraquartz"  # in every token below, near its start: what must never reach a log
TOKENS = {
    "bearer": lambda size: "Bearer " + (MARK + "-token-") * (size // 18),
    "no scheme": lambda size: (MARK + "-token-") * (size // 18),
    "basic": lambda size: "Basic " + (MARK + "dXNlcjpwYXNz") * (size // 23),
    "jwt": lambda size: "Bearer eyJhbGciOiJSUzI1NiJ9.eyJ" + MARK + "." + "x" * size,
}
SIZES = [9 * 1024, 100 * 1024]


async def send_raw(port: int, authorization: str) -> bytes:
    """One POST with the header as given; returns the status line (aiohttp's client would not send it as is)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (
        "POST /api/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: {authorization}\r\nContent-Length: 2\r\n\r\n{{}}"
    )
    try:
        writer.write(request.encode())
        await writer.drain()
    except ConnectionError:
        pass  # the server may refuse and close before reading the whole header
    status = await reader.readline()
    writer.close()
    return status


def assert_refused(status_line: bytes) -> None:
    parts = status_line.split()
    assert len(parts) >= 2 and 400 <= int(parts[1]) < 500, status_line


@pytest.fixture
async def server(sqlite_database: str, keys: Keys) -> AsyncIterator[TestServer]:
    settings = make_settings(sqlite_database, keys.server.metadata_url)
    test_server = TestServer(create_app(settings), host="127.0.0.1")
    await test_server.start_server()
    yield test_server
    await test_server.close()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", list(TOKENS))
async def test_an_overlong_authorization_header_is_logged_without_its_token(
    server: TestServer, caplog: pytest.LogCaptureFixture, kind: str, size: int
) -> None:
    with caplog.at_level(logging.DEBUG):
        assert_refused(await send_raw(server.port or 0, TOKENS[kind](size)))
        await asyncio.sleep(0.1)  # the server logs after answering
    assert any(r.name == "aiohttp.server" for r in caplog.records), "the refusal was logged (with the token redacted)"
    for record in caplog.records:
        assert MARK not in record.getMessage()
        assert MARK not in (record.exc_text or "")
        assert record.exc_info is None or MARK not in logging.Formatter().formatException(record.exc_info)
    assert MARK not in caplog.text


async def test_a_served_process_logs_no_token_of_an_overlong_header(tmp_path: Path) -> None:
    async with dev_serve(tmp_path) as (process, port):
        for kind in TOKENS:
            for size in SIZES:
                assert_refused(await send_raw(port, TOKENS[kind](size)))
        await asyncio.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    stderr, lines = await stderr_of(process)
    refusals = [line for line in lines if line["logger"] == "aiohttp.server"]
    assert len(refusals) == len(TOKENS) * len(SIZES), stderr[-2000:]
    assert all("[redacted]" in line.get("exc", "") for line in refusals)
    assert MARK not in stderr
