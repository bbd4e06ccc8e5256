"""The body of an invoke's answer card, as botbuilder's send path treats it."""

from __future__ import annotations

import copy
import json

from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.schema import Activity, ActivityTypes, ConversationReference

from bot.teams.handler import CardAnswer

CARD = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "Thanks"}]}


def answer_activity() -> tuple[Activity, CardAnswer]:
    body = CardAnswer(statusCode=200, type="application/vnd.microsoft.card.adaptive", value=copy.deepcopy(CARD))
    return Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=200, body=body)), body


def test_botbuilders_copy_of_the_answer_keeps_the_body_itself() -> None:
    """TurnContext.send_activities deep-copies each activity and applies the conversation to the copy; the answer's
    body rides along as the same object, so its card is never walked and copied."""
    activity, body = answer_activity()
    sent = TurnContext.apply_conversation_reference(
        copy.deepcopy(activity), ConversationReference(channel_id="msteams")
    )
    assert sent is not activity and sent.value is not activity.value  # the activity and InvokeResponse are copies
    assert sent.value.body is body
    assert sent.channel_id == "msteams" and activity.channel_id is None


def test_the_answer_body_writes_out_as_the_plain_json_it_holds() -> None:
    activity, body = answer_activity()
    written = json.loads(json.dumps(copy.deepcopy(activity).value.body))
    assert written == {"statusCode": 200, "type": "application/vnd.microsoft.card.adaptive", "value": CARD}
    assert isinstance(body, dict)  # what the web layer writes as JSON unchanged (bot.teams.messages)
