"""Turn a botbuilder Activity into the plain `Inbound` the use cases take."""

from __future__ import annotations

from typing import Any

from botbuilder.schema import Activity

from bot.engagement.ids import stored_id
from bot.usecases.lifecycle import Inbound, Scope


def tenant_of(activity: Activity) -> str | None:
    """Teams puts the tenant in channelData.tenant.id (and conversation.tenantId); in its stored form (lower case)."""
    channel_data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = channel_data.get("tenant")
    if isinstance(tenant, dict) and isinstance(tenant.get("id"), str) and tenant["id"].strip():
        return stored_id(tenant["id"])
    conversation_tenant = getattr(activity.conversation, "tenant_id", None)
    return stored_id(conversation_tenant) if isinstance(conversation_tenant, str) and conversation_tenant else None


def aad_object_id_of(activity: Activity) -> str | None:
    """Who sent the activity: their Entra object id in its stored form (lower case), or None."""
    sender = activity.from_property
    aad = getattr(sender, "aad_object_id", None) if sender else None
    return stored_id(aad) if isinstance(aad, str) and aad.strip() else None


def _team_id(activity: Activity) -> str | None:
    channel_data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    team = channel_data.get("team")
    return str(team["id"]) if isinstance(team, dict) and team.get("id") else None


def _is_bot(member: Any, activity: Activity) -> bool:
    return bool(member and activity.recipient and member.id == activity.recipient.id)


def to_inbound(activity: Activity) -> Inbound:
    conversation = activity.conversation
    return Inbound(
        activity_type=activity.type or "",
        activity_id=activity.id or "",
        conversation_id=conversation.id,
        scope=Scope.from_conversation_type(getattr(conversation, "conversation_type", None)),
        channel_id=activity.channel_id or "",
        service_url=activity.service_url or "",
        bot_id=activity.recipient.id if activity.recipient else "",
        tenant_id=tenant_of(activity),
        aad_object_id=aad_object_id_of(activity),
        locale=activity.locale or None,
        time_zone=activity.local_timezone or None,
        team_id=_team_id(activity),
        text=activity.text,
        installation_action=activity.action if activity.type == "installationUpdate" else None,
        bot_added=any(_is_bot(m, activity) for m in activity.members_added or []),
        bot_removed=any(_is_bot(m, activity) for m in activity.members_removed or []),
    )
