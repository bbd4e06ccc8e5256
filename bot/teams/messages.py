"""POST /api/messages: parse, authenticate, check tenant and service URL, then hand the activity to CloudAdapter.

Every refusal is decided here, before any handler runs, so a refused activity stores nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from botbuilder.core import serializer_helper
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, ActivityTypes
from msrest.exceptions import ClientRequestError, DeserializationError, HttpOperationError

from bot.config import Settings
from bot.json_body import json_error, read_json
from bot.policies import service_url_policy, tenant_policy
from bot.security.service_urls import ServiceUrlPolicy
from bot.security.tenants import TenantPolicy
from bot.security.tokens import AuthFailure, BotConnectorTokenValidator
from bot.teams.adapter import NurtureAuthentication, ServiceUrlRefused
from bot.teams.handler import NurtureBot, not_saved_answer
from bot.teams.inbound import tenant_of
from storage.engine import DatabaseUnavailable, lock_wait
from storage.models import CONVERSATION_ID_LENGTH, ID_LENGTH

log = logging.getLogger(__name__)

ACTIVITY = web.RequestKey("activity", Activity)  # read by the access log: type and id only, never text

# How long a turn may take, counted from the request's arrival, and how much of it may go waiting for the database's
# write lock. Teams gives a card action about 5 s (then the person sees an error), and an activity 15 s before it
# sends it again: past these, the person gets "nothing was saved, try again", and Teams a 503 it retries.
INVOKE_SECONDS, INVOKE_LOCK_WAIT = 4.0, 3.0
TURN_SECONDS, TURN_LOCK_WAIT = 10.0, 8.0
RETRY_AFTER_SECONDS = 5
NOT_IN_TIME: tuple[type[BaseException], ...] = (TimeoutError, DatabaseUnavailable)


@dataclass(frozen=True)
class MessagesEndpoint:
    settings: Settings
    adapter: CloudAdapter
    authentication: NurtureAuthentication
    validator: BotConnectorTokenValidator | None  # None only in dev mode
    bot: NurtureBot
    # the allow-lists, built once from the settings (not per request)
    service_urls: ServiceUrlPolicy = field(init=False)
    tenants: TenantPolicy = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "service_urls", service_url_policy(self.settings))
        object.__setattr__(self, "tenants", tenant_policy(self.settings))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        arrived = asyncio.get_running_loop().time()
        activity = await _read_activity(request, self.settings.max_request_bytes)
        request[ACTIVITY] = activity
        claims = await self._authenticate(request, activity)
        refusal = self.service_urls.refusal(activity.service_url)
        if refusal:
            return _refuse(403, refusal)
        refusal = self.tenants.refusal(tenant_of(activity))
        if refusal:
            return _refuse(403, refusal)
        result = self.authentication.authenticated_result(claims)
        invoke = activity.type == ActivityTypes.invoke
        seconds, lock_seconds = (INVOKE_SECONDS, INVOKE_LOCK_WAIT) if invoke else (TURN_SECONDS, TURN_LOCK_WAIT)
        try:
            async with asyncio.timeout_at(arrived + seconds):
                with lock_wait(lock_seconds):
                    invoke_response = await self.adapter.process_activity(result, activity, self.bot.on_turn)
        except ServiceUrlRefused as exc:
            return _refuse(403, str(exc))
        except HttpOperationError as exc:
            status = getattr(exc.response, "status_code", None)
            log.error("sending to the Bot Connector failed with HTTP %s", status)
            return _refuse(502, f"the Bot Connector answered {status}")
        except ClientRequestError as exc:
            log.error("the Bot Connector could not be reached: %s", type(exc).__name__)
            return _refuse(502, "the Bot Connector could not be reached")
        except DeserializationError:  # not JSON: an error page from a gateway in front of the connector
            log.error("the Bot Connector's answer could not be read")
            return _refuse(502, "the Bot Connector's answer could not be read")
        except NOT_IN_TIME as exc:  # its transaction was rolled back: nothing is kept
            log.warning("%s activity not processed in time: %s", activity.type, type(exc.__cause__ or exc).__name__)
            if invoke:
                return web.json_response(not_saved_answer(activity))
            return _unavailable()
        if invoke_response:
            body = invoke_response.body
            if body is not None and not isinstance(body, (dict, list)):
                body = serializer_helper(body)  # SDK models; our own handlers already return plain JSON
            return web.json_response(body, status=invoke_response.status)
        return web.Response(status=200)

    async def _authenticate(self, request: web.Request, activity: Activity) -> dict[str, Any]:
        if self.validator is None:
            return {}
        try:
            return await self.validator.validate(
                request.headers.get("Authorization"),
                channel_id=activity.channel_id or "",
                service_url=activity.service_url or "",
            )
        except AuthFailure as failure:
            log.info("refused activity: %s", failure.reason)
            raise _http_error(failure.status, failure.reason) from None


async def _read_activity(request: web.Request, limit: int) -> Activity:
    payload = await read_json(request, limit, "request body too large")
    if not isinstance(payload, dict):
        raise _http_error(400, "body must be a JSON object (an activity)")
    missing = [name for name in _REQUIRED_TEXT if not _is_text(_at(payload, name.split(".")))]
    if isinstance(payload.get("recipient"), dict) and not _is_text(_at(payload, ["recipient", "id"])):
        missing.append("recipient.id")  # no recipient is fine (dev clients); one without an id is not
    if missing:
        raise _http_error(400, f"activity lacks a valid {', '.join(missing)}")
    refused = _refused_fields(payload)
    if refused:
        raise _http_error(400, f"activity field too long or not text: {', '.join(refused)}")
    try:
        activity = Activity().deserialize(payload)
    except (DeserializationError, ValueError, TypeError, AttributeError):
        raise _http_error(400, "body is not a valid activity") from None
    return activity


# The longest value each stored field takes; anything longer is refused before it reaches a handler, on every database.
_FIELD_LIMITS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("type",), 64),
    (("id",), 256),
    (("serviceUrl",), 512),
    (("channelId",), 32),
    (("locale",), 35),
    (("localTimezone",), 64),
    (("conversation", "id"), CONVERSATION_ID_LENGTH),
    (("conversation", "tenantId"), ID_LENGTH),
    (("from", "aadObjectId"), ID_LENGTH),
    (("recipient", "id"), 128),
    (("channelData", "tenant", "id"), ID_LENGTH),
    (("channelData", "team", "id"), CONVERSATION_ID_LENGTH),
)


_REQUIRED_TEXT = ("type", "serviceUrl", "channelId", "conversation.id")


def _at(payload: dict[str, Any], path: Iterable[str]) -> Any:
    value: Any = payload
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _refused_fields(payload: dict[str, Any]) -> list[str]:
    """Stored fields that are objects or lists, or longer than their column once msrest has made text of them
    (it turns a number, or anything else, given for a text into `str(value)`)."""
    found = []
    for path, limit in _FIELD_LIMITS:
        value = _at(payload, path)
        if isinstance(value, (dict, list)):
            found.append(f"{'.'.join(path)} (not text)")
        elif value is not None and len(str(value)) > limit:
            found.append(f"{'.'.join(path)} (over {limit} characters)")
    return found


def _http_error(status: int, reason: str) -> web.HTTPException:
    headers = {"WWW-Authenticate": 'Bearer realm="botframework"'} if status == 401 else None
    return json_error(status, reason, headers)


def _refuse(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def _unavailable() -> web.Response:
    """Teams sends the activity again: the next try may find the database free (it is processed once, see
    NurtureBot.on_turn)."""
    return web.json_response(
        {"error": "the database is busy or unavailable: nothing was stored, send it again"},
        status=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
