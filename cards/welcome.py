"""The welcome card (sent on install in personal scope, and as the answer to `help`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from microsoft_teams.cards import AdaptiveCard, Container, Fact, FactSet, TextBlock

from cards import CARD_VERSION
from cards.i18n import Strings


@dataclass(frozen=True)
class WelcomeView:
    product_name: str
    locale: str | None
    max_per_short_window: int
    short_window_days: int
    max_per_long_window: int
    long_window_days: int
    for_csm: bool = False  # the reader is a customer success manager: list their commands too


def build_welcome_card(view: WelcomeView) -> dict[str, Any]:
    t = Strings(view.locale)
    what = [
        TextBlock(text=f"• {item}", wrap=True, spacing="None")
        for item in t.items("welcome.what_items", product=view.product_name)
    ]
    card = AdaptiveCard(
        version=CARD_VERSION,
        fallback_text=t("welcome.fallback", product=view.product_name),
        body=[
            TextBlock(text=t("welcome.title", product=view.product_name), size="Large", weight="Bolder", wrap=True),
            TextBlock(text=t("welcome.intro", product=view.product_name), wrap=True),
            Container(
                items=[TextBlock(text=t("welcome.what_heading"), weight="Bolder", wrap=True), *what],
                spacing="Medium",
            ),
            TextBlock(
                text=t(
                    "welcome.how_often",
                    short=view.max_per_short_window,
                    short_days=view.short_window_days,
                    long=view.max_per_long_window,
                    long_days=view.long_window_days,
                ),
                wrap=True,
                spacing="Medium",
            ),
            TextBlock(text=t("welcome.commands_heading"), weight="Bolder", wrap=True, spacing="Medium"),
            FactSet(
                facts=[
                    Fact(title=t("command.help"), value=t("welcome.command_help")),
                    Fact(title=t("command.stop"), value=t("welcome.command_stop")),
                    Fact(title=t("command.start"), value=t("welcome.command_start")),
                    Fact(title=t("command.delete"), value=t("welcome.command_delete")),
                ]
            ),
            *_csm_commands(t, view.for_csm),
            TextBlock(text=t("welcome.privacy"), wrap=True, is_subtle=True, size="Small", spacing="Medium"),
        ],
    )
    return card.model_dump(mode="json", by_alias=True, exclude_none=True)


def _csm_commands(t: Strings, for_csm: bool) -> list[Any]:
    if not for_csm:
        return []
    return [
        TextBlock(text=t("welcome.csm_heading"), weight="Bolder", wrap=True, spacing="Medium"),
        FactSet(
            facts=[
                Fact(title="at risk", value=t("welcome.csm_at_risk")),
                Fact(title="account …", value=t("welcome.csm_account")),
                Fact(title="renewals", value=t("welcome.csm_renewals")),
                Fact(title="nps …", value=t("welcome.csm_nps")),
            ]
        ),
    ]
