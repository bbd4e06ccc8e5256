"""Use cases against the in-memory unit of work (tests/unit/fakes.py): their own logic, no database."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.engagement.asking import AskPolicy
from bot.engagement.campaigns import CampaignSet
from bot.engagement.periods import Period
from bot.security.tenants import TenantPolicy
from bot.usecases.campaign_report import campaign_report
from bot.usecases.campaigns import CampaignConfig, Campaigns, TouchData
from bot.usecases.card_actions import Actor, CardActions, Refused
from bot.usecases.ingest import UsageIngest
from bot.usecases.lifecycle import Inbound, Lifecycle, Scope
from bot.usecases.privacy import Retention, purge
from bot.usecases.recall import RecallReport, recall
from bot.usecases.reports import Comment, nps_report
from bot.usecases.surveys import InstanceData, SubmitData, SurveyConfig, Surveys
from cards.notice import NoticeKind, NoticeView, build_notice_card
from cards.nps import NpsCardView, NpsState, build_nps_card
from cards.nurture import NurtureCardView, NurtureState, build_nurture_card
from storage.answers import UnitOfWorkAnswerWriter
from storage.campaigns import NewTouch
from storage.surveys import ScoredAnswer
from tests.unit.fakes import Ask, Card, Cause, FakeCampaigns, FakeOutbox, FakeSurveys, FakeUnitOfWork, Person, Touch

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
T1, T2 = "tenant-one", "tenant-two"


def answer(tenant: str, score: int, days_ago: float, comment: str | None = None) -> ScoredAnswer:
    return ScoredAnswer(tenant, score, comment, NOW - timedelta(days=days_ago))


async def test_the_nps_report_reads_in_one_read_only_transaction_and_counts_by_month() -> None:
    november = [answer(T1, 10, 20 + i) for i in range(6)] + [answer(T1, 3, 30, "slow exports")]
    december = [answer(T1, 9, 1), answer(T1, 2, 2, "crashes"), answer(T2, 0, 3, "other tenant")]
    asks = [(T1, NOW - timedelta(days=d), True) for d in range(1, 40, 3)] + [(T2, NOW - timedelta(days=3), True)]
    uow = FakeUnitOfWork(surveys=FakeSurveys(answers=november + december, asks=asks))

    report = await nps_report(lambda: uow, tenant_id=T1, by=Period.MONTH, min_answers=3)

    assert (uow.transactions, uow.read_only, uow.commits) == (1, 1, 0)
    assert report.overall.answers == 9 and report.overall.promoters == 7 and report.overall.detractors == 2
    assert [row.period for row in report.periods] == ["2026-10", "2026-11", "2026-12"]
    assert [row.summary.answers for row in report.periods] == [0, 7, 2]  # October had asks, no answers
    assert report.periods[0].change.delta is None  # nothing before the first month to compare with
    assert [c.text for c in report.detractor_comments] == ["crashes", "slow exports"]  # newest first, T1 only
    assert report.detractor_comments[0] == Comment(T1, 2, "crashes", NOW - timedelta(days=2))


async def test_a_report_without_answers_says_so_rather_than_scoring() -> None:
    uow = FakeUnitOfWork()
    report = await nps_report(lambda: uow, min_answers=10)
    assert report.overall.answers == 0 and not report.overall.enough
    assert report.periods == [] and report.detractor_comments == []


async def test_purge_turns_each_retention_period_into_its_cutoff() -> None:
    uow = FakeUnitOfWork()
    await purge(uow, Retention(comment_days=365, activity_log_days=14, usage_event_days=30), NOW)
    assert uow.privacy.purges == [(NOW - timedelta(days=365), NOW - timedelta(days=14), NOW - timedelta(days=30))]


async def test_recall_cancels_what_is_queued_and_deletes_what_teams_accepted_once() -> None:
    cards = [
        Card(1, "milestone", T1, 11, "a:1", "activity-1"),
        Card(2, "milestone", T1, 12, "a:2", None, queued=True),
        Card(3, "milestone", T2, 13, "a:3", "activity-3"),
        Card(4, "nps", T1, 11, "a:1", "activity-4"),  # another kind: left alone
    ]
    uow = FakeUnitOfWork(outbox=FakeOutbox(cards))

    report = await recall(lambda: uow, "milestone", NOW, tenant_id=T1)
    again = await recall(lambda: uow, "milestone", NOW, tenant_id=T1)

    assert report == RecallReport(cancelled=1, recalls_queued=1)
    assert again == RecallReport(cancelled=0, recalls_queued=0)  # the delete's dedupe key keeps it once
    assert uow.outbox.cancelled == [2] and uow.commits == 2
    [delete] = uow.outbox.queued
    assert (delete.operation, delete.target_activity_id, delete.conversation_id) == ("delete", "activity-1", "a:1")
    assert delete.dedupe_key == "recall:1" and delete.card == {}


A1 = "00000000-0000-0000-0000-0000000000a1"
A2 = "00000000-0000-0000-0000-0000000000a2"
G1, G2 = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"


def event(tenant: str, user: str, name: str, days_ago: float) -> dict[str, object]:
    return {
        "tenant_id": tenant,
        "user_id": user,
        "name": name,
        "timestamp": (NOW - timedelta(days=days_ago)).isoformat(),
    }


async def test_ingest_stores_valid_events_once_in_one_transaction_and_says_why_it_refused_others() -> None:
    uow = FakeUnitOfWork()
    ingest = UsageIngest(lambda: uow, TenantPolicy(frozenset({G1})))
    batch = [
        event(G1, A1, "report_created", 1),
        event(G1, A1, "report_created", 1),  # the same event twice: stored once
        event(G2, A2, "report_created", 1),  # a tenant not allowed
        {"tenant_id": G1, "user_id": A1},  # no name, no timestamp
    ]
    report = await ingest.ingest(batch, NOW)
    assert (report.accepted, report.stored, report.duplicates) == (2, 1, 1)
    assert [r.index for r in report.rejections] == [2, 3]
    assert "not allowed" in report.rejections[0].reason
    assert (uow.transactions, uow.commits) == (1, 1)
    again = await ingest.ingest(batch[:1], NOW)
    assert (again.stored, again.duplicates) == (0, 1)


async def test_ingest_of_nothing_valid_opens_no_transaction() -> None:
    uow = FakeUnitOfWork()
    report = await UsageIngest(lambda: uow, TenantPolicy(frozenset({G1}))).ingest([{"name": "x"}, 7], NOW)
    assert (report.accepted, len(report.rejections), uow.transactions) == (0, 2, 0)


async def test_campaign_report_counts_a_touch_once_its_window_ended_and_who_came_back() -> None:
    def touch(user: str, holdout: bool, days_ago: float) -> Touch:
        return Touch("come-back", "reengagement", G1, user, holdout, NOW - timedelta(days=days_ago))

    users = [f"00000000-0000-0000-0000-{n:012d}" for n in range(6)]
    touches = [touch(u, i >= 3, 20) for i, u in enumerate(users)] + [touch(users[0], False, 3)]  # window still open
    uow = FakeUnitOfWork(campaigns=FakeCampaigns(touches))
    back = [event(G1, users[0], "x", 15), event(G1, users[1], "x", 10), event(G1, users[3], "x", 2)]
    await UsageIngest(lambda: uow, TenantPolicy(frozenset({G1}))).ingest(back, NOW)  # users[3]: after its window
    [row] = await campaign_report(lambda: uow, NOW, window_days=14, min_group=1)
    assert (row.campaign_id, row.treated_total, row.holdout_total) == ("come-back", 4, 3)
    assert (row.result.treated.people, row.result.treated.returned) == (3, 2)
    assert (row.result.holdout.people, row.result.holdout.returned) == (3, 0)
    assert uow.read_only == 1 and uow.commits == 1  # the ingest committed; the report only read


# -- NPS surveys ----------------------------------------------------------------------------------------------------

ASK_ID = "6f1c2a52-3a43-4c1e-9a43-4a3f4b0c2e11"


def survey_world(**person: Any) -> tuple[FakeUnitOfWork, Surveys, Person]:
    """One installed person with a personal chat, and the Surveys use case over the in-memory unit of work (its
    first answers through the plain writer, the reference every fast writer matches)."""
    uow = FakeUnitOfWork()
    owner = Person(7, G1, A1, installed_at=NOW - timedelta(days=40), **person)
    uow.surveys.people[owner.id] = owner
    uow.conversations.chats[owner.id] = "a:personal-7"
    config = SurveyConfig("Contoso Insights", AskPolicy())
    return uow, Surveys(lambda: uow, config, UnitOfWorkAnswerWriter(lambda: uow)), owner


def sent_ask(uow: FakeUnitOfWork, owner: Person, *, expires_in: timedelta = timedelta(days=14)) -> None:
    uow.surveys.instances[ASK_ID] = Ask(ASK_ID, G1, owner.id, "sent", NOW - timedelta(hours=1), NOW + expires_in)


def nps_card(owner: Person, state: NpsState, **fields: Any) -> dict[str, Any]:
    view = NpsCardView(ASK_ID, owner.aad_object_id, "Contoso Insights", owner.locale, state=state, **fields)
    return build_nps_card(view)


async def test_asking_queues_one_ask_by_day_and_says_why_it_does_not_ask_others() -> None:
    uow, surveys, owner = survey_world()
    declined = Person(8, G1, A2, installed_at=NOW - timedelta(days=40), nps_declined_at=NOW - timedelta(days=1))
    uow.surveys.people[declined.id] = declined
    uow.conversations.chats[declined.id] = "a:personal-8"
    [asked, refused] = await surveys.ask([owner, declined], NOW)
    assert asked.queued and asked.instance_id in uow.surveys.instances
    assert uow.surveys.instances[asked.instance_id].status == "queued"
    [message] = uow.outbox.queued
    assert (message.kind, message.conversation_id, message.quiet_hours) == ("nps", "a:personal-7", True)
    assert not refused.queued and refused.decision.reason == "asked not to get NPS surveys"
    [again] = await surveys.ask([owner], NOW + timedelta(hours=1))  # asked an hour ago: the re-survey wait holds
    assert not again.queued and len(uow.outbox.queued) == 1


async def test_a_first_detractor_answer_is_stored_once_with_its_signal_and_one_alert() -> None:
    uow, surveys, owner = survey_world()
    sent_ask(uow, owner)
    data = SubmitData(instance=uuid.UUID(ASK_ID), score=3, comment="too slow")
    card = await surveys.submit(data, Actor(G1, A1, "en-US"), NOW)
    assert card == nps_card(owner, NpsState.DETRACTOR, score=3, comment="too slow", can_edit=True)
    assert uow.surveys.instances[ASK_ID].status == "answered"
    assert [(c.kind, c.survey_instance_id, c.aad_object_id, c.score) for c in uow.surveys.causes] == [
        ("detractor", ASK_ID, A1, 3)
    ]
    assert [e.name for e in uow.usage.events.values()] == ["teams.card_answer"]
    await surveys.submit(data, Actor(G1, A1, "en-US"), NOW + timedelta(seconds=1))  # a double click
    assert len(uow.surveys.given) == 1 and len(uow.surveys.causes) == 1 and len(uow.usage.events) == 1


async def test_an_answer_changes_within_the_grace_period_and_then_no_more() -> None:
    uow, surveys, owner = survey_world()
    sent_ask(uow, owner)
    me = Actor(G1, A1, "en-US")
    await surveys.submit(SubmitData(instance=uuid.UUID(ASK_ID), score=6), me, NOW)
    edited = await surveys.submit(SubmitData(instance=uuid.UUID(ASK_ID), score=9), me, NOW + timedelta(hours=2))
    assert edited == nps_card(owner, NpsState.PROMOTER, score=9, can_edit=True)
    late = await surveys.submit(SubmitData(instance=uuid.UUID(ASK_ID), score=2), me, NOW + timedelta(days=2))
    assert late == nps_card(owner, NpsState.PROMOTER, score=9, can_edit=False)  # the answer stands
    assert uow.surveys.given[(ASK_ID, A1)].edits == 1


async def test_an_edit_keeps_the_waiting_detractor_alert_to_the_newest_score_or_withdraws_it() -> None:
    uow, surveys, owner = survey_world()
    sent_ask(uow, owner)
    me = Actor(G1, A1, "en-US")
    await surveys.submit(SubmitData(instance=uuid.UUID(ASK_ID), score=0), me, NOW)
    await surveys.submit(SubmitData(instance=uuid.UUID(ASK_ID), score=5), me, NOW + timedelta(minutes=1))
    assert [(c.score, c.status) for c in uow.surveys.causes] == [(5, "pending")]
    await surveys.submit(SubmitData(instance=uuid.UUID(ASK_ID), score=8), me, NOW + timedelta(minutes=2))
    assert uow.surveys.causes == []
    uow.surveys.causes.append(replace(Cause(1, "detractor", G1, NOW, ASK_ID, A1, 2), status="raised"))
    await surveys.submit(SubmitData(instance=uuid.UUID(ASK_ID), score=9), me, NOW + timedelta(minutes=3))
    assert [(c.score, c.status) for c in uow.surveys.causes] == [(2, "raised")]  # a run made an alert of it: kept


async def test_a_score_of_true_is_no_score_and_stores_nothing() -> None:
    uow, surveys, owner = survey_world()
    sent_ask(uow, owner)
    actions = CardActions()
    surveys.register(actions)
    card = await actions.answer("nps.submit", {"instance": ASK_ID, "score": True}, Actor(G1, A1, "en-US"), NOW)
    assert uow.surveys.given == {} and uow.surveys.causes == [] and uow.surveys.instances[ASK_ID].status == "sent"
    assert card["body"] and "Thank" not in json.dumps(card)  # the ask again, saying a score is needed


async def test_only_the_person_asked_may_act_on_an_ask() -> None:
    uow, surveys, owner = survey_world()
    sent_ask(uow, owner)
    stranger = Actor(G1, A2, "en-US")
    with pytest.raises(Refused) as refused:
        await surveys.submit(SubmitData(instance=uuid.UUID(ASK_ID), score=10), stranger, NOW)
    assert refused.value.message_key == "error.not_yours"
    with pytest.raises(Refused):
        await surveys.snooze(InstanceData(instance=uuid.UUID(ASK_ID)), stranger, NOW)
    assert uow.surveys.given == {} and uow.commits == 0


async def test_ask_me_later_snoozes_the_person_and_dont_ask_me_stops_asking() -> None:
    uow, surveys, owner = survey_world()
    sent_ask(uow, owner)
    card = await surveys.snooze(InstanceData(instance=uuid.UUID(ASK_ID)), Actor(G1, A1, "en-US"), NOW)
    assert card == nps_card(owner, NpsState.SNOOZED)
    assert owner.nps_snoozed_until == NOW + timedelta(days=AskPolicy().snooze_days)
    assert uow.surveys.instances[ASK_ID].status == "snoozed"
    card = await surveys.decline(InstanceData(instance=uuid.UUID(ASK_ID)), Actor(G1, A1, "en-US"), NOW)
    assert card == nps_card(owner, NpsState.DECLINED) and owner.nps_declined_at == NOW


async def test_an_expired_ask_closes_and_its_card_is_updated_in_the_chat() -> None:
    uow, surveys, owner = survey_world()
    sent_ask(uow, owner, expires_in=-timedelta(minutes=1))
    uow.surveys.instances[ASK_ID].activity_id = "activity-1"
    assert await surveys.close_expired(NOW) == 1
    assert uow.surveys.instances[ASK_ID].status == "closed"
    [update] = uow.outbox.queued
    assert (update.operation, update.target_activity_id, update.conversation_id) == (
        "update",
        "activity-1",
        "a:personal-7",
    )
    assert update.card == nps_card(owner, NpsState.CLOSED)
    late = await surveys.submit(SubmitData(instance=uuid.UUID(ASK_ID), score=9), Actor(G1, A1, "en-US"), NOW)
    assert late == nps_card(owner, NpsState.CLOSED) and uow.surveys.given == {}


# -- installs and commands ------------------------------------------------------------------------------------------


def inbound(activity_type: str = "message", text: str | None = None, **fields: Any) -> Inbound:
    values: dict[str, Any] = {
        "activity_type": activity_type,
        "activity_id": "activity-1",
        "conversation_id": "a:personal-1",
        "scope": Scope.PERSONAL,
        "channel_id": "msteams",
        "service_url": "https://smba.trafficmanager.net/emea/",
        "bot_id": "28:bot",
        "tenant_id": G1,
        "aad_object_id": A1,
        "locale": "de-DE",
        "time_zone": "Europe/Berlin",
        "text": text,
    }
    return Inbound(**(values | fields))


def notice(kind: NoticeKind, locale: str = "de-DE") -> dict[str, Any]:
    return build_notice_card(NoticeView(kind, locale, "Contoso Insights"))


async def test_an_activity_is_claimed_once_and_released_when_its_turn_failed() -> None:
    uow = FakeUnitOfWork()
    lifecycle = Lifecycle(lambda: uow, "Contoso Insights")
    assert await lifecycle.claim(inbound(), NOW) is True
    assert await lifecycle.claim(inbound(), NOW) is False  # Teams' retry of the same activity
    await lifecycle.release(inbound())
    assert await lifecycle.claim(inbound(), NOW) is True


async def test_installing_remembers_the_person_and_their_chat_and_uninstalling_forgets_the_chat() -> None:
    uow = FakeUnitOfWork()
    lifecycle = Lifecycle(lambda: uow, "Contoso Insights")
    reply = await lifecycle.installation_update(inbound("installationUpdate", installation_action="add"), NOW)
    assert reply is not None and reply.card["type"] == "AdaptiveCard"
    [person] = uow.surveys.people.values()
    assert (person.tenant_id, person.locale, person.time_zone, person.installed_at) == (
        G1,
        "de-DE",
        "Europe/Berlin",
        NOW,
    )
    assert uow.conversations.chats == {person.id: "a:personal-1"} and G1 in uow.tenants.seen
    assert [e.name for e in uow.usage.events.values()] == ["teams.installed"]
    later = NOW + timedelta(days=3)
    removed = await lifecycle.installation_update(inbound("installationUpdate", installation_action="remove"), later)
    assert removed is None and person.uninstalled_at == later
    assert uow.conversations.chats == {} and uow.conversations.removed == ["a:personal-1"]


async def test_stop_and_start_opt_the_person_out_and_in_and_say_so_in_their_language() -> None:
    uow = FakeUnitOfWork()
    lifecycle = Lifecycle(lambda: uow, "Contoso Insights")
    assert (await lifecycle.message(inbound(text="stop"), NOW)).card == notice(NoticeKind.OPTED_OUT)
    [person] = uow.surveys.people.values()
    assert person.opted_out_at == NOW
    assert (await lifecycle.message(inbound(text="start"), NOW)).card == notice(NoticeKind.OPTED_IN)
    assert person.opted_out_at is None


async def test_delete_my_data_forgets_the_person_without_remembering_them_first() -> None:
    uow = FakeUnitOfWork()
    reply = await Lifecycle(lambda: uow, "Contoso Insights").message(inbound(text="delete my data"), NOW)
    assert reply.card == notice(NoticeKind.DATA_DELETED)
    assert uow.privacy.forgotten == [A1] and uow.surveys.people == {} and uow.usage.events == {}


async def test_nps_figures_are_for_csms_only() -> None:
    uow = FakeUnitOfWork(surveys=FakeSurveys(answers=[answer(G1, 10, 1)]))
    lifecycle = Lifecycle(lambda: uow, "Contoso Insights", csm_ids=frozenset({A2}))
    assert (await lifecycle.message(inbound(text="nps"), NOW)).card == notice(NoticeKind.NOT_CSM)
    report = await lifecycle.message(inbound(text="nps", aad_object_id=A2), NOW)
    assert report.card != notice(NoticeKind.NOT_CSM) and uow.read_only == 1  # the report read, in its own transaction


# -- campaigns ------------------------------------------------------------------------------------------------------


def campaigns_world() -> tuple[FakeUnitOfWork, Campaigns]:
    uow = FakeUnitOfWork()
    uow.tenants.seen.update({G1: NOW, G2: NOW})
    config = CampaignConfig(
        CampaignSet.model_validate({"campaigns": [{"id": "renewal", "kind": "renewal", "days_before": [90, 60, 30]}]}),
        AskPolicy(),
        "Contoso Insights",
    )
    return uow, Campaigns(lambda: uow, config)


async def test_a_renewal_date_raises_the_tightest_reminder_once() -> None:
    uow, campaigns = campaigns_world()
    uow.tenants.renewal_dates = {G1: NOW.date() + timedelta(days=58), G2: NOW.date() + timedelta(days=120)}
    plan = await campaigns.plan(NOW)
    assert [(r.tenant_id, r.days_before, r.days_left) for r in plan.renewals] == [(G1, 60, 58)]
    assert uow.campaigns.renewal_alerts == {} and uow.commits == 0  # a dry run stores nothing
    first = await campaigns.run(NOW)
    assert first.renewal_alerts == 1
    assert list(uow.campaigns.renewal_alerts) == [f"renewal:{G1}:{(NOW.date() + timedelta(days=58)).isoformat()}:60"]
    again = await campaigns.run(NOW + timedelta(hours=1))
    assert again.renewal_alerts == 0 and len(uow.campaigns.renewal_alerts) == 1


async def test_stop_these_stops_only_the_kind_clicked_for_only_its_recipient() -> None:
    uow, campaigns = campaigns_world()
    person = Person(3, G1, A1)
    uow.surveys.people[person.id] = person
    touch = NewTouch("first-report", "adoption", "nudge-1", G1, A1, False, "active, milestone not reached")
    await uow.campaigns.add_touches([touch], NOW)
    with pytest.raises(Refused) as refused:
        await campaigns.stop(TouchData(touch=1), Actor(G1, A2, "en-US"), NOW)
    assert refused.value.message_key == "error.not_your_message" and uow.campaigns.stopped == set()
    card = await campaigns.stop(TouchData(touch=1), Actor(G1, A1, "en-US"), NOW)
    view = NurtureCardView(1, "adoption", "nudge-1", "Contoso Insights", "en-US", state=NurtureState.STOPPED)
    assert card == build_nurture_card(view) and uow.campaigns.stopped == {(3, "adoption")}
    await campaigns.resume(TouchData(touch=1), Actor(G1, A1, "en-US"), NOW)
    assert uow.campaigns.stopped == set()
    with pytest.raises(Refused):
        await campaigns.stop(TouchData(touch=2), Actor(G1, A1, "en-US"), NOW)  # no such touch
