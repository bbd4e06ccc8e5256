"""Factories for Teams activities as the Bot Connector posts them."""

from __future__ import annotations

import uuid
from typing import Any

BOT_ID = "28:nurture-bot"
TENANT = "11111111-1111-1111-1111-111111111111"
OTHER_TENANT = "99999999-9999-9999-9999-999999999999"
USER = "aaaaaaaa-0000-0000-0000-000000000001"
CSM = "dddddddd-0000-0000-0000-00000000c5a1"


def make_activity(
    activity_type: str = "message",
    *,
    service_url: str,
    tenant_id: str | None = TENANT,
    aad_object_id: str | None = USER,
    conversation_type: str = "personal",
    conversation_id: str | None = None,
    activity_id: str | None = None,
    locale: str = "en-US",
    **fields: Any,
) -> dict[str, Any]:
    conversation: dict[str, Any] = {
        "id": conversation_id or f"a:personal-{aad_object_id or 'anon'}",
        "conversationType": conversation_type,
    }
    if tenant_id:
        conversation["tenantId"] = tenant_id
    sender: dict[str, Any] = {"id": f"29:{aad_object_id or 'anon'}"}
    if aad_object_id:
        sender["aadObjectId"] = aad_object_id
    channel_data: dict[str, Any] = {"tenant": {"id": tenant_id}} if tenant_id else {}
    if conversation_type == "channel":
        channel_data["team"] = {"id": "19:team-general@thread.tacv2"}
        channel_data["channel"] = {"id": conversation["id"]}
    activity: dict[str, Any] = {
        "type": activity_type,
        "id": activity_id or str(uuid.uuid4()),
        "timestamp": "2026-11-25T10:00:00.000Z",
        "localTimezone": "Europe/Berlin",
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": sender,
        "recipient": {"id": BOT_ID, "name": "Nurture"},
        "conversation": conversation,
        "channelData": channel_data,
        "locale": locale,
    }
    activity.update(fields)
    return activity


def message(text: str, **kwargs: Any) -> dict[str, Any]:
    return make_activity("message", text=text, **kwargs)


def install(action: str = "add", **kwargs: Any) -> dict[str, Any]:
    return make_activity("installationUpdate", action=action, **kwargs)
