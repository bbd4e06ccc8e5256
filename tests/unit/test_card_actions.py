"""The card-action registry: one verb, one model, one handler; input that does not validate never reaches it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from bot.usecases.card_actions import ActionData, Actor, Card, CardActions, Refused
from cards.nps import ErrorCardView, build_error_card
from cards.verbs import Verb

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
ACTOR = Actor("tenant", "person", "de-DE")


class Touch(ActionData):
    touch: int


def error_card(key: str) -> Card:
    return build_error_card(ErrorCardView(ACTOR.locale, key))


async def test_a_valid_action_reaches_its_handler_with_the_verbs_model() -> None:
    seen: list[tuple[Touch, Actor, datetime]] = []

    async def stop(data: Touch, actor: Actor, now: datetime) -> Card:
        seen.append((data, actor, now))
        return {"type": "AdaptiveCard", "stopped": data.touch}

    actions = CardActions()
    actions.add(Verb.NURTURE_STOP, Touch, stop)
    card = await actions.answer("nurture.stop", {"touch": "7", "extra": "ignored"}, ACTOR, NOW)
    assert card == {"type": "AdaptiveCard", "stopped": 7}
    assert seen == [(Touch(touch=7), ACTOR, NOW)]
    assert actions.verbs == {"nurture.stop"}


async def test_unknown_verbs_bad_data_and_refusals_get_error_cards() -> None:
    calls: list[Any] = []

    async def stop(data: Touch, actor: Actor, now: datetime) -> Card:
        calls.append(data)
        if data.touch == 404:
            raise Refused("error.unknown_message")
        return {}

    actions = CardActions()
    actions.add(Verb.NURTURE_STOP, Touch, stop)
    assert await actions.answer("nurture.explode", {"touch": 1}, ACTOR, NOW) == error_card("error.unknown_action")
    for data in (None, [], {"touch": "x"}, {}, {"touch": True}, {"touch": False}):
        assert await actions.answer("nurture.stop", data, ACTOR, NOW) == error_card("error.bad_request"), data
    refused = await actions.answer("nurture.stop", {"touch": 404}, ACTOR, NOW)
    assert refused == error_card("error.unknown_message")
    assert [c.touch for c in calls] == [404]  # only valid data reached the handler


async def test_data_that_does_not_validate_goes_to_the_verbs_own_invalid_handler() -> None:
    async def stop(data: Touch, actor: Actor, now: datetime) -> Card:
        raise AssertionError("invalid data reached the handler")

    async def invalid(errors: ValidationError, raw: dict[str, Any], actor: Actor, now: datetime) -> Card:
        return {"fields": [e["loc"] for e in errors.errors()], "raw": raw}

    actions = CardActions()
    actions.add(Verb.NURTURE_STOP, Touch, stop, invalid=invalid)
    assert await actions.answer("nurture.stop", {"touch": "x"}, ACTOR, NOW) == {
        "fields": [("touch",)],
        "raw": {"touch": "x"},
    }


def test_a_verb_has_one_handler() -> None:
    async def stop(data: Touch, actor: Actor, now: datetime) -> Card:
        return {}

    actions = CardActions()
    actions.add(Verb.NURTURE_STOP, Touch, stop)
    with pytest.raises(ValueError, match="nurture.stop"):
        actions.add(Verb.NURTURE_STOP, Touch, stop)
