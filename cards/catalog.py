"""Every card kind in every locale with sample data: for `nurture cards export`, snapshots and renderer tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.engagement.phrases import Phrase
from cards.alerts import (
    AccountLine,
    AccountView,
    AlertCardView,
    AlertNote,
    ComponentLine,
    DigestView,
    build_account_card,
    build_account_list_card,
    build_alert_card,
    build_digest_card,
)
from cards.i18n import SUPPORTED_LOCALES, Strings
from cards.notice import NoticeKind, NoticeView, build_notice_card
from cards.nps import (
    ErrorCardView,
    NotSavedView,
    NpsCardView,
    NpsState,
    build_error_card,
    build_not_saved_card,
    build_nps_card,
)
from cards.nps_report import NpsReportView, ReportComment, TrendPoint, build_nps_report_card
from cards.nurture import NurtureCardView, NurtureState, build_nurture_card
from cards.verbs import Verb
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


SAMPLE_LINK = "https://teams.microsoft.com/l/entity/00000000-0000-0000-0000-000000000000/reports"
# (card name, kind, step, facts): one of each program card
NURTURE_SAMPLES: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("onboarding-day-0", "onboarding", "day-0", {"days": 0}),
    ("onboarding-day-3", "onboarding", "day-3", {"days": 3, "feature": "Create a report"}),
    ("adoption", "adoption", "nudge-1", {"days": 21, "feature": "Create a report"}),
    ("milestone-count", "milestone", "count-10", {"count": 10, "feature": "Create a report"}),
    ("milestone-anniversary", "milestone", "anniversary-365", {"days": 365}),
    ("legacy-drop", "legacy", "drop-2026-11-24", {"days": 14}),
    ("legacy-unused", "legacy", "unused-2026-11-24", {"feature": "Share a dashboard"}),
    ("reengagement", "reengagement", "absent-since-2026-10-01", {"days": 54}),
)


def _nurture_cards(locale: str) -> dict[str, dict[str, Any]]:
    cards = {}
    for name, kind, step, facts in NURTURE_SAMPLES:
        view = NurtureCardView(41, kind, step, SAMPLE_PRODUCT, locale, link=SAMPLE_LINK, **facts)
        cards[f"nurture-{name}.{locale}"] = build_nurture_card(view)
    for state in (NurtureState.STOPPED, NurtureState.RESUMED):
        view = NurtureCardView(41, "adoption", "nudge-1", SAMPLE_PRODUCT, locale, state=state)
        cards[f"nurture-{state.value}.{locale}"] = build_nurture_card(view)
    return cards


SAMPLE_CSM = "dddddddd-0000-0000-0000-00000000c5a1"


def _csm_cards(locale: str) -> dict[str, dict[str, Any]]:
    history = [
        AlertNote("2026-11-24 10:02", SAMPLE_CSM, "claimed"),
        AlertNote("2026-11-24 11:30", SAMPLE_CSM, "note", "Called their admin"),
    ]
    base = AlertCardView(
        alert_id=7,
        kind="at_risk",
        account='Contoso "Pharma"',
        locale=locale,
        viewer=SAMPLE_CSM,
        status="open",
        reasons=[
            Phrase("reason.usage_change", {"change": -62, "recent": 31, "before": 82}),
            Phrase("reason.detractors", {"count": 3}),
        ],
        score=38.0,
        refresh_users=[SAMPLE_CSM, "dddddddd-0000-0000-0000-00000000c5a2"],
    )
    cards = {
        f"alert-at-risk.{locale}": build_alert_card(base),
        f"alert-detractor-claimed.{locale}": build_alert_card(
            replace(
                base,
                kind="detractor",
                detractor_score=2,
                comment="Exports time out *every* week",
                status="claimed",
                claimed_by=SAMPLE_CSM,
                history=history,
            )
        ),
        f"alert-renewal-escalated.{locale}": build_alert_card(
            replace(
                base,
                kind="renewal",
                reasons=[Phrase("reason.renewal_reminder", {"date": "2027-01-19", "days": 55, "threshold": 60})],
                escalated=True,
                viewer=None,
            )
        ),
        f"alert-resolved.{locale}": build_alert_card(
            replace(base, status="resolved", resolved_by="dddddddd-0000-0000-0000-00000000c5a2")
        ),
    }
    cards[f"account.{locale}"] = build_account_card(
        AccountView(
            locale=locale,
            account="Contoso Pharma",
            score=38.0,
            arrow="↓",
            at_risk=True,
            components=[
                ComponentLine(
                    "usage_trend", 0.0, Phrase("reason.usage_change", {"change": -62, "recent": 31, "before": 82})
                ),
                ComponentLine(
                    "activation", 18.0, Phrase("reason.activation", {"active": 22, "installed": 40, "share": 55})
                ),
                ComponentLine(
                    "nps",
                    10.0,
                    Phrase("reason.nps_interval", {"score": 0.0, "low": -31.0, "high": 31.0, "answers": 12}),
                ),
            ],
            left_out=[Phrase("left_out.renewal")],
            active_users=[(f"2026-11-{d:02d}", 20 - d // 2) for d in range(10, 25)],
            nps=0.0,
            nps_interval=(-31.0, 31.0),
            nps_answers=12,
            renewal="2027-01-19",
        )
    )
    t = Strings(locale)  # list lines come worded from the use case (bot.usecases.alerts)
    usage = t.phrase(Phrase("reason.usage_change", {"change": -62, "recent": 31, "before": 82}))
    lines = [
        AccountLine("Contoso Pharma", t("list.at_risk_line", score="38", arrow="↓", reasons=usage)),
        AccountLine("Fabrikam", t("digest.was", score="44", arrow="↓", previous="61")),
    ]
    cards[f"list-at-risk.{locale}"] = build_account_list_card(locale, "list.at_risk", lines, "list.at_risk_none")
    cards[f"list-renewals-empty.{locale}"] = build_account_list_card(locale, "list.renewals", [], "list.renewals_none")
    cards[f"digest.{locale}"] = build_digest_card(DigestView(locale, "2026-11-25", lines[:1], lines[1:], [], []))
    return cards


def sample_cards() -> dict[str, dict[str, Any]]:
    """`<kind>.<locale>` → card."""
    cards: dict[str, dict[str, Any]] = {}
    for locale in SUPPORTED_LOCALES:
        cards[f"welcome.{locale}"] = build_welcome_card(WelcomeView('Contoso "Insights"', locale, 1, 3, 4, 30))
        cards[f"welcome-csm.{locale}"] = build_welcome_card(WelcomeView("Contoso Insights", locale, 1, 3, 4, 30, True))
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
        answer = {"instance": SAMPLE_INSTANCE, "score": "3", "comment": "Exports time out"}
        cards[f"not-saved.{locale}"] = build_not_saved_card(NotSavedView(locale, Verb.NPS_SUBMIT, answer))
        cards[f"nps-report.{locale}"] = _report(locale, True)
        cards[f"nps-report-too-few.{locale}"] = _report(locale, False)
        cards.update(_nurture_cards(locale))
        cards.update(_csm_cards(locale))
    return cards
