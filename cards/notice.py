"""A short confirmation card ("you are opted out", "your data was deleted", "I did not understand")."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from microsoft_teams.cards import AdaptiveCard, TextBlock

from cards import CARD_VERSION
from cards.i18n import Strings


class NoticeKind(StrEnum):
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"
    DATA_DELETED = "data_deleted"
    NOT_UNDERSTOOD = "not_understood"
    NOT_CSM = "not_csm"


@dataclass(frozen=True)
class NoticeView:
    kind: NoticeKind
    locale: str | None
    product_name: str


def build_notice_card(view: NoticeView) -> dict[str, Any]:
    t = Strings(view.locale)
    title = t(f"notice.{view.kind.value}.title", product=view.product_name)
    text = t(f"notice.{view.kind.value}.text", product=view.product_name)
    card = AdaptiveCard(
        version=CARD_VERSION,
        fallback_text=f"{title} {text}",
        body=[
            TextBlock(text=title, weight="Bolder", wrap=True),
            TextBlock(text=text, wrap=True),
        ],
    )
    return card.model_dump(mode="json", by_alias=True, exclude_none=True)
