"""A fake Teams Bot Connector: records what the bot sends and answers like Teams, including 429/403/404 on demand."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Call:
    method: str
    path: str
    authorization: str | None
    body: dict[str, Any] | None
    arrived: float = 0.0  # time.monotonic() when the request arrived …
    answered: float | None = None  # … and when its answer was written (None: not yet)
    status: int | None = None  # the answer's status code
    accepted: bool = False  # a send Teams took (whether or not its answer reached the bot)
    summary: str | None = None  # the activity's notification text (seeded messages carry their dedupe key there)


@dataclass
class Failure:
    status: int
    code: str
    retry_after: int | None = None


# Teams' limits per bot per conversation, and a per-tenant rate (Microsoft's page: 50 requests/s per app per tenant).
CONVERSATION_WINDOWS = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))


@dataclass
class FakeConnector:
    """Start with `await connector.start()`; `service_url` is what activities should name.

    With `enforce_limits`, it counts sends per conversation and per tenant like Teams and answers 429 (Retry-After)
    when a limit is exceeded; every such request is recorded in `violations`.
    """

    calls: list[Call] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    delay_seconds: float = 0.0
    jitter_seconds: float = 0.0  # each answer takes delay_seconds plus up to this much more, at random
    updated: list[tuple[str, str]] = field(default_factory=list)  # (conversation, activity) of each card replaced
    deleted: list[tuple[str, str]] = field(default_factory=list)
    enforce_limits: bool = False
    # keep each request's parsed body in `calls`: off for runs of thousands of sends, whose bodies would make the
    # garbage collector's full passes long enough (100 ms and more) to bunch the arrival times this fake stamps
    keep_bodies: bool = True
    tenant_rate: int = 50
    violations: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)  # conversation ids of sends answered 2xx
    accepted_summaries: list[str | None] = field(default_factory=list)  # their summaries, kept even without bodies
    # who Teams lets the bot open a 1:1 chat with (members of a team or chat with the bot, or who installed it);
    # None = everyone. Others get 403 BotNotInConversationRoster, as from Teams.
    roster: set[str] | None = None
    opened: list[tuple[str, str]] = field(default_factory=list)  # (tenant, member) of each chat created
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _server: TestServer | None = None
    _per_conversation: dict[str, list[float]] = field(default_factory=dict)
    _per_tenant: dict[str, list[float]] = field(default_factory=dict)
    _hangs: dict[str, float] = field(default_factory=dict)
    _scripted: dict[str, list[Failure]] = field(default_factory=dict)
    # awaited with each call (its status set) before its answer goes out: a test acts at that moment
    before_answer: Callable[[Call], Awaitable[None]] | None = None
    _thawed: asyncio.Event = field(default_factory=asyncio.Event)
    _calls_of: dict[int, Call] = field(default_factory=dict)  # the call of each request being answered

    def __post_init__(self) -> None:
        self._thawed.set()

    def freeze(self) -> None:
        """Take requests in but answer none until `thaw()`: Teams has the messages, the bot waits for its answers."""
        self._thawed.clear()

    def thaw(self) -> None:
        self._thawed.set()

    def held(self) -> list[Call]:
        """Requests taken in and not answered yet (while frozen: those the bot is waiting on)."""
        return [c for c in self.calls if c.answered is None]

    def fail_next(self, status: int, code: str = "", retry_after: int | None = None) -> None:
        """Queue a failure answered to the next send (429 with Retry-After, 403 ConversationBlockedByUser, 404 …)."""
        self.failures.append(Failure(status, code or _DEFAULT_CODES.get(status, "Error"), retry_after))

    def fail_for(
        self, conversation_id: str, status: int, code: str = "", retry_after: int | None = None, times: int = 1
    ) -> None:
        """Answer the next `times` sends into this conversation with `status`."""
        failure = Failure(status, code or _DEFAULT_CODES.get(status, "Error"), retry_after)
        self._scripted.setdefault(conversation_id, []).extend([failure] * times)

    def hang_for(self, conversation_id: str, seconds: float) -> None:
        """Accept the next send into this conversation but answer only after `seconds`: a slow Teams."""
        self._hangs[conversation_id] = seconds

    def delivered_to(self, conversation_id: str) -> int:
        """Sends into this conversation that Teams would have accepted (answered 2xx)."""
        return self.accepted.count(conversation_id)

    def sends_to(self, conversation_id: str) -> int:
        return sum(1 for c in self.calls if c.method == "POST" and f"/conversations/{conversation_id}/" in c.path)

    def _over_limit(self, conversation_id: str, tenant_id: str) -> str | None:
        now = time.monotonic()
        stamps = self._per_conversation.setdefault(conversation_id, [])
        while stamps and now - stamps[0] >= CONVERSATION_WINDOWS[-1][1]:  # older than the longest window
            stamps.pop(0)
        for count, period in CONVERSATION_WINDOWS:
            if sum(1 for t in stamps if now - t < period) >= count:
                return f"conversation {conversation_id}: more than {count} in {period:g} s"
        tenant = self._per_tenant.setdefault(tenant_id, [])
        recent = bisect.bisect_left(tenant, now - 1.0)  # stamps are in arrival order: the last second is a suffix
        if len(tenant) - recent >= self.tenant_rate:
            return f"tenant {tenant_id}: more than {self.tenant_rate} per second"
        stamps.append(now)
        tenant.append(now)
        return None

    @property
    def service_url(self) -> str:
        assert self._server is not None, "start() first"
        return str(self._server.make_url("/"))

    def sent(self) -> list[dict[str, Any]]:
        """Activities the bot posted (send / reply), in order."""
        return [c.body for c in self.calls if c.method == "POST" and "/activities" in c.path and c.body is not None]

    async def start(self) -> FakeConnector:
        app = web.Application(middlewares=[self._stamp])
        app.router.add_post("/v3/conversations", self._create_conversation)
        app.router.add_post("/v3/conversations/{conversation_id}/activities", self._send)
        app.router.add_post("/v3/conversations/{conversation_id}/activities/{activity_id}", self._send)
        app.router.add_put("/v3/conversations/{conversation_id}/activities/{activity_id}", self._update)
        app.router.add_delete("/v3/conversations/{conversation_id}/activities/{activity_id}", self._delete)
        app.router.add_get("/v3/conversations/{conversation_id}/members/{member_id}", self._member)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def close(self) -> None:
        self.thaw()
        if self._server:
            await self._server.close()

    @web.middleware
    async def _stamp(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Each call's arrival, its answer (held while frozen) and when the answer went out."""
        arrived = time.monotonic()
        response: web.StreamResponse = await handler(request)
        await self._thawed.wait()
        call = self._calls_of.pop(id(request), None)
        if call is not None:
            call.arrived, call.status = arrived, response.status
            if self.before_answer is not None:
                await self.before_answer(call)
            call.answered = time.monotonic()
        return response

    async def _record(self, request: web.Request) -> web.Response | None:
        body = await request.json() if request.can_read_body else None
        kept = body if self.keep_bodies or request.path == "/v3/conversations" else None
        call = Call(request.method, request.path, request.headers.get("Authorization"), kept, time.monotonic())
        if isinstance(body, dict) and isinstance(body.get("summary"), str):
            call.summary = body["summary"]
        self.calls.append(call)
        self._calls_of[id(request)] = call
        # the round trip, half of it on the way in: Teams counts a request against its limits when it arrives, so
        # requests the bot sent apart can arrive closer together, as over a real network
        trip = self.delay_seconds + random.uniform(0, self.jitter_seconds)
        if trip:
            await asyncio.sleep(trip / 2)
        refusal = self._refusal(request, body)
        if trip:
            await asyncio.sleep(trip / 2)
        return refusal

    def _refusal(self, request: web.Request, body: Any) -> web.Response | None:
        if self.enforce_limits and request.method == "POST" and request.path == "/v3/conversations":
            members = (body or {}).get("members") or [{}]
            first = members[0] if isinstance(members, list) and isinstance(members[0], dict) else {}
            tenant = (body or {}).get("tenantId") or (body or {}).get("tenantID") or "unknown"
            exceeded = self._over_limit(f"create:{first.get('id')}", str(tenant))
            if exceeded:
                self.violations.append(exceeded)
                error = {"error": {"code": "TooManyRequests", "message": exceeded}}
                return web.json_response(error, status=429, headers={"Retry-After": "1"})
        conversation_id = request.match_info.get("conversation_id", "")
        if self.enforce_limits and request.method == "POST" and conversation_id:
            conversation = (body or {}).get("conversation") or {}
            # botbuilder writes the key as "tenantID"; Teams' own activities say "tenantId"
            tenant = conversation.get("tenantId") or conversation.get("tenantID") or "unknown"
            exceeded = self._over_limit(conversation_id, tenant)
            if exceeded:
                self.violations.append(exceeded)
                error = {"error": {"code": "TooManyRequests", "message": exceeded}}
                return web.json_response(error, status=429, headers={"Retry-After": "1"})
        scripted = self._scripted.get(conversation_id)
        failure = scripted.pop(0) if scripted else (self.failures.pop(0) if self.failures else None)
        if failure:
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else None
            error = {"error": {"code": failure.code, "message": f"fake connector: {failure.code}"}}
            return web.json_response(error, status=failure.status, headers=headers)
        return None

    async def _create_conversation(self, request: web.Request) -> web.Response:
        """Like Teams: a tenant is required, the member must be reachable, and a 1:1 chat has one id however often
        it is created (Teams answers with the existing chat)."""
        failed = await self._record(request)
        if failed:
            return failed
        body = self._calls_of[id(request)].body or {}
        # botbuilder writes "tenantID"; Teams (.NET) reads keys case-insensitively. channelData.tenant.id also counts.
        tenant = (
            body.get("tenantId")
            or body.get("tenantID")
            or ((body.get("channelData") or {}).get("tenant") or {}).get("id")
        )
        members = body.get("members") or []
        if not tenant or len(members) != 1 or not members[0].get("id"):
            error = {"error": {"code": "BadArgument", "message": "a tenant id and exactly one member are required"}}
            return web.json_response(error, status=400)
        member = str(members[0]["id"])
        if self.roster is not None and member not in self.roster:
            error = {"error": {"code": "BotNotInConversationRoster", "message": "The bot is not part of the roster"}}
            return web.json_response(error, status=403)
        self.opened.append((str(tenant), member))
        return web.json_response({"id": personal_chat_id(member), "activityId": f"act-{next(self._ids)}"})

    async def _send(self, request: web.Request) -> web.Response:
        failed = await self._record(request)
        if failed:
            return failed
        call = self._calls_of[id(request)]
        self.accepted.append(request.match_info["conversation_id"])
        self.accepted_summaries.append(call.summary)
        call.accepted = True
        hang = self._hangs.pop(request.match_info["conversation_id"], None)
        if hang:  # Teams has the message; only its answer is late
            await asyncio.sleep(hang)
        return web.json_response({"id": f"act-{next(self._ids)}"})

    async def _update(self, request: web.Request) -> web.Response:
        failed = await self._record(request)
        if failed:
            return failed
        self.updated.append((request.match_info["conversation_id"], request.match_info["activity_id"]))
        return web.json_response({"id": request.match_info["activity_id"]})

    async def _delete(self, request: web.Request) -> web.Response:
        failed = await self._record(request)
        if failed:
            return failed
        self.deleted.append((request.match_info["conversation_id"], request.match_info["activity_id"]))
        return web.Response(status=200)

    async def _member(self, request: web.Request) -> web.Response:
        failed = await self._record(request)
        if failed:
            return failed
        member_id = request.match_info["member_id"]
        return web.json_response({"id": member_id, "aadObjectId": member_id, "tenantId": "fake-tenant"})


_DEFAULT_CODES = {
    403: "ConversationBlockedByUser",
    404: "ConversationNotFound",
    412: "PreconditionFailed",
    413: "MessageSizeTooBig",
    429: "TooManyRequests",
    502: "BadGateway",
    503: "ServiceUnavailable",
}


def personal_chat_id(member: str) -> str:
    """The id of a person's 1:1 chat with the bot (stable: Teams has one such chat per person)."""
    return f"a:personal-{member}"


def card_of(activity: dict[str, Any]) -> dict[str, Any]:
    """The Adaptive Card in a sent activity (fails the test if there is none)."""
    attachments = activity.get("attachments") or []
    assert attachments, f"no attachment in {json.dumps(activity)[:300]}"
    assert attachments[0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    content: dict[str, Any] = attachments[0]["content"]
    return content
