"""NPS end to end through /api/messages with signed tokens, on both databases.

An ask is sent through the real CloudAdapter to the fake connector; answers arrive as `adaptiveCard/action` invokes
exactly as Teams posts them; what the bot answers and what SQL holds are both checked.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import event

from bot.app import ENGINE
from storage.models import NpsAnswer, NpsAnswerHistory, PendingAlert, SurveyInstance, User
from tests.conftest import Harness
from tests.support.activities import TENANT, USER, install, make_activity
from tests.support.connector import card_of
from tests.support.inspect import card_texts, rows_of

OTHER = "cccccccc-0000-0000-0000-000000000003"


def invoke(
    harness: Harness, verb: str, data: Any, *, aad: str = USER, activity_id: str | None = None, locale: str = "en-US"
) -> dict[str, Any]:
    action: dict[str, Any] = {"type": "Action.Execute", "verb": verb}
    if data is not None:
        action["data"] = data
    return make_activity(
        "invoke",
        service_url=harness.connector.service_url,
        aad_object_id=aad,
        activity_id=activity_id,
        locale=locale,
        name="adaptiveCard/action",
        value={"action": action, "trigger": "manual"},
    )


async def post_invoke(harness: Harness, activity: dict[str, Any]) -> dict[str, Any]:
    response = await harness.post(activity)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["statusCode"] == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
    card: dict[str, Any] = body["value"]
    assert card["type"] == "AdaptiveCard"
    return card


async def ask(harness: Harness, aad: str = USER, locale: str = "en-US") -> str:
    """Install the bot for the user, then send them an NPS ask; returns the survey instance id."""
    assert (
        await harness.post(install("add", service_url=harness.connector.service_url, aad_object_id=aad, locale=locale))
    ).status == 200
    async with harness.surveys().uow_factory() as uow:
        users = await uow.users.find_by_aad(aad)
    [result] = await harness.surveys().ask(users, harness.clock(), force=True)
    assert result.queued and result.instance_id, result
    await harness.deliver()
    return result.instance_id


async def table(harness: Harness, model: type) -> list[Any]:
    return await rows_of(harness.database_url, model)


texts = card_texts


def submit(instance: str, score: Any = "9", comment: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"instance": instance}
    if score is not None:
        data["score"] = score
    if comment is not None:
        data["comment"] = comment
    return data


# -- the ask -------------------------------------------------------------------------------------


async def test_ask_sends_the_localized_card_with_refresh_for_the_recipient(harness: Harness) -> None:
    instance = await ask(harness, locale="fr-FR")
    card = card_of(harness.connector.sent()[-1])
    assert "Quelle est la probabilité" in texts(card)
    choice = next(e for e in card["body"] if e["type"] == "Input.ChoiceSet")
    assert [c["value"] for c in choice["choices"]] == [str(i) for i in range(11)] and choice["isRequired"]
    assert card["refresh"]["userIds"] == [f"8:orgid:{USER}"]
    assert card["refresh"]["action"]["data"] == {"instance": instance}
    [row] = await table(harness, SurveyInstance)
    assert row.status == "sent" and row.sent_at == harness.clock() and row.activity_id


# -- answers by category ---------------------------------------------------------------------------


async def test_promoter_answer_gets_thanks_and_is_stored(harness: Harness) -> None:
    instance = await ask(harness)
    card = await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "9", "Fast and simple")))
    assert "Thank you" in texts(card) and "Your score: 9" in texts(card)
    [answer] = await table(harness, NpsAnswer)
    assert (answer.score, answer.comment, answer.aad_object_id) == (9, "Fast and simple", USER)
    assert await table(harness, PendingAlert) == []
    [row] = await table(harness, SurveyInstance)
    assert row.status == "answered"


async def test_passive_without_comment_is_asked_what_would_make_it_a_10(harness: Harness) -> None:
    instance = await ask(harness)
    card = await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "7")))
    assert "What would make it a 10?" in texts(card)
    follow_up = await post_invoke(
        harness, invoke(harness, "nps.comment", {"instance": instance, "comment": "Offline mode"})
    )
    assert "What would make it a 10?" not in texts(follow_up) and "Offline mode" in texts(follow_up)
    [answer] = await table(harness, NpsAnswer)
    assert (answer.score, answer.comment) == (7, "Offline mode")


async def test_passive_with_comment_is_not_asked_again(harness: Harness) -> None:
    instance = await ask(harness)
    card = await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "8", "Good enough")))
    assert "What would make it a 10?" not in texts(card)


async def test_detractor_gets_apology_and_a_pending_alert(harness: Harness) -> None:
    instance = await ask(harness)
    card = await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "3", "Too slow")))
    assert "Someone from our team will reach out" in texts(card)
    [alert] = await table(harness, PendingAlert)
    assert (alert.kind, alert.score, alert.survey_instance_id, alert.status) == ("detractor", 3, instance, "pending")


# -- exactly once ---------------------------------------------------------------------------------


async def test_same_activity_three_times_stores_once_and_answers_the_same(harness: Harness) -> None:
    instance = await ask(harness)
    activity = invoke(harness, "nps.submit", submit(instance, "3"), activity_id="invoke-1")
    cards = [await post_invoke(harness, activity) for _ in range(3)]
    assert cards[0] == cards[1] == cards[2]
    assert len(await table(harness, NpsAnswer)) == 1
    assert len(await table(harness, PendingAlert)) == 1
    assert await table(harness, NpsAnswerHistory) == []


async def test_two_activity_ids_for_one_click_store_once(harness: Harness) -> None:
    instance = await ask(harness)
    first = await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "10"), activity_id="a"))
    second = await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "10"), activity_id="b"))
    assert first == second
    assert len(await table(harness, NpsAnswer)) == 1 and await table(harness, NpsAnswerHistory) == []


async def test_fifty_concurrent_submissions_store_one_answer(harness: Harness) -> None:
    instance = await ask(harness)
    activities = [invoke(harness, "nps.submit", submit(instance, "2", "Crashes")) for _ in range(50)]
    cards = await asyncio.gather(*(post_invoke(harness, a) for a in activities))
    assert all(card == cards[0] for card in cards)
    assert len(await table(harness, NpsAnswer)) == 1
    assert len(await table(harness, PendingAlert)) == 1
    assert await table(harness, NpsAnswerHistory) == []


async def test_edit_within_grace_window_updates_and_keeps_history(harness: Harness) -> None:
    instance = await ask(harness)
    await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "9", "Great")))
    harness.clock.advance(hours=2)
    edit_form = await post_invoke(harness, invoke(harness, "nps.edit", {"instance": instance}))
    choice = next(e for e in edit_form["body"] if e["type"] == "Input.ChoiceSet")
    assert choice["value"] == "9"
    card = await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "5", "Changed my mind")))
    assert "Your score: 5" in texts(card)
    [answer] = await table(harness, NpsAnswer)
    assert (answer.score, answer.comment, answer.edits) == (5, "Changed my mind", 1)
    [old] = await table(harness, NpsAnswerHistory)
    assert (old.score, old.comment) == (9, "Great")
    assert len(await table(harness, PendingAlert)) == 1  # the edit made it a detractor answer


async def test_an_edit_away_from_a_detractor_score_withdraws_the_alert_no_run_raised_yet(harness: Harness) -> None:
    instance = await ask(harness)
    await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "0")))  # a slip of the finger
    [pending] = await table(harness, PendingAlert)
    assert (pending.score, pending.status) == (0, "pending")
    await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "4")))
    [pending] = await table(harness, PendingAlert)
    assert (pending.score, pending.status) == (4, "pending")  # still a detractor: the alert says the newest score
    await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "9")))
    assert await table(harness, PendingAlert) == []
    [answer] = await table(harness, NpsAnswer)
    assert (answer.score, answer.edits) == (9, 2)


async def test_edit_after_grace_window_is_refused_and_first_answer_stands(harness: Harness) -> None:
    instance = await ask(harness)
    await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "9")))
    harness.clock.advance(hours=25)
    card = await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "1")))
    assert "Your score: 9" in texts(card) and "Change my answer" not in texts(card)
    [answer] = await table(harness, NpsAnswer)
    assert answer.score == 9 and await table(harness, NpsAnswerHistory) == []


# -- other actions ---------------------------------------------------------------------------------


async def test_ask_me_later_snoozes(harness: Harness) -> None:
    instance = await ask(harness)
    card = await post_invoke(harness, invoke(harness, "nps.snooze", {"instance": instance}))
    assert "7 days" in texts(card)
    [user] = await table(harness, User)
    assert user.nps_snoozed_until == harness.clock() + __import__("datetime").timedelta(days=7)
    assert await table(harness, NpsAnswer) == []


async def test_dont_ask_again_declines(harness: Harness) -> None:
    instance = await ask(harness)
    card = await post_invoke(harness, invoke(harness, "nps.decline", {"instance": instance}))
    assert "won't get this survey again" in texts(card)
    [user] = await table(harness, User)
    assert user.nps_declined_at is not None
    refreshed = await post_invoke(harness, invoke(harness, "nps.refresh", {"instance": instance}))
    assert refreshed == card


async def test_refresh_shows_the_answer_on_every_device(harness: Harness) -> None:
    instance = await ask(harness)
    answered = await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "10")))
    assert await post_invoke(harness, invoke(harness, "nps.refresh", {"instance": instance})) == answered


async def test_expired_survey_is_closed(harness: Harness) -> None:
    instance = await ask(harness)
    harness.clock.advance(days=15)
    card = await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "10")))
    assert "closed" in texts(card)
    assert await table(harness, NpsAnswer) == []


# -- invalid input: an error card or a 4xx, nothing stored ----------------------------------------


@pytest.mark.parametrize(
    ("score", "message"),
    [
        ("11", "whole number from 0 to 10"),
        ("-1", "whole number from 0 to 10"),
        ("nine", "whole number from 0 to 10"),
        ("9.5", "whole number from 0 to 10"),
        (True, "whole number from 0 to 10"),
        (None, "whole number from 0 to 10"),
        ([9], "whole number from 0 to 10"),
    ],
)
async def test_invalid_score_shows_the_form_with_the_error(harness: Harness, score: Any, message: str) -> None:
    instance = await ask(harness)
    card = await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, score)))
    assert message in texts(card)
    assert any(e["type"] == "Input.ChoiceSet" for e in card["body"])  # the person can correct it in place
    assert await table(harness, NpsAnswer) == [] and await table(harness, PendingAlert) == []


@pytest.mark.parametrize("comment", [5, 9.5, ["too", "slow"], {"text": "slow"}, True])
async def test_a_comment_that_is_not_text_is_refused_as_such(harness: Harness, comment: Any) -> None:
    """Teams sends text; anything else is refused with what is wrong (not "too long"), in place, storing nothing."""
    instance = await ask(harness)
    data = submit(instance, "9") | {"comment": comment}
    card = await post_invoke(harness, invoke(harness, "nps.submit", data))
    assert "The comment must be text." in texts(card) and "1,000" not in texts(card)
    assert await table(harness, NpsAnswer) == []
    await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "9")))
    card = await post_invoke(harness, invoke(harness, "nps.comment", {"instance": instance, "comment": comment}))
    assert "The comment must be text." in texts(card)
    assert "Thank" in texts(card)  # the thanks stay, so the person can write a comment again
    assert [a.comment for a in await table(harness, NpsAnswer)] == [None]


async def test_100_kb_comment_is_refused(harness: Harness) -> None:
    instance = await ask(harness)
    card = await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "9", "x" * 100_000)))
    assert "longer than 1,000 characters" in texts(card)
    assert await table(harness, NpsAnswer) == []


@pytest.mark.parametrize(
    ("verb", "data", "message"),
    [
        ("nps.submit", None, "couldn't read"),
        ("nps.submit", "not an object", "couldn't read"),
        ("nps.submit", {"score": "9"}, "couldn't read"),
        ("nps.submit", {"instance": "not-a-uuid", "score": "9"}, "couldn't read"),
        ("nps.submit", {"instance": str(uuid.uuid4()), "score": "9"}, "can't find this survey"),
        ("nps.frobnicate", {"score": "9"}, "not supported"),
        ("", {}, "not supported"),
    ],
)
async def test_unusable_actions_get_an_error_card(harness: Harness, verb: str, data: Any, message: str) -> None:
    await ask(harness)
    card = await post_invoke(harness, invoke(harness, verb, data))
    assert message in texts(card)
    assert await table(harness, NpsAnswer) == []


async def test_someone_elses_survey_is_refused(harness: Harness) -> None:
    instance = await ask(harness)
    await harness.post(install("add", service_url=harness.connector.service_url, aad_object_id=OTHER))
    card = await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "0"), aad=OTHER))
    assert "sent to someone else" in texts(card)
    assert await table(harness, NpsAnswer) == []


async def test_invoke_without_value_gets_an_error_card_not_500(harness: Harness) -> None:
    activity = make_activity("invoke", service_url=harness.connector.service_url, name="adaptiveCard/action")
    card = await post_invoke(harness, activity)
    assert "not supported" in texts(card)


async def test_malformed_invoke_json_is_400(harness: Harness) -> None:
    token = harness.token(serviceurl=harness.connector.service_url)
    response = await harness.client.post(
        "/api/messages",
        data=b'{"type": "invoke", "name": "adaptiveCard/action", "value": {',
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    assert response.status == 400
    assert await table(harness, NpsAnswer) == []


async def test_planning_asks_costs_the_same_queries_for_3_or_300_people(harness: Harness) -> None:
    """Deciding whom to ask loads its facts for a group of people at once (not ~5 queries per person)."""
    from tests.e2e.test_delivery import seed_recipients  # here: test_delivery imports this module

    await seed_recipients(harness, 300, prefix="plan")
    async with harness.surveys().uow_factory() as uow:
        everyone = list(await uow.users.in_tenant(TENANT))
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    engine = harness.app[ENGINE].sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        few = await harness.surveys().plan(everyone[:3], harness.clock())
        for_few = len(statements)
        statements.clear()
        many = await harness.surveys().plan(everyone, harness.clock())
        for_many = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert for_many == for_few <= 8
    assert [d.ask for _, d in few] == [True] * 3 and sum(d.ask for _, d in many) == 300
