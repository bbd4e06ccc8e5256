"""NPS surveys: deciding whom to ask, queueing the asks, and the survey card's actions (answer, comment, edit,
ask me later, don't ask me, refresh), each registered in bot.usecases.card_actions. Free of botbuilder."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field, ValidationError, field_validator

from bot import telemetry
from bot.engagement.asking import AskPolicy, AskState, Decision, decide
from bot.engagement.nps import Category, category, validate_score
from bot.engagement.reach import ChatOpening, pending_chat
from bot.engagement.usage import BotSignal, bot_signal
from bot.usecases.card_actions import ActionData, Actor, Card, CardActions, Refused
from bot.usecases.ports import Ask, GivenAnswer, Person, SurveysUnitOfWork
from bot.usecases.reach import can_reach
from cards.nps import COMMENT_MAX_LENGTH, NpsCardView, NpsState, build_nps_card
from cards.verbs import Verb
from storage.answers import AnswerWriter, FirstAnswer, record_answered
from storage.outbox import NewMessage
from storage.surveys import NewAsk, SubmitOutcome


@dataclass(frozen=True)
class SurveyConfig:
    product_name: str
    policy: AskPolicy
    edit_grace: timedelta = timedelta(hours=24)
    expiry: timedelta = timedelta(days=14)
    review_url: str | None = None
    referral_url: str | None = None
    opening: ChatOpening = ChatOpening.CREATE  # NURTURE_OPEN_CHATS: people without a chat get one opened


# -- action data, validated at the boundary -----------------------------------------------------------------------


class InstanceData(ActionData):
    instance: uuid.UUID


class SubmitData(InstanceData):
    score: int
    comment: str | None = Field(default=None, max_length=COMMENT_MAX_LENGTH)

    @field_validator("score", mode="before")
    @classmethod
    def _whole_number_to_ten(cls, value: Any) -> int:
        return validate_score(value)

    @field_validator("comment", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value


class CommentData(InstanceData):
    comment: str | None = Field(default=None, max_length=COMMENT_MAX_LENGTH)


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
    uow_factory: Callable[[], SurveysUnitOfWork]
    config: SurveyConfig
    answers: AnswerWriter  # a first answer, in one trip where the database allows (storage.answers)

    # -- asking ----------------------------------------------------------------------------------

    async def plan(
        self, users: Sequence[Person], now: datetime, *, force: bool = False
    ) -> list[tuple[Person, Decision]]:
        """The decision for each user, with its reason (a dry run: nothing is stored). Five queries per
        PLAN_CHUNK people, not per person."""
        decisions: list[tuple[Person, Decision]] = []
        async with self.uow_factory() as uow:
            for start in range(0, len(users), PLAN_CHUNK):
                chunk = users[start : start + PLAN_CHUNK]
                facts = await self._facts(uow, chunk, now)
                decisions += [
                    (user, decide(self._state(user, facts), self.config.policy, now, force=force)) for user in chunk
                ]
        return decisions

    async def ask(self, users: Sequence[Person], now: datetime, *, force: bool = False) -> list[AskResult]:
        """Queue an NPS ask for everyone the rules allow; delivery workers send them (see bot.usecases.delivery)."""
        results = []
        for user, decision in await self.plan(users, now, force=force):
            if not decision.ask:
                results.append(AskResult(user.tenant_id, user.aad_object_id, decision))
                continue
            results.append(await self._queue_one(user, decision, now, force))
        return results

    async def _queue_one(self, user: Person, decision: Decision, now: datetime, force: bool) -> AskResult:
        instance_id = str(uuid.uuid4())
        card = build_nps_card(self._view(instance_id, user.aad_object_id, user.locale))
        async with self.uow_factory() as uow:
            target = await uow.conversations.personal_for(user.id)
            if target is None and self.config.opening is ChatOpening.OFF:  # the chat went away since the plan
                return AskResult(user.tenant_id, user.aad_object_id, Decision(False, "no personal conversation"))
            # without a chat, the delivery worker opens one first (or cancels when the bot left the tenant)
            conversation_id = target.conversation_id if target is not None else pending_chat(user.id)
            ask = NewAsk(instance_id, user.tenant_id, user.id, user.locale, now, now + self.config.expiry, force)
            await uow.surveys.add_instance(ask)
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
            for instance, owner in await uow.surveys.expired_unanswered(now):
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

    async def _facts(self, uow: SurveysUnitOfWork, users: Sequence[Person], now: datetime) -> _AskFacts:
        ids = [user.id for user in users]
        long_window = timedelta(days=self.config.policy.budget.long_window_days)
        return _AskFacts(
            chats=await uow.conversations.with_personal_chat(ids),
            anchored=await uow.conversations.anchored(sorted({user.tenant_id for user in users})),
            last_answers=await uow.surveys.last_answers(sorted({user.aad_object_id for user in users})),
            last_asks=await uow.surveys.last_asks(ids),
            sends=await uow.outbox.sends_since(ids, now - long_window),
        )

    def _state(self, user: Person, facts: _AskFacts) -> AskState:
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

    def register(self, actions: CardActions) -> None:
        actions.add(Verb.NPS_SUBMIT, SubmitData, self.submit, invalid=self.submit_invalid)
        actions.add(Verb.NPS_COMMENT, CommentData, self.comment, invalid=self.comment_invalid)
        actions.add(Verb.NPS_EDIT, InstanceData, self.edit)
        actions.add(Verb.NPS_SNOOZE, InstanceData, self.snooze)
        actions.add(Verb.NPS_DECLINE, InstanceData, self.decline)
        actions.add(Verb.NPS_REFRESH, InstanceData, self.refresh)

    async def submit(self, data: SubmitData, actor: Actor, now: datetime) -> Card:
        """A score (and comment): a first answer, the same again, or an edit within the grace period."""
        card = await self._first_answer(data, actor, now)
        if card is not None:
            return card
        async with self.uow_factory() as uow:
            instance, owner, answer = await self._owned_instance(uow, data.instance, actor)
            return await self._submit(uow, instance, owner, answer, data, now)

    async def submit_invalid(self, invalid: ValidationError, raw: dict[str, Any], actor: Actor, now: datetime) -> Card:
        """The survey again, saying what was wrong: a bad comment keeps the score, a bad score keeps the comment."""
        ref = _instance_of(raw)
        async with self.uow_factory() as uow:
            instance, owner, answer = await self._owned_instance(uow, ref.instance, actor)
        if answer is None and now > instance.expires_at:
            return self._state_card(instance, owner, NpsState.CLOSED)
        error = _comment_error(invalid)
        if error == "error.bad_request" and any(e["loc"] == ("score",) for e in invalid.errors()):
            comment = raw.get("comment")
            kept = (comment.strip() or None) if isinstance(comment, str) else None
            view = self._view(instance.id, owner.aad_object_id, owner.locale, error="error.score_invalid", comment=kept)
        else:
            view = self._view(
                instance.id, owner.aad_object_id, owner.locale, error=error, score=_score_or_none(raw.get("score"))
            )
        return build_nps_card(view)

    async def comment(self, data: CommentData, actor: Actor, now: datetime) -> Card:
        """A comment added after the score, within the grace period."""
        async with self.uow_factory() as uow:
            instance, owner, answer = await self._owned_instance(uow, data.instance, actor)
            if answer is None:
                return build_nps_card(self._view(instance.id, owner.aad_object_id, owner.locale))
            comment = data.comment.strip() if data.comment else None
            if comment and self._editable(answer, now):
                grace_until = answer.answered_at + self.config.edit_grace
                result = await uow.surveys.submit(
                    instance, owner.aad_object_id, answer.score, comment, now, grace_until
                )
                await uow.commit()
                answer = result.answer
            return self._answered_card(instance, owner, answer, now)

    async def comment_invalid(self, invalid: ValidationError, raw: dict[str, Any], actor: Actor, now: datetime) -> Card:
        """The thanks stay, with what was wrong: the person may try again."""
        ref = _instance_of(raw)
        async with self.uow_factory() as uow:
            instance, owner, answer = await self._owned_instance(uow, ref.instance, actor)
        if answer is None:
            return build_nps_card(self._view(instance.id, owner.aad_object_id, owner.locale))
        return self._answered_card(instance, owner, answer, now, error=_comment_error(invalid))

    async def edit(self, data: InstanceData, actor: Actor, now: datetime) -> Card:
        """The survey again with the answer filled in, while the grace period lasts."""
        async with self.uow_factory() as uow:
            instance, owner, answer = await self._owned_instance(uow, data.instance, actor)
        if answer is None:
            return self._unanswered_card(instance, owner, now)
        if not self._editable(answer, now):
            return self._answered_card(instance, owner, answer, now)
        view = self._view(instance.id, owner.aad_object_id, owner.locale, score=answer.score, comment=answer.comment)
        return build_nps_card(view)

    async def snooze(self, data: InstanceData, actor: Actor, now: datetime) -> Card:
        """The person chose "Ask me later": no NPS ask for NURTURE_NPS_SNOOZE_DAYS."""
        async with self.uow_factory() as uow:
            instance, owner, answer = await self._owned_instance(uow, data.instance, actor)
            if answer is not None:
                return self._answered_card(instance, owner, answer, now)
            until = now + timedelta(days=self.config.policy.snooze_days)
            await uow.users.set_nps_snooze(owner.id, until, now)
            await uow.surveys.set_status(instance.id, "snoozed")
            await uow.commit()
        return self._state_card(instance, owner, NpsState.SNOOZED)

    async def decline(self, data: InstanceData, actor: Actor, now: datetime) -> Card:
        """The person chose "Don't ask me": no more NPS asks for them."""
        async with self.uow_factory() as uow:
            instance, owner, answer = await self._owned_instance(uow, data.instance, actor)
            if answer is not None:
                return self._answered_card(instance, owner, answer, now)
            await uow.users.set_nps_declined(owner.id, now)
            await uow.surveys.set_status(instance.id, "declined")
            await uow.commit()
        return self._state_card(instance, owner, NpsState.DECLINED)

    async def refresh(self, data: InstanceData, actor: Actor, now: datetime) -> Card:
        """The card as it stands now (Teams asks when the card is shown again)."""
        async with self.uow_factory() as uow:
            instance, owner, answer = await self._owned_instance(uow, data.instance, actor)
        if answer is not None:
            return self._answered_card(instance, owner, answer, now)
        return self._unanswered_card(instance, owner, now)

    def _unanswered_card(self, instance: Ask, owner: Person, now: datetime) -> Card:
        """The state an ask without an answer is in: snoozed, declined, closed, or open."""
        if instance.status in ("snoozed", "declined"):
            return self._state_card(instance, owner, NpsState(instance.status))
        if now > instance.expires_at:
            return self._state_card(instance, owner, NpsState.CLOSED)
        return build_nps_card(self._view(instance.id, owner.aad_object_id, owner.locale))

    async def _first_answer(self, data: SubmitData, actor: Actor, now: datetime) -> Card | None:
        """A first answer to an open ask of one's own, through the answer writer (one trip where the database
        allows); None when it is anything else or could not be stored there: then the unit of work decides."""
        if actor.tenant_id is None or actor.aad_object_id is None:
            return None
        answer_category = category(data.score)
        answer = FirstAnswer(
            instance_id=str(data.instance),
            tenant_id=actor.tenant_id,
            aad_object_id=actor.aad_object_id,
            score=data.score,
            comment=data.comment,
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
        return self._thanks(answer.instance_id, actor.aad_object_id, stored.locale, data.score, data.comment, editable)

    async def _submit(
        self,
        uow: SurveysUnitOfWork,
        instance: Ask,
        owner: Person,
        answer: GivenAnswer | None,
        data: SubmitData,
        now: datetime,
    ) -> Card:
        if answer is None and now > instance.expires_at:
            return self._state_card(instance, owner, NpsState.CLOSED)
        grace_until = (answer.answered_at if answer else now) + self.config.edit_grace
        result = await uow.surveys.submit(instance, owner.aad_object_id, data.score, data.comment, now, grace_until)
        if result.outcome in (SubmitOutcome.CREATED, SubmitOutcome.EDITED):
            created = result.outcome is SubmitOutcome.CREATED
            signal = bot_signal(owner.tenant_id, owner.aad_object_id, BotSignal.CARD_ANSWER, now) if created else None
            raised = await record_answered(uow, instance, owner.aad_object_id, result.answer.score, signal, now)
            await uow.commit()
            _count(category(result.answer.score), created=created, raised=raised)
        return self._answered_card(instance, owner, result.answer, now)

    async def _owned_instance(
        self, uow: SurveysUnitOfWork, instance_id: uuid.UUID, actor: Actor
    ) -> tuple[Ask, Person, GivenAnswer | None]:
        """The ask, its recipient and their answer so far; only the recipient may act on it."""
        found = await uow.surveys.answering(str(instance_id))
        if found is None:
            raise Refused("error.unknown_survey")
        instance, owner, answer = found
        if owner.aad_object_id != actor.aad_object_id or owner.tenant_id != actor.tenant_id:
            raise Refused("error.not_yours")
        return instance, owner, answer

    def _editable(self, answer: GivenAnswer, now: datetime) -> bool:
        return now <= answer.answered_at + self.config.edit_grace

    def _answered_card(
        self, instance: Ask, owner: Person, answer: GivenAnswer, now: datetime, error: str | None = None
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

    def _state_card(self, instance: Ask, owner: Person, state: NpsState) -> dict[str, Any]:
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


def _instance_of(raw: dict[str, Any]) -> InstanceData:
    try:
        return InstanceData.model_validate(raw)
    except ValidationError:
        raise Refused("error.bad_request") from None


def _score_or_none(value: Any) -> int | None:
    try:
        return validate_score(value)
    except ValueError:
        return None
