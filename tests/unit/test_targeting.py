"""Targeting rules over generated usage histories: exactly who gets which campaign, why, and the boundaries."""

from __future__ import annotations

import gc
import random
import weakref
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bot.engagement.asking import AskPolicy
from bot.engagement.budget import AttentionBudget
from bot.engagement.campaigns import Campaign, CampaignSet
from bot.engagement.kinds import Renewal
from bot.engagement.targeting import (
    Match,
    Outcome,
    Person,
    Refusal,
    Target,
    Touch,
    active_count,
    decide,
    decide_alike,
    target,
)
from bot.engagement.usage import WORD_DAYS, ActiveDays, FeatureUse, epoch_day
from bot.tuning import collector_paused
from bot.usecases.audience import _Run

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday, 10:00 UTC
TODAY = NOW.date()
POLICY = AskPolicy()  # quiet hours 18-9 local, no weekends, 1 message per 3 days / 4 per 30 days


def campaigns(*defs: dict[str, Any], features: dict[str, Any] | None = None) -> CampaignSet:
    return CampaignSet.model_validate({"features": features or {}, "campaigns": list(defs)})


ONBOARDING = {"id": "onboarding", "kind": "onboarding", "days": [0, 3, 7, 14]}
ADOPTION = {"id": "first-report", "kind": "adoption", "milestone": "report_created", "within_days": 7}
MILESTONE = {"id": "milestones", "kind": "milestone", "event": "report_created", "counts": [10, 100]}
ANNIVERSARY = {"id": "anniversary", "kind": "milestone", "anniversary_days": [365]}
LEGACY = {"id": "low-usage", "kind": "legacy", "key_features": ["dashboard_shared"]}
REENGAGE = {"id": "whats-new", "kind": "reengagement", "inactive_days": 30}


def days_ago(*offsets: int) -> frozenset[date]:
    return frozenset(TODAY - timedelta(days=o) for o in offsets)


def person(n: int = 0, **fields: Any) -> Person:
    values: dict[str, Any] = {
        "tenant_id": "tenant-a",
        "aad_object_id": f"user-{n:05d}",
        "reachable": True,
        "installed_at": NOW - timedelta(days=60),
        "first_seen_at": NOW - timedelta(days=60),
        "last_seen_at": NOW - timedelta(days=1),
    }
    values.update(fields)
    return Person(**values)


def used(name: str, total: int, last_days_ago: int = 1) -> dict[str, FeatureUse]:
    return {name: FeatureUse(total, NOW - timedelta(days=50), NOW - timedelta(days=last_days_ago))}


def only(results: list[Target], outcome: Outcome | None = None) -> Target:
    chosen = [r for r in results if outcome is None or r.outcome is outcome]
    assert len(chosen) == 1, chosen
    return chosen[0]


# -- onboarding -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("installed_days", "step"),
    [
        (0, "day-0"),
        (1, "day-0"),
        (2, "day-0"),
        (3, "day-3"),
        (5, "day-3"),
        (6, None),
        (7, "day-7"),
        (13, None),
        (14, "day-14"),
    ],
)
def test_onboarding_steps_by_day_after_install(installed_days: int, step: str | None) -> None:
    """Day 13 is between tips (and past day 7's catch-up); day 14 is the last tip."""
    p = person(installed_at=NOW - timedelta(days=installed_days))
    results = target([p], campaigns(ONBOARDING), POLICY, NOW)
    assert [r.step for r in results] == ([step] if step else [])
    if step:
        assert results[0].reason.startswith(f"installed {installed_days} day")


def test_an_onboarding_step_is_sent_once() -> None:
    p = person(installed_at=NOW - timedelta(days=3), touches=[Touch("onboarding", "day-3", NOW - timedelta(hours=5))])
    assert target([p], campaigns(ONBOARDING), POLICY, NOW) == []


def test_install_days_are_counted_in_the_persons_time_zone_around_midnight() -> None:
    """Days after install are the person's calendar days, so "day 14" starts at *their* midnight.

    Installed 10 Nov 11:30 UTC = 11 Nov 00:30 in Auckland (UTC+13). At 24 Nov 10:59 UTC it is still the 24th in
    Auckland (day 13) but already day 14 in UTC; one minute later it is the 25th in Auckland: day 14 there too.
    """
    installed = datetime(2026, 11, 10, 11, 30, tzinfo=UTC)
    auckland = person(installed_at=installed, time_zone="Pacific/Auckland")
    in_utc = person(1, installed_at=installed, time_zone="UTC")
    before = datetime(2026, 11, 24, 10, 59, tzinfo=UTC)
    after = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
    assert [
        (r.aad_object_id, r.step) for r in target([auckland, in_utc], campaigns(ONBOARDING), _any_time(), before)
    ] == [(in_utc.aad_object_id, "day-14")]
    assert [
        (r.aad_object_id, r.step) for r in target([auckland, in_utc], campaigns(ONBOARDING), _any_time(), after)
    ] == [
        (auckland.aad_object_id, "day-14"),
        (in_utc.aad_object_id, "day-14"),
    ]
    # installed late in the evening in Honolulu (UTC-10): 21 Nov 00:30 UTC is their 20th, so the 23rd is day 3
    honolulu = person(installed_at=datetime(2026, 11, 21, 0, 30, tzinfo=UTC), time_zone="Pacific/Honolulu")
    evening = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)  # 10:00 on the 23rd in Honolulu; already day 2 in UTC
    assert [r.step for r in target([honolulu], campaigns(ONBOARDING), POLICY, evening)] == ["day-3"]


def _any_time() -> AskPolicy:
    """No quiet hours and weekends allowed: isolates the day arithmetic."""
    return AskPolicy(quiet_start=POLICY.quiet_end, quiet_end=POLICY.quiet_end, skip_weekends=False)


# -- adoption ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("installed_days", "active", "report_total", "expected"),
    [
        (
            21,
            (1, 2, 5, 8, 9, 12, 13, 15),
            0,
            "active 7 of last 14 days, milestone `report_created` not reached 21 days",
        ),
        (7, (1, 2, 3), 0, "active 3 of last 14 days, milestone `report_created` not reached 7 days"),
        (6, (1, 2, 3), 0, None),  # within the first 7 days: give them time
        (21, (1, 2), 0, None),  # only 2 active days: not "active recently"
        (21, (1, 2, 14), 0, None),  # the 3rd active day is 14 days ago, outside the 14-day window
        (21, (1, 2, 13), 0, "active 3 of last 14 days"),  # 13 days ago is inside it
        (21, (1, 2, 3, 4), 1, None),  # milestone reached
    ],
)
def test_adoption_nudge_audience(
    installed_days: int, active: tuple[int, ...], report_total: int, expected: str
) -> None:
    features = used("report_created", report_total) if report_total else {}
    p = person(installed_at=NOW - timedelta(days=installed_days), active_days=days_ago(*active), features=features)
    results = target([p], campaigns(ADOPTION), POLICY, NOW)
    if expected is None:
        assert results == []
    else:
        assert only(results).step == "nudge-1"
        assert expected in only(results).reason
        assert only(results).facts["feature"] == "report_created"


def test_adoption_repeats_after_its_cooldown_up_to_max_sends() -> None:
    base = person(installed_at=NOW - timedelta(days=40), active_days=days_ago(1, 2, 3, 4))
    first = Touch("first-report", "nudge-1", NOW - timedelta(days=13, hours=23))
    blocked = only(target([replace(base, touches=[first])], campaigns(ADOPTION), POLICY, NOW))
    assert blocked.outcome is Outcome.BLOCKED
    assert blocked.blocked_by == "cooldown: last first-report message 13 days ago (every 14 days)"
    assert blocked.not_before == first.decided_at + timedelta(days=14)
    first = replace(first, decided_at=NOW - timedelta(days=14))  # exactly the cooldown: allowed again
    again = only(target([replace(base, touches=[first])], campaigns(ADOPTION), POLICY, NOW))
    assert (again.outcome, again.step) == (Outcome.SEND, "nudge-2")
    second = Touch("first-report", "nudge-2", NOW - timedelta(days=20))
    assert target([replace(base, touches=[first, second])], campaigns(ADOPTION), POLICY, NOW) == []  # max_sends 2


# -- milestones -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "last_days_ago", "done", "step"),
    [
        (9, 1, (), None),
        (10, 1, (), "count-10"),
        (10, 8, (), None),  # reached, but the last use is 8 days old: not fresh any more
        (10, 7, (), "count-10"),
        (150, 0, (), "count-100"),  # a backfill jumps two milestones: celebrate the highest only
        (150, 0, ("count-100",), None),
        (150, 0, ("count-10",), "count-100"),
    ],
)
def test_count_milestones(total: int, last_days_ago: int, done: tuple[str, ...], step: str | None) -> None:
    touches = [Touch("milestones", s, NOW - timedelta(days=30)) for s in done]
    p = person(features=used("report_created", total, last_days_ago), touches=touches)
    assert [r.step for r in target([p], campaigns(MILESTONE), POLICY, NOW)] == ([step] if step else [])


@pytest.mark.parametrize(("age", "matches"), [(364, False), (365, True), (371, True), (372, False)])
def test_anniversary_window(age: int, matches: bool) -> None:
    p = person(first_seen_at=NOW - timedelta(days=age), installed_at=NOW - timedelta(days=age))
    results = target([p], campaigns(ANNIVERSARY), POLICY, NOW)
    assert [r.step for r in results] == (["anniversary-365"] if matches else [])


# -- legacy / low usage -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recent", "previous", "matches"),
    [
        (5, 10, True),  # exactly 50 % fewer
        (6, 10, False),  # 40 % fewer
        (0, 4, True),  # the guard's minimum
        (0, 3, False),  # too little before to call it a drop: noise
        (2, 4, True),
    ],
)
def test_usage_drop_with_a_noise_guard(recent: int, previous: int, matches: bool) -> None:
    active = days_ago(*range(recent), *range(14, 14 + previous))
    p = person(active_days=active, features=used("dashboard_shared", 3))
    results = target([p], campaigns(LEGACY), POLICY, NOW)
    if matches:
        hit = only(results)
        assert hit.step == f"drop-{TODAY.isoformat()}"
        assert hit.reason.startswith(f"active {recent} of last 14 days vs {previous} of the 14 before")
    else:
        assert results == []


def test_windows_meet_at_day_13_and_14() -> None:
    """Day 13 ago is the last day of the recent window; day 14 ago the first of the previous one."""
    assert active_count(days_ago(13), TODAY, 14) == 1
    assert active_count(days_ago(14), TODAY, 14) == 0
    assert active_count(days_ago(14), TODAY - timedelta(days=14), 14) == 1
    assert active_count(days_ago(27), TODAY - timedelta(days=14), 14) == 1
    assert active_count(days_ago(28), TODAY - timedelta(days=14), 14) == 0


@pytest.mark.parametrize("seed", range(20))
def test_active_days_as_bits_count_like_the_set_of_dates(seed: int) -> None:
    """ActiveDays (what storage hands targeting) answers every window like the plain set of dates, across word
    boundaries, for windows reaching past either end, and after being cut to a span."""
    rng = random.Random(seed)
    days = frozenset(TODAY - timedelta(days=rng.randrange(-3, 200)) for _ in range(rng.randrange(0, 120)))
    first = TODAY - timedelta(days=180)
    bits = ActiveDays.of(days, first)
    known = {d for d in days if d >= first}
    assert set(bits) == known and len(bits) == len(known)
    assert all(d in bits for d in known) and TODAY - timedelta(days=300) not in bits
    words: dict[int, int] = {}
    for day in days:
        words[epoch_day(day) // WORD_DAYS] = words.get(epoch_day(day) // WORD_DAYS, 0) | 1 << epoch_day(day) % WORD_DAYS
    stored = ActiveDays.from_words(words)
    assert set(stored) == days
    oldest, newest = TODAY - timedelta(days=rng.randrange(0, 150)), TODAY + timedelta(days=rng.randrange(-20, 3))
    cut = stored.within(oldest, newest)
    assert set(cut) == {d for d in days if oldest <= d <= newest}
    for _ in range(30):
        last_day = TODAY - timedelta(days=rng.randrange(-5, 250))
        window = rng.randrange(1, 130)
        assert active_count(bits, last_day, window) == active_count(known, last_day, window), (last_day, window)
        assert active_count(stored, last_day, window) == active_count(days, last_day, window), (last_day, window)


def test_key_features_never_used() -> None:
    fresh = person(installed_at=NOW - timedelta(days=29), active_days=days_ago(1, 2))
    assert target([fresh], campaigns(LEGACY), POLICY, NOW) == []  # before unused_after_days (30)
    settled = replace(fresh, installed_at=NOW - timedelta(days=30))
    hit = only(target([settled], campaigns(LEGACY), POLICY, NOW))
    assert hit.reason == "active, but never used `dashboard_shared` in 30 days since install"
    inactive = replace(settled, active_days=frozenset())
    assert target([inactive], campaigns(LEGACY), POLICY, NOW) == []  # that is re-engagement's job


# -- re-engagement ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("idle", "matches"), [(29, False), (30, True), (90, True)])
def test_reengagement_after_n_days_unseen(idle: int, matches: bool) -> None:
    p = person(last_seen_at=NOW - timedelta(days=idle))
    results = target([p], campaigns(REENGAGE), POLICY, NOW)
    assert bool(results) is matches
    if matches:
        assert results[0].reason.startswith(f"not seen for {idle} days (last seen ")


def test_reengagement_is_once_per_absence() -> None:
    last_seen = NOW - timedelta(days=40)
    step = f"absent-since-{last_seen.date().isoformat()}"
    p = person(last_seen_at=last_seen, touches=[Touch("whats-new", step, NOW - timedelta(days=10))])
    assert target([p], campaigns({**REENGAGE, "cooldown_days": 0}), POLICY, NOW) == []
    back_then_gone = replace(p, last_seen_at=NOW - timedelta(days=31))  # came back, left again: a new absence
    assert (
        only(target([back_then_gone], campaigns({**REENGAGE, "cooldown_days": 0}), POLICY, NOW)).outcome is Outcome.SEND
    )


# -- gates, priority, holdout -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "blocked_by"),
    [
        ({"reachable": False}, "not reachable"),
        ({"opted_out": True}, "opted out of all messages"),
        ({"stopped_kinds": frozenset({"reengagement"})}, "asked to stop reengagement messages"),
        ({"recent_sends": [NOW - timedelta(days=2, hours=23)]}, "attention budget: 1 message(s) in the last 3 days"),
        ({"time_zone": "Asia/Tokyo"}, "quiet hours in Asia/Tokyo (local time 19:00)"),
    ],
)
def test_gates_block_with_a_reason(fields: dict[str, Any], blocked_by: str) -> None:
    p = person(last_seen_at=NOW - timedelta(days=45), **fields)
    hit = only(target([p], campaigns(REENGAGE), POLICY, NOW))
    assert hit.outcome is Outcome.BLOCKED
    assert hit.blocked_by is not None and hit.blocked_by.startswith(blocked_by)


def test_the_budget_counts_other_kinds_and_frees_up_after_three_days() -> None:
    p = person(last_seen_at=NOW - timedelta(days=45), recent_sends=[NOW - timedelta(days=3)])
    assert only(target([p], campaigns(REENGAGE), POLICY, NOW)).outcome is Outcome.SEND
    tight = AskPolicy(budget=AttentionBudget(max_per_short_window=1, short_window_days=3, max_per_long_window=1))
    assert only(target([p], campaigns(REENGAGE), tight, NOW)).outcome is Outcome.BLOCKED


def test_weekend_blocks_until_monday_morning() -> None:
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    hit = only(target([person(last_seen_at=saturday - timedelta(days=40))], campaigns(REENGAGE), POLICY, saturday))
    assert hit.blocked_by == "weekend in UTC"
    assert hit.not_before == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_first_campaign_in_the_file_wins_and_the_rest_wait() -> None:
    p = person(last_seen_at=NOW - timedelta(days=40), features=used("report_created", 12, 0))
    results = target([p], campaigns(MILESTONE, REENGAGE), POLICY, NOW)
    assert [(r.campaign_id, r.outcome) for r in results] == [
        ("milestones", Outcome.SEND),
        ("whats-new", Outcome.DEFERRED),
    ]
    assert results[1].blocked_by == "milestones goes first"
    # a blocked first campaign does not hold the second back
    stopped = replace(p, stopped_kinds=frozenset({"milestone"}))
    results = target([stopped], campaigns(MILESTONE, REENGAGE), POLICY, NOW)
    assert [(r.campaign_id, r.outcome) for r in results] == [
        ("milestones", Outcome.BLOCKED),
        ("whats-new", Outcome.SEND),
    ]


def test_holdout_is_stable_per_person_and_close_to_its_share() -> None:
    people = [person(n, last_seen_at=NOW - timedelta(days=40)) for n in range(4000)]
    defs = campaigns({**REENGAGE, "holdout_percent": 10})
    first = {r.aad_object_id: r.outcome for r in target(people, defs, POLICY, NOW)}
    second = {
        r.aad_object_id: r.outcome for r in target(list(reversed(people)), defs, POLICY, NOW + timedelta(hours=1))
    }
    assert first == second  # the same people are held out, in any order, at any time
    share = Counter(first.values())[Outcome.HOLDOUT] / len(people)
    assert 0.085 < share < 0.115  # 10 % ± 1.5 points (the binomial sd for n=4000 is 0.47 points)
    # and another campaign with the same share holds out different people (salted by campaign id)
    other = {
        r.aad_object_id: r.outcome
        for r in target(people, campaigns({**REENGAGE, "id": "x", "holdout_percent": 10}), POLICY, NOW)
    }
    assert other != first


def test_people_alike_are_decided_as_each_alone() -> None:
    """decide_alike asks the gates once for a group, but draws each person's holdout: every person's targets are
    what `decide` makes for them alone (blocked, deferred, sent or held out)."""
    defs = campaigns({**MILESTONE, "holdout_percent": 30}, {**REENGAGE, "holdout_percent": 50}, LEGACY)
    milestone, reengage, legacy = defs.active
    found = Match("count-10", "used 12 times", {"count": 10})
    matched = [(milestone, found), (reengage, Match("absent-since-x", "away", {"days": 40})), (legacy, found)]
    people = [f"user-{n:05d}" for n in range(300)]
    asked: list[str] = []

    def refusal(campaign: Campaign) -> Refusal | None:
        asked.append(campaign.id)
        return ("cooldown", NOW) if campaign.id == "milestones" else None

    user_ids = [1000 + n for n in range(300)]
    flat = decide_alike("tenant-a", people, matched, refusal, user_ids, "de-DE")
    assert asked == ["milestones", "whats-new"]  # once for all 300
    assert len(flat) == 3 * len(people)  # person after person, one per matched campaign
    grouped = [flat[n : n + 3] for n in range(0, len(flat), 3)]
    alone = [decide("tenant-a", aad, matched, refusal) for aad in people]
    assert grouped == alone
    assert all(not any(a is b for a, b in zip(x, y, strict=True)) for x, y in zip(grouped, alone, strict=True))
    outcomes = Counter(targets[1].outcome for targets in grouped)
    assert set(outcomes) == {Outcome.SEND, Outcome.HOLDOUT}  # drawn person by person …
    assert {targets[0].outcome for targets in grouped} == {Outcome.BLOCKED}  # … after the gates
    assert {targets[2].outcome for targets in grouped} == {Outcome.DEFERRED}
    assert [t.aad_object_id for targets in grouped for t in targets[:1]] == people
    # each target says where its card goes: the person's own user row, the group's language
    assert [{(t.user_id, t.locale) for t in targets} for targets in grouped] == [{(u, "de-DE")} for u in user_ids]
    assert {(t.user_id, t.locale) for targets in alone for t in targets} == {(None, None)}


def test_holdout_is_decided_after_the_gates() -> None:
    """Someone who could not be messaged is not counted in either group."""
    defs = campaigns({**REENGAGE, "holdout_percent": 50})
    people = [person(n, last_seen_at=NOW - timedelta(days=40), opted_out=True) for n in range(50)]
    assert {r.outcome for r in target(people, defs, POLICY, NOW)} == {Outcome.BLOCKED}


def test_a_mixed_population_gets_exactly_the_expected_campaigns() -> None:
    """Generated histories: 8 stories x 25 people; every person's single outcome is known in advance."""
    defs = campaigns(ONBOARDING, ADOPTION, MILESTONE, LEGACY, REENGAGE)
    stories = {
        "new": ({"installed_at": NOW - timedelta(days=3), "active_days": days_ago(0, 1)}, ("onboarding", "day-3")),
        "stuck": (
            {"installed_at": NOW - timedelta(days=20), "active_days": days_ago(1, 3, 5, 7)},
            ("first-report", "nudge-1"),
        ),
        "power": (
            {
                "active_days": days_ago(*range(0, 28)),
                "features": {**used("report_created", 11), **used("dashboard_shared", 2)},
            },
            ("milestones", "count-10"),
        ),
        "fading": (
            {
                "active_days": days_ago(2, *range(14, 24)),
                "features": {**used("report_created", 3), **used("dashboard_shared", 2)},
            },
            ("low-usage", f"drop-{TODAY}"),
        ),
        "narrow": (
            {"active_days": days_ago(1, 2, 15, 16), "features": used("report_created", 3)},
            ("low-usage", f"unused-{TODAY}"),
        ),
        "gone": (
            {"last_seen_at": NOW - timedelta(days=33), "features": used("report_created", 3)},
            ("whats-new", "absent-since-2026-10-22"),
        ),
        "healthy": (
            {
                "active_days": days_ago(*range(0, 28, 2)),
                "features": {**used("report_created", 5), **used("dashboard_shared", 2)},
            },
            None,
        ),
        "uninstalled": ({"reachable": False, "last_seen_at": NOW - timedelta(days=33)}, None),
    }
    people, expected = [], {}
    for s, (fields, outcome) in enumerate(stories.values()):
        for i in range(25):
            p = person(s * 100 + i, **fields)
            people.append(p)
            expected[p.aad_object_id] = outcome
    sent = {
        r.aad_object_id: (r.campaign_id, r.step) for r in target(people, defs, POLICY, NOW) if r.outcome is Outcome.SEND
    }
    assert sent == {aad: outcome for aad, outcome in expected.items() if outcome is not None}


# -- renewals ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_left", "reminder"),
    [(91, None), (90, 90), (61, 90), (60, 60), (58, 60), (31, 60), (30, 30), (0, 30), (-1, None)],
)
def test_renewal_reminder_thresholds(days_left: int, reminder: int | None) -> None:
    renewal = TODAY + timedelta(days=days_left)
    found = Renewal(id="renewal", kind="renewal").targets({"t1": renewal}, set(), TODAY)
    assert [r.days_before for r in found] == ([reminder] if reminder else [])
    if reminder:
        assert found[0].cause_key == f"renewal:t1:{renewal.isoformat()}:{reminder}"
        left = f"{days_left} day{'s' * (days_left != 1)}"
        assert found[0].reason == f"renewal on {renewal.isoformat()}, in {left} (the {reminder}-day reminder)"
        assert Renewal(id="renewal", kind="renewal").targets({"t1": renewal}, {found[0].cause_key}, TODAY) == []


def test_what_a_dry_run_makes_skips_the_young_collections_but_no_garbage_stays() -> None:
    """While targets are made the collector is off; afterwards they sit in the oldest generation (no young pass walks
    them), nothing stays frozen, the collector is as it was, and a cycle dropped meanwhile is still collected."""

    class Node:
        def __init__(self) -> None:
            self.other: Node | None = None

    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        kept = Node()
        first, second = Node(), Node()
        first.other, second.other = second, first  # a cycle, dropped at once
        dropped = weakref.ref(first)
        del first, second
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()  # no collection of its own accord while this looks
    try:
        assert any(o is kept for o in gc.get_objects(generation=2))
        assert not any(o is kept for o in gc.get_objects(generation=0))
        gc.collect(0)
        assert dropped() is not None  # a young pass does not look at it …
        gc.collect()
        assert dropped() is None  # … a full one frees it
    finally:
        gc.enable()


def test_targets_come_out_by_tenant_and_person_however_the_batches_came() -> None:
    """A tenant's targets that came in several batches are merged by person; one that came in one batch (as all do
    on PostgreSQL) keeps its batch's order, which is that order already. A person's targets stay in priority order."""

    def made(tenant: str, user_id: int, campaign: str) -> Target:
        return Target(tenant, f"aad-{user_id}", campaign, "adoption", "s", "r", Outcome.SEND, user_id=user_id)

    run = _Run(anchored=set())
    run.add({"b": [made("b", 7, "first"), made("b", 3, "first"), made("b", 7, "second")]})
    run.add({"a": [made("a", 9, "first"), made("a", 2, "first")]})
    run.add({"b": [made("b", 5, "first"), made("b", 1, "first"), made("b", 5, "second")]})
    ordered = [(t.tenant_id, t.user_id, t.campaign_id) for t in run.ordered()]
    assert ordered == [
        ("a", 2, "first"),
        ("a", 9, "first"),
        ("b", 1, "first"),
        ("b", 3, "first"),
        ("b", 5, "first"),
        ("b", 5, "second"),
        ("b", 7, "first"),
        ("b", 7, "second"),
    ]
    assert run.merge == {"b"}


def test_every_kind_is_in_the_campaigns_file_and_the_dispatch_table() -> None:
    """A kind is its module plus one line in bot.engagement.kinds: the file's union and KINDS name the same ones,
    and every kind decided per person has both its rule and its SQL prefilter."""
    from typing import get_args

    from bot.engagement import kinds
    from bot.engagement.kinds.base import CampaignBase

    union = set(get_args(get_args(kinds.Campaign)[0]))
    assert union == set(kinds.KINDS)
    assert set(kinds.BY_NAME) == {kind.name() for kind in kinds.KINDS}
    for kind in kinds.KINDS:
        if kind.per_person:
            assert kind.match is not CampaignBase.match, kind
            assert kind.prefilter is not CampaignBase.prefilter, kind
        else:
            with pytest.raises(NotImplementedError):
                kind.model_validate({"id": "x", "kind": kind.name()}).match(None, (), NOW)  # type: ignore[arg-type]


def test_a_group_refuses_moments_its_query_did_not_read() -> None:
    """A kind whose rule reads first or last seen, or an event's last use, must say so (reads_moments); without it the
    group says what is missing instead of handing over another column's value."""
    from storage.targeting import AudienceQuery

    key = ("tenant-a", "en-US", "UTC", 1, 3, epoch_day(TODAY) - 1, None, None, None)  # onboarding reads no numbers
    query = AudienceQuery(campaigns(ONBOARDING).active, NOW, NOW - timedelta(days=30))
    group = query._group(key, [1], ["user-00001"])
    assert group.days_since_install == 3 and group.today == TODAY
    with pytest.raises(LookupError, match="reads_moments"):
        _ = group.since
    with pytest.raises(LookupError, match="reads_moments"):
        group.last_used("report_created")
    with_moments = AudienceQuery(campaigns(ONBOARDING, ANNIVERSARY).active, NOW, NOW - timedelta(days=30))
    seen = NOW - timedelta(days=400)
    group = with_moments._group((*key, seen.strftime("%Y-%m-%d %H:%M:%S.%f"), None), [1], ["user-00001"])
    assert group.since == seen and group.last_seen_at is None
