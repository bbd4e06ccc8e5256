"""The vendor-facing HTTP API: usage events in (`POST /api/usage/events`) and tenants' renewal dates.

Both take a bearer token from NURTURE_INGEST_TOKENS (compared in constant time) and serve only tenants on
NURTURE_ALLOWED_TENANTS: another tenant's event is refused with its reason, its renewal date with 403. A body that
cannot be read as a batch is refused whole (400/413/415) and stores nothing; inside a readable batch each bad event
is refused with its reason and the rest are stored (202).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from aiohttp import web

from bot.engagement.ids import DIRECTORY_ID, stored_id
from bot.engagement.usage import MAX_BATCH_EVENTS
from bot.json_body import json_error, read_json
from bot.security.tenants import TenantPolicy
from bot.usecases.ingest import UsageIngest
from storage.engine import DatabaseUnavailable, lock_wait
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

# A request answers within STORE_SECONDS, waiting at most LOCK_WAIT_SECONDS of it for the database's write lock: a
# sender with a timeout of its own (often 10-30 s) gets a 503 to retry instead of a hung connection.
STORE_SECONDS, LOCK_WAIT_SECONDS = 10.0, 8.0
RETRY_AFTER_SECONDS = 5
NOT_IN_TIME: tuple[type[BaseException], ...] = (TimeoutError, DatabaseUnavailable)


@dataclass(frozen=True)
class UsageApi:
    tokens: tuple[str, ...]
    max_bytes: int
    ingest: UsageIngest
    uow_factory: Callable[[], UnitOfWork]
    clock: Callable[[], datetime]
    tenants: TenantPolicy

    async def events(self, request: web.Request) -> web.Response:
        self._authorize(request)
        payload = await _read_json(request, self.max_bytes)
        events = payload.get("events") if isinstance(payload, dict) else None
        if not isinstance(events, list):
            return _error(400, 'body must be a JSON object {"events": [...]}')
        if len(events) > MAX_BATCH_EVENTS:
            return _error(413, f"at most {MAX_BATCH_EVENTS} events per batch (got {len(events)}): split the batch")
        try:
            async with asyncio.timeout(STORE_SECONDS):
                with lock_wait(LOCK_WAIT_SECONDS):
                    report = await self.ingest.ingest(events, self.clock())
        except NOT_IN_TIME as exc:  # one transaction, rolled back
            log.warning("usage batch not stored in time: %s", type(exc.__cause__ or exc).__name__)
            return _unavailable("nothing was stored, send the batch again")
        log.info(
            "usage batch: %s accepted, %s stored, %s rejected", report.accepted, report.stored, len(report.rejections)
        )
        return web.json_response(report.as_json(), status=202)

    async def renewal(self, request: web.Request) -> web.Response:
        """PUT /api/tenants/{tenant_id}/renewal {"renewal_date": "2027-03-31"} (null clears it)."""
        self._authorize(request)
        if not DIRECTORY_ID.fullmatch(request.match_info["tenant_id"]):
            return _error(400, "tenant id must be a GUID")
        tenant_id = stored_id(request.match_info["tenant_id"])
        refusal = self.tenants.refusal(tenant_id)
        if refusal:  # a renewal date would create the tenant, and CSMs would be reminded of an account not served
            return _error(403, f"{refusal} (NURTURE_ALLOWED_TENANTS): nothing was stored")
        payload = await _read_json(request, 4096)
        if not isinstance(payload, dict) or "renewal_date" not in payload:
            return _error(400, 'body must be {"renewal_date": "YYYY-MM-DD"} or {"renewal_date": null}')
        raw = payload["renewal_date"]
        try:
            renewal = None if raw is None else date.fromisoformat(str(raw))
        except ValueError:
            return _error(400, f"renewal_date {str(raw)[:20]!r} is not a date (YYYY-MM-DD)")
        try:
            async with asyncio.timeout(STORE_SECONDS):
                with lock_wait(LOCK_WAIT_SECONDS):
                    async with self.uow_factory() as uow:
                        await uow.tenants.set_renewal(tenant_id, renewal, self.clock())
                        await uow.commit()
        except NOT_IN_TIME as exc:
            log.warning("renewal date not stored in time: %s", type(exc.__cause__ or exc).__name__)
            return _unavailable("the renewal date was not stored, send it again")
        return web.json_response({"tenant_id": tenant_id, "renewal_date": renewal and renewal.isoformat()})

    def _authorize(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not self.tokens:
            raise _http_error(401, "the usage API is disabled: set NURTURE_INGEST_TOKENS")
        if scheme.lower() != "bearer" or not token.strip():
            raise _http_error(401, "missing bearer token")
        presented = token.strip().encode()
        if not any(hmac.compare_digest(presented, known.encode()) for known in self.tokens):
            raise _http_error(401, "unknown bearer token")


async def _read_json(request: web.Request, limit: int) -> Any:
    return await read_json(request, limit, f"body larger than {limit} bytes: send smaller batches")


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def _unavailable(what_to_do: str) -> web.Response:
    reason = f"the database is busy or unavailable: {what_to_do}"
    return web.json_response({"error": reason}, status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _http_error(status: int, reason: str) -> web.HTTPException:
    return json_error(status, reason, {"WWW-Authenticate": "Bearer"} if status == 401 else None)
