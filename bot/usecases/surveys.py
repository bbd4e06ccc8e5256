"""NPS surveys: deciding whom to ask, creating and sending asks, and handling every card action.

Free of botbuilder: the Teams layer passes the verb, the action data and who acted, and sends back the card returned.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot import telemetry
from bot.engagement.asking import AskPolicy, AskState, Decision, decide
from bot.engagement.nps import Category, category, validate_score
from bot.engagement.reach import ChatOpening, pending_chat
from bot.engagement.usage import BotSignal, bot_signal
from bot.usecases.reach import can_reach
from cards.nps import COMMENT_MAX_LENGTH, ErrorCardView, NpsCardView, NpsState, build_error_card, build_nps_card
from cards.verbs import Verb
from storage.answers import AnswerWriter, FirstAnswer, record_answered
from storage.models import NpsAnswer, SurveyInstance, User
from storage.outbox import NewMessage
from storage.surveys import SubmitOutcome
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class SurveyConfig:
    product_name: str
    policy: AskPolicy
    edit_grace: timedelta = timedelta(hours=24)
    expiry: timedelta = timedelta(days=14)
    review_url: str | None = None
    referral_url: str | None = None
    opening: ChatOpening = ChatOpening.CREATE  # NURTURE_OPEN_CHATS: people without a chat get one opened


@dataclass(frozen=True)
class Actor:
    """Who clicked: from the invoke activity, after authentication and the tenant check."""

    tenant_id: str | None
    aad_object_id: str | None
    locale: str | None


# -- action data, validated at the boundary -----------------------------------------------------------------------


class _InstanceData(BaseModel):
    model_config = ConfigDict(extra="ignore")
    instance: uuid.UUID


class _SubmitData(_InstanceData):
    score: Any = None
    comment: str | None = Field(default=None, max_length=COMMENT_MAX_LENGTH)

    @field_validator("comment", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value


class _CommentData(_InstanceData):
    comment: str | None = Field(default=None, max_length=COMMENT_MAX_LENGTH)


class InvalidAction(Exception):
    def __init__(self, message_key: str) -> None:
        super().__init__(message_key)
        self.message_key = message_key


# -- outcomes of asking -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AskResult:
    tenant_id: str
    aad_object_id: str
    decision: Decision
    instance_id: str | None = None
    queued: bool = False


_CATEGORY_STATE = {
    Category.PROMOTER: NpsState.PROMOTER,
    Category.PASSIVE: NpsState.PASSIVE,
    Category.DETRACTOR: NpsState.DETRACTOR,
}


PLAN_CHUNK = 500  # people per round of lookups (keeps IN lists short)


@dataclass(frozen=True)
class _AskFacts:
    """What deciding whether to ask needs about a group of people, loaded in a few queries."""

    chats: set[int]  # user ids with a live personal chat
    anchored: set[str]  # tenants where the bot has a live conversation
    last_answers: dict[tuple[str, str], datetime]
    last_asks: dict[int, datetime]
    sends: dict[int, list[datetime]]


@dataclass
class Surveys:
    uow_factory: Callable[[], UnitOfWork]
    config: SurveyConfig
    answers: AnswerWriter  # a first answer, in one trip where the database allows (storage.answers)

    # -- asking ----------------------------------------------------------------------------------

    async def plan(self, users: Sequence[User], now: datetime, *, force: bool = False) -> list[tuple[User, Decision]]:
        """The decision for each user, with its reason (a dry run: nothing is stored). Five queries per
        PLAN_CHUNK people, not per person."""
        decisions: list[tuple[User, Decision]] = []
        async with self.uow_factory() as uow:
            for start in range(0, len(users), PLAN_CHUNK):
                chunk = users[start : start + PLAN_CHUNK]
                facts = await self._facts(uow, chunk, now)
                decisions += [
                    (user, decide(self._state(user, facts), self.config.policy, now, force=force)) for user in chunk
                ]
        return decisions

    async def ask(self, users: Sequence[User], now: datetime, *, force: bool = False) -> list[AskResult]:
        """Queue an NPS ask for everyone the rules allow; delivery workers send them (see bot.usecases.delivery)."""
        results = []
        for user, decision in await self.plan(users, now, force=force):
            if not decision.ask:
                results.append(AskResult(user.tenant_id, user.aad_object_id, decision))
                continue
            results.append(await self._queue_one(user, decision, now, force))
        return results

    async def _queue_one(self, user: User, decision: Decision, now: datetime, force: bool) -> AskResult:
        instance_id = str(uuid.uuid4())
        card = build_nps_card(self._view(instance_id, user.aad_object_id, user.locale))
        async with self.uow_factory() as uow:
            target = await uow.conversations.personal_for(user.id)
            if target is None and self.config.opening is ChatOpening.OFF:  # the chat went away since the plan
                return AskResult(user.tenant_id, user.aad_object_id, Decision(False, "no personal conversation"))
            # without a chat, the delivery worker opens one first (or cancels when the bot left the tenant)
            conversation_id = target.conversation_id if target is not None else pending_chat(user.id)
            await uow.surveys.add_instance(
                SurveyInstance(
                    id=instance_id,
                    tenant_id=user.tenant_id,
                    user_id=user.id,
                    kind="nps",
                    status="queued",
                    locale=user.locale,
                    created_at=now,
                    expires_at=now + self.config.expiry,
                    forced=force,
                )
            )
            message = NewMessage.of_card(
                f"nps:{instance_id}",
                "nps",
                user.tenant_id,
                user.id,
                conversation_id,
                card,
                survey_instance_id=instance_id,
                quiet_hours=not force,  # an operator's forced ask goes now; others wait for the person's day
            )
            await uow.outbox.enqueue(message, now)
            await uow.commit()
        return AskResult(user.tenant_id, user.aad_object_id, decision, instance_id, queued=True)

    async def close_expired(self, now: datetime) -> int:
        """Unanswered asks past their expiry: replace the card in the person's chat with "this survey has closed"."""
        closed = 0
        async with self.uow_factory() as uow:
            for instance in await uow.surveys.expired_unanswered(now):
                owner = await uow.surveys.owner_of(instance)
                target = await uow.conversations.personal_for(owner.id) if owner else None
                await uow.surveys.set_status(instance.id, "closed")
                if owner is None or target is None or instance.activity_id is None:
                    continue  # nowhere to update it: the card closes itself on its next refresh
                card = self._state_card(instance, owner, NpsState.CLOSED)
                message = NewMessage.of_card(
                    f"nps-close:{instance.id}",
                    "nps",
                    instance.tenant_id,
                    owner.id,
                    target.conversation_id,
                    card,
                    operation="update",
                    target_activity_id=instance.activity_id,
                )
                queued = await uow.outbox.enqueue(message, now)
                closed += queued is not None
            await uow.commit()
        return closed

    async def _facts(self, uow: UnitOfWork, users: Sequence[User], now: datetime) -> _AskFacts:
        ids = [user.id for user in users]
        long_window = timedelta(days=self.config.policy.budget.long_window_days)
        return _AskFacts(
            chats=await uow.conversations.with_personal_chat(ids),
            anchored=await uow.conversations.anchored(sorted({user.tenant_id for user in users})),
            last_answers=await uow.surveys.last_answers(sorted({user.aad_object_id for user in users})),
            last_asks=await uow.surveys.last_asks(ids),
            sends=await uow.outbox.sends_since(ids, now - long_window),
        )

    def _state(self, user: User, facts: _AskFacts) -> AskState:
        has_chat = user.id in facts.chats
        return AskState(
            user_key=f"{user.tenant_id}:{user.aad_object_id}",
            reachable=can_reach(
                user, has_chat=has_chat, anchored=user.tenant_id in facts.anchored, opening=self.config.opening
            ),
            opted_out=user.opted_out_at is not None,
            declined_nps=user.nps_declined_at is not None,
            snoozed_until=user.nps_snoozed_until,
            last_answer_at=facts.last_answers.get((user.tenant_id, user.aad_object_id)),
            last_ask_at=facts.last_asks.get(user.id),
            recent_sends=facts.sends.get(user.id, []),
            time_zone=user.time_zone,
        )

    # -- card actions ----------------------------------------------------------------------------

    async def handle_action(self, verb: str, data: Any, actor: Actor, now: datetime) -> dict[str, Any]:
        """The card to show in place of the one clicked. Invalid input never stores anything."""
        try:
            known = Verb(verb)
        except ValueError:
            return build_error_card(ErrorCardView(actor.locale, "error.unknown_action"))
        try:
            return await self._dispatch(known, data if isinstance(data, dict) else {}, actor, now)
        except InvalidAction as invalid:
            return build_error_card(ErrorCardView(actor.locale, invalid.message_key))

    async def _dispatch(self, verb: Verb, data: dict[str, Any], actor: Actor, now: datetime) -> dict[str, Any]:
        ref = _parse(_InstanceData, data)
        if verb is Verb.NPS_SUBMIT:
            card = await self._first_answer(str(ref.instance), data, actor, now)
            if card is not None:
                return card
        async with self.uow_factory() as uow:
            instance, owner, answer = await self._owned_instance(uow, str(ref.instance), actor)
            if verb is Verb.NPS_SUBMIT:
                return await self._submit(uow, instance, owner, answer, data, now)
            if verb is Verb.NPS_COMMENT:
                return await self._comment(uow, instance, owner, answer, data, now)
            if answer is not None:
                if verb is Verb.NPS_EDIT and self._editable(answer, now):
                    return build_nps_card(
                        self._view(
                            instance.id, owner.aad_object_id, owner.locale, score=answer.score, comment=answer.comment
                        )
                    )
                return self._answered_card(instance, owner, answer, now)
            if verb is Verb.NPS_SNOOZE:
                until = now + timedelta(days=self.config.policy.snooze_days)
                await uow.users.set_nps_snooze(owner.id, until, now)
                await uow.surveys.set_status(instance.id, "snoozed")
                await uow.commit()
                return self._state_card(instance, owner, NpsState.SNOOZED)
            if verb is Verb.NPS_DECLINE:
                await uow.users.set_nps_declined(owner.id, now)
                await uow.surveys.set_status(instance.id, "declined")
                await uow.commit()
                return self._state_card(instance, owner, NpsState.DECLINED)
            # refresh / edit without an answer: show the state the instance is in
            if instance.status in ("snoozed", "declined"):
                return self._state_card(instance, owner, NpsState(instance.status))
            if now > instance.expires_at:
                return self._state_card(instance, owner, NpsState.CLOSED)
            return build_nps_card(self._view(instance.id, owner.aad_object_id, owner.locale))

    async def _first_answer(
        self, instance_id: str, data: dict[str, Any], actor: Actor, now: datetime
    ) -> dict[str, Any] | None:
        """A valid first answer to an open ask of one's own, in one trip to the database; None when it is anything
        else (or could not be stored there): then the unit of work below decides, as it always did."""
        if actor.tenant_id is None or actor.aad_object_id is None:
            return None
        try:
            submitted = _SubmitData.model_validate(data)
            score = validate_score(submitted.score)
        except (ValidationError, ValueError):
            return None
        answer_category = category(score)
        answer = FirstAnswer(
            instance_id=instance_id,
            tenant_id=actor.tenant_id,
            aad_object_id=actor.aad_object_id,
            score=score,
            comment=submitted.comment,
            detractor=answer_category is Category.DETRACTOR,
            signal=bot_signal(actor.tenant_id, actor.aad_object_id, BotSignal.CARD_ANSWER, now),
            now=now,
        )
        stored = await self.answers.store_first(answer)
        if stored is None:
            return None
        _count(answer_category, created=True, raised=stored.alert_raised)
        # answered just now: editable for the grace period
        editable = self.config.edit_grace >= timedelta(0)
        return self._thanks(instance_id, actor.aad_object_id, stored.locale, score, submitted.comment, editable)

    async def _submit(
        self,
        uow: UnitOfWork,
        instance: SurveyInstance,
        owner: User,
        answer: NpsAnswer | None,
        data: dict[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        if answer is None and now > instance.expires_at:
            return self._state_card(instance, owner, NpsState.CLOSED)
        try:
            submitted = _SubmitData.model_validate(data)
        except ValidationError as invalid:
            return build_nps_card(
                self._view(
                    instance.id,
                    owner.aad_object_id,
                    owner.locale,
                    error=_comment_error(invalid),
                    score=_score_or_none(data.get("score")),
                )
            )
        try:
            score = validate_score(submitted.score)
        except ValueError:
            return build_nps_card(
                self._view(
                    instance.id,
                    owner.aad_object_id,
                    owner.locale,
                    error="error.score_invalid",
                    comment=submitted.comment,
                )
            )
        grace_until = (answer.answered_at if answer else now) + self.config.edit_grace
        result = await uow.surveys.submit(instance, owner.aad_object_id, score, submitted.comment, now, grace_until)
        if result.outcome in (SubmitOutcome.CREATED, SubmitOutcome.EDITED):
            created = result.outcome is SubmitOutcome.CREATED
            signal = bot_signal(owner.tenant_id, owner.aad_object_id, BotSignal.CARD_ANSWER, now) if created else None
            raised = await record_answered(uow, instance, owner.aad_object_id, result.answer.score, signal, now)
            await uow.commit()
            _count(category(result.answer.score), created=created, raised=raised)
        return self._answered_card(instance, owner, result.answer, now)

    async def _comment(
        self,
        uow: UnitOfWork,
        instance: SurveyInstance,
        owner: User,
        answer: NpsAnswer | None,
        data: dict[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        if answer is None:
            return build_nps_card(self._view(instance.id, owner.aad_object_id, owner.locale))
        try:
            comment = _CommentData.model_validate(data).comment
        except ValidationError as invalid:  # the thanks stay, with what was wrong: the person may try again
            return self._answered_card(instance, owner, answer, now, error=_comment_error(invalid))
        comment = comment.strip() if comment else None
        if comment and self._editable(answer, now):
            grace_until = answer.answered_at + self.config.edit_grace
            result = await uow.surveys.submit(instance, owner.aad_object_id, answer.score, comment, now, grace_until)
            await uow.commit()
            answer = result.answer
        return self._answered_card(instance, owner, answer, now)

    async def _owned_instance(
        self, uow: UnitOfWork, instance_id: str, actor: Actor
    ) -> tuple[SurveyInstance, User, NpsAnswer | None]:
        """The ask, its recipient and their answer so far; only the recipient may act on it."""
        found = await uow.surveys.answering(instance_id)
        if found is None:
            raise InvalidAction("error.unknown_survey")
        instance, owner, answer = found
        if owner.aad_object_id != actor.aad_object_id or owner.tenant_id != actor.tenant_id:
            raise InvalidAction("error.not_yours")
        return instance, owner, answer

    def _editable(self, answer: NpsAnswer, now: datetime) -> bool:
        return now <= answer.answered_at + self.config.edit_grace

    def _answered_card(
        self, instance: SurveyInstance, owner: User, answer: NpsAnswer, now: datetime, error: str | None = None
    ) -> dict[str, Any]:
        editable = self._editable(answer, now)
        return self._thanks(
            instance.id, owner.aad_object_id, owner.locale, answer.score, answer.comment, editable, error
        )

    def _thanks(
        self,
        instance_id: str,
        aad_object_id: str,
        locale: str | None,
        score: int,
        comment: str | None,
        editable: bool,
        error: str | None = None,
    ) -> dict[str, Any]:
        """The card for an answer given: thanks by category, the score and comment, and whether it can be changed;
        above them `error`, a card-string key saying why a follow-up was refused."""
        state = _CATEGORY_STATE[category(score)]
        view = self._view(
            instance_id,
            aad_object_id,
            locale,
            state=state,
            score=score,
            comment=comment,
            can_edit=editable,
            error=error,
        )
        return build_nps_card(view)

    def _state_card(self, instance: SurveyInstance, owner: User, state: NpsState) -> dict[str, Any]:
        return build_nps_card(self._view(instance.id, owner.aad_object_id, owner.locale, state=state))

    def _view(self, instance_id: str, aad_object_id: str, locale: str | None, **fields: Any) -> NpsCardView:
        return NpsCardView(
            instance_id=instance_id,
            aad_object_id=aad_object_id,
            product_name=self.config.product_name,
            locale=locale,
            review_url=self.config.review_url,
            referral_url=self.config.referral_url,
            snoozed_days=self.config.policy.snooze_days,
            **fields,
        )


def _count(answer_category: Category, *, created: bool, raised: bool) -> None:
    """Telemetry for a stored answer: a first answer by category, a detractor alert raised."""
    if created:
        telemetry.answers.add(1, {"kind": "nps", "category": answer_category.value})
    if raised:
        telemetry.alerts.add(1, {"kind": "detractor"})


def _comment_error(invalid: ValidationError) -> str:
    """What to tell the person about action data that did not validate: a comment too long, or not text at all."""
    for error in invalid.errors():
        if error["loc"] == ("comment",):
            return "error.comment_too_long" if error["type"] == "string_too_long" else "error.comment_not_text"
    return "error.bad_request"


def _parse(model: type[_InstanceData], data: dict[str, Any]) -> _InstanceData:
    try:
        return model.model_validate(data)
    except ValidationError:
        raise InvalidAction("error.bad_request") from None


def _score_or_none(value: Any) -> int | None:
    try:
        return validate_score(value)
    except ValueError:
        return None
