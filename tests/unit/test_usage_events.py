"""Checking a batch of usage events: what one event gets alone, it gets in a batch (ids and names checked once per
batch, tenants asked once), in the same order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.engagement.usage import Rejection, UsageEvent, parse_batch, parse_event

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
TENANTS = ["AAAA-1", "aaaa-1", "bbbb-2", "bad tenant", "", "cccc-3"]
USERS = ["Person-1", "person-1", "p2", "-leading-dash", "x" * 65, "p3"]
NAMES = ["report_created", "teams.installed", "bad name", "export", "a" * 101]


def _random_event(rng: random.Random) -> Any:
    if rng.random() < 0.05:
        return rng.choice(["not an object", ["a list"], None, {"tenant_id": "t", "extra": 1}])
    event = {
        "tenant_id": rng.choice([*TENANTS, 7, None]),
        "user_id": rng.choice([*USERS, ["list"]]),
        "name": rng.choice([*NAMES, 3]),
        "timestamp": rng.choice(
            [(NOW - timedelta(hours=rng.randrange(5000))).isoformat(), "2026-12-03T10:00:00", "yesterday"]
        ),
    }
    if rng.random() < 0.1:
        event["properties"] = rng.choice([{"k": "v"}, "text"])
    return event


def test_a_batch_checks_each_event_as_it_would_be_checked_alone() -> None:
    rng = random.Random(9)
    raws = [_random_event(rng) for _ in range(3000)]
    asked: list[str] = []

    def refusal(tenant: str) -> str | None:
        asked.append(tenant)
        return "not allowed" if tenant == "bbbb-2" else None

    events, rejections = parse_batch(raws, NOW, refusal)
    alone = [parse_event(raw, NOW) for raw in raws]
    expected_rejections = [
        Rejection(i, p if isinstance(p, str) else "not allowed")
        for i, p in enumerate(alone)
        if isinstance(p, str) or p.tenant_id == "bbbb-2"
    ]
    assert rejections == expected_rejections
    assert events == [p for p in alone if isinstance(p, UsageEvent) and p.tenant_id != "bbbb-2"]
    assert len(events) > 50 and len(rejections) > 1000  # both kinds, many times over
    assert sorted(asked) == sorted(set(asked)) == ["aaaa-1", "bbbb-2", "cccc-3"]  # once per tenant


def test_ids_are_stored_in_lower_case_and_reserved_names_refused_every_time() -> None:
    stamp = NOW.isoformat()
    raws = [
        {"tenant_id": "AAAA-1", "user_id": "Person-1", "name": "export", "timestamp": stamp},
        {"tenant_id": "aaaa-1", "user_id": "person-1", "name": "export", "timestamp": stamp},
        {"tenant_id": "aaaa-1", "user_id": "person-1", "name": "teams.installed", "timestamp": stamp},
        {"tenant_id": "aaaa-1", "user_id": "person-1", "name": "teams.installed", "timestamp": stamp},
    ]
    events, rejections = parse_batch(raws, NOW)
    assert [(e.tenant_id, e.aad_object_id) for e in events] == [("aaaa-1", "person-1")] * 2
    assert [r.index for r in rejections] == [2, 3] and all("reserved" in r.reason for r in rejections)
    assert isinstance(parse_event(raws[2], NOW, allow_reserved=True), UsageEvent)  # the bot's own signals pass
