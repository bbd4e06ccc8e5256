"""Odd and hostile activity shapes, signed correctly: never a 5xx; refusals are 4xx with a reason, storing nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Harness
from tests.support.activities import TENANT, message

LONG = "x" * 5000
# case → (fields to overwrite, expected status or None for "any 2xx")
CASES: dict[str, tuple[dict[str, Any], int | None]] = {
    "from is a string": ({"from": "someone"}, 400),
    "recipient is a string": ({"recipient": "bot"}, 400),
    "membersAdded is a string": ({"type": "conversationUpdate", "membersAdded": "bot"}, 400),
    "timestamp is not a date": ({"timestamp": "yesterday"}, 400),
    "channelData is a list": ({"channelData": [1, 2]}, 403),
    "tenant is a string": ({"channelData": {"tenant": "abc"}}, 403),
    "no recipient": ({"recipient": None}, None),
    "conversationType is a number": ({"conversation": {"id": "c1", "conversationType": 5, "tenantId": TENANT}}, None),
    "locale is a number": ({"locale": 42}, None),
    "text is an object": ({"text": {"a": 1}}, None),
    "aadObjectId is a number": ({"from": {"id": "29:x", "aadObjectId": 5}}, None),
    "unknown activity type": ({"type": "frobnicate"}, None),
    "invoke value is a string": ({"type": "invoke", "name": "adaptiveCard/action", "value": "x"}, None),
    "invoke action is a list": ({"type": "invoke", "name": "adaptiveCard/action", "value": {"action": [1]}}, None),
    "invoke verb is a number": (
        {"type": "invoke", "name": "adaptiveCard/action", "value": {"action": {"verb": 5, "data": {}}}},
        None,
    ),
    "unsupported invoke": ({"type": "invoke", "name": "composeExtension/query", "value": {}}, 400),
    "5,000-character AAD id": ({"from": {"id": "29:x", "aadObjectId": LONG}}, 400),
    "5,000-character conversation id": (
        {"conversation": {"id": LONG, "conversationType": "personal", "tenantId": TENANT}},
        400,
    ),
    "5,000-character locale": ({"locale": LONG}, 400),
    "5,000-character time zone": ({"localTimezone": LONG}, 400),
    "5,000-character activity id": ({"id": LONG}, 400),
    # PostgreSQL's text cannot hold NUL: refused before anything is stored, on both databases alike
    "NUL in the AAD id": ({"from": {"id": "29:x", "aadObjectId": "aaaa\u0000"}}, 400),
    "NUL in the locale": ({"locale": "en\u0000US"}, 400),
    "NUL in the conversation id": ({"conversation": {"id": "a:\u0000", "conversationType": "personal"}}, 400),
    # lower case must not lengthen an id: "İ".lower() is two characters, and 64 of them no longer fit the column
    "an AAD id of 64 dotted capital Is": ({"from": {"id": "29:x", "aadObjectId": "\u0130" * 64}}, None),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_malformed_activity(harness: Harness, case: str) -> None:
    fields, expected = CASES[case]
    activity = message("help", service_url=harness.connector.service_url)
    activity.update(fields)
    response = await harness.post(activity)
    text = await response.text()
    assert response.status < 500, text
    if expected is None:
        assert 200 <= response.status < 300, text
        return
    assert response.status == expected, text
    assert "error" in await response.json()
    assert sum((await harness.rows()).values()) == 0
