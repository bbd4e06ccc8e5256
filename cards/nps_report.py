"""The NPS report card for customer success managers: score with its interval, gauge, trend, detractor comments.

Teams-only charts (Chart.Gauge, Chart.Line) carry a `fallback` (facts / text) for clients without charts. Comments are
people's own words: they go into TextRun elements, which render no markdown, so a comment cannot inject links.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from microsoft_teams.cards import (
    AdaptiveCard,
    CardElement,
    Container,
    Fact,
    FactSet,
    GaugeChart,
    GaugeChartLegend,
    LineChart,
    LineChartData,
    LineChartValue,
    RichTextBlock,
    TextBlock,
    TextRun,
)

from cards import CARD_VERSION
from cards.i18n import Strings

MAX_COMMENTS = 5
MAX_COMMENT_CHARS = 280


@dataclass(frozen=True)
class TrendPoint:
    period: str
    score: float | None  # None: too few answers in that period


@dataclass(frozen=True)
class ReportComment:
    score: int
    text: str
    date: str


@dataclass(frozen=True)
class NpsReportView:
    locale: str | None
    scope: str  # a tenant id, or "" for all tenants the reader may see
    answers: int
    min_answers: int
    score: float | None
    interval: tuple[float, float] | None
    response_rate: float | None
    promoters: int
    passives: int
    detractors: int
    trend: list[TrendPoint] = field(default_factory=list)
    comments: list[ReportComment] = field(default_factory=list)


def _signed(value: float) -> str:
    return f"{value:+.0f}"


def build_nps_report_card(view: NpsReportView) -> dict[str, Any]:
    t = Strings(view.locale)
    title = t("report.title_tenant", tenant=view.scope) if view.scope else t("report.title_all")
    body: list[CardElement] = [TextBlock(text=title, size="Large", weight="Bolder", wrap=True)]
    facts = [
        Fact(title=t("report.answers"), value=str(view.answers)),
        Fact(title=t("report.mix"), value=t("report.mix_value", p=view.promoters, a=view.passives, d=view.detractors)),
        Fact(
            title=t("report.response_rate"),
            value="–" if view.response_rate is None else f"{view.response_rate:.0%}",
        ),
    ]
    if view.score is None or view.interval is None:
        body.append(
            TextBlock(text=t("report.too_few", n=view.answers, min=view.min_answers), wrap=True, color="Warning")
        )
        body.append(FactSet(facts=facts))
    else:
        low, high = view.interval
        headline = t("report.score", score=_signed(view.score), low=_signed(low), high=_signed(high))
        body.append(TextBlock(text=headline, size="Medium", weight="Bolder", wrap=True))
        body.append(
            GaugeChart(
                title="NPS",
                min=-100,
                max=100,
                value=round(view.score, 1),
                value_format="Fraction",  # shows the score itself, not a percentage of the scale
                # The Agents Playground (0.2.28) ignores `min`, `showNeedle` and `showMinMax`: it draws the arc
                # from 0 and points the needle at the raw value. The headline above carries score and interval.
                show_needle=False,
                sub_label=t("report.interval", low=_signed(low), high=_signed(high)),
                segments=[
                    GaugeChartLegend(size=100, legend=t("report.band_low"), color="attention"),
                    GaugeChartLegend(size=30, legend=t("report.band_mid"), color="warning"),
                    GaugeChartLegend(size=70, legend=t("report.band_high"), color="good"),
                ],
                fallback=FactSet(facts=[Fact(title="NPS", value=headline)]),
            )
        )
        body.append(FactSet(facts=facts))
    points = [p for p in view.trend if p.score is not None]
    if len(points) >= 2:
        trend_text = " · ".join(f"{p.period}: {_signed(p.score)}" for p in points if p.score is not None)
        body.append(TextBlock(text=t("report.trend"), weight="Bolder", wrap=True, spacing="Medium"))
        body.append(
            LineChart(
                title=t("report.trend"),
                y_min=-100,
                y_max=100,
                data=[
                    LineChartData(
                        legend="NPS",
                        values=[LineChartValue(x=p.period, y=round(p.score, 1)) for p in points if p.score is not None],
                    )
                ],
                fallback=TextBlock(text=trend_text, wrap=True),
            )
        )
    if view.comments:
        body.append(TextBlock(text=t("report.comments"), weight="Bolder", wrap=True, spacing="Medium"))
        for comment in view.comments[:MAX_COMMENTS]:
            text = (
                comment.text if len(comment.text) <= MAX_COMMENT_CHARS else comment.text[: MAX_COMMENT_CHARS - 1] + "…"
            )
            body.append(
                Container(
                    items=[
                        TextBlock(text=f"{comment.date} · {comment.score}/10", is_subtle=True, size="Small", wrap=True),
                        RichTextBlock(inlines=[TextRun(text=text)]),
                    ],
                    spacing="Small",
                )
            )
    card = AdaptiveCard(version=CARD_VERSION, fallback_text=title, body=body)
    return card.model_dump(mode="json", by_alias=True, exclude_none=True)
