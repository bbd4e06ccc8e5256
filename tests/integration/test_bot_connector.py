"""Nurture's Bot Connector REST client against the fake connector: tokens, ids in paths, and what a failure means."""

from __future__ import annotations

import asyncio
import socket

import pytest

from bot.config import Settings
from bot.security.service_urls import ServiceUrlPolicy
from bot.teams.adapter import build_adapter
from bot.teams.bot_connector import BotConnectorClient, CachedToken, ConnectorRefused
from tests.conftest import APP_ID, Harness
from tests.support.connector import FakeConnector
from tests.support.credentials import OUTBOUND_TOKEN, FixedTokenCredentialsFactory

LOOPBACK = ServiceUrlPolicy(frozenset({"127.0.0.1", "smba.example.net"}), (), allow_loopback=False)
CARD = {"type": "message", "text": "hello"}


class CountingTokens:
    def __init__(self) -> None:
        self.fetches = 0

    async def __call__(self) -> str:
        self.fetches += 1
        await asyncio.sleep(0.01)  # a refresh takes a moment: sends arriving meanwhile must wait for the same one
        return f"token-{self.fetches}"


@pytest.fixture
async def fake() -> FakeConnector:
    connector = FakeConnector()
    await connector.start()
    yield connector
    await connector.close()


async def test_a_token_is_fetched_once_for_many_sends_and_again_after_a_401(fake: FakeConnector) -> None:
    tokens = CountingTokens()
    client = BotConnectorClient(CachedToken(tokens), LOOPBACK, timeout_seconds=5)
    try:
        answers = await asyncio.gather(*(client.send(fake.service_url, f"c-{i}", CARD) for i in range(20)))
        assert [a.status for a in answers] == [200] * 20
        assert tokens.fetches == 1
        assert {c.authorization for c in fake.calls} == {"Bearer token-1"}

        fake.fail_next(401, "Unauthorized")
        refused = await client.send(fake.service_url, "c-x", CARD)
        assert refused.status == 401 and refused.error_code == "Unauthorized"
        await client.send(fake.service_url, "c-y", CARD)
        assert tokens.fetches == 2 and fake.calls[-1].authorization == "Bearer token-2"
    finally:
        await client.close()


async def test_teams_ids_reach_the_connector_intact(fake: FakeConnector) -> None:
    client = BotConnectorClient(CachedToken(CountingTokens()), LOOPBACK, timeout_seconds=5)
    conversation = "a:1Xy_z-9;messageid=1700000000000@thread.tacv2/ok?"
    try:
        sent = await client.send(fake.service_url, conversation, CARD)
        activity_id = str((sent.body or {})["id"])
        assert fake.delivered_to(conversation) == 1
        assert (await client.update(fake.service_url, conversation, activity_id, CARD)).status == 200
        assert (await client.delete(fake.service_url, conversation, activity_id)).status == 200
        assert fake.updated == [(conversation, activity_id)] and fake.deleted == [(conversation, activity_id)]
    finally:
        await client.close()


async def test_a_refused_connection_never_left_but_a_timeout_may_have(fake: FakeConnector) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    client = BotConnectorClient(CachedToken(CountingTokens()), LOOPBACK, timeout_seconds=0.3)
    try:
        nobody = await client.send(closed, "c-1", CARD)
        assert nobody.status is None and nobody.request_sent is False
        fake.hang_for("c-2", 2.0)
        late = await client.send(fake.service_url, "c-2", CARD)
        assert late.status is None and late.request_sent is True and late.failure
        assert fake.delivered_to("c-2") == 1  # it did arrive: only the answer was lost
    finally:
        await client.close()


async def test_a_host_off_the_allow_list_never_gets_the_token(fake: FakeConnector) -> None:
    tokens = CountingTokens()
    client = BotConnectorClient(CachedToken(tokens), LOOPBACK, timeout_seconds=5)
    try:
        with pytest.raises(ConnectorRefused, match="not allowed"):
            await client.send("https://attacker.example.net/", "c-1", CARD)
        with pytest.raises(ConnectorRefused, match="https"):
            await client.send("http://smba.example.net/amer/", "c-1", CARD)
        assert tokens.fetches == 0 and fake.calls == []
    finally:
        await client.close()


async def test_the_outbound_token_is_botbuilders_and_none_without_an_app_id() -> None:
    configured = Settings(app_id=APP_ID, app_password="injected", _env_file=None)
    _, authentication = build_adapter(configured, FixedTokenCredentialsFactory(APP_ID))
    assert await authentication.outbound_token(APP_ID) == OUTBOUND_TOKEN

    _, anonymous = build_adapter(Settings(dev_mode=True, _env_file=None))
    assert await anonymous.outbound_token("") is None  # dev mode without an identity: no Authorization header


async def test_no_token_means_nothing_sent_and_a_later_try(fake: FakeConnector) -> None:
    async def refused() -> str:
        raise KeyError("access_token")  # what botbuilder's msal credentials raise when the identity platform says no

    client = BotConnectorClient(CachedToken(refused), LOOPBACK, timeout_seconds=5)
    try:
        answer = await client.send(fake.service_url, "c-1", CARD)
        assert (answer.status, answer.request_sent, answer.failure) == (None, False, "token: KeyError")
        assert fake.calls == []
    finally:
        await client.close()


async def test_a_request_the_client_will_not_send_is_refused_not_unknown(fake: FakeConnector) -> None:
    """A token with a line break in it (a broken identity platform answer, say) makes aiohttp refuse the header
    before anything leaves: refused (a send that is `failed`, never retried), not `unknown`; Teams saw nothing."""

    async def broken() -> str:
        return "token\r\nX-Injected: 1"

    client = BotConnectorClient(CachedToken(broken), LOOPBACK, timeout_seconds=5)
    try:
        answer = await client.send(fake.service_url, "c-1", CARD)
        assert (answer.status, answer.request_sent, answer.refused) == (None, False, True)
        assert fake.calls == []
    finally:
        await client.close()


async def test_a_refused_send_is_failed_and_the_person_is_not_blamed(harness: Harness) -> None:
    """Through the outbox: the row the client refused is `failed` with the reason, sent nothing, and not resent."""
    from bot.teams.proactive import TeamsCardSender
    from storage.models import OutboxMessage, User
    from tests.e2e.test_delivery import enqueue, seed_recipients
    from tests.e2e.test_nps_flow import table

    async def broken() -> str:
        return "token\nX-Injected: 1"

    [conversation] = await seed_recipients(harness, 1)
    await enqueue(harness, [conversation])
    worker = harness.worker()
    worker.sender = TeamsCardSender(BotConnectorClient(CachedToken(broken), LOOPBACK, timeout_seconds=5))
    await worker.drain()
    harness.clock.advance(hours=1)
    await worker.drain()
    [row] = await table(harness, OutboxMessage)
    assert row.status == "failed" and (row.last_error or "").startswith("refused: ")
    assert harness.connector.calls == []
    [person] = await table(harness, User)
    assert person.unreachable_at is None  # Teams never said no: the person is not marked unreachable
    await worker.sender.close()
