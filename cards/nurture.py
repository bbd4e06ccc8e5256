"""Nurture program cards: onboarding tips, adoption nudges, milestones, low-usage ("legacy") and re-engagement.

Every card names why it was sent in plain words, has at most one main button into the app, and ends with
"Not useful — stop these", which opts the person out of that kind of message at once (and can be undone).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from microsoft_teams.cards import ActionSet, AdaptiveCard, CardElement, ExecuteAction, OpenUrlAction, TextBlock

from bot.engagement.kinds import BY_NAME
from cards import CARD_VERSION
from cards.i18n import Strings
from cards.verbs import Verb


class NurtureState(StrEnum):
    MESSAGE = "message"
    STOPPED = "stopped"  # after "stop these"
    RESUMED = "resumed"  # after "undo"


@dataclass(frozen=True)
class NurtureCardView:
    touch_id: int  # the campaign touch: the stop action names it, the server finds the kind and the owner
    kind: str  # onboarding | adoption | milestone | legacy | reengagement
    step: str  # day-3, nudge-1, count-10, anniversary-365, drop-…, unused-…, absent-since-…
    product_name: str
    locale: str | None
    feature: str | None = None  # the feature's label, already in the card's language
    count: int | None = None
    days: int | None = None
    title: str | None = None  # per-step text from the campaigns file, already in the card's language
    text: str | None = None
    link: str | None = None
    state: NurtureState = NurtureState.MESSAGE


def _key(view: NurtureCardView) -> str:
    """The string family for the card, as its kind names it (milestone and legacy have two flavours each)."""
    kind = BY_NAME.get(view.kind)
    return kind.card_strings(view.step) if kind is not None else f"nurture.{view.kind}"


def build_nurture_card(view: NurtureCardView) -> dict[str, Any]:
    t = Strings(view.locale)
    if view.state is not NurtureState.MESSAGE:
        return _after_stop(view, t)
    values = {
        "product": view.product_name,
        "feature": view.feature or view.product_name,
        "count": view.count if view.count is not None else "",
        "days": view.days if view.days is not None else "",
    }
    key = _key(view)
    title = view.title or t(f"{key}.title", **values)
    if view.text:
        text = view.text
    elif view.kind == "onboarding":
        tip = f"nurture.onboarding.tip.{view.days}"
        text = t(tip, **values) if t.has(tip) else t("nurture.onboarding.tip", **values)
    else:
        text = t(f"{key}.text", **values)
    body: list[CardElement] = [
        TextBlock(text=title, size="Medium", weight="Bolder", wrap=True),
        TextBlock(text=text, wrap=True),
    ]
    actions: list[Any] = []
    if view.link:
        actions.append(OpenUrlAction(title=t(f"{key}.button", **values), url=view.link, style="positive"))
        if (kind := BY_NAME.get(view.kind)) is not None and kind.shareable:
            actions.append(OpenUrlAction(title=t("nurture.share"), url=share_to_teams(view.link, title)))
    actions.append(
        ExecuteAction(
            title=t("nurture.stop"),
            verb=Verb.NURTURE_STOP,
            data={"touch": view.touch_id},
            associated_inputs="none",
        )
    )
    body.append(ActionSet(actions=actions))
    body.append(
        TextBlock(text=t("nurture.why", kind=t(f"nurture.kind.{view.kind}")), is_subtle=True, size="Small", wrap=True)
    )
    return _card(f"{title} {text}", body)


def _after_stop(view: NurtureCardView, t: Strings) -> dict[str, Any]:
    kind = t(f"nurture.kind.{view.kind}")
    key = "nurture.stopped" if view.state is NurtureState.STOPPED else "nurture.resumed"
    title = t(f"{key}.title")
    text = t(f"{key}.text", kind=kind, product=view.product_name)
    body: list[CardElement] = [
        TextBlock(text=title, weight="Bolder", wrap=True),
        TextBlock(text=text, wrap=True),
    ]
    if view.state is NurtureState.STOPPED:
        undo = ExecuteAction(
            title=t("nurture.undo"), verb=Verb.NURTURE_RESUME, data={"touch": view.touch_id}, associated_inputs="none"
        )
        body.append(ActionSet(actions=[undo]))
    return _card(f"{title} {text}", body)


def share_to_teams(url: str, text: str) -> str:
    """Microsoft's "Share to Teams" link: opens a compose box with the link and a message prefilled."""
    return f"https://teams.microsoft.com/share?href={quote(url, safe='')}&msgText={quote(text, safe='')}"


def _card(fallback: str, body: list[CardElement]) -> dict[str, Any]:
    card = AdaptiveCard(version=CARD_VERSION, fallback_text=fallback, body=body)
    return card.model_dump(mode="json", by_alias=True, exclude_none=True)
