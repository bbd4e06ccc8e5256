"""Web host behaviour: health check, bad input, request-size limit, key fetch that hangs."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from tests.conftest import APP_ID, Harness, Keys, make_settings
from tests.support.activities import message
from tests.support.credentials import FixedTokenCredentialsFactory
from tests.support.keys import KeyServer, RsaKey, claims


async def test_healthz_reports_version_and_database(harness: Harness) -> None:
    response = await harness.client.get("/healthz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok" and body["database"]["reachable"] is True
    assert body["version"] and body["dev_mode"] is False


async def test_healthz_reports_unreachable_database(keys: Keys, tmp_path: Any) -> None:
    settings = make_settings("postgresql+asyncpg://nobody@127.0.0.1:1/none", keys.server.metadata_url)
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await client.start_server()
    try:
        response = await client.get("/healthz")
        body = await response.json()
        assert response.status == 503
        assert body["status"] == "degraded" and body["database"]["reachable"] is False
    finally:
        await client.close()


BAD_BODIES: dict[str, tuple[bytes, str, int]] = {
    "malformed json": (b'{"type": "message", ', "application/json", 400),
    "json array": (b"[1, 2, 3]", "application/json", 400),
    "json string": (b'"message"', "application/json", 400),
    "no type": (
        json.dumps({"serviceUrl": "http://127.0.0.1/", "channelId": "msteams"}).encode(),
        "application/json",
        400,
    ),
    "no conversation": (
        json.dumps({"type": "message", "serviceUrl": "http://127.0.0.1/", "channelId": "msteams"}).encode(),
        "application/json",
        400,
    ),
    "type is a number": (
        json.dumps(
            {"type": 7, "serviceUrl": "http://x/", "channelId": "msteams", "conversation": {"id": "c"}}
        ).encode(),
        "application/json",
        400,
    ),
    "not utf-8": (b'{"type": "\xff\xfe"}', "application/json", 400),
    "form encoded": (b"type=message", "application/x-www-form-urlencoded", 415),
    "too large": (b'{"type": "message", "text": "' + b"x" * (300 * 1024) + b'"}', "application/json", 413),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
async def test_bad_input_gets_a_clear_4xx_and_stores_nothing(harness: Harness, case: str) -> None:
    body, content_type, expected = BAD_BODIES[case]
    token = harness.token(serviceurl=harness.connector.service_url)
    response = await harness.client.post(
        "/api/messages", data=body, headers={"Content-Type": content_type, "Authorization": f"Bearer {token}"}
    )
    assert response.status == expected, await response.text()
    assert "error" in json.loads(await response.text())
    assert sum((await harness.rows()).values()) == 0
    assert harness.connector.calls == []


async def test_healthz_stays_fast_while_key_fetch_hangs(sqlite_database: str) -> None:
    """The signing-key endpoint never answers: a message waits (and fails closed), /healthz answers in < 100 ms."""
    key = RsaKey("hang-key")
    server = KeyServer([key]).start()
    server.hang()
    settings = make_settings(sqlite_database, server.metadata_url, key_fetch_timeout_seconds=3.0)
    client: TestClient[Any, Any] = TestClient(
        TestServer(create_app(settings, credentials_factory=FixedTokenCredentialsFactory(APP_ID)), host="127.0.0.1")
    )
    await client.start_server()
    try:
        activity = message("help", service_url="http://127.0.0.1:9/")
        token = key.sign(claims(APP_ID, activity["serviceUrl"]))
        pending = asyncio.create_task(
            client.post("/api/messages", json=activity, headers={"Authorization": f"Bearer {token}"})
        )
        await asyncio.sleep(0.3)  # the key fetch is now in flight and hanging
        assert not pending.done()
        latencies = []
        for _ in range(10):
            started = time.perf_counter()
            health = await client.get("/healthz")
            latencies.append(time.perf_counter() - started)
            assert health.status == 200
        assert max(latencies) < 0.1, latencies
        assert not pending.done(), "the message must still be waiting for keys"
        refused = await pending
        assert refused.status == 503  # fail closed: no keys, no entry
        assert "signing keys unavailable" in (await refused.json())["error"]
        assert server.requests >= 1
    finally:
        server.release()
        await client.close()
        server.stop()


async def test_keys_recovered_after_outage_let_messages_in(harness: Harness) -> None:
    """After keys are fetched once, the cached keys keep working (no fetch per request)."""
    url = harness.connector.service_url
    assert (await harness.post(message("help", service_url=url))).status == 200
    fetched = harness.keys.server.requests
    for i in range(3):
        assert (await harness.post(message("help", service_url=url, activity_id=f"m{i}"))).status == 200
    assert harness.keys.server.requests == fetched
