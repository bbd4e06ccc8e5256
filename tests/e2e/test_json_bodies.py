"""Bodies that are not what an endpoint takes get a 4xx with a reason on all three JSON endpoints, never a 5xx.

Deep nesting used to end in RecursionError and a 500 (a thousand nested arrays is 2 KB, and /api/messages parses
before any token check). Bodies nested up to the bound are read as usual; one level more is refused with 400.
"""

from __future__ import annotations

import gzip
import json
import sys
from typing import Any

import brotli
import pytest
from aiohttp import ClientResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.json_body import MAX_DEPTH
from tests.conftest import INGEST_TOKEN, Harness
from tests.support.activities import TENANT, message
from tests.support.usage import event

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

AUTH = {"Authorization": f"Bearer {INGEST_TOKEN}"}
TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"
RENEWAL = f"/api/tenants/{TENANT}/renewal"


def nested(depth: int, shape: str) -> Any:
    """A value `depth` levels deep: arrays in arrays, or objects in objects (built without recursion)."""
    value: Any = 1
    for _ in range(depth):
        value = [value] if shape == "arrays" else {"a": value}
    return value


def deep_text(depth: int, shape: str) -> bytes:
    """The same as JSON text, written out directly: json.dumps itself recurses."""
    if shape == "arrays":
        return b"[" * depth + b"1" + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


async def post_json(harness: Harness, method: str, path: str, body: bytes, headers: dict[str, str]) -> ClientResponse:
    return await harness.client.request(
        method, path, data=body, headers={**headers, "Content-Type": "application/json"}
    )


async def signed_activity(harness: Harness, activity: dict[str, Any]) -> ClientResponse:
    body = json.dumps(activity).encode()
    token = harness.token(serviceurl=activity["serviceUrl"])
    return await post_json(harness, "POST", "/api/messages", body, {"Authorization": f"Bearer {token}"})


ENDPOINTS = {
    "messages, no token": ("POST", "/api/messages", {}),
    "usage events": ("POST", "/api/usage/events", AUTH),
    "renewal": ("PUT", RENEWAL, AUTH),
}


# every body is within the endpoint's size limit (the renewal takes 4 KB): only its nesting is wrong
DEEP = [
    (endpoint, depth, shape)
    for endpoint in ENDPOINTS
    for shape in ("arrays", "objects")
    for depth in (MAX_DEPTH + 1, 800, 1000, 2000, 40_000)
    if len(deep_text(depth, shape)) <= (4096 if endpoint == "renewal" else 256 * 1024)
]


@pytest.mark.parametrize(("endpoint", "depth", "shape"), DEEP)
async def test_a_body_nested_too_deep_is_refused_with_400(
    harness: Harness, endpoint: str, depth: int, shape: str
) -> None:
    method, path, headers = ENDPOINTS[endpoint]
    response = await post_json(harness, method, path, deep_text(depth, shape), headers)
    body = await response.json()
    assert response.status == 400, body
    assert TOO_DEEP in body["error"]
    assert sum((await harness.rows()).values()) == 0


@pytest.mark.parametrize("shape", ["arrays", "objects"])
async def test_an_activity_nested_to_the_bound_is_processed_and_one_more_level_refused(
    harness: Harness, shape: str
) -> None:
    url = harness.connector.service_url
    at_bound = message("help", service_url=url, value=nested(MAX_DEPTH - 1, shape))  # the activity is level 1
    response = await signed_activity(harness, at_bound)
    assert response.status == 200, await response.text()
    assert harness.connector.sent(), "the turn ran and replied"

    over = message("help", service_url=url, value=nested(MAX_DEPTH, shape))
    response = await signed_activity(harness, over)
    assert response.status == 400
    assert TOO_DEEP in (await response.json())["error"]


@pytest.mark.parametrize("shape", ["arrays", "objects"])
async def test_usage_events_nested_to_the_bound_are_read_and_one_more_level_refused(
    harness: Harness, shape: str
) -> None:
    # levels: the document, "events", the event, then its properties
    at_bound = json.dumps({"events": [event(properties=nested(MAX_DEPTH - 3, shape))]}).encode()
    response = await post_json(harness, "POST", "/api/usage/events", at_bound, AUTH)
    assert response.status == 202, await response.text()  # read as a batch: the event itself is judged on its own

    over = json.dumps({"events": [event(properties=nested(MAX_DEPTH - 2, shape))]}).encode()
    response = await post_json(harness, "POST", "/api/usage/events", over, AUTH)
    assert response.status == 400
    assert TOO_DEEP in (await response.json())["error"]


@pytest.mark.parametrize("shape", ["arrays", "objects"])
async def test_a_renewal_nested_to_the_bound_is_read_and_one_more_level_refused(harness: Harness, shape: str) -> None:
    at_bound = json.dumps({"renewal_date": "2027-03-31", "note": nested(MAX_DEPTH - 1, shape)}).encode()
    response = await post_json(harness, "PUT", RENEWAL, at_bound, AUTH)
    assert response.status == 200, await response.text()

    over = json.dumps({"renewal_date": "2027-03-31", "note": nested(MAX_DEPTH, shape)}).encode()
    response = await post_json(harness, "PUT", RENEWAL, over, AUTH)
    assert response.status == 400
    assert TOO_DEEP in (await response.json())["error"]


ODD_BODIES = {
    "NaN": b'{"renewal_date": NaN}',
    "Infinity": b'{"events": [Infinity]}',
    "a number too large for a float": b'{"events": [{"properties": {"x": 1e999}}]}',
    "an integer of 5,000 digits": b'{"events": [' + b"9" * 5000 + b"]}",
    "a byte-order mark": b'\xef\xbb\xbf{"events": []}',
    "UTF-16": '{"events": []}'.encode("utf-16"),
    "a lone surrogate": b'{"events": [{"name": "\\ud800"}]}',
    "empty": b"",
}


@pytest.mark.parametrize("case", list(ODD_BODIES))
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
async def test_odd_json_never_gets_a_5xx(harness: Harness, endpoint: str, case: str) -> None:
    method, path, headers = ENDPOINTS[endpoint]
    response = await post_json(harness, method, path, ODD_BODIES[case], headers)
    assert 400 <= response.status < 500 or response.status in (200, 202), await response.text()
    if response.status >= 400:
        assert (await response.json())["error"]


COMPRESSED = {
    "gzip that is not gzip": ("gzip", b"not gzip at all", 400, "Content-Encoding"),
    "deflate that is not deflate": ("deflate", b"not deflate", 400, "Content-Encoding"),
    "gzip of a deep body": ("gzip", gzip.compress(deep_text(2000, "arrays")), 400, TOO_DEEP),
    "gzip of 50 MB of spaces": ("gzip", gzip.compress(b" " * 50_000_000), 413, ""),
    "br that is not br": ("br", b"not brotli", 400, "Content-Encoding"),
    "br of a deep body": ("br", brotli.compress(deep_text(2000, "arrays")), 400, TOO_DEEP),
    "br of 50 MB of spaces": ("br", brotli.compress(b" " * 50_000_000), 413, ""),
    "zstd that is not zstd": ("zstd", b"not zstd", 400, "Content-Encoding"),
    "zstd of 50 MB of spaces": ("zstd", zstd.compress(b" " * 50_000_000), 413, ""),
}


@pytest.mark.parametrize("case", list(COMPRESSED))
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
async def test_a_compressed_body_is_held_to_the_same_checks(harness: Harness, endpoint: str, case: str) -> None:
    """aiohttp inflates gzip, deflate, br and zstd bodies before the route reads them (with Brotli and zstd
    installed; without them, it answered br and zstd with its own plain-text 400 naming the missing package)."""
    method, path, headers = ENDPOINTS[endpoint]
    encoding, body, status, reason = COMPRESSED[case]
    response = await post_json(harness, method, path, body, {**headers, "Content-Encoding": encoding})
    assert response.status == status, await response.text()
    assert reason in (await response.json())["error"]


# -- property: random JSON-ish bodies never get a 5xx --------------------------------------------------------------

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
BODIES = st.one_of(
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),  # NaN and Infinity included: json.dumps writes them
    st.binary(max_size=200),
    st.integers(0, 3000).flatmap(lambda d: st.sampled_from([deep_text(d, "arrays"), deep_text(d, "objects")])),
)
ACTIVITY_FIELDS = [
    "type",
    "id",
    "serviceUrl",
    "channelId",
    "from",
    "recipient",
    "conversation",
    "channelData",
    "value",
    "name",
    "text",
    "locale",
    "timestamp",
    "localTimezone",
    "membersAdded",
    "attachments",
    "entities",
    "replyToId",
]
EVENT_FIELDS = ["tenant_id", "user_id", "name", "timestamp", "properties"]
PROPERTY = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None
)


def _server_error(response: ClientResponse, body: str, upstream_may_fail: bool = False) -> str | None:
    """The status and body of a 5xx; with `upstream_may_fail`, 502 is an answer: the Bot Connector failed (here the
    fake, whose router answers ids it cannot route, such as "{", with a plain-text 404)."""
    if response.status < 500 or (upstream_may_fail and response.status == 502):
        return None
    return f"{response.status}: {body[:300]}"


@PROPERTY
@given(body=BODIES, endpoint=st.sampled_from(list(ENDPOINTS)))
async def test_random_bodies_never_get_a_5xx(harness: Harness, body: bytes, endpoint: str) -> None:
    method, path, headers = ENDPOINTS[endpoint]
    response = await post_json(harness, method, path, body, headers)
    assert _server_error(response, await response.text()) is None


@PROPERTY
@given(overrides=st.dictionaries(st.sampled_from(ACTIVITY_FIELDS), JSON_VALUES, max_size=3))
async def test_signed_activities_with_random_fields_never_get_a_5xx(
    harness: Harness, overrides: dict[str, Any]
) -> None:
    activity = {**message("help", service_url=harness.connector.service_url), **overrides}
    service_url = activity["serviceUrl"] if isinstance(activity["serviceUrl"], str) else ""
    token = harness.token(serviceurl=service_url)
    response = await post_json(
        harness, "POST", "/api/messages", json.dumps(activity).encode(), {"Authorization": f"Bearer {token}"}
    )
    assert _server_error(response, await response.text(), upstream_may_fail=True) is None


@PROPERTY
@given(
    overrides=st.dictionaries(st.sampled_from(EVENT_FIELDS), JSON_VALUES, max_size=3),
    renewal=JSON_VALUES,
)
async def test_usage_events_and_renewals_with_random_fields_never_get_a_5xx(
    harness: Harness, overrides: dict[str, Any], renewal: Any
) -> None:
    batch = json.dumps({"events": [{**event(), **overrides}]}).encode()
    response = await post_json(harness, "POST", "/api/usage/events", batch, AUTH)
    assert _server_error(response, await response.text()) is None
    response = await post_json(harness, "PUT", RENEWAL, json.dumps({"renewal_date": renewal}).encode(), AUTH)
    assert _server_error(response, await response.text()) is None


LONE_SURROGATE = "\ud800"  # a UTF-16 half: JSON can spell it ("\ud800"), UTF-8 cannot hold it


@pytest.mark.parametrize(
    "field", ["locale", "localTimezone", "id", "text", "conversation.id", "from.aadObjectId", "channelData.tenant.id"]
)
async def test_text_that_is_not_unicode_is_refused_with_400(harness: Harness, field: str) -> None:
    """A lone surrogate reached the database driver (500 on SQLite, 503 on PostgreSQL: Teams would retry it for
    ever); it is refused with the body, before the token is even looked at."""
    activity = message("help", service_url=harness.connector.service_url)
    *parents, last = field.split(".")
    holder = activity
    for name in parents:
        holder = holder[name]
    holder[last] = f"x{LONE_SURROGATE}"
    response = await signed_activity(harness, activity)
    assert response.status == 400
    assert "not valid Unicode" in (await response.json())["error"]
    batch = json.dumps({"events": [event(properties={"note": LONE_SURROGATE})]}).encode()
    response = await post_json(harness, "POST", "/api/usage/events", batch, AUTH)
    assert response.status == 400 and "not valid Unicode" in (await response.json())["error"]
    paired = json.dumps({"events": [event(properties={"note": "\U0001f600"})]}, ensure_ascii=True).encode()
    assert (await post_json(harness, "POST", "/api/usage/events", paired, AUTH)).status == 202  # a pair is fine
    assert (await harness.rows())["inbound_activities"] == 0
