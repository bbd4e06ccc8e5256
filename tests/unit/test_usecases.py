"""Use cases against the in-memory unit of work (tests/unit/fakes.py): their own logic, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.engagement.periods import Period
from bot.usecases.privacy import Retention, purge
from bot.usecases.recall import RecallReport, recall
from bot.usecases.reports import Comment, nps_report
from storage.surveys import ScoredAnswer
from tests.unit.fakes import Card, FakeAnswers, FakeOutbox, FakeUnitOfWork

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
T1, T2 = "tenant-one", "tenant-two"


def answer(tenant: str, score: int, days_ago: float, comment: str | None = None) -> ScoredAnswer:
    return ScoredAnswer(tenant, score, comment, NOW - timedelta(days=days_ago))


async def test_the_nps_report_reads_in_one_read_only_transaction_and_counts_by_month() -> None:
    november = [answer(T1, 10, 20 + i) for i in range(6)] + [answer(T1, 3, 30, "slow exports")]
    december = [answer(T1, 9, 1), answer(T1, 2, 2, "crashes"), answer(T2, 0, 3, "other tenant")]
    asks = [(T1, NOW - timedelta(days=d), True) for d in range(1, 40, 3)] + [(T2, NOW - timedelta(days=3), True)]
    uow = FakeUnitOfWork(surveys=FakeAnswers(november + december, asks))

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
