"""The check where the bot's token is attached, on both HTTP clients, holds even when the first check is bypassed.

`FirstCheckBypassed` stands for a bug in `ServiceUrlPolicy.refusal`: it lets every URL through, so only the second
check (msrest pipeline for botbuilder's requests client, yarl for Nurture's aiohttp client) stands between the token
and a trap listening on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ConversationAccount, ConversationParameters
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import AuthenticationConstants, ClaimsIdentity
from msrest.exceptions import ClientRequestError, HttpOperationError

from bot.config import Settings
from bot.security.service_urls import ServiceUrlPolicy
from bot.teams.adapter import BotIdentity, GuardedConnectorFactory, ServiceUrlRefused, TokenDestinationGuard
from bot.teams.bot_connector import BotConnectorClient, CachedToken, ConnectorAnswer, ConnectorRefused
from tests.conftest import APP_ID
from tests.support.credentials import OUTBOUND_TOKEN, FixedTokenCredentialsFactory
from tests.support.trap import Trap

CARD = {"type": "message", "text": "hello"}


class FirstCheckBypassed(ServiceUrlPolicy):
    def refusal(self, service_url: str | None) -> str | None:
        return None


TEAMS_ONLY = FirstCheckBypassed(frozenset({"smba.trafficmanager.net"}), (), allow_loopback=False)
LOOPBACK_LISTED = ServiceUrlPolicy(frozenset({"127.0.0.1"}), (), allow_loopback=False)


def nasty_urls(port: int) -> list[str]:
    """Service URLs whose real destination is the trap, however a careless parser reads them."""
    return [
        f"https://127.0.0.1:{port}\\@smba.trafficmanager.net/",
        f"https://127.0.0.1:{port}\\@smba.trafficmanager.net/amer/",
        f"http://127.0.0.1:{port}\\@smba.trafficmanager.net/amer/",
        f"http://smba.trafficmanager.net@127.0.0.1:{port}/",
        f"http://127.0.0.1:{port}#@smba.trafficmanager.net/",
        f"http://127.0.0.1:{port}/smba.trafficmanager.net/",
        f"http://[::ffff:127.0.0.1]:{port}/",
        f"http://2130706433:{port}/",
        f"http://localhost:{port}/",
    ]


def connector_factory(policy: ServiceUrlPolicy) -> GuardedConnectorFactory:
    settings = Settings(app_id=APP_ID, app_password="injected", _env_file=None)
    authentication = ConfigurationBotFrameworkAuthentication(
        BotIdentity.from_settings(settings), credentials_factory=FixedTokenCredentialsFactory(APP_ID)
    )
    identity = ClaimsIdentity(
        {AuthenticationConstants.AUDIENCE_CLAIM: APP_ID, AuthenticationConstants.APP_ID_CLAIM: APP_ID}, True
    )
    return GuardedConnectorFactory(authentication.create_connector_factory(identity), policy, 5.0, {})


def message() -> Activity:
    return Activity(type="message", text="hello")


SDK_CALLS: dict[str, Callable[[ConnectorClient], Awaitable[Any]]] = {
    "reply": lambda c: c.conversations.reply_to_activity("a:1", "act-1", message()),
    "send": lambda c: c.conversations.send_to_conversation("a:1", message()),
    "update": lambda c: c.conversations.update_activity("a:1", "act-1", message()),
    "delete": lambda c: c.conversations.delete_activity("a:1", "act-1"),
    "create conversation": lambda c: c.conversations.create_conversation(
        ConversationParameters(is_group=False, members=[ConversationAccount(id="29:x")], tenant_id="t")
    ),
}


@pytest.mark.parametrize("call", list(SDK_CALLS))
async def test_botbuilders_client_refuses_a_trap_the_first_check_let_through(trap: Trap, call: str) -> None:
    factory = connector_factory(TEAMS_ONLY)
    for url in nasty_urls(trap.port):
        client = await factory.create(url, None)
        with pytest.raises(ServiceUrlRefused):
            await SDK_CALLS[call](client)
    trap.assert_untouched()


async def test_a_client_made_for_a_listed_host_refuses_a_crafted_url(trap: Trap) -> None:
    """The pipeline judges each request's final URL, not the URL the client was made for."""
    factory = connector_factory(ServiceUrlPolicy.from_setting(["smba.trafficmanager.net"], dev_mode=False))
    client = await factory.create("https://smba.trafficmanager.net/amer/", None)
    assert isinstance(client.config.pipeline._impl_policies[0], TokenDestinationGuard)
    for url in nasty_urls(trap.port):
        client.config.base_url = url
        with pytest.raises(ServiceUrlRefused):
            await client.conversations.send_to_conversation("a:1", message())
    trap.assert_untouched()


@pytest.mark.parametrize("operation", ["send", "update", "delete", "create conversation"])
async def test_nurtures_client_refuses_a_trap_the_first_check_let_through(trap: Trap, operation: str) -> None:
    fetches: list[int] = []

    async def token() -> str:
        fetches.append(1)
        return OUTBOUND_TOKEN

    client = BotConnectorClient(CachedToken(token), TEAMS_ONLY, timeout_seconds=5)
    calls: dict[str, Callable[[str], Awaitable[ConnectorAnswer]]] = {
        "send": lambda url: client.send(url, "a:1", CARD),
        "update": lambda url: client.update(url, "a:1", "act-1", CARD),
        "delete": lambda url: client.delete(url, "a:1", "act-1"),
        "create conversation": lambda url: client.create_conversation(url, {"members": [{"id": "29:x"}]}),
    }
    try:
        for url in nasty_urls(trap.port):
            with pytest.raises(ConnectorRefused):
                await calls[operation](url)
    finally:
        await client.close()
    trap.assert_untouched()
    assert fetches == [], "a refused destination never even fetches the token"


async def test_the_trap_does_catch_a_token_sent_to_it(trap: Trap) -> None:
    """The control for the tests above: with 127.0.0.1 listed, the same clients do reach the trap."""
    client = BotConnectorClient(CachedToken(_fixed_token), LOOPBACK_LISTED, timeout_seconds=2)
    try:
        answer = await client.send(f"http://127.0.0.1:{trap.port}/", "a:1", CARD)
    finally:
        await client.close()
    assert answer.status is None  # the trap hangs up without answering
    assert trap.connections == 1 and f"Bearer {OUTBOUND_TOKEN}".encode() in trap.received


async def _fixed_token() -> str:
    return OUTBOUND_TOKEN


@pytest.fixture(params=[301, 302, 303, 307, 308])
async def redirector(trap: Trap, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A listed connector that answers every request with a redirect (of each kind) to the trap."""
    status = request.param

    async def redirect(request: web.Request) -> web.Response:
        location = f"http://127.0.0.1:{trap.port}/v3/conversations/a:1/activities"
        return web.json_response({}, status=status, headers={"Location": location})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/"))
    await server.close()


async def test_neither_client_follows_a_redirect_with_the_token(trap: Trap, redirector: str) -> None:
    """botbuilder's client ends in an error the web layer answers 502 (a 301 or 302 to a POST used to end in a
    TypeError inside msrest, and a 500); Nurture's own client reports the redirect as the answer."""
    sdk_client = await connector_factory(LOOPBACK_LISTED).create(redirector, None)
    with pytest.raises((HttpOperationError, ClientRequestError)):
        await sdk_client.conversations.send_to_conversation("a:1", message())

    client = BotConnectorClient(CachedToken(_fixed_token), LOOPBACK_LISTED, timeout_seconds=2)
    try:
        answer = await client.send(redirector, "a:1", CARD)
    finally:
        await client.close()
    assert answer.status in (301, 302, 303, 307, 308)
    trap.assert_untouched()
