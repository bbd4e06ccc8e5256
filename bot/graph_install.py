"""Proactive install of the Teams app for one person through Microsoft Graph, and the chat that install opens.

Used when Teams refuses to open a chat with someone who is in no team or chat with the bot (403/404). Needs the
application permission TeamsAppInstallation.ReadWriteSelfForUser.All (the least that installs *this* app for users),
consented by an admin of each customer tenant. Microsoft Graph v1.0:

    GET  /appCatalogs/teamsApps?$filter=externalId eq '<manifest id>'     the app's id in the tenant's catalog
    POST /users/<id>/teamwork/installedApps {"teamsApp@odata.bind": …}    201 installed, 409 installed already
    GET  /users/<id>/teamwork/installedApps?$expand=teamsApp&$filter=teamsApp/id eq '<catalog id>'
    GET  /users/<id>/teamwork/installedApps/<installation id>/chat        the chat id = the bot's conversation id

At most 30 installs per second per tenant: the delivery worker takes a token from a shared SQL bucket first.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import msal

from bot.engagement.delivery import AttemptResult
from bot.usecases.delivery.ports import OpenOutcome

log = logging.getLogger(__name__)

GraphToken = Callable[[str], Awaitable[str]]  # tenant id → an app-only access token for Graph in that tenant


class GraphAuthError(Exception):
    """The identity platform refused an app token (no admin consent, wrong secret …)."""


class MsalGraphTokens:
    """App-only Graph tokens per customer tenant (client credentials), one msal app per tenant and one shared cache,
    so a token is fetched once and reused until it nears expiry. msal blocks: it runs in a thread."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        login_url: str = "https://login.microsoftonline.com",
        graph_url: str = "https://graph.microsoft.com/v1.0",
        verify: bool | str = True,  # a CA bundle path for a private authority (tests)
        instance_discovery: bool = True,  # msal asks Microsoft whether the authority is genuine; off for private ones
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.login_url = login_url.rstrip("/")
        parts = urlsplit(graph_url)
        self.scope = f"{parts.scheme}://{parts.netloc}/.default"
        self.verify = verify
        self.instance_discovery = instance_discovery
        self.cache = msal.TokenCache()
        self._apps: dict[str, msal.ConfidentialClientApplication] = {}
        self._lock = threading.Lock()

    async def __call__(self, tenant_id: str) -> str:
        return await asyncio.to_thread(self._acquire, tenant_id)

    def _acquire(self, tenant_id: str) -> str:
        with self._lock:
            app = self._apps.get(tenant_id)
            if app is None:
                app = msal.ConfidentialClientApplication(
                    self.client_id,
                    client_credential=self.client_secret,
                    authority=f"{self.login_url}/{tenant_id}",
                    token_cache=self.cache,
                    verify=self.verify,
                    instance_discovery=self.instance_discovery,
                )
                self._apps[tenant_id] = app
        result = app.acquire_token_for_client(scopes=[self.scope])  # answered from the cache while valid
        token = result.get("access_token") if isinstance(result, dict) else None
        if not token:
            error = result.get("error", "no token") if isinstance(result, dict) else "no token"
            raise GraphAuthError(f"{error}: {str(result.get('error_description', ''))[:160]}")
        return str(token)


class GraphAppInstaller:
    """Installs the app for one person and returns the personal chat it opened (`attempt_install`)."""

    def __init__(
        self,
        tokens: GraphToken,
        external_app_id: str,
        *,
        graph_url: str = "https://graph.microsoft.com/v1.0",
        timeout_seconds: float = 20.0,
    ) -> None:
        self.tokens = tokens
        self.external_app_id = external_app_id
        self.graph_url = graph_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._catalog: dict[str, str] = {}  # tenant → the app's catalog id there
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def attempt_install(
        self, tenant_id: str, aad_object_id: str, pace: Callable[[], Awaitable[None]] | None = None
    ) -> OpenOutcome:
        try:
            token = await self.tokens(tenant_id)
        except GraphAuthError as exc:
            return OpenOutcome(AttemptResult(None, f"graph token refused: {exc}", refused=True))
        try:
            return await self._install(tenant_id, aad_object_id, token, pace)
        except _GraphAnswer as answer:
            return OpenOutcome(answer.result)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("graph install for a user in %s failed without an answer: %s", tenant_id, type(exc).__name__)
            sent = not isinstance(exc, aiohttp.ClientConnectorError)
            return OpenOutcome(AttemptResult(None, f"graph: {type(exc).__name__}", request_sent=sent))

    async def _install(
        self, tenant_id: str, aad_object_id: str, token: str, pace: Callable[[], Awaitable[None]] | None
    ) -> OpenOutcome:
        catalog_id = await self._catalog_id(tenant_id, token)
        user = f"{self.graph_url}/users/{quote(aad_object_id, safe='')}/teamwork/installedApps"
        bind = {"teamsApp@odata.bind": f"{self.graph_url}/appCatalogs/teamsApps/{catalog_id}"}
        if pace is not None:
            await pace()  # the install is what Graph counts per tenant: the token is taken right before it
        status, body, headers = await self._call("POST", user, token, bind)
        if status not in (200, 201, 409):  # 409: installed already (by the person, an admin, or an earlier try)
            raise _GraphAnswer(_result(status, body, headers))
        query = f"?$expand=teamsApp&$filter=teamsApp/id eq '{catalog_id}'"
        status, body, headers = await self._call("GET", user + query, token)
        found = body.get("value") if status == 200 and isinstance(body, dict) else None
        if status != 200:
            raise _GraphAnswer(_result(status, body, headers))
        if not found:  # Graph is eventually consistent: the installation may not be listed yet
            raise _GraphAnswer(AttemptResult(503, "installation not listed yet"))
        installation = quote(str(found[0].get("id", "")), safe="")
        status, body, headers = await self._call("GET", f"{user}/{installation}/chat", token)
        chat_id = body.get("id") if status == 200 and isinstance(body, dict) else None
        if status == 404 or (status == 200 and not chat_id):
            raise _GraphAnswer(AttemptResult(503, "chat not ready yet"))  # also a consistency delay, not a refusal
        if status != 200:
            raise _GraphAnswer(_result(status, body, headers))
        return OpenOutcome(AttemptResult(200), str(chat_id))

    async def _catalog_id(self, tenant_id: str, token: str) -> str:
        known = self._catalog.get(tenant_id)
        if known:
            return known
        external = self.external_app_id.replace("'", "''")
        url = f"{self.graph_url}/appCatalogs/teamsApps?$filter=externalId eq '{external}'"
        status, body, headers = await self._call("GET", url, token)
        if status != 200:
            raise _GraphAnswer(_result(status, body, headers))
        apps = body.get("value") if isinstance(body, dict) else None
        if not apps:
            reason = f"app {self.external_app_id} is not in the tenant's app catalog (publish or allow it first)"
            raise _GraphAnswer(AttemptResult(None, reason, refused=True))
        self._catalog[tenant_id] = str(apps[0]["id"])
        return self._catalog[tenant_id]

    async def _call(
        self, method: str, url: str, token: str, body: dict[str, Any] | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        headers = {"Authorization": f"Bearer {token}"}
        async with self._session.request(method, url, json=body, headers=headers) as response:
            try:
                answer = await response.json(content_type=None) if response.content_length != 0 else None
            except ValueError:
                answer = None
            return response.status, answer, dict(response.headers)


class _GraphAnswer(Exception):
    def __init__(self, result: AttemptResult) -> None:
        super().__init__(result.error_code)
        self.result = result


def _result(status: int, body: Any, headers: dict[str, str]) -> AttemptResult:
    error = body.get("error") if isinstance(body, dict) else None
    code = str(error.get("code")) if isinstance(error, dict) and error.get("code") else None
    return AttemptResult(status, f"graph {code}" if code else "graph", headers.get("Retry-After"))
