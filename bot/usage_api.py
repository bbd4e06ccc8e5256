"""The vendor-facing HTTP API: usage events in (`POST /api/usage/events`) and tenants' renewal dates.

Both take a bearer token from NURTURE_INGEST_TOKENS (compared in constant time) and serve only tenants on
NURTURE_ALLOWED_TENANTS: another tenant's event is refused with its reason, its renewal date with 403. A body that
cannot be read as a batch is refused whole (400/413/415) and stores nothing; inside a readable batch each bad event
is refused with its reason and the rest are stored (202).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from aiohttp import web
from sqlalchemy.exc import OperationalError

from bot.engagement.usage import DIRECTORY_ID, MAX_BATCH_EVENTS
from bot.json_body import json_error, read_json
from bot.security.tenants import TenantPolicy
from bot.usecases.ingest import UsageIngest
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)


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
            report = await self.ingest.ingest(events, self.clock())
        except OperationalError:
            log.exception("database unavailable while storing usage events")
            return _error(503, "database unavailable: nothing was stored, send the batch again")
        log.info(
            "usage batch: %s accepted, %s stored, %s rejected", report.accepted, report.stored, len(report.rejections)
        )
        return web.json_response(report.as_json(), status=202)

    async def renewal(self, request: web.Request) -> web.Response:
        """PUT /api/tenants/{tenant_id}/renewal {"renewal_date": "2027-03-31"} (null clears it)."""
        self._authorize(request)
        tenant_id = request.match_info["tenant_id"]
        if not DIRECTORY_ID.fullmatch(tenant_id):
            return _error(400, "tenant id must be a GUID")
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
        async with self.uow_factory() as uow:
            await uow.tenants.set_renewal(tenant_id.lower(), renewal, self.clock())
            await uow.commit()
        return web.json_response({"tenant_id": tenant_id.lower(), "renewal_date": renewal and renewal.isoformat()})

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


def _http_error(status: int, reason: str) -> web.HTTPException:
    return json_error(status, reason, {"WWW-Authenticate": "Bearer"} if status == 401 else None)
