"""A fake Microsoft Graph for proactive install: the app catalog, per-user installed apps and the chat each opens.

Answers like Graph v1.0: 401 without the tenant's bearer token, 404 for unknown users, 201 then 409 for installs,
installations listed with $expand=teamsApp&$filter=teamsApp/id eq '…', and the installation's chat. Counts installs
per tenant per second and answers 429 (Retry-After) above Graph's 30/s, recording a violation. An install puts the
person on the fake connector's roster, as a real install lets the bot talk to them.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.connector import Failure, FakeConnector

CATALOG_ID = "6fe1c3b0-1f4e-4b6a-9e2d-000000000abc"
INSTALLS_PER_SECOND = 30
TENANT_KEY = web.RequestKey("tenant", str)


def graph_token(tenant_id: str) -> str:
    """The token the fake accepts for a tenant (tests hand the installer a provider that returns it)."""
    return f"graph-token-for-{tenant_id}"


@dataclass
class FakeGraph:
    connector: FakeConnector
    external_app_id: str
    directory: dict[str, set[str]] = field(default_factory=dict)  # tenant → users that exist there
    installed: dict[tuple[str, str], str] = field(default_factory=dict)  # (tenant, user) → installation id
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path with query, tenant)
    violations: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    _installs: dict[str, list[float]] = field(default_factory=dict)
    _server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return str(self._server.make_url("/v1.0"))

    def fail_next(self, status: int, code: str, retry_after: int | None = None) -> None:
        self.failures.append(Failure(status, code, retry_after))

    def install_posts(self) -> int:
        return sum(1 for method, path, _ in self.calls if method == "POST" and path.endswith("/installedApps"))

    async def start(self) -> FakeGraph:
        app = web.Application(middlewares=[self._gate])
        app.router.add_get("/v1.0/appCatalogs/teamsApps", self._catalog)
        app.router.add_post("/v1.0/users/{user}/teamwork/installedApps", self._install)
        app.router.add_get("/v1.0/users/{user}/teamwork/installedApps", self._installations)
        app.router.add_get("/v1.0/users/{user}/teamwork/installedApps/{installation}/chat", self._chat)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def close(self) -> None:
        if self._server:
            await self._server.close()

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        tenant = token.removeprefix("graph-token-for-") if token.startswith("graph-token-for-") else ""
        query = "&".join(f"{key}={value}" for key, value in request.query.items())  # decoded, for readable tests
        self.calls.append((request.method, f"{request.path}?{query}" if query else request.path, tenant))
        if not tenant:
            return _error(401, "InvalidAuthenticationToken")
        if self.failures:
            failure = self.failures.pop(0)
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else None
            return _error(failure.status, failure.code, headers)
        request[TENANT_KEY] = tenant
        return await handler(request)

    async def _catalog(self, request: web.Request) -> web.Response:
        wanted = re.fullmatch(r"externalId eq '(.+)'", request.query.get("$filter", ""))
        apps = [{"id": CATALOG_ID, "externalId": self.external_app_id, "displayName": "Nurture"}]
        return web.json_response({"value": apps if wanted and wanted.group(1) == self.external_app_id else []})

    def _user(self, request: web.Request) -> tuple[str, str]:
        tenant, user = request[TENANT_KEY], request.match_info["user"]
        if user not in self.directory.get(tenant, set()):
            raise web.HTTPNotFound(
                text='{"error": {"code": "Request_ResourceNotFound"}}', content_type="application/json"
            )
        return tenant, user

    async def _install(self, request: web.Request) -> web.Response:
        tenant, user = self._user(request)
        body = await request.json()
        if not str(body.get("teamsApp@odata.bind", "")).endswith(f"/appCatalogs/teamsApps/{CATALOG_ID}"):
            return _error(400, "BadRequest")
        now = time.monotonic()
        stamps = [t for t in self._installs.get(tenant, []) if now - t < 1.0]
        if len(stamps) >= INSTALLS_PER_SECOND:
            self.violations.append(f"tenant {tenant}: more than {INSTALLS_PER_SECOND} installs in 1 s")
            return _error(429, "TooManyRequests", {"Retry-After": "1"})
        self._installs[tenant] = [*stamps, now]
        if (tenant, user) in self.installed:
            return _error(409, "Conflict")
        self.installed[(tenant, user)] = f"installation-{len(self.installed) + 1}"
        if self.connector.roster is not None:
            self.connector.roster.add(user)
        return web.Response(status=201)

    async def _installations(self, request: web.Request) -> web.Response:
        tenant, user = self._user(request)
        wanted = re.fullmatch(r"teamsApp/id eq '(.+)'", request.query.get("$filter", ""))
        installation = self.installed.get((tenant, user))
        if request.query.get("$expand") != "teamsApp" or not wanted or wanted.group(1) != CATALOG_ID:
            return web.json_response({"value": []})
        value = [{"id": installation, "teamsApp": {"id": CATALOG_ID}}] if installation else []
        return web.json_response({"value": value})

    async def _chat(self, request: web.Request) -> web.Response:
        tenant, user = self._user(request)
        if self.installed.get((tenant, user)) != request.match_info["installation"]:
            return _error(404, "NotFound")
        return web.json_response({"id": chat_of(user), "chatType": "oneOnOne"})


def chat_of(user: str) -> str:
    """The chat id the fake Graph gives a person's installation of the app."""
    return f"19:{user}_nurture@unq.gbl.spaces"


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": f"fake graph: {code}"}}, status=status, headers=headers
    )
