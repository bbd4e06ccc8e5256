"""Cards already in people's chats change later: an expired survey closes in place; a recall deletes cards."""

from __future__ import annotations

from datetime import timedelta

from bot.app import SESSIONS
from bot.usecases.recall import recall
from storage.models import OutboxMessage, SurveyInstance
from storage.uow import UnitOfWork
from tests.conftest import Harness
from tests.e2e.test_campaigns import campaigns, install_user
from tests.e2e.test_nps_flow import ask, invoke, post_invoke, submit, table
from tests.support.activities import USER
from tests.support.inspect import card_texts

OTHER = "aaaaaaaa-0000-0000-0000-0000000000c3"


async def test_an_expired_unanswered_survey_closes_in_the_chat(harness: Harness) -> None:
    instance = await ask(harness)
    answered = await ask(harness, aad=OTHER)
    await post_invoke(harness, invoke(harness, "nps.submit", submit(answered, "9"), aad=OTHER))
    [sent_id] = [i.activity_id for i in await table(harness, SurveyInstance) if i.id == instance]
    assert sent_id

    harness.clock.advance(days=13, hours=23)
    assert await harness.surveys().close_expired(harness.clock()) == 0  # not expired yet
    harness.clock.advance(hours=2)
    assert await harness.surveys().close_expired(harness.clock()) == 1  # the answered one stays as it is
    assert await harness.surveys().close_expired(harness.clock()) == 0  # once
    await harness.deliver()

    assert harness.connector.updated == [(f"a:personal-{USER}", sent_id)]
    put = next(c for c in harness.connector.calls if c.method == "PUT")
    closed_card = put.body["attachments"][0]["content"]
    assert "This survey has closed" in card_texts(closed_card)
    statuses = {i.id: i.status for i in await table(harness, SurveyInstance)}
    assert statuses == {instance: "closed", answered: "answered"}
    update_row = next(r for r in await table(harness, OutboxMessage) if r.operation == "update")
    assert (update_row.status, update_row.target_activity_id) == ("sent", sent_id)
    # a late answer on the closed card is refused with the same closed card
    late = await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "7")))
    assert "This survey has closed" in card_texts(late)


async def test_recall_cancels_what_is_queued_and_deletes_what_was_delivered(harness: Harness) -> None:
    tips = "campaigns: [{id: tips, kind: onboarding, days: [0]}]"
    for aad in (USER, OTHER):
        await install_user(harness, aad)
    await campaigns(harness, tips).run(harness.clock())
    await harness.deliver()
    late = "aaaaaaaa-0000-0000-0000-0000000000c4"
    await install_user(harness, late)
    await campaigns(harness, tips).run(harness.clock())  # queued, not delivered yet
    delivered = {r.conversation_id: r.activity_id for r in await table(harness, OutboxMessage) if r.status == "sent"}
    assert len(delivered) == 2 and all(delivered.values())

    sessions = harness.app[SESSIONS]
    report = await recall(lambda: UnitOfWork(sessions), "onboarding", harness.clock())
    assert (report.cancelled, report.recalls_queued) == (1, 2)
    again = await recall(lambda: UnitOfWork(sessions), "onboarding", harness.clock())
    assert (again.cancelled, again.recalls_queued) == (0, 0)  # nothing twice
    await harness.deliver()
    assert sorted(harness.connector.deleted) == sorted(delivered.items())
    statuses = sorted((r.operation, r.status) for r in await table(harness, OutboxMessage))
    assert statuses == [
        ("delete", "sent"),
        ("delete", "sent"),
        ("send", "cancelled"),
        ("send", "sent"),
        ("send", "sent"),
    ]


async def test_a_failed_update_follows_microsofts_table(harness: Harness) -> None:
    instance = await ask(harness)
    harness.clock.advance(days=15)
    await harness.surveys().close_expired(harness.clock())
    harness.connector.fail_next(404, "ConversationNotFound")
    await harness.deliver()
    row = next(r for r in await table(harness, OutboxMessage) if r.operation == "update")
    assert (row.status, row.last_status_code) == ("failed", 404)
    assert {i.id: i.status for i in await table(harness, SurveyInstance)} == {instance: "closed"}
    assert timedelta(0) <= harness.clock() - row.created_at
