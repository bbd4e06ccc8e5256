"""NPS reports: overall, by tenant, by period with change against the period before, latest detractor comments."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.engagement.nps import Category, Change, NpsSummary, category, compare, summarize
from bot.engagement.periods import Period, period_key
from bot.usecases.ports import ReportsUnitOfWork


@dataclass(frozen=True)
class PeriodRow:
    period: str
    summary: NpsSummary
    change: Change  # against the previous row


@dataclass(frozen=True)
class Comment:
    tenant_id: str
    score: int
    text: str
    answered_at: datetime


@dataclass(frozen=True)
class NpsReport:
    tenant_id: str | None
    overall: NpsSummary
    periods: list[PeriodRow] = field(default_factory=list)
    detractor_comments: list[Comment] = field(default_factory=list)


async def nps_report(
    uow_factory: Callable[[], ReportsUnitOfWork],
    *,
    tenant_id: str | None = None,
    by: Period | None = None,
    min_answers: int = 10,
    comments: int = 5,
) -> NpsReport:
    async with uow_factory() as uow:
        await uow.reads_only()  # answers stored meanwhile need not wait for a report
        answers = await uow.surveys.scored_answers(tenant_id)
        asks = await uow.surveys.sent_instances(tenant_id)
    overall = summarize([a.score for a in answers], asks=len(asks), min_answers=min_answers)
    rows: list[PeriodRow] = []
    if by is not None:
        scores: dict[str, list[int]] = defaultdict(list)
        sent: dict[str, int] = defaultdict(int)
        for answer in answers:
            scores[period_key(answer.answered_at, by)].append(answer.score)
        for sent_at, _answered in asks:
            sent[period_key(sent_at, by)] += 1
        previous: NpsSummary | None = None
        for key in sorted(set(scores) | set(sent)):
            summary = summarize(scores.get(key, []), asks=sent.get(key, 0), min_answers=min_answers)
            change = compare(summary, previous) if previous else Change(None, None, None)
            rows.append(PeriodRow(key, summary, change))
            previous = summary
    latest = [
        Comment(a.tenant_id, a.score, a.comment, a.answered_at)
        for a in reversed(answers)
        if a.comment and category(a.score) is Category.DETRACTOR
    ][:comments]
    return NpsReport(tenant_id, overall, rows, latest)


def summary_json(summary: NpsSummary) -> dict[str, Any]:
    interval = summary.interval
    return {
        "answers": summary.answers,
        "asks": summary.asks,
        "response_rate": summary.response_rate,
        "nps": summary.score,
        "verdict": summary.verdict,
        "enough_answers": summary.enough,
        "min_answers": summary.min_answers,
        "interval_95": [interval.low, interval.high] if interval else None,
        "promoters": summary.promoters,
        "passives": summary.passives,
        "detractors": summary.detractors,
        "shares": {c.value: summary.share(c) for c in Category},
        "histogram": list(summary.histogram),
    }


def report_json(report: NpsReport) -> dict[str, Any]:
    return {
        "tenant": report.tenant_id,
        "overall": summary_json(report.overall),
        "periods": [
            {
                "period": row.period,
                **summary_json(row.summary),
                "change": {
                    "delta": row.change.delta,
                    "z": row.change.z,
                    "p_value": row.change.p_value,
                    "significant": row.change.significant,
                },
            }
            for row in report.periods
        ],
        "detractor_comments": [
            {"tenant": c.tenant_id, "score": c.score, "comment": c.text, "answered_at": c.answered_at.isoformat()}
            for c in report.detractor_comments
        ],
    }
