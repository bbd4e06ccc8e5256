"""Every card kind in every locale with sample data: for `nurture cards export`, snapshots and renderer tests."""

from __future__ import annotations

from typing import Any

from cards.i18n import SUPPORTED_LOCALES
from cards.notice import NoticeKind, NoticeView, build_notice_card
from cards.nps import ErrorCardView, NpsCardView, NpsState, build_error_card, build_nps_card
from cards.nps_report import NpsReportView, ReportComment, TrendPoint, build_nps_report_card
from cards.welcome import WelcomeView, build_welcome_card

SAMPLE_INSTANCE = "5f0c2b8e-1d3a-4c55-9e61-3b2f6a7d8c90"
SAMPLE_USER = "aaaaaaaa-0000-0000-0000-000000000001"
SAMPLE_PRODUCT = "Contoso Insights"


def _report(locale: str, enough: bool) -> dict[str, Any]:
    view = NpsReportView(
        locale=locale,
        scope="" if enough else "11111111-1111-1111-1111-111111111111",
        answers=42 if enough else 4,
        min_answers=10,
        score=21.4 if enough else None,
        interval=(-2.3, 41.0) if enough else None,
        response_rate=0.61,
        promoters=18,
        passives=15,
        detractors=9,
        trend=[TrendPoint("2026-09", 12.0), TrendPoint("2026-10", None), TrendPoint("2026-11", 21.4)],
        comments=[ReportComment(3, "Exports time out *every* week", "2026-11-20")],
    )
    return build_nps_report_card(view)


def sample_cards() -> dict[str, dict[str, Any]]:
    """`<kind>.<locale>` → card."""
    cards: dict[str, dict[str, Any]] = {}
    for locale in SUPPORTED_LOCALES:
        cards[f"welcome.{locale}"] = build_welcome_card(WelcomeView('Contoso "Insights"', locale, 1, 3, 4, 30))
        for kind in NoticeKind:
            cards[f"notice-{kind.value}.{locale}"] = build_notice_card(NoticeView(kind, locale, SAMPLE_PRODUCT))
        for state in NpsState:
            score = None if state is NpsState.ASK else {"promoter": 9, "passive": 7}.get(state.value, 4)
            view = NpsCardView(
                SAMPLE_INSTANCE,
                SAMPLE_USER,
                SAMPLE_PRODUCT,
                locale,
                state=state,
                score=score,
                can_edit=True,
                review_url="https://example.com/review",
            )
            cards[f"nps-{state.value}.{locale}"] = build_nps_card(view)
        cards[f"nps-ask-error.{locale}"] = build_nps_card(
            NpsCardView(SAMPLE_INSTANCE, SAMPLE_USER, SAMPLE_PRODUCT, locale, error="error.score_invalid")
        )
        cards[f"error-not_yours.{locale}"] = build_error_card(ErrorCardView(locale, "error.not_yours"))
        cards[f"nps-report.{locale}"] = _report(locale, True)
        cards[f"nps-report-too-few.{locale}"] = _report(locale, False)
    return cards
