"""Install lifecycle and chat commands through /api/messages with signed tokens, on both databases."""

from __future__ import annotations

import asyncio

from storage.models import ConversationReference, User
from tests.conftest import Harness
from tests.support.activities import USER, install, make_activity, message
from tests.support.connector import card_of
from tests.support.inspect import card_texts, rows_of


async def _users(harness: Harness) -> list[User]:
    return await rows_of(harness.database_url, User)


async def _references(harness: Harness) -> list[ConversationReference]:
    return await rows_of(harness.database_url, ConversationReference)


_texts = card_texts


async def test_personal_install_sends_localized_welcome_and_stores_reference(harness: Harness) -> None:
    url = harness.connector.service_url
    response = await harness.post(install("add", service_url=url, locale="de-DE"))
    assert response.status == 200, await response.text()

    [sent] = harness.connector.sent()
    card = card_of(sent)
    assert card["version"] == "1.5"
    text = _texts(card)
    assert "Willkommen" in text and "meine Daten löschen" in text and "abmelden" in text
    assert sent["conversation"]["id"] == f"a:personal-{USER}"

    [user] = await _users(harness)
    assert user.aad_object_id == USER and user.locale == "de-DE" and user.time_zone == "Europe/Berlin"
    assert user.installed_at is not None and user.uninstalled_at is None
    [reference] = await _references(harness)
    assert reference.scope == "personal" and reference.user_id == user.id and reference.service_url == url
    assert reference.removed_at is None


async def test_help_answers_with_the_welcome_card_in_the_users_language(harness: Harness) -> None:
    response = await harness.post(message("ヘルプ", service_url=harness.connector.service_url, locale="ja-JP"))
    assert response.status == 200
    card = card_of(harness.connector.sent()[0])
    assert "データを削除" in _texts(card)


async def test_unknown_locale_falls_back_to_english(harness: Harness) -> None:
    response = await harness.post(message("help", service_url=harness.connector.service_url, locale="pt-BR"))
    assert response.status == 200
    card = card_of(harness.connector.sent()[0])
    assert "delete my data" in _texts(card)


async def test_stop_and_start_toggle_the_opt_out(harness: Harness) -> None:
    url = harness.connector.service_url
    assert (await harness.post(message("stop", service_url=url))).status == 200
    [user] = await _users(harness)
    assert user.opted_out_at is not None
    assert "won't get messages" in _texts(card_of(harness.connector.sent()[-1]))

    assert (await harness.post(message("start", service_url=url))).status == 200
    [user] = await _users(harness)
    assert user.opted_out_at is None


async def test_delete_my_data_removes_every_row_about_the_user(harness: Harness) -> None:
    url = harness.connector.service_url
    await harness.post(install("add", service_url=url))
    other = "bbbbbbbb-0000-0000-0000-000000000002"
    await harness.post(message("help", service_url=url, aad_object_id=other))
    before = await harness.rows()
    assert before["users"] == 2 and before["conversation_references"] == 2

    response = await harness.post(message("delete my data", service_url=url))
    assert response.status == 200
    assert "deleted" in _texts(card_of(harness.connector.sent()[-1]))
    users = await _users(harness)
    assert [u.aad_object_id for u in users] == [other]
    assert [r.user_id for r in await _references(harness)] == [users[0].id]
    rows = await harness.rows()
    assert rows["inbound_activities"] == 1  # only the other user's message is left


async def test_uninstall_marks_user_and_conversation(harness: Harness) -> None:
    url = harness.connector.service_url
    await harness.post(install("add", service_url=url))
    response = await harness.post(install("remove", service_url=url))
    assert response.status == 200
    assert len(harness.connector.sent()) == 1  # the welcome only: nothing is sent on removal
    [user] = await _users(harness)
    assert user.uninstalled_at is not None
    [reference] = await _references(harness)
    assert reference.removed_at is not None


async def test_team_install_stores_team_reference_without_welcome(harness: Harness) -> None:
    activity = install(
        "add",
        service_url=harness.connector.service_url,
        conversation_type="channel",
        conversation_id="19:general@thread.tacv2",
    )
    assert (await harness.post(activity)).status == 200
    assert harness.connector.sent() == []
    [reference] = await _references(harness)
    assert reference.scope == "team" and reference.team_id == "19:team-general@thread.tacv2"
    assert reference.user_id is None


async def test_conversation_update_bot_added_stores_reference(harness: Harness, bot_id: str) -> None:
    activity = make_activity(
        "conversationUpdate",
        service_url=harness.connector.service_url,
        conversation_type="groupChat",
        conversation_id="19:group@thread.v2",
        membersAdded=[{"id": bot_id}],
    )
    assert (await harness.post(activity)).status == 200
    [reference] = await _references(harness)
    assert reference.scope == "groupChat" and reference.removed_at is None

    removed = make_activity(
        "conversationUpdate",
        service_url=harness.connector.service_url,
        conversation_type="groupChat",
        conversation_id="19:group@thread.v2",
        membersRemoved=[{"id": bot_id}],
    )
    assert (await harness.post(removed)).status == 200
    [reference] = await _references(harness)
    assert reference.removed_at is not None


async def test_same_activity_three_times_is_processed_once(harness: Harness) -> None:
    activity = message("help", service_url=harness.connector.service_url, activity_id="retry-1")
    statuses = [(await harness.post(activity)).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert len(harness.connector.sent()) == 1
    assert (await harness.rows())["inbound_activities"] == 1


async def test_concurrent_duplicates_are_processed_once(harness: Harness) -> None:
    activity = install("add", service_url=harness.connector.service_url, activity_id="burst-1")
    responses = await asyncio.gather(*(harness.post(activity) for _ in range(10)))
    assert {r.status for r in responses} == {200}
    assert len(harness.connector.sent()) == 1
    assert (await harness.rows())["users"] == 1


async def test_failed_reply_releases_the_activity_so_the_retry_is_processed(harness: Harness) -> None:
    activity = message("help", service_url=harness.connector.service_url, activity_id="fails-once")
    harness.connector.fail_next(503)
    first = await harness.post(activity)
    assert first.status == 502
    retry = await harness.post(activity)
    assert retry.status == 200
    assert len(harness.connector.sent()) >= 2  # the failed attempt(s) and the successful retry
    assert (await harness.rows())["inbound_activities"] == 1


async def test_stored_reference_has_no_display_names(harness: Harness) -> None:
    activity = message("help", service_url=harness.connector.service_url)
    activity["from"]["name"] = "Megan Bowen"
    activity["from"]["userPrincipalName"] = "megan@contoso.example"
    assert (await harness.post(activity)).status == 200
    for reference in await _references(harness):
        assert "Megan" not in repr(vars(reference)) and "contoso.example" not in repr(vars(reference))
    for user in await _users(harness):
        assert "Megan" not in repr(vars(user))
