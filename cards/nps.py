"""NPS survey cards: the question, and every state it turns into for the person who answers.

All states carry the same `refresh` (Action.Execute `nps.refresh` with the survey instance), so every device of the
recipient shows the current state. Cards are built from models, never by substituting into JSON text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from microsoft_teams.cards import (
    ActionSet,
    AdaptiveCard,
    CardElement,
    Choice,
    ChoiceSetInput,
    ExecuteAction,
    OpenUrlAction,
    RefreshDefinition,
    TextBlock,
    TextInput,
)

from cards import CARD_VERSION
from cards.i18n import Strings
from cards.verbs import Verb

COMMENT_MAX_LENGTH = 1000


class NpsState(StrEnum):
    ASK = "ask"
    PROMOTER = "promoter"
    PASSIVE = "passive"
    DETRACTOR = "detractor"
    SNOOZED = "snoozed"
    DECLINED = "declined"
    CLOSED = "closed"


@dataclass(frozen=True)
class NpsCardView:
    instance_id: str
    aad_object_id: str
    product_name: str
    locale: str | None
    state: NpsState = NpsState.ASK
    score: int | None = None  # preselected (editing) or the answer given
    comment: str | None = None
    error: str | None = None  # a card-string key naming what was wrong with the last submission
    can_edit: bool = False
    review_url: str | None = None
    referral_url: str | None = None
    snoozed_days: int = 7


def _refresh(view: NpsCardView) -> RefreshDefinition:
    return RefreshDefinition(
        action=ExecuteAction(title="Refresh", verb=Verb.NPS_REFRESH, data={"instance": view.instance_id}),
        user_ids=[_user_id(view.aad_object_id)],
    )


def _card(view: NpsCardView, t: Strings, body: list[CardElement], fallback: str) -> dict[str, Any]:
    card = AdaptiveCard(version=CARD_VERSION, fallback_text=fallback, refresh=_refresh(view), body=body)
    return card.model_dump(mode="json", by_alias=True, exclude_none=True)


def _score_choice_title(t: Strings, score: int) -> str:
    if score == 0:
        return t("nps.low_label", score=score)
    if score == 10:
        return t("nps.high_label", score=score)
    return str(score)


def build_nps_card(view: NpsCardView) -> dict[str, Any]:
    """The card for `view.state`: the question (with an error when the last submission was invalid) or its outcome."""
    t = Strings(view.locale)
    if view.state is NpsState.ASK:
        return _ask(view, t)
    builders: dict[NpsState, Callable[[NpsCardView, Strings], dict[str, Any]]] = {
        NpsState.PROMOTER: _promoter,
        NpsState.PASSIVE: _passive,
        NpsState.DETRACTOR: _detractor,
        NpsState.SNOOZED: _simple("nps.snoozed"),
        NpsState.DECLINED: _simple("nps.declined"),
        NpsState.CLOSED: _simple("nps.closed"),
    }
    return builders[view.state](view, t)


def _user_id(aad_object_id: str) -> str:
    return f"8:orgid:{aad_object_id}"


def _ask(view: NpsCardView, t: Strings) -> dict[str, Any]:
    question = t("nps.question", product=view.product_name)
    body: list[CardElement] = []
    if view.error:
        body.append(TextBlock(text=t(view.error), color="Attention", weight="Bolder", wrap=True))
    body += [
        TextBlock(text=question, size="Medium", weight="Bolder", wrap=True),
        ChoiceSetInput(
            id="score",
            label=t("nps.score_label"),
            style="expanded",
            is_required=True,
            error_message=t("nps.score_required"),
            value=str(view.score) if view.score is not None else None,
            choices=[Choice(title=_score_choice_title(t, s), value=str(s)) for s in range(11)],
        ),
        TextInput(
            id="comment",
            label=t("nps.comment_label"),
            is_multiline=True,
            max_length=COMMENT_MAX_LENGTH,
            placeholder=t("nps.comment_placeholder"),
            value=view.comment or None,
        ),
        ActionSet(
            actions=[
                ExecuteAction(
                    title=t("nps.submit"),
                    verb=Verb.NPS_SUBMIT,
                    data={"instance": view.instance_id},
                    associated_inputs="auto",
                    style="positive",
                ),
                ExecuteAction(
                    title=t("nps.later"),
                    verb=Verb.NPS_SNOOZE,
                    data={"instance": view.instance_id},
                    associated_inputs="none",
                ),
                ExecuteAction(
                    title=t("nps.never"),
                    verb=Verb.NPS_DECLINE,
                    data={"instance": view.instance_id},
                    associated_inputs="none",
                ),
            ]
        ),
    ]
    return _card(view, t, body, question)


def _answered_lines(view: NpsCardView, t: Strings, key: str) -> list[CardElement]:
    lines: list[CardElement] = (
        [
            TextBlock(text=t(view.error), color="Attention", weight="Bolder", wrap=True)  # a follow-up refused
        ]
        if view.error
        else []
    )
    lines += [
        TextBlock(text=t(f"{key}.title"), size="Medium", weight="Bolder", wrap=True),
        TextBlock(text=t("nps.your_score", score=view.score), is_subtle=True, wrap=True, spacing="None"),
        TextBlock(text=t(f"{key}.text", product=view.product_name), wrap=True),
    ]
    if view.comment:
        lines.append(TextBlock(text=t("nps.your_comment", comment=view.comment), is_subtle=True, wrap=True))
    return lines


def _edit_action(view: NpsCardView, t: Strings) -> list[ExecuteAction]:
    if not view.can_edit:
        return []
    return [ExecuteAction(title=t("nps.change"), verb=Verb.NPS_EDIT, data={"instance": view.instance_id})]


def _promoter(view: NpsCardView, t: Strings) -> dict[str, Any]:
    body = _answered_lines(view, t, "nps.promoter")
    actions: list[Any] = []
    if view.review_url:
        actions.append(OpenUrlAction(title=t("nps.promoter.review"), url=view.review_url))
    if view.referral_url:
        actions.append(OpenUrlAction(title=t("nps.promoter.refer"), url=view.referral_url))
    actions += _edit_action(view, t)
    if actions:
        body.append(ActionSet(actions=actions))
    return _card(view, t, body, t("nps.promoter.title"))


def _passive(view: NpsCardView, t: Strings) -> dict[str, Any]:
    body = _answered_lines(view, t, "nps.passive")
    actions: list[Any] = []
    if not view.comment and view.can_edit:
        body.append(
            TextInput(id="comment", label=t("nps.passive.ask"), is_multiline=True, max_length=COMMENT_MAX_LENGTH)
        )
        actions.append(
            ExecuteAction(
                title=t("nps.passive.send"),
                verb=Verb.NPS_COMMENT,
                data={"instance": view.instance_id},
                associated_inputs="auto",
            )
        )
    actions += _edit_action(view, t)
    if actions:
        body.append(ActionSet(actions=actions))
    return _card(view, t, body, t("nps.passive.title"))


def _detractor(view: NpsCardView, t: Strings) -> dict[str, Any]:
    body = _answered_lines(view, t, "nps.detractor")
    actions = _edit_action(view, t)
    if actions:
        body.append(ActionSet(actions=list(actions)))
    return _card(view, t, body, t("nps.detractor.title"))


def _simple(key: str) -> Callable[[NpsCardView, Strings], dict[str, Any]]:
    def build(view: NpsCardView, t: Strings) -> dict[str, Any]:
        title = t(f"{key}.title")
        body: list[CardElement] = [
            TextBlock(text=title, weight="Bolder", wrap=True),
            TextBlock(text=t(f"{key}.text", days=view.snoozed_days, product=view.product_name), wrap=True),
        ]
        return _card(view, t, body, title)

    return build


@dataclass(frozen=True)
class ErrorCardView:
    locale: str | None
    message_key: str  # a card-string key: "error.not_yours", "error.unknown_survey" …


@dataclass(frozen=True)
class NotSavedView:
    locale: str | None
    verb: Verb  # the action that could not be saved …
    data: dict[str, Any]  # … and all it carried (the card's inputs too)


def build_not_saved_card(view: NotSavedView) -> dict[str, Any]:
    """In place of a card whose action was not saved because the service was too busy to answer in time: says so,
    and "Try again" sends the very same action once more (storing an answer twice is harmless: it is keyed)."""
    t = Strings(view.locale)
    title, text = t("error.title"), t("error.not_saved")
    again = ExecuteAction(title=t("error.try_again"), verb=view.verb, data=view.data, associated_inputs="none")
    card = AdaptiveCard(
        version=CARD_VERSION,
        fallback_text=f"{title} {text}",
        body=[
            TextBlock(text=title, weight="Bolder", color="Attention", wrap=True),
            TextBlock(text=text, wrap=True),
            ActionSet(actions=[again]),
        ],
    )
    return card.model_dump(mode="json", by_alias=True, exclude_none=True)


def build_error_card(view: ErrorCardView) -> dict[str, Any]:
    """Shown in place of a card when an action cannot be accepted at all (not for fixable input: see ASK + error)."""
    t = Strings(view.locale)
    title = t("error.title")
    card = AdaptiveCard(
        version=CARD_VERSION,
        fallback_text=f"{title} {t(view.message_key)}",
        body=[
            TextBlock(text=title, weight="Bolder", color="Attention", wrap=True),
            TextBlock(text=t(view.message_key), wrap=True),
        ],
    )
    return card.model_dump(mode="json", by_alias=True, exclude_none=True)
