"""Nurture's own calls to the Bot Connector REST API (v3) for what it sends on its own initiative.

    POST   {serviceUrl}/v3/conversations/{conversationId}/activities                 send a card
    PUT    {serviceUrl}/v3/conversations/{conversationId}/activities/{activityId}    replace it
    DELETE {serviceUrl}/v3/conversations/{conversationId}/activities/{activityId}    take it back
    POST   {serviceUrl}/v3/conversations                                             open a person's 1:1 chat

Why not botbuilder's `continue_conversation`: for each proactive send it builds a turn context, serializes through
msrest and posts with `requests` on a worker thread. That cost a large share of a send's CPU, and it put a thread hop
and serialization between taking the tenant's rate token and the request leaving — the jitter that bunches sends at
Teams. Here one aiohttp session with kept-alive connections posts JSON built directly.

The bearer token comes from the same credentials botbuilder uses (msal client credentials, or what a test injects);
msal blocks, so it runs in a thread, and a token is reused for a few minutes: msal only hands out tokens with more
than five minutes left, so a copy kept for four is always still valid.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from bot.security.service_urls import ServiceUrlPolicy

log = logging.getLogger(__name__)

TOKEN_REUSE_SECONDS = 240.0

TokenSource = Callable[[], Awaitable[str | None]]  # the bearer token for the Bot Connector; None = send none


class ConnectorRefused(PermissionError):
    """The service URL is not on the allow-list: the bot's token is never sent there."""


@dataclass(frozen=True)
class ConnectorAnswer:
    """What the Bot Connector said. `status` is None when no answer came back; then `request_sent` tells whether
    the request may have reached it (a connection refused before sending is safe to retry, a timeout is not)."""

    status: int | None
    body: dict[str, Any] | None = None
    retry_after: str | None = None
    request_sent: bool = True
    failure: str | None = None  # the exception's name when no answer came back
    refused: bool = False  # the HTTP client would not send it (nothing left, and trying again would not help)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def error_code(self) -> str | None:
        error = (self.body or {}).get("error")
        return str(error["code"]) if isinstance(error, dict) and error.get("code") else None


class CachedToken:
    """A token source that asks `fetch` at most once per `reuse_seconds`."""

    def __init__(self, fetch: TokenSource, reuse_seconds: float = TOKEN_REUSE_SECONDS) -> None:
        self._fetch = fetch
        self._reuse = reuse_seconds
        self._token: str | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def __call__(self) -> str | None:
        if time.monotonic() - self._fetched_at < self._reuse:
            return self._token
        async with self._lock:  # one fetch however many sends are waiting for it
            if time.monotonic() - self._fetched_at >= self._reuse:
                self._token = await self._fetch()
                self._fetched_at = time.monotonic()
        return self._token

    def forget(self) -> None:
        """The connector refused the token (401): fetch a new one next time."""
        self._fetched_at = float("-inf")


class BotConnectorClient:
    """Sends, replaces and deletes activities and opens 1:1 chats; never raises for what the connector answers."""

    def __init__(
        self,
        token: CachedToken,
        policy: ServiceUrlPolicy,
        timeout_seconds: float,
    ) -> None:
        self._token = token
        self._policy = policy
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._refusals: dict[str, str | None] = {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def refusal(self, service_url: str) -> str | None:
        if service_url not in self._refusals:
            self._refusals[service_url] = self._policy.refusal(service_url)
        return self._refusals[service_url]

    async def send(self, service_url: str, conversation_id: str, activity: dict[str, Any]) -> ConnectorAnswer:
        return await self._call("POST", service_url, f"v3/conversations/{_part(conversation_id)}/activities", activity)

    async def update(
        self, service_url: str, conversation_id: str, activity_id: str, activity: dict[str, Any]
    ) -> ConnectorAnswer:
        return await self._call("PUT", service_url, _activity_path(conversation_id, activity_id), activity)

    async def delete(self, service_url: str, conversation_id: str, activity_id: str) -> ConnectorAnswer:
        return await self._call("DELETE", service_url, _activity_path(conversation_id, activity_id), None)

    async def create_conversation(self, service_url: str, parameters: dict[str, Any]) -> ConnectorAnswer:
        return await self._call("POST", service_url, "v3/conversations", parameters)

    async def _call(self, method: str, service_url: str, path: str, body: dict[str, Any] | None) -> ConnectorAnswer:
        refusal = self.refusal(service_url)
        if refusal:
            log.warning("refused to call the Bot Connector: %s", refusal)
            raise ConnectorRefused(refusal)
        url = self._destination(service_url, path)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        try:
            token = await self._token()
        except Exception as exc:  # msal or the identity platform: nothing was sent, so trying again later is safe
            log.warning("no Bot Connector token: %s", exc)
            return ConnectorAnswer(None, request_sent=False, failure=f"token: {type(exc).__name__}")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() if body is not None else None
        try:
            request = self._client().request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            )
            async with request as got:
                answer = ConnectorAnswer(got.status, await _json_object(got), got.headers.get("Retry-After"))
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            return _no_answer(exc)
        if answer.status == 401:
            self._token.forget()
        return answer

    def _destination(self, service_url: str, path: str) -> URL:
        """The URL as aiohttp reads it (yarl), checked again where the token is attached: the host, port and scheme
        it will connect to. The request is given this same URL object, so nothing parses it differently later."""
        try:
            url = URL(f"{service_url.rstrip('/')}/{path}")
            refusal = self._policy.endpoint_refusal(url.scheme, url.raw_host, url.port)
        except ValueError:
            refusal = "serviceUrl is not a URL aiohttp can send to"
        if refusal:
            log.warning("refused to send the bot's token: %s", refusal)
            raise ConnectorRefused(refusal)
        return url

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # made on first use: a session belongs to the running event loop
            self._session = aiohttp.ClientSession()
        return self._session


def _no_answer(exc: BaseException) -> ConnectorAnswer:
    """A call that failed without an answer: what aiohttp raised says whether anything left.

    - ValueError (a URL or header it will not write): raised while the request is put together, so nothing left,
      and trying again would fail the same way: refused.
    - No connection, or the connection timing out: the request never left; trying again later is safe.
    - Anything else happened on an open connection: the request may have arrived, so the send is unknown."""
    failure = type(exc).__name__
    if isinstance(exc, ValueError):
        return ConnectorAnswer(None, request_sent=False, failure=failure, refused=True)
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
        return ConnectorAnswer(None, request_sent=False, failure=failure)
    return ConnectorAnswer(None, failure=failure)


def _activity_path(conversation_id: str, activity_id: str) -> str:
    return f"v3/conversations/{_part(conversation_id)}/activities/{_part(activity_id)}"


def _part(value: str) -> str:
    """A path segment: Teams' ids hold ':' , '@' and ';' (botbuilder quotes them the same way)."""
    return quote(value, safe="")


async def _json_object(response: aiohttp.ClientResponse) -> dict[str, Any] | None:
    try:
        body = await response.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return None
    return body if isinstance(body, dict) else None
