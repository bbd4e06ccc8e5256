"""Fake Teams connector failures reach the bot as Teams sends them; the bot answers with a status, not 500."""

from __future__ import annotations

import logging
import socket
import time

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.conftest import Harness
from tests.support.activities import message
from tests.support.connector import FakeConnector, personal_chat_id


async def test_fake_connector_answers_like_teams(connector: FakeConnector) -> None:
    connector.fail_next(429, retry_after=7)
    connector.fail_next(403)
    connector.fail_next(404)
    url = f"{connector.service_url}v3/conversations/a:1/activities"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"type": "message"}) as throttled:
            assert throttled.status == 429 and throttled.headers["Retry-After"] == "7"
        async with session.post(url, json={"type": "message"}) as blocked:
            assert blocked.status == 403
            assert (await blocked.json())["error"]["code"] == "ConversationBlockedByUser"
        async with session.post(url, json={"type": "message"}) as missing:
            assert missing.status == 404
            assert (await missing.json())["error"]["code"] == "ConversationNotFound"
        async with session.post(url, json={"type": "message"}) as sent:
            assert sent.status == 200 and (await sent.json())["id"]
        conversations = f"{connector.service_url}v3/conversations"
        async with session.post(conversations, json={"bot": {"id": "b"}}) as refused:  # no tenant, no member
            assert refused.status == 400 and (await refused.json())["error"]["code"] == "BadArgument"
        one_to_one = {"bot": {"id": "b"}, "members": [{"id": "u1"}], "tenantId": "t1", "isGroup": False}
        for _ in range(2):  # Teams has one 1:1 chat per person: creating it again answers the same id
            async with session.post(conversations, json=one_to_one) as created:
                assert (await created.json())["id"] == personal_chat_id("u1")
        connector.roster = {"someone-else"}
        async with session.post(conversations, json=one_to_one) as not_in_roster:
            assert not_in_roster.status == 403
            assert (await not_in_roster.json())["error"]["code"] == "BotNotInConversationRoster"
    assert len(connector.calls) == 8


@pytest.mark.parametrize(
    ("status", "code"), [(429, ""), (403, "ConversationBlockedByUser"), (404, "ConversationNotFound")]
)
async def test_reply_failure_is_reported_and_retry_is_possible(harness: Harness, status: int, code: str) -> None:
    harness.connector.fail_next(status, code, retry_after=1 if status == 429 else None)
    activity = message("help", service_url=harness.connector.service_url, activity_id=f"fail-{status}")
    response = await harness.post(activity)
    assert response.status == 502
    assert str(status) in (await response.json())["error"]
    # the claim was released: Teams' retry of the same activity is processed, not skipped as a duplicate
    assert (await harness.post(activity)).status == 200
    assert (await harness.rows())["inbound_activities"] == 1


async def test_a_reply_answered_with_an_error_page_is_a_502_and_retry_is_possible(harness: Harness) -> None:
    """A gateway in front of the connector may answer with HTML, which msrest cannot read: still a 502, not a 500."""

    async def error_page(request: web.Request) -> web.Response:
        return web.Response(status=502, text="<html><body>Bad Gateway</body></html>", content_type="text/html")

    gateway = web.Application()
    gateway.router.add_route("*", "/{tail:.*}", error_page)
    server = TestServer(gateway, host="127.0.0.1")
    await server.start_server()
    try:
        activity = message("help", service_url=str(server.make_url("/")), activity_id="behind-a-gateway")
        response = await harness.post(activity)
    finally:
        await server.close()
    assert response.status == 502
    assert "could not be read" in (await response.json())["error"]
    retried = {**activity, "serviceUrl": harness.connector.service_url}  # Teams retries; the gateway is back
    assert (await harness.post(retried)).status == 200


async def test_a_reply_to_a_connector_that_refuses_connections_is_tried_once(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """msrest's own urllib3 retries (3 tries, backing off 0.8 s, 1.6 s, 3.2 s) are off: a reply that cannot
    connect is one attempt and a quick 502, and Teams' retry of the activity is the only retry."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    activity = message("help", service_url=f"http://127.0.0.1:{port}/", activity_id="refused")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="urllib3"):
        response = await harness.post(activity)
    assert response.status == 502
    assert [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")] == []
    assert time.monotonic() - started < 1.5
