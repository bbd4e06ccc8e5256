"""NurtureBot: routes Teams activities to the use cases and sends their cards back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botbuilder.core import ActivityHandler, CardFactory, InvokeResponse, MessageFactory, TurnContext
from botbuilder.schema import ActivityTypes

from bot.teams.inbound import aad_object_id_of, tenant_of, to_inbound
from bot.usecases.card_actions import Actor, CardActions
from bot.usecases.lifecycle import Inbound, Lifecycle, Reply
from cards.nps import ErrorCardView, NotSavedView, build_error_card, build_not_saved_card
from cards.verbs import Verb
from storage.engine import DATABASE_UNAVAILABLE, LOCK_WAIT_MS, database_unavailable, lock_wait

log = logging.getLogger(__name__)

# Seconds between tries to drop a failed turn's claim while the database is away: about two minutes in all, which
# covers a database restart or a fail-over.
RELEASE_PAUSES: tuple[float, ...] = (1, 2, 4, 8, 15, 15, 15, 15, 15, 15, 15)

_WORTH_ANOTHER_TRY: tuple[type[BaseException], ...] = (TimeoutError, *DATABASE_UNAVAILABLE)
_NO_TIME_FOR_THE_DATABASE: tuple[type[BaseException], ...] = (asyncio.CancelledError, *DATABASE_UNAVAILABLE)

# Activities Teams retries when unanswered and that have no answer body to repeat: processed at most once.
_DEDUPLICATED = {ActivityTypes.message, ActivityTypes.conversation_update, ActivityTypes.installation_update}


class NurtureBot(ActivityHandler):
    def __init__(
        self,
        lifecycle: Lifecycle,
        actions: CardActions,
        clock: Callable[[], datetime],
    ) -> None:
        self.lifecycle = lifecycle
        self.actions = actions
        self.clock = clock
        self._releasing: set[asyncio.Future[None]] = set()  # claims being dropped (strong references until done)

    async def on_turn(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if activity.type not in _DEDUPLICATED or not activity.id:
            await super().on_turn(turn_context)
            return
        inbound = to_inbound(activity)
        if not await self.lifecycle.claim(inbound, self.clock()):
            log.info("duplicate %s activity ignored", activity.type)
            turn_context.turn_state["nurture.duplicate"] = True
            return
        try:
            await super().on_turn(turn_context)
        except _NO_TIME_FOR_THE_DATABASE:  # out of time, or no database: the answer must not wait for it
            self._release_later(inbound)
            raise
        except BaseException:  # Teams' retry must be processed: drop the claim before answering
            await self.lifecycle.release(inbound)
            raise

    def _release_later(self, inbound: Inbound) -> None:
        """Drop the claim of a turn that failed because the database was busy or away, so Teams' retry is processed:
        in a task of its own, since the answer to Teams must not wait, trying again while the database stays away."""

        async def release() -> None:
            for pause in (*RELEASE_PAUSES, None):
                try:
                    with lock_wait(LOCK_WAIT_MS / 1000):
                        await self.lifecycle.release(inbound)
                    return
                except _WORTH_ANOTHER_TRY as exc:
                    if pause is None or not (isinstance(exc, TimeoutError) or database_unavailable(exc)):
                        log.exception("the claim of a failed %s activity could not be dropped", inbound.activity_type)
                        return
                    log.warning("the database is away; dropping a failed turn's claim again in %.0f s", pause)
                    await asyncio.sleep(pause)
                except Exception:
                    log.exception("the claim of a failed %s activity could not be dropped", inbound.activity_type)
                    return

        task = asyncio.ensure_future(release())
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        reply = await self.lifecycle.message(to_inbound(turn_context.activity), self.clock())
        await _send(turn_context, reply)

    async def on_installation_update(self, turn_context: TurnContext) -> None:
        reply = await self.lifecycle.installation_update(to_inbound(turn_context.activity), self.clock())
        if reply:
            await _send(turn_context, reply)

    async def on_conversation_update_activity(self, turn_context: TurnContext) -> None:
        await self.lifecycle.conversation_update(to_inbound(turn_context.activity), self.clock())

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        """Action.Execute answers are handled here, not by the SDK.

        botbuilder 4.17.1 serializes an AdaptiveCardInvokeResponse twice on this path and crashes (500); the body
        built here is a plain dict that the web layer writes once. `value.action` arrives as a plain dict.
        """
        activity = turn_context.activity
        if activity.name != "adaptiveCard/action":
            # Nurture offers no other invoke (sign-in, task modules, message extensions): say so with a 4xx
            return InvokeResponse(status=400, body={"error": f"invoke {str(activity.name)[:64]!r} is not supported"})
        value = activity.value if isinstance(activity.value, dict) else {}
        raw_action = value.get("action")
        action: dict[str, Any] = raw_action if isinstance(raw_action, dict) else {}
        actor = Actor(tenant_id=tenant_of(activity), aad_object_id=aad_object_id_of(activity), locale=activity.locale)
        verb = str(action.get("verb") or "")
        card = await self.actions.answer(verb, action.get("data"), actor, self.clock())
        body = {"statusCode": 200, "type": "application/vnd.microsoft.card.adaptive", "value": card}
        return InvokeResponse(status=200, body=body)


def not_saved_answer(activity: Any) -> dict[str, Any]:
    """The answer to an Action.Execute that could not be saved in time (a busy or locked database): a card that says
    nothing was saved, whose "Try again" sends the same action again; for an action we do not know, the error card."""
    value = activity.value if isinstance(activity.value, dict) else {}
    action = value.get("action")
    verb, data = (str(action.get("verb") or ""), action.get("data")) if isinstance(action, dict) else ("", None)
    if verb in Verb.__members__.values() and isinstance(data, dict):
        card = build_not_saved_card(NotSavedView(activity.locale, Verb(verb), data))
    else:
        card = build_error_card(ErrorCardView(activity.locale, "error.not_saved"))
    return {"statusCode": 200, "type": "application/vnd.microsoft.card.adaptive", "value": card}


async def _send(turn_context: TurnContext, reply: Reply) -> None:
    message = MessageFactory.attachment(CardFactory.adaptive_card(reply.card))
    message.summary = reply.summary
    await turn_context.send_activity(message)
