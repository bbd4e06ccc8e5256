"""Every way a request can fail authentication answers 401/403 (never 500) and stores nothing.

Real tokens signed per case with our own RSA keys, served as OpenID metadata + JWKS by a key server in a thread.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import APP_ID, Harness
from tests.support.activities import OTHER_TENANT, message
from tests.support.keys import claims

Case = Callable[[Harness, dict[str, Any]], str | None]


def _signed(**overrides: Any) -> Case:
    return lambda h, activity: "Bearer " + h.keys.good.sign(claims(APP_ID, activity["serviceUrl"], **overrides))


def _hs256(h: Harness, activity: dict[str, Any]) -> str:
    secret = "a-shared-secret-that-must-not-work"
    return "Bearer " + jwt.encode(
        claims(APP_ID, activity["serviceUrl"]), secret, algorithm="HS256", headers={"kid": "key-ok"}
    )


def _alg_none(h: Harness, activity: dict[str, Any]) -> str:
    return "Bearer " + jwt.encode(
        claims(APP_ID, activity["serviceUrl"]), None, algorithm="none", headers={"kid": "key-ok"}
    )


NOW = int(time.time())
CASES: dict[str, tuple[Case, int]] = {
    "no header": (lambda h, a: None, 401),
    "empty header": (lambda h, a: "", 401),
    "basic scheme": (lambda h, a: "Basic dXNlcjpwYXNzd29yZA==", 401),
    "bearer without token": (lambda h, a: "Bearer ", 401),
    "garbage": (lambda h, a: "Bearer not.a.jwt", 401),
    "garbage base64": (lambda h, a: "Bearer eyJhbGciOi.eyJpc3Mi.c2ln", 401),
    "kid is a list": (lambda h, a: "Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6WzFdfQ.e30.e30", 401),  # {"kid": [1]}
    "kid is null": (lambda h, a: "Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6bnVsbH0.e30.e30", 401),
    "header is a list": (lambda h, a: "Bearer WzFd.e30.e30", 401),
    "hs256": (_hs256, 401),
    "alg none": (_alg_none, 401),
    "wrong audience": (_signed(aud="someone-elses-bot"), 401),
    "wrong issuer": (_signed(iss="https://sts.windows.net/evil/"), 401),
    "expired 6 minutes": (_signed(exp=NOW - 360, nbf=NOW - 3600, iat=NOW - 3600), 401),
    "not yet valid": (_signed(nbf=NOW + 900, iat=NOW + 900, exp=NOW + 4000), 401),
    "no exp claim": (_signed(exp=None), 401),
    "bad signature": (lambda h, a: "Bearer " + h.keys.rogue.sign(claims(APP_ID, a["serviceUrl"])), 401),
    "unknown kid": (lambda h, a: "Bearer " + h.keys.good.sign(claims(APP_ID, a["serviceUrl"]), kid="nope"), 401),
    "missing kid": (lambda h, a: "Bearer " + h.keys.good.sign(claims(APP_ID, a["serviceUrl"]), kid=None), 401),
    "key endorsed for skype only": (
        lambda h, a: "Bearer " + h.keys.skype_only.sign(claims(APP_ID, a["serviceUrl"])),
        403,
    ),
    "key without endorsements": (lambda h, a: "Bearer " + h.keys.bare.sign(claims(APP_ID, a["serviceUrl"])), 403),
    "serviceurl claim missing": (_signed(serviceurl=None), 401),
    "serviceurl claim differs": (_signed(serviceurl="https://smba.trafficmanager.net/emea/"), 401),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_refused_and_nothing_stored(harness: Harness, case: str) -> None:
    build, expected = CASES[case]
    activity = message("help", service_url=harness.connector.service_url)
    response = await harness.post(activity, token=build(harness, activity))
    body = await response.json()
    assert response.status == expected, body
    assert body["error"], "a refusal names its reason"
    assert sum((await harness.rows()).values()) == 0
    assert harness.connector.calls == []


async def test_token_four_minutes_expired_is_accepted(harness: Harness) -> None:
    activity = message("help", service_url=harness.connector.service_url)
    token = harness.token(serviceurl=activity["serviceUrl"], exp=int(time.time()) - 240, iat=NOW - 3600, nbf=NOW - 3600)
    response = await harness.post(activity, token=f"Bearer {token}")
    assert response.status == 200, await response.text()
    assert len(harness.connector.sent()) == 1


async def test_valid_token_is_accepted_and_reply_carries_outbound_token(harness: Harness) -> None:
    activity = message("help", service_url=harness.connector.service_url)
    response = await harness.post(activity)
    assert response.status == 200, await response.text()
    [call] = harness.connector.calls
    assert call.authorization == "Bearer test-outbound-token"
    rows = await harness.rows()
    assert rows["users"] == 1 and rows["tenants"] == 1 and rows["inbound_activities"] == 1


async def test_other_tenant_is_refused_and_nothing_stored(harness: Harness) -> None:
    activity = message("help", service_url=harness.connector.service_url, tenant_id=OTHER_TENANT)
    response = await harness.post(activity)
    assert response.status == 403
    assert "tenant" in (await response.json())["error"]
    assert sum((await harness.rows()).values()) == 0
    assert harness.connector.calls == []


async def test_activity_without_tenant_is_refused(harness: Harness) -> None:
    activity = message("help", service_url=harness.connector.service_url, tenant_id=None)
    response = await harness.post(activity)
    assert response.status == 403
    assert sum((await harness.rows()).values()) == 0


async def test_service_url_not_allow_listed_is_never_called(harness: Harness) -> None:
    # a correctly signed token naming an attacker's serviceUrl: the bot must not send its token there
    activity = message("help", service_url="https://attacker.example.net/")
    response = await harness.post(activity)
    assert response.status == 403
    assert "serviceUrl" in (await response.json())["error"]
    assert sum((await harness.rows()).values()) == 0


def _segment(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
TOKEN_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["RS256", "RS512", "HS256", "none"]) | JSON_VALUES,
        "kid": st.sampled_from(["key-ok", "key-skype", ""]) | JSON_VALUES,
        "typ": JSON_VALUES,
    },
)
FORGED = st.builds(
    lambda header, payload, signature: f"Bearer {_segment(header)}.{_segment(payload)}.{signature}",
    TOKEN_HEADERS | JSON_VALUES,
    JSON_VALUES,
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", max_size=40),
)
LATIN_1 = st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f")  # what a client will send
HEADER_TEXT = st.text(LATIN_1, max_size=60).filter(lambda text: text != "valid")  # harness.post's word for a real one


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None)
@given(authorization=FORGED | HEADER_TEXT)
async def test_forged_tokens_are_refused_with_401_or_403(harness: Harness, authorization: str) -> None:
    activity = message("help", service_url=harness.connector.service_url)
    response = await harness.post(activity, token=authorization)
    assert response.status in (401, 403), await response.text()
    assert harness.connector.calls == []
