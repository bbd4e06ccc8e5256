"""Reaching people who have no personal chat with the bot, on both databases.

create: someone the bot met in a team gets a 1:1 chat opened with Bot Framework create_conversation (the tenant id
set by us: CloudAdapter does not) and then the card. install: someone in no team or chat with the bot gets the app
installed through Microsoft Graph (a fake Graph that answers like v1.0), and the card goes to the chat it opened.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from bot.app import SESSIONS, create_app
from bot.engagement.reach import pending_chat
from bot.packaging.manifest import default_teams_app_id
from storage.models import ConversationReference, OutboxMessage, SurveyInstance, TenantRate, User
from storage.outbox import NewMessage
from storage.uow import UnitOfWork
from tests.conftest import APP_ID, Clock, Harness, Keys, make_settings
from tests.e2e.test_campaigns import campaigns
from tests.e2e.test_nps_flow import table
from tests.e2e.test_usage_ingest import post_events
from tests.support.activities import TENANT, message
from tests.support.connector import FakeConnector, card_of, personal_chat_id
from tests.support.credentials import FixedTokenCredentialsFactory
from tests.support.graph import CATALOG_ID, FakeGraph, chat_of, graph_token
from tests.support.usage import event

TEAM_CHANNEL = "19:general@thread.tacv2"
MEMBER = "bbbbbbbb-0000-0000-0000-0000000000c1"
COME_BACK = """
campaigns:
  - {id: come-back, kind: reengagement, inactive_days: 30}
"""


async def meet_in_team(harness: Harness, aad: str) -> None:
    """The person writes in a team channel where the bot is: the bot knows them, but they have no personal chat."""
    activity = message(
        "hello", service_url=harness.connector.service_url, aad_object_id=aad, conversation_type="channel"
    )
    activity["conversation"]["id"] = TEAM_CHANNEL
    activity["channelData"]["channel"] = {"id": TEAM_CHANNEL}
    response = await harness.post(activity)
    assert response.status == 200


async def user(harness: Harness, aad: str) -> User:
    [found] = [u for u in await table(harness, User) if u.aad_object_id == aad]
    return found


async def ask(harness: Harness, aad: str) -> Any:
    surveys = harness.surveys()
    [result] = await surveys.ask([await user(harness, aad)], harness.clock(), force=True)
    return result


def creates(connector: FakeConnector) -> list[dict[str, Any]]:
    return [c.body or {} for c in connector.calls if c.method == "POST" and c.path == "/v3/conversations"]


async def test_a_team_member_gets_a_chat_opened_then_the_card(harness: Harness) -> None:
    await meet_in_team(harness, MEMBER)
    result = await ask(harness, MEMBER)
    assert result.queued, result.decision.reason
    [row] = await table(harness, OutboxMessage)
    assert row.conversation_id.startswith("pending-chat:")

    await harness.deliver()

    [request] = creates(harness.connector)
    assert request["tenantId"] == TENANT and request["channelData"]["tenant"]["id"] == TENANT  # both, or Teams refuses
    assert [m["id"] for m in request["members"]] == [MEMBER] and request["isGroup"] is False
    chat = personal_chat_id(MEMBER)
    [sent] = [c.body for c in harness.connector.calls if c.path.startswith(f"/v3/conversations/{chat}/activities")]
    assert sent is not None and card_of(sent)["body"]  # the NPS card, in the new chat
    [row] = await table(harness, OutboxMessage)
    assert (row.status, row.conversation_id, row.activity_id is not None) == ("sent", chat, True)
    [instance] = await table(harness, SurveyInstance)
    assert instance.status == "sent"
    references = {r.conversation_id: r for r in await table(harness, ConversationReference)}
    assert references[chat].scope == "personal" and references[chat].user_id == (await user(harness, MEMBER)).id
    assert references[chat].service_url == harness.connector.service_url
    assert (await user(harness, MEMBER)).installed_at is not None


async def test_two_messages_for_one_person_open_one_chat(harness: Harness) -> None:
    """A campaign card and a CSM-triggered message queued together: one create_conversation, both in the same chat
    (the worker claims both in one batch and sends them concurrently)."""
    await meet_in_team(harness, MEMBER)
    harness.clock.advance(days=42)  # a Tuesday, not seen since: the re-engagement campaign picks them
    report = await campaigns(harness, COME_BACK).run(harness.clock())
    assert report.queued == 1
    member = await user(harness, MEMBER)
    async with UnitOfWork(harness.app[SESSIONS]) as uow:
        card = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "hi"}]}
        note = NewMessage.of_card("test:second", "nudge", TENANT, member.id, pending_chat(member.id), card)
        assert await uow.outbox.enqueue(note, harness.clock()) is not None
        await uow.commit()
    assert {r.conversation_id for r in await table(harness, OutboxMessage)} == {
        f"pending-chat:{(await user(harness, MEMBER)).id}"
    }

    await harness.deliver()

    assert len(creates(harness.connector)) == 1
    chat = personal_chat_id(MEMBER)
    rows = await table(harness, OutboxMessage)
    assert [(r.status, r.conversation_id) for r in rows] == [("sent", chat), ("sent", chat)]
    assert harness.connector.delivered_to(chat) == 2


async def test_someone_teams_will_not_open_a_chat_with_is_marked_unreachable(harness: Harness) -> None:
    harness.connector.roster = set()  # in no team or chat with the bot, and proactive install is off
    await meet_in_team(harness, MEMBER)
    assert (await ask(harness, MEMBER)).queued

    await harness.deliver()

    [row] = await table(harness, OutboxMessage)
    assert (row.status, row.last_status_code) == ("failed", 403)
    assert "BotNotInConversationRoster" in (row.last_error or "")
    member = await user(harness, MEMBER)
    assert member.unreachable_at is not None
    assert not [c for c in harness.connector.calls if "/activities" in c.path and "personal" in c.path]
    # and they are not asked again until they come back
    assert not (await harness.surveys().plan([member], harness.clock(), force=True))[0][1].ask


async def test_with_opening_off_people_without_a_chat_are_not_reachable(
    database_url: str, keys: Keys, connector: FakeConnector
) -> None:
    async with _harness(database_url, keys, connector, "off") as (harness, _):
        await meet_in_team(harness, MEMBER)
        result = await ask(harness, MEMBER)
        assert not result.queued and "not reachable" in result.decision.reason
        assert await table(harness, OutboxMessage) == []


async def test_a_pending_message_is_cancelled_when_the_bot_left_the_tenant(harness: Harness) -> None:
    await meet_in_team(harness, MEMBER)
    assert (await ask(harness, MEMBER)).queued
    async with UnitOfWork(harness.app[SESSIONS]) as uow:
        await uow.conversations.mark_removed(TEAM_CHANNEL, harness.clock())
        await uow.commit()

    await harness.deliver()

    [row] = await table(harness, OutboxMessage)
    assert row.status == "cancelled" and "no way to open one" in (row.last_error or "")
    assert creates(harness.connector) == []


# -- proactive install through Microsoft Graph -------------------------------------------------------------------


class _Tokens:
    async def __call__(self, tenant_id: str) -> str:
        return graph_token(tenant_id)


@asynccontextmanager
async def _harness(
    database_url: str, keys: Keys, connector: FakeConnector, open_chats: str
) -> AsyncIterator[tuple[Harness, FakeGraph | None]]:
    """A harness with NURTURE_OPEN_CHATS set and, for `install`, a fake Graph the installer talks to."""
    graph = await FakeGraph(connector, default_teams_app_id(APP_ID)).start() if open_chats == "install" else None
    overrides: dict[str, Any] = {"open_chats": open_chats}
    if graph is not None:
        overrides["graph_url"] = graph.url
    settings = make_settings(database_url, keys.server.metadata_url, **overrides)
    clock = Clock()
    app = create_app(
        settings, credentials_factory=FixedTokenCredentialsFactory(APP_ID), clock=clock, graph_tokens=_Tokens()
    )
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield Harness(client, connector, keys, settings, database_url, clock), graph
    finally:
        await client.close()
        if graph is not None:
            await graph.close()


@pytest.fixture
async def installing(
    database_url: str, keys: Keys, connector: FakeConnector
) -> AsyncIterator[tuple[Harness, FakeGraph]]:
    connector.roster = set()  # the bot is in a team, but shares it with nobody we will message
    async with _harness(database_url, keys, connector, "install") as (harness, graph):
        assert graph is not None
        yield harness, graph


async def app_users(harness: Harness, *aads: str, days_ago: int = 40) -> None:
    """People who use the vendor's app (usage events) but never met the bot."""
    seen = harness.clock() - timedelta(days=days_ago)
    response = await post_events(harness, [event("app_opened", seen, user=aad) for aad in aads])
    assert (await response.json())["stored"] == len(aads)


async def test_an_app_user_the_bot_never_met_gets_the_app_installed_then_the_card(
    installing: tuple[Harness, FakeGraph],
) -> None:
    harness, graph = installing
    await meet_in_team(harness, "installer-admin")  # the bot is in the tenant (a service URL to send through)
    graph.directory[TENANT] = {MEMBER}
    await app_users(harness, MEMBER)

    report = await campaigns(harness, COME_BACK).run(harness.clock())
    assert report.queued == 1  # the app user was adopted as a user row and targeted
    await harness.deliver()

    assert [path for method, path, _ in graph.calls] == [
        f"/v1.0/appCatalogs/teamsApps?$filter=externalId eq '{default_teams_app_id(APP_ID)}'",
        f"/v1.0/users/{MEMBER}/teamwork/installedApps",
        f"/v1.0/users/{MEMBER}/teamwork/installedApps?$expand=teamsApp&$filter=teamsApp/id eq '{CATALOG_ID}'",
        f"/v1.0/users/{MEMBER}/teamwork/installedApps/installation-1/chat",
    ]
    assert {tenant for _, _, tenant in graph.calls} == {TENANT}
    chat = chat_of(MEMBER)
    [row] = await table(harness, OutboxMessage)
    assert (row.status, row.conversation_id) == ("sent", chat)
    assert harness.connector.delivered_to(chat) == 1
    [create] = creates(harness.connector)  # Teams was asked first, and refused
    assert create["members"] == [{"id": MEMBER}]
    member = await user(harness, MEMBER)
    assert member.installed_at is not None and member.unreachable_at is None


async def test_already_installed_answers_409_and_the_chat_is_still_found(
    installing: tuple[Harness, FakeGraph],
) -> None:
    harness, graph = installing
    await meet_in_team(harness, MEMBER)
    graph.directory[TENANT] = {MEMBER}
    graph.installed[(TENANT, MEMBER)] = "installation-7"  # an admin installed it, but Teams' roster lags
    assert (await ask(harness, MEMBER)).queued

    await harness.deliver()

    [row] = await table(harness, OutboxMessage)
    assert (row.status, row.conversation_id) == ("sent", chat_of(MEMBER))
    assert graph.install_posts() == 1  # answered 409, then the installation was looked up


async def test_graph_refusals_and_throttling(installing: tuple[Harness, FakeGraph]) -> None:
    harness, graph = installing
    await meet_in_team(harness, "installer-admin")
    ghost, busy = "cccccccc-0000-0000-0000-0000000000d1", "cccccccc-0000-0000-0000-0000000000d2"
    graph.directory[TENANT] = {busy}  # the ghost left the directory
    await app_users(harness, ghost)
    assert (await campaigns(harness, COME_BACK).run(harness.clock())).queued == 1
    await harness.deliver()
    [row] = await table(harness, OutboxMessage)
    assert (row.status, row.last_status_code) == ("failed", 404)
    assert (await user(harness, ghost)).unreachable_at is not None

    await app_users(harness, busy)
    assert (await campaigns(harness, COME_BACK).run(harness.clock())).queued == 1
    graph.fail_next(429, "TooManyRequests", retry_after=7)
    harness.clock.advance(seconds=2)  # the last worker's requests have left the tenant's windows: no wait for them
    before = harness.clock()
    await harness.worker().run_once()
    row = [r for r in await table(harness, OutboxMessage) if r.status != "failed"][0]
    assert (row.status, row.last_status_code) == ("queued", 429)
    # Retry-After counted from the answer (the worker may first have waited a moment for an install token)
    assert timedelta(seconds=7) <= row.next_attempt_at - before < timedelta(seconds=8)
    async with UnitOfWork(harness.app[SESSIONS]) as uow:
        rates = {r.tenant_id: r for r in (await uow.session.execute(select(TenantRate))).scalars()}
    assert rates[f"graph:{TENANT}"].throttled == 1  # the Graph bucket paused, not the tenant's Teams sends
    assert rates[TENANT].throttled == 0

    harness.clock.advance(seconds=8)
    await harness.deliver()
    row = [r for r in await table(harness, OutboxMessage) if r.status != "failed"][0]
    assert (row.status, row.conversation_id) == ("sent", chat_of(busy))


async def test_installs_stay_under_graphs_30_per_second(
    database_url: str, keys: Keys, connector: FakeConnector
) -> None:
    """90 people to install at once, on the real clock: the fake Graph counts installs per wall-clock second.
    Teams' side is left unlimited here so that only the Graph bucket holds installs back."""
    connector.roster = set()
    async with _harness(database_url, keys, connector, "install") as (harness, graph):
        assert graph is not None
        await meet_in_team(harness, "installer-admin")
        people = [f"dddddddd-0000-0000-0000-{i:012d}" for i in range(90)]
        graph.directory[TENANT] = set(people)
        await app_users(harness, *people)
        assert (await campaigns(harness, COME_BACK).run(harness.clock())).queued == 90
        now = datetime.now(UTC)
        async with UnitOfWork(harness.app[SESSIONS]) as uow:  # due now on the wall clock
            await uow.session.execute(update(OutboxMessage).values(next_attempt_at=now))
            await uow.commit()
        worker = harness.worker(
            clock=lambda: datetime.now(UTC),
            sleep=asyncio.sleep,
            tenant_rate_per_second=1000.0,
            tenant_limit_per_second=1000,
            batch_size=90,
            concurrency=90,
        )
        await worker.drain()

        rows = await table(harness, OutboxMessage)
        assert [r.status for r in rows] == ["sent"] * 90
        assert graph.install_posts() == 90 and graph.violations == []
