"""The workloads the benchmarks measure, in one place: shaped like a vendor's customers, not like a test's data.

A benchmark's data decides what it rewards. Data where everyone installed the same day, one tenant holds everyone and
each person always sends the same event lets a shortcut look like speed. So every benchmark draws from this module:

| trait | shape |
|---|---|
| tenants | sizes follow Zipf's law (s = 1.1): a few with tens of thousands of people, a long tail of small ones |
| installs | spread over three years, more in recent months (the app grows); nobody is active before installing |
| zones | Teams time zones of a worldwide customer base, daylight saving ones included; 80 % in the tenant's home zone |
| locales | from the zone (de-DE in Berlin, ja-JP in Tokyo), one in ten en-US anywhere |
| behaviour | heavy, regular, light, fading (used to be regular), gone (nothing for 35 days or more), never used |
| events | a dozen feature names of uneven popularity, several per person, not tied to the person |
| batches | usage batches from many distinct people over many days, as an app's telemetry pipeline sends them |
| delivery | several cards per conversation (so Teams' per-conversation limits bind), a 50-150 ms connector round trip |

Everything is drawn from `SEED`, so two runs of a benchmark measure the same data.
"""

from __future__ import annotations

import bisect
import itertools
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

SEED = 20261207

PEOPLE_PER_TENANT = 500  # on average: 1,000,000 people in 2,000 tenants
ZIPF_EXPONENT = 1.1
INSTALL_YEARS = 3
INSTALL_SKEW = 1.5  # days ago = span x u^1.5 (u uniform): more recent installs than old ones
HOME_ZONE_SHARE = 0.8

# (Teams time zone, weight, locale of people there); None: Teams did not tell the zone (Nurture uses UTC)
ZONES: tuple[tuple[str | None, int, str], ...] = (
    ("America/New_York", 16, "en-US"),
    ("America/Chicago", 6, "en-US"),
    ("America/Los_Angeles", 9, "en-US"),
    ("America/Sao_Paulo", 5, "pt-BR"),
    ("America/Mexico_City", 3, "es-MX"),
    ("Europe/London", 9, "en-GB"),
    ("Europe/Berlin", 10, "de-DE"),
    ("Europe/Paris", 6, "fr-FR"),
    ("Europe/Madrid", 3, "es-ES"),
    ("Asia/Kolkata", 8, "en-IN"),
    ("Asia/Tokyo", 5, "ja-JP"),
    ("Asia/Shanghai", 3, "zh-CN"),
    ("Asia/Riyadh", 2, "ar-SA"),
    ("Australia/Sydney", 4, "en-AU"),
    ("Pacific/Auckland", 1, "en-NZ"),
    ("UTC", 2, "en-US"),
    (None, 8, "en-US"),
)
OTHER_LOCALE = ("en-US", 0.1)


@dataclass(frozen=True)
class Behaviour:
    """How a share of people use the app: the chance of activity on a day, before and within the last 14 days, and
    for `gone` people no activity at all in their last `idle_days_at_least` days."""

    name: str
    share: float
    active: float  # chance of being active on a day (14 days ago and before)
    recent: float  # chance in the last 14 days
    idle_days_at_least: int = 0
    milestone: float = 0.0  # chance they ever reached the value milestone event


BEHAVIOURS: tuple[Behaviour, ...] = (
    Behaviour("heavy", 0.10, active=0.85, recent=0.85, milestone=0.9),
    Behaviour("regular", 0.25, active=0.40, recent=0.40, milestone=0.6),
    Behaviour("light", 0.20, active=0.10, recent=0.10, milestone=0.2),
    Behaviour("fading", 0.15, active=0.55, recent=0.08, milestone=0.4),
    Behaviour("gone", 0.22, active=0.30, recent=0.0, idle_days_at_least=35, milestone=0.3),
    Behaviour("never", 0.08, active=0.0, recent=0.0, milestone=0.0),
)
MILESTONE = "report_created"

# feature events and how often each is the one sent (app_opened most; a long tail of features)
EVENTS: tuple[tuple[str, int], ...] = (
    ("app_opened", 40),
    (MILESTONE, 14),
    ("dashboard_viewed", 12),
    ("dashboard_shared", 6),
    ("export", 6),
    ("alert_configured", 4),
    ("comment_added", 5),
    ("filter_saved", 3),
    ("integration_connected", 2),
    ("invite_sent", 3),
    ("template_used", 3),
    ("schedule_created", 2),
)


def tenant_sizes(people: int, tenants: int | None = None) -> list[int]:
    """How many people each tenant has, largest first: Zipf's law over `tenants` (default: one per 500 people),
    every tenant at least one person, summing to `people`."""
    count = max(1, min(people, tenants if tenants is not None else round(people / PEOPLE_PER_TENANT)))
    weights = [rank**-ZIPF_EXPONENT for rank in range(1, count + 1)]
    total = sum(weights)
    sizes = [max(1, int(people * w / total)) for w in weights]
    short = people - sum(sizes)
    sizes[0] += short  # the rounding's remainder goes to the largest tenant (it may be negative when tiny)
    while sizes[0] < 1:  # more tenants than people would allow: take from the next largest
        donor = max(range(1, count), key=lambda i: sizes[i])
        sizes[donor] -= 1
        sizes[0] += 1
    return sizes


def guid(rng: random.Random) -> str:
    """An Entra-style id: random, so people share no prefixes and sit in no order."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass(frozen=True)
class Person:
    tenant_id: str
    aad_object_id: str
    installed_at: datetime
    time_zone: str | None
    locale: str
    behaviour: Behaviour


def people(count: int, now: datetime, tenants: int | None = None, seed: int = SEED) -> Iterator[Person]:
    """`count` people in Zipf-sized tenants, with install instants, zones, locales and behaviours as documented."""
    rng = random.Random(seed)
    zone_weights = list(itertools.accumulate(weight for _, weight, _ in ZONES))
    behaviour_weights = list(itertools.accumulate(b.share for b in BEHAVIOURS))

    def pick_zone() -> tuple[str | None, int, str]:
        return ZONES[bisect.bisect(zone_weights, rng.random() * zone_weights[-1])]

    span = INSTALL_YEARS * 365 * 86_400
    for size in tenant_sizes(count, tenants):
        tenant_id = guid(rng)
        home = pick_zone()
        for _ in range(size):
            zone, _, locale = home if rng.random() < HOME_ZONE_SHARE else pick_zone()
            if rng.random() < OTHER_LOCALE[1]:
                locale = OTHER_LOCALE[0]
            behaviour = BEHAVIOURS[
                min(len(BEHAVIOURS) - 1, bisect.bisect(behaviour_weights, rng.random() * behaviour_weights[-1]))
            ]
            installed = now - timedelta(seconds=span * rng.random() ** INSTALL_SKEW)
            yield Person(tenant_id, guid(rng), installed, zone, locale, behaviour)


def event_name(rng: random.Random) -> str:
    weights = _EVENT_WEIGHTS
    return EVENTS[bisect.bisect(weights, rng.random() * weights[-1])][0]


_EVENT_WEIGHTS = list(itertools.accumulate(weight for _, weight in EVENTS))


def usage_batches(
    batches: int, size: int, now: datetime, population: int = 200_000, days: int = 30, seed: int = SEED
) -> Iterator[list[dict[str, Any]]]:
    """Usage batches as an app's telemetry pipeline sends them: each of `size` events from as many distinct people
    (drawn from a `population` in Zipf-sized tenants, a person's tenant always the same), event names drawn by
    popularity whoever sends them, instants over the last `days` days. Later batches meet people seen before."""
    rng = random.Random(seed)
    crowd = [(p.tenant_id, p.aad_object_id) for p in people(population, now, seed=seed)]
    for _ in range(batches):
        events = []
        for tenant_id, aad_object_id in rng.sample(crowd, size):
            at = now - timedelta(seconds=rng.random() * days * 86_400)
            events.append(
                {
                    "tenant_id": tenant_id,
                    "user_id": aad_object_id,
                    "name": event_name(rng),
                    "timestamp": at.astimezone(UTC).isoformat(),
                }
            )
        yield events


# -- delivery ---------------------------------------------------------------------------------------------------

CARDS_PER_CONVERSATION = 10  # more than Teams' 7 a second for one conversation: its limits bind
CONNECTOR_DELAY_SECONDS = 0.05  # each answer from the connector takes 50 ms ...
CONNECTOR_JITTER_SECONDS = 0.10  # ... plus up to 100 ms more, at random: 50-150 ms round trips
DELIVERY_SHAPES: tuple[tuple[int, int], ...] = ((1, 2_000), (4, 2_000), (20, 500))  # (tenants, cards a tenant)
