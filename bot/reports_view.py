"""Human output of NPS reports for the terminal (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from bot.engagement.nps import NpsSummary
from bot.usecases.reports import NpsReport


def _score(summary: NpsSummary) -> str:
    interval = summary.interval
    if summary.score is None or interval is None:
        return f"too few answers (< {summary.min_answers})"
    return f"{summary.score:+.0f}  [{interval.low:+.0f} … {interval.high:+.0f}]"


def _rate(summary: NpsSummary) -> str:
    return "-" if summary.response_rate is None else f"{summary.response_rate:.0%}"


def print_report(console: Console, report: NpsReport) -> None:
    title = f"NPS — tenant {report.tenant_id}" if report.tenant_id else "NPS — all tenants"
    overall = report.overall
    console.print(f"[bold]{title}[/bold]")
    console.print(
        f"score {_score(overall)} · answers {overall.answers} · promoters {overall.promoters} · "
        f"passives {overall.passives} · detractors {overall.detractors} · response rate {_rate(overall)}"
    )
    console.print("scores 0–10: " + " ".join(f"{i}:{n}" for i, n in enumerate(overall.histogram)))
    if report.periods:
        table = Table("period", "answers", "NPS [95 % interval]", "response", "change", "p")
        for row in report.periods:
            change = row.change
            table.add_row(
                row.period,
                str(row.summary.answers),
                _score(row.summary),
                _rate(row.summary),
                "-" if change.delta is None else f"{change.delta:+.0f}" + (" *" if change.significant else ""),
                "-" if change.p_value is None else f"{change.p_value:.3f}",
            )
        console.print(table)
        console.print("* significant at 5 %")
    if report.detractor_comments:
        console.print("[bold]Latest detractor comments[/bold]")
        for comment in report.detractor_comments:
            console.print(
                f"  {comment.answered_at:%Y-%m-%d} score {comment.score}: {comment.text}", highlight=False, markup=False
            )
