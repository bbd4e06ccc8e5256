"""Card actions: one registry from an Action.Execute verb to its handler.

Every handler has one signature, `handler(data, actor, now) -> card`, where `data` is an instance of the verb's own
pydantic model, validated here before the handler runs; the card returned replaces the one clicked. This is the shape
of `action_execute(verb)` routes in Microsoft's Agents SDK and teams.py, so moving to either stays mechanical.

Free of botbuilder: the Teams layer passes the verb, the raw action data and who acted, and sends the card back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.usecases.ports import ROW_ID_MAX
from cards.nps import ErrorCardView, build_error_card
from cards.verbs import Verb

Card = dict[str, Any]
# a row id in a card's data: one no row can have is refused with the payload, not by the database
RowId = Annotated[int, Field(ge=1, le=ROW_ID_MAX)]


@dataclass(frozen=True)
class Actor:
    """Who clicked: from the invoke activity, after authentication and the tenant check."""

    tenant_id: str | None
    aad_object_id: str | None
    locale: str | None


class ActionData(BaseModel):
    """Base of every verb's data model: fields a card adds for its own use are ignored."""

    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="before")
    @classmethod
    def _no_yes_or_no(cls, value: Any) -> Any:
        """JSON's true and false are neither numbers nor texts, whatever pydantic's lax mode makes of them (it read
        `"score": true` as a score of 1, `"alert": true` as alert 1)."""
        if isinstance(value, bool):
            raise ValueError("true or false where a number or a text belongs")
        return value


class Refused(Exception):
    """A handler's way to say the action cannot be done: the person sees the error card for `message_key`."""

    def __init__(self, message_key: str) -> None:
        super().__init__(message_key)
        self.message_key = message_key


Data = TypeVar("Data", bound=ActionData)
Handler = Callable[[Data, Actor, datetime], Awaitable[Card]]
# For data that did not validate: the errors, the raw data, who acted, when. Without one, the "bad request" card.
InvalidHandler = Callable[[ValidationError, dict[str, Any], Actor, datetime], Awaitable[Card]]


@dataclass(frozen=True)
class Route(Generic[Data]):
    model: type[Data]
    handle: Handler[Data]
    invalid: InvalidHandler | None = None


class CardActions:
    def __init__(self) -> None:
        self._routes: dict[str, Route[Any]] = {}

    def add(
        self, verb: Verb, model: type[Data], handle: Handler[Data], *, invalid: InvalidHandler | None = None
    ) -> None:
        if verb in self._routes:
            raise ValueError(f"two handlers for the card action {verb.value!r}")
        self._routes[verb.value] = Route(model, handle, invalid)

    @property
    def verbs(self) -> frozenset[str]:
        return frozenset(self._routes)

    async def answer(self, verb: str, data: Any, actor: Actor, now: datetime) -> Card:
        """The card to show in place of the one clicked. Input that does not validate never reaches a handler."""
        route = self._routes.get(verb)
        if route is None:
            return build_error_card(ErrorCardView(actor.locale, "error.unknown_action"))
        raw = data if isinstance(data, dict) else {}
        try:
            try:
                parsed = route.model.model_validate(raw)
            except ValidationError as invalid:
                if route.invalid is None:
                    raise Refused("error.bad_request") from None
                return await route.invalid(invalid, raw, actor, now)
            return await route.handle(parsed, actor, now)
        except Refused as refused:
            return build_error_card(ErrorCardView(actor.locale, refused.message_key))
