"""Campaign audiences in one query: the numbers the rules read, for the people some rule may pick.

Loading people and evaluating the rules (bot.engagement.targeting) one by one in Python is too slow for a large
audience. Here the database works out, for every person at once, what the rules read
— local calendar days since install and since last seen, active days in each window (a mask and a popcount over
the person's newest 62-day words, kept in their usage_profiles row beside first and last seen, so one join brings
both), lifetime use of the rules' events — and keeps only the people for whom some campaign's
condition holds; the gates' facts (touches, opt-outs, recent sends) are joined to those people only. Then
it groups the people alike in all of these (most people have no touches, opt-outs or sends, and a handful of
numbers, so groups are far fewer than people), so Python applies the rules themselves once per group
(bot.usecases.audience, with the functions the person-by-person path calls). The query only has to be a faithful
filter and grouping: tests check both paths decide alike on generated tenants with twins, on both databases.

Local days: an instant becomes the person's calendar day with the UTC offset their zone had then, worked out in
Python from zoneinfo (bot.engagement.local_days) and handed to the query as small VALUES lists; zones that kept one
offset since Teams began need no lookup by moment.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from sqlalchemy import BindParameter, Dialect, Float, TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.engagement.asking import local_time
from bot.engagement.kinds import Campaign, Window
from bot.engagement.local_days import DAY_SECONDS, FOREVER, offset_spans
from bot.engagement.reach import ReachFacts
from bot.engagement.targeting import Touch
from bot.engagement.usage import WORD_DAYS, day_of, epoch_day
from storage.campaigns import LIVE_SEND_STATUSES
from storage.engine import READS_ONLY
from storage.models import RECENT_WORDS, UtcDateTime, sqlite_seconds
from storage.sql import driver_value, on_postgres
from storage.sqlite_snapshot import SnapshotReaders, database_file
from storage.usage import profile_word

# the flags column of a group: what it says about the people's reach and opt-out
INSTALLED, UNINSTALLED, REFUSED, OPTED_OUT, HAS_CHAT, SEEN = 1, 2, 4, 8, 16, 32


class _Layout:
    """Where a group's numbers keep what: the query's number columns, in this order."""

    def __init__(self, windows: Sequence[Window], events: Sequence[str], moments: bool) -> None:
        self.active = {w: j for j, w in enumerate(windows)}
        self.total = {e: len(windows) + k for k, e in enumerate(events)}
        # first seen, then last seen, then each event's last use: read only for kinds that set reads_moments
        self.since = len(windows) + len(events) if moments else None
        self.last_used = {e: len(windows) + len(events) + 2 + k for k, e in enumerate(events)} if moments else {}


class AudienceGroup:
    """People some campaign's rule may pick, alike in everything the rules and the gates read: one row of the
    audience query. Most people have no touches, opt-outs or recent sends, so people alike are many, and each group
    is decided once (bot.usecases.audience). It answers what a rule reads (bot.engagement.kinds.Facts); the few
    texts the query packs (opt-outs, sends, touches) are unpacked when asked for."""

    __slots__ = (
        "key",
        "tenant_id",
        "locale",
        "time_zone",
        "today",
        "_flags",
        "days_since_install",
        "_last_day",
        "_stopped",
        "_sends",
        "_touches",
        "_numbers",
        "_layout",
        "user_ids",
        "aad_object_ids",
    )

    def __init__(
        self, key: tuple[Any, ...], today: date, layout: _Layout, user_ids: list[int], aad_object_ids: list[str]
    ) -> None:
        self.key = key  # what the people are alike in: groups with equal keys are decided alike
        (
            self.tenant_id,
            self.locale,
            self.time_zone,
            self._flags,
            self.days_since_install,
            self._last_day,
            self._stopped,
            self._sends,
            self._touches,
        ) = key[:_KEY_COLUMNS]
        self._numbers = key[_KEY_COLUMNS:]
        self.today = today
        self._layout = layout
        self.user_ids = user_ids  # the people: their user rows …
        self.aad_object_ids = aad_object_ids  # … and their AAD object ids, in the same order

    # -- reach and the gates' facts ------------------------------------------------------------------------------

    def reach(self, anchored: bool) -> ReachFacts:
        """What decides whether they can be reached (`anchored`: the bot has a live conversation in their tenant)."""
        return _reach(self._flags, anchored)

    @property
    def has_chat(self) -> bool:
        """Known to have a personal chat (only groups split by `with_chat` know; the query does not ask)."""
        return bool(self._flags & HAS_CHAT)

    @property
    def opted_out(self) -> bool:
        return bool(self._flags & OPTED_OUT)

    @property
    def has_history(self) -> bool:
        """Whether any of them stopped a kind, was sent a message lately or was touched by a campaign."""
        return bool(self._stopped or self._sends or self._touches)

    @property
    def stopped_kinds(self) -> frozenset[str]:
        return frozenset(self._stopped.split("|")) if self._stopped else frozenset()

    @property
    def recent_sends(self) -> list[datetime]:
        """Their recent proactive messages, of every kind (the attention budget)."""
        return moments(self._sends)

    @property
    def touches(self) -> list[Touch]:
        """Every campaign decision about them so far."""
        found = []
        for touch in self._touches.split(",") if self._touches else ():
            campaign, step, at = touch.split(" ", 2)
            found.append(Touch(campaign, step, moment(at)))
        return found

    def with_chat(self, has_chat: bool, user_ids: list[int], aad_object_ids: list[str]) -> AudienceGroup:
        """Some of these people, now known to have a personal chat or not."""
        flags = self._flags | HAS_CHAT if has_chat else self._flags & ~HAS_CHAT
        key = (*self.key[:3], flags, *self.key[4:])
        return AudienceGroup(key, self.today, self._layout, user_ids, aad_object_ids)

    # -- what the rules read (bot.engagement.kinds.Facts) --------------------------------------------------------

    @property
    def last_day(self) -> date | None:
        return day_of(self._last_day) if self._last_day is not None else None

    @property
    def seen(self) -> bool:
        return bool(self._flags & SEEN)

    @property
    def since(self) -> datetime | None:
        return self._moment(self._layout.since, "first seen")

    @property
    def last_seen_at(self) -> datetime | None:
        since = self._layout.since
        return self._moment(since + 1 if since is not None else None, "last seen")

    def active(self, window: Window) -> int:
        return int(self._numbers[self._layout.active[window]])

    def total(self, event: str) -> int | None:
        value = self._numbers[self._layout.total[event]]
        return int(value) if value is not None else None

    def last_used(self, event: str) -> datetime | None:
        return self._moment(self._layout.last_used.get(event), f"when {event} was last used")

    def _moment(self, index: int | None, what: str) -> datetime | None:
        """A moment among the numbers; a kind that reads one without setting reads_moments gets an error, not
        another column's value."""
        if index is None:
            raise LookupError(f"the audience query did not read {what}: the campaign kind must set reads_moments")
        value = self._numbers[index]
        return moment(value) if value is not None else None


@functools.cache  # a few dozen: one per flags and anchoring, shared by every group alike
def _reach(flags: int, anchored: bool) -> ReachFacts:
    return ReachFacts(
        has_chat=bool(flags & HAS_CHAT),
        installed=bool(flags & INSTALLED),
        uninstalled=bool(flags & UNINSTALLED),
        refused=bool(flags & REFUSED),
        tenant_anchored=anchored,
    )


# the query's columns before the numbers: with the numbers, what people of a group are alike in
_CANDIDATE_COLUMNS = ("c.tenant_id", "c.locale", "c.time_zone", "c.flags", "c.day", "c.last_day")
_KEY_COLUMNS = len(_CANDIDATE_COLUMNS) + 3  # … and the gates' three facts


class _Columns:
    """The columns of the query's `people`, for the kinds' prefilters (bot.engagement.kinds.Columns), and the
    values the prefilters bind."""

    day = "day"
    idle = "(today - last_day)"
    since = "since"
    last_seen = "last_seen_at"

    def __init__(self, windows: Sequence[Window], events: Sequence[str]) -> None:
        self.windows, self.events = list(windows), list(events)
        self.values: dict[str, float | datetime] = {}

    def active(self, window: Window) -> str:
        return f"a{self.windows.index(window)}"

    def total(self, event: str) -> str:
        return f"f{self.events.index(event)}_total"

    def last_used(self, event: str) -> str:
        return f"f{self.events.index(event)}_last"

    def value(self, value: float | datetime) -> str:
        name = f"v{len(self.values)}"
        self.values[name] = value
        return f":{name}"

    def typed(self) -> list[BindParameter[Any]]:
        """The values as typed parameters: instants as storage keeps them."""
        return [
            bindparam(name, type_=UtcDateTime() if isinstance(value, datetime) else Float())
            for name, value in self.values.items()
        ]


class AudienceQuery:
    """The query for one set of campaigns (in priority order) at one moment."""

    def __init__(self, campaigns: Sequence[Campaign], now: datetime, sends_since: datetime) -> None:
        self.campaigns = tuple(c for c in campaigns if c.per_person)
        self.now = now
        self.sends_since = sends_since
        windows = dict.fromkeys(w for c in self.campaigns for w in c.windows())
        self.windows = tuple(windows)
        self.events = tuple(dict.fromkeys(e for c in self.campaigns for e in c.events()))
        self.milestones = any(c.reads_moments for c in self.campaigns)
        self._layout = _Layout(self.windows, self.events, self.milestones)
        self._columns = _Columns(self.windows, self.events)
        self._conditions = [c.prefilter(self._columns, now) for c in self.campaigns]
        # the newest local day anywhere (UTC+14) is UTC's tomorrow, the oldest (UTC-12) its yesterday
        utc_day = epoch_day(now.date())
        reach = max((w.ends_before + w.length for w in self.windows), default=1)
        self.first_word = (utc_day - reach) // WORD_DAYS
        self.words = (utc_day + 1) // WORD_DAYS - self.first_word + 1
        if self.words > RECENT_WORDS:  # campaign windows are at most 2 x 90 days: 4 words always reach
            raise ValueError(f"campaign windows reach {reach} days back, beyond a profile's {RECENT_WORDS} words")
        self._utc_today = local_time(now, None).date()
        self._todays: dict[str | None, date] = {}
        self._built: dict[tuple[Any, ...], TextClause] = {}

    # -- running --------------------------------------------------------------------------------------------------

    async def run(self, session: AsyncSession, tenant_id: str | None = None) -> list[AudienceGroup]:
        """The candidates of one tenant, or of every tenant, in groups of people alike (in no particular order; people
        alike are one group)."""
        groups: dict[tuple[Any, ...], AudienceGroup] = {}

        def merge(batch: list[AudienceGroup]) -> None:
            for group in batch:
                found = groups.setdefault(group.key, group)
                if found is not group:
                    found.user_ids.extend(group.user_ids)
                    found.aad_object_ids.extend(group.aad_object_ids)

        await self.each(session, merge, tenant_id)
        return list(groups.values())

    async def each(
        self, session: AsyncSession, take: Callable[[list[AudienceGroup]], None], tenant_id: str | None = None
    ) -> None:
        """The candidates of one tenant, or of every tenant, in groups of people alike, handed to `take` a batch at a
        time. Every tenant at once is one pass over each table: PostgreSQL answers a query per tenant with scans of
        whole tables. A large SQLite audience is decided in parts, one per core (`_parts`): each part's groups are
        handed over as soon as they are found, on a worker thread, while the other parts are still worked out (so the
        caller's work on them fills the time a core would wait for the last part); people alike in two parts then
        come as two groups."""
        postgres = on_postgres(session)
        if not postgres and (parts := await _parts(session, tenant_id)) is not None:
            dialect = session.get_bind().dialect
            await SnapshotReaders(*parts).within(lambda opened: self._in_parts(opened, dialect, tenant_id, take))
            return
        zones = [row[0] for row in await session.execute(_ZONES[tenant_id is None], {"tenant_id": tenant_id})]
        if postgres:
            for setting in _ANALYTIC:
                await session.execute(text(f"SET LOCAL {setting}"))
        try:
            sql, parameters = self._statement(zones, tenant_id, postgres, parted=False)
            rows = await _fetch(session, sql, parameters, postgres)
        finally:
            if postgres:
                for setting in _ANALYTIC:
                    await session.execute(text(f"RESET {setting.split(' ')[0]}"))
        # PostgreSQL hands over arrays, SQLite JSON arrays
        take([self._group(tuple(row[:-2]), row[-2], row[-1]) for row in rows] if postgres else self._decoded(rows))

    def _in_parts(
        self,
        readers: SnapshotReaders,
        dialect: Dialect,
        tenant_id: str | None,
        take: Callable[[list[AudienceGroup]], None],
    ) -> None:
        """`each` on SQLite in ranges of people's AAD object ids, a few per reader, all reading one snapshot (on a
        worker thread). The zones are read in that snapshot too.

        A range's people are read in the order of their ids from ix_users_audience (which holds all the query reads
        of a user row), so their profile and feature rows, keyed by the same id first, are looked up in the order
        they are stored. Entra's ids are random: in the order of the user rows, each look-up would land on a page of
        its own. The ranges shrink round by round (`range_edges`)."""
        scope = {"tenant_id": tenant_id}
        zones = [row[0] for row in readers.fetch(_positional(_ZONES[tenant_id is None], scope, dialect))]
        [(last,)] = readers.fetch(_positional(_LAST_AAD[tenant_id is None], scope, dialect))
        if last is None:
            return
        sql, parameters = self._statement(zones, tenant_id, postgres=False, parted=True)
        edges = range_edges(readers.count, last)
        statements = [
            _positional(sql, parameters | {"low": low, "high": high}, dialect) for low, high in pairwise(edges)
        ]
        for _, groups in readers.each_part(statements, self._decoded):
            take(groups)

    def _statement(
        self, zones: list[str | None], tenant_id: str | None, postgres: bool, parted: bool
    ) -> tuple[TextClause, dict[str, Any]]:
        """The query for these zones (people without one: UTC's numbers), with its parameters but :low and :high."""
        zone_rows, span_rows = self._zones([z for z in zones if z is not None], epoch_day(self.now.date()) + 2)
        # every bit a mask may hold, UTC's (people without a zone) and these zones': SQLite counts no others
        reach = self._masks(self._utc_today)
        for row in zone_rows:
            reach = {name: bits | row[name] for name, bits in reach.items()}
        sql = self._sql(postgres, tenant_id is None, len(zone_rows), len(span_rows), parted, tuple(reach.values()))
        return sql, self._parameters(tenant_id) | _numbered("z", zone_rows) | _numbered("s", span_rows)

    # -- the zones' numbers ------------------------------------------------------------------------------------

    def _zones(self, zones: list[str], last_day: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Each zone's local today, window masks and UTC offset; and, for zones whose offset changed since Teams
        began (no install or usage moment is older), the offset's spans: only those zones' people have their
        moments looked up by span."""
        zone_rows, span_rows = [], []
        for zone in zones:
            today = self._today(zone)
            if abs(today - self._utc_today) > timedelta(days=1):  # the profile's words reach a day either way
                raise ValueError(f"{zone}: local day {today} is more than a day from UTC's {self._utc_today}")
            spans = offset_spans(zone, TEAMS_BEGAN, last_day)
            fixed = spans[0][2] if len(spans) == 1 else None
            zone_rows.append({"zone": zone, "today": epoch_day(today), "shift": fixed} | self._masks(today))
            if fixed is None:
                span_rows += [
                    {"zone": zone, "low": low, "high": high, "shift": shift, "low_at": _at(low), "high_at": _at(high)}
                    for low, high, shift in spans
                ]
        return zone_rows, span_rows

    def _masks(self, today: date) -> dict[str, int]:
        """Per window and stored word, the bits of the window's days for someone whose local day is `today`."""
        found = {}
        for j, window in enumerate(self.windows):
            high = epoch_day(today) - window.ends_before
            low = high - window.length + 1
            for i in range(self.words):
                found[f"m{j}_{i}"] = _mask(self.first_word + i, low, high)
        return found

    # -- the query -------------------------------------------------------------------------------------------

    def _sql(
        self, postgres: bool, every_tenant: bool, zones: int, spans: int, parted: bool, reach: tuple[int, ...]
    ) -> TextClause:
        shape = (postgres, every_tenant, zones, spans, parted, reach)
        if shape not in self._built:
            self._built[shape] = self._build(*shape)
        return self._built[shape]

    def _build(
        self, postgres: bool, every_tenant: bool, zones: int, spans: int, parted: bool, reach: tuple[int, ...]
    ) -> TextClause:
        """`people`: what the conditions read (users, their words, profile and feature rows, their zone's numbers);
        the conditions keep the candidates, and only then are the gates' facts joined. The zone is joined on the
        column itself (no zone: UTC's numbers are written in), so PostgreSQL estimates the joins right. On SQLite
        the candidates read `people` through a subquery with a LIMIT, which it neither flattens nor pushes the
        conditions into: it runs as a co-routine, each person's expressions worked out once and handed straight
        to the filter (flattened, it would work them out twice, for the filter and for the result; materialized,
        it would first write every person to a temporary table). PostgreSQL must not materialize it (a CTE it
        materializes is worked out by one process instead of all cores). `parted`: only the people whose AAD object
        id is from :low up to :high (SQLite's ranges). `reach`: every bit each window's masks hold, in the order of
        `_masks`."""
        utc_today = self._utc_today
        utc = self._masks(utc_today)
        bits = dict(zip(utc, reach, strict=True))
        # SQLite reads the install's seconds from ix_users_audience, which holds this very expression (migration 0016)
        installed = _postgres_seconds("u.installed_at") if postgres else sqlite_seconds("u.installed_at")
        # a profile keeps its last use in seconds too, worked out when it was written (migration 0017)
        last_moment = f"coalesce(p.last_seen_second, {installed})"
        if spans:  # a zone's offset by moment: the span the moment falls in
            shift_installed, shift_last = "coalesce(z.shift, si.shift, 0)", "coalesce(z.shift, sb.shift, 0)"
            # SQLite tries each span of the person's zone in turn (a dozen or more since Teams began where clocks
            # change) and would parse the last moment twice for each: it compares the stored text with the span's
            # bounds as text instead (the same order; a bound is a whole second, so an instant within that second is
            # past it, as its whole seconds are)
            last_text = "coalesce(p.last_seen_at, u.installed_at)"
            last_span = (
                f"sb.low <= {last_moment} AND {last_moment} < sb.high"
                if postgres
                else f"sb.low_at <= {last_text} AND {last_text} < sb.high_at"
            )
            span_joins = (
                f"LEFT JOIN target_spans si ON si.zone = u.time_zone AND si.low <= {installed} "
                f"AND {installed} < si.high "
                f"LEFT JOIN target_spans sb ON sb.zone = u.time_zone AND {last_span} "
            )
        else:
            shift_installed = shift_last = "coalesce(z.shift, 0)"
            span_joins = ""
        # the person's bits of each word the windows reach, from the newest words in their profile
        words = [profile_word("p", str(self.first_word + i)) for i in range(self.words)]
        numbers = [  # (expression, name): a group's numbers, in the order _Layout reads them
            (
                " + ".join(
                    _popcount(f"({words[i]}) & coalesce(z.m{j}_{i}, {utc[f'm{j}_{i}']})", bits[f"m{j}_{i}"], postgres)
                    for i in range(self.words)
                    if bits[f"m{j}_{i}"]  # else no mask holds a day of this word
                )
                or "0",
                f"a{j}",
            )
            for j in range(len(self.windows))
        ]
        numbers += [(f"f{k}.total", f"f{k}_total") for k in range(len(self.events))]
        if self.milestones:
            numbers += [("coalesce(p.first_seen_at, u.installed_at)", "since"), ("p.last_seen_at", "last_seen_at")]
            numbers += [(f"f{k}.last_at", f"f{k}_last") for k in range(len(self.events))]
        joins = span_joins + "".join(
            f"LEFT JOIN usage_features f{k} ON f{k}.tenant_id = u.tenant_id AND f{k}.aad_object_id = u.aad_object_id "
            f"AND f{k}.name = :e{k} "
            for k in range(len(self.events))
        )
        # some campaign's condition holds (which ones, the rules work out per group: as a column, PostgreSQL would
        # work every condition out twice a person, for the filter and for the result)
        held = " OR ".join(f"({condition})" for condition in self._conditions)
        number_columns = [f"c.{name}" for _, name in numbers]
        people_numbers = "".join(f", {expression} AS {name}" for expression, name in numbers)
        part = "u.aad_object_id >= :low AND u.aad_object_id < :high"
        whom = ([] if every_tenant else ["u." + _ONE_TENANT]) + ([part] if parted else [])
        zone_columns = {"zone": "VARCHAR(64)", "today": "INTEGER", "shift": "INTEGER"} | dict.fromkeys(utc, "BIGINT")
        facts_ctes, facts, facts_joins = _gates_facts(postgres, every_tenant)
        sql = f"""
WITH target_zones ({", ".join(zone_columns)}) AS (VALUES {_values("z", zone_columns, zones)}),
target_spans ({", ".join(_SPAN_COLUMNS)}) AS (VALUES {_values("s", _SPAN_COLUMNS, spans)}),
people AS (
    SELECT u.id, u.tenant_id, u.aad_object_id, u.locale, u.time_zone,
        CASE WHEN u.installed_at IS NOT NULL THEN {INSTALLED} ELSE 0 END
        + CASE WHEN u.uninstalled_at IS NOT NULL THEN {UNINSTALLED} ELSE 0 END
        + CASE WHEN u.unreachable_at IS NOT NULL THEN {REFUSED} ELSE 0 END
        + CASE WHEN u.opted_out_at IS NOT NULL THEN {OPTED_OUT} ELSE 0 END
        + CASE WHEN p.last_seen_at IS NOT NULL THEN {SEEN} ELSE 0 END
        AS flags,
        coalesce(z.today, {epoch_day(utc_today)}) AS today,
        coalesce(z.today, {epoch_day(utc_today)}) - ({installed} + {shift_installed}) / {DAY_SECONDS} AS day,
        ({last_moment} + {shift_last}) / {DAY_SECONDS} AS last_day{people_numbers}
    FROM users u
    LEFT JOIN target_zones z ON z.zone = u.time_zone
    LEFT JOIN usage_profiles p ON p.tenant_id = u.tenant_id AND p.aad_object_id = u.aad_object_id
    {joins}{"WHERE " + " AND ".join(whom) if whom else ""}
), candidates AS (
    SELECT * FROM {"people" if postgres else "(SELECT * FROM people LIMIT -1)"} WHERE {held or "false"}
){facts_ctes}
{_grouped([*_CANDIDATE_COLUMNS, *facts, *number_columns], facts_joins, postgres)}"""
        typed = [bindparam("sends_since", type_=UtcDateTime()), *self._columns.typed()]
        return text(sql).bindparams(*typed)

    def _parameters(self, tenant_id: str | None) -> dict[str, Any]:
        values: dict[str, Any] = {"tenant_id": tenant_id, "sends_since": self.sends_since}
        for k, name in enumerate(self.events):
            values[f"e{k}"] = name
        return values | self._columns.values

    # -- the groups ----------------------------------------------------------------------------------------------

    def _decoded(self, rows: list[Any]) -> list[AudienceGroup]:
        """SQLite's groups: each one's key and its people, all three JSON arrays (`_grouped`)."""
        return [self._group(tuple(json.loads(key)), json.loads(ids), json.loads(aads)) for key, ids, aads in rows]

    def _group(self, key: tuple[Any, ...], user_ids: list[int], aad_object_ids: list[str]) -> AudienceGroup:
        """A group of the query: its key columns (the numbers last), and its people."""
        return AudienceGroup(key, self._today(key[2]), self._layout, user_ids, aad_object_ids)

    def _today(self, zone: str | None) -> date:
        """The local day in a zone (None, or a name that is not a zone: UTC's), remembered: asked for every group."""
        if zone not in self._todays:
            self._todays[zone] = local_time(self.now, zone).date()
        return self._todays[zone]


def _gates_facts(postgres: bool, every_tenant: bool) -> tuple[str, list[str], str]:
    """The gates' facts for the candidates only (opt-outs, recent sends, touches): the audience query's CTEs for
    them, its three columns and its joins."""
    statuses = ", ".join(f"'{s}'" for s in LIVE_SEND_STATUSES)
    live = f"status IN ({statuses})"
    # each person's opt-out kinds, recent sends' instants and touches, as text both databases write alike
    kinds = _joined("kind", "|", postgres)
    moments = _joined(_moment("created_at", postgres), ",", postgres)
    touches = _joined(f"campaign_id || ' ' || step || ' ' || {_moment('decided_at', postgres)}", ",", postgres)
    if postgres:  # each aggregated once and hashed
        facts_ctes = f""", tch AS (
    SELECT tenant_id, aad_object_id, {touches} AS touches
    FROM campaign_touches {"" if every_tenant else "WHERE " + _ONE_TENANT} GROUP BY tenant_id, aad_object_id
), opt AS (
    SELECT user_id, {kinds} AS kinds FROM campaign_optouts GROUP BY user_id
), snd AS (
    SELECT user_id, {moments} AS moments FROM outbox
    WHERE {"true" if every_tenant else _ONE_TENANT} AND user_id IS NOT NULL AND created_at > :sends_since AND {live}
    GROUP BY user_id
)"""
        facts = ["opt.kinds", "snd.moments", "tch.touches"]
        facts_joins = (
            "LEFT JOIN tch ON tch.tenant_id = c.tenant_id AND tch.aad_object_id = c.aad_object_id\n"
            "LEFT JOIN opt ON opt.user_id = c.id\nLEFT JOIN snd ON snd.user_id = c.id\n"
        )
    else:
        # SQLite looks each candidate's up by its key: aggregated, every range of a parted audience would
        # aggregate every tenant's sends and touches again (the touches' index does not begin with the id), which
        # slows the dry run a lot once a campaign has queued its cards. The first day, with nothing to find, the
        # look-ups cost a little more.
        facts_ctes = ""
        facts = [
            f"(SELECT {kinds} FROM campaign_optouts o WHERE o.user_id = c.id)",
            f"(SELECT {moments} FROM outbox s WHERE s.user_id = c.id AND s.created_at > :sends_since AND s.{live})",
            f"(SELECT {touches} FROM campaign_touches t "
            "WHERE t.tenant_id = c.tenant_id AND t.aad_object_id = c.aad_object_id)",
        ]
        facts_joins = ""
    return facts_ctes, facts, facts_joins


def range_edges(readers: int, last: str) -> list[str]:
    """The bounds of the SQLite audience's ranges of AAD object ids, in the order they are run: `readers` ranges a
    round, each round's smaller than the one before (ROUNDS), so the readers finish at about the same time and the
    last ranges, whose groups are decided after every reader is through, are small. The bounds split the ids' first
    three hexadecimal digits; every text is >= "", and the longest id is below itself with anything added, so ids of
    any other form are still each in exactly one range."""
    weights = [w for w in ROUNDS for _ in range(readers)]
    total, edges, so_far = sum(weights), [""], 0
    for w in weights[:-1]:
        so_far += w
        edges.append(f"{_SPLIT * so_far // total:03x}")
    return [*edges, last + " "]


async def _fetch(session: AsyncSession, sql: TextClause, parameters: dict[str, Any], postgres: bool) -> list[Any]:
    """The rows straight from the driver (in the session's transaction): hundreds of thousands of rows of plain
    values, which SQLAlchemy's result layer would wrap one by one for nothing."""
    connection = await session.connection()
    statement, arguments = _positional(sql, parameters, connection.dialect)
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    if postgres:
        return list(await driver.fetch(statement, *arguments))
    cursor = await driver.execute(statement, arguments)
    try:
        return list(await cursor.fetchall())
    finally:
        await cursor.close()


def _positional(sql: TextClause, parameters: dict[str, Any], dialect: Dialect) -> tuple[str, list[Any]]:
    """The statement as the driver takes it, with its parameters in order."""
    compiled = sql.compile(dialect=dialect)
    values = compiled.construct_params(parameters)
    postgres = dialect.name == "postgresql"
    return compiled.string, [driver_value(values[name], postgres) for name in compiled.positiontup or ()]


async def _parts(session: AsyncSession, tenant_id: str | None) -> tuple[Path, int] | None:
    """Into how many parts to split an SQLite audience, and the database file the parts' connections open; None:
    run as one query on the session. Only a transaction that only reads is split (UnitOfWork.reads_only): the
    parts' readers begin under the write lock, which a session that writes may hold. Splitting pays from some tens
    of thousands of people (counted by the span of their user rows)."""
    if PARTS < 2:
        return None
    connection = (await session.connection()).sync_connection
    if connection is None:
        return None
    path = database_file(connection.engine.url)
    if path is None or not connection.get_execution_options().get(READS_ONLY):
        return None
    rows = (await session.execute(_ID_RANGE[tenant_id is None], {"tenant_id": tenant_id})).one()
    if rows[0] is None or rows[1] - rows[0] + 1 < PARTS_FROM:
        return None
    return path, PARTS


class AudienceRepository:
    """The audience query and the chat owners, through a unit of work's session (uow.audience)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def groups(
        self, query: AudienceQuery, take: Callable[[list[AudienceGroup]], None], tenant_id: str | None = None
    ) -> None:
        """The query's groups of people alike, of one tenant or of every tenant, handed to `take` a batch at a time."""
        await query.each(self.session, take, tenant_id)

    async def chat_owners(self, tenant_id: str | None = None) -> set[int]:
        return await chat_owners(self.session, tenant_id)


async def chat_owners(session: AsyncSession, tenant_id: str | None = None) -> set[int]:
    """The user rows with a live personal chat with the bot, of one tenant or of all. Asked only when a chat can
    change whether someone is reachable (bot.usecases.audience): as a column of the audience query it made
    PostgreSQL work out every other column in one process (as a subquery or as a join alike)."""
    postgres = on_postgres(session)
    where = "" if tenant_id is None else " AND tenant_id = :tenant_id"
    sql = text(f"SELECT user_id FROM conversation_references WHERE {_PERSONAL}{where}")
    return {row[0] for row in await _fetch(session, sql, {"tenant_id": tenant_id}, postgres)}


def moments(value: str | None) -> list[datetime]:
    """The moments of a group's recent sends (or of one touch): written alike by both databases, in UTC."""
    return [moment(part) for part in value.split(",")] if value else []


def moment(value: Any) -> datetime:
    """A moment as the query hands it over: `YYYY-MM-DD HH:MM:SS.ffffff` in UTC (or a datetime from asyncpg)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _grouped(key: list[str], joins: str, postgres: bool) -> str:
    """The candidates grouped by the `key` columns (over `c`, the candidates, and `joins`), with each group's people.

    PostgreSQL groups by hashing the columns and hands the people over as arrays. SQLite groups by sorting, and its
    sort compares records field by field, unpacking each: with a dozen key columns, grouping took a large share of
    the query's instructions. So SQLite groups by one text, the key's JSON array (the same values give the same
    text, different ones a different text: every value is an integer, a text or NULL), which its sort compares as a
    whole; a co-routine (the LIMIT) works each person's key out once. The people come as JSON arrays too (any text
    survives them); `_decoded` reads all three."""
    columns = ", ".join(key)
    if postgres:
        return (
            f"SELECT {columns}, array_agg(c.id), array_agg(c.aad_object_id)\nFROM candidates c\n{joins}"
            f"GROUP BY {', '.join(map(str, range(1, len(key) + 1)))}\n"
        )
    return (
        "SELECT k.key, json_group_array(k.id), json_group_array(k.aad_object_id)\n"
        f"FROM (SELECT json_array({columns}) AS key, c.id, c.aad_object_id FROM candidates c {joins}LIMIT -1) k\n"
        "GROUP BY k.key\n"
    )


def _mask(word: int, low: int, high: int) -> int:
    """The bits of `word` for epoch days `low`…`high`."""
    first, last = max(low - word * WORD_DAYS, 0), min(high - word * WORD_DAYS, WORD_DAYS - 1)
    if first > last:
        return 0
    return ((1 << (last + 1)) - 1) ^ ((1 << first) - 1)


def _values(prefix: str, columns: dict[str, str], count: int) -> str:
    """`count` rows of typed parameters (:z0_zone, …) for a VALUES list; none: one row that joins nothing."""
    rows = [
        "(" + ", ".join(f"CAST(:{prefix}{r}_{name} AS {kind})" for name, kind in columns.items()) + ")"
        for r in range(count)
    ]
    return ", ".join(rows) or "(" + ", ".join(f"CAST(NULL AS {kind})" for kind in columns.values()) + ")"


def _numbered(prefix: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {f"{prefix}{r}_{name}": value for r, row in enumerate(rows) for name, value in row.items()}


_ONE_TENANT = "tenant_id = :tenant_id"
_PERSONAL = "scope = 'personal' AND removed_at IS NULL AND user_id IS NOT NULL"
_SPAN_COLUMNS = {
    "zone": "VARCHAR(64)",
    "low": "BIGINT",
    "high": "BIGINT",
    "shift": "INTEGER",
    "low_at": "VARCHAR(32)",  # low and high as SQLite stores instants, to the second
    "high_at": "VARCHAR(32)",
}
# an analytic query: memory for its hashes, both cores, no JIT compilation; and groups made by hashing (PostgreSQL
# estimates a group per person and would sort every row by the whole group key first)
_ANALYTIC = (
    "work_mem = '256MB'",
    "jit = off",
    "parallel_setup_cost = 100",
    "parallel_tuple_cost = 0.001",
    "enable_sort = off",
)

# SQLite audiences of PARTS_FROM people or more are decided in PARTS parts at once, one per core (up to 4)
PARTS = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 4)
PARTS_FROM = 50_000
# each reader runs a few ranges, one after another, taking the next one not begun (one given less of the CPU takes
# fewer): a round of ranges of 6 shares, one of 3, one of 1. With ranges of equal size, one reader could be through
# long before the other, still busy with a large last range; shrinking ranges leave only a small one at the end
ROUNDS = (6, 3, 1)
_SPLIT = 16**3  # the ranges' bounds: ids' first three hexadecimal digits

# [one tenant, every tenant]
TEAMS_BEGAN = epoch_day(date(2017, 3, 14))  # Microsoft Teams' general availability
_ZONES = (
    text("SELECT DISTINCT time_zone FROM users WHERE tenant_id = :tenant_id"),
    # every tenant: one index lookup per zone (ix_users_time_zone), not a scan of every person
    text(
        "WITH RECURSIVE zones (zone) AS (SELECT min(time_zone) FROM users UNION ALL "
        "SELECT (SELECT min(time_zone) FROM users WHERE time_zone > zones.zone) FROM zones WHERE zone IS NOT NULL) "
        "SELECT zone FROM zones"
    ),
)
# the greatest AAD object id (a single index look-up)
_LAST_AAD = (
    text("SELECT max(aad_object_id) FROM users WHERE tenant_id = :tenant_id"),
    text("SELECT max(aad_object_id) FROM users"),
)
# the lowest and highest user row (each a single index look-up)
_ID_RANGE = (
    text(
        "SELECT (SELECT min(id) FROM users WHERE tenant_id = :tenant_id), "
        "(SELECT max(id) FROM users WHERE tenant_id = :tenant_id)"
    ),
    text("SELECT (SELECT min(id) FROM users), (SELECT max(id) FROM users)"),
)


def _postgres_seconds(expression: str) -> str:
    """Whole epoch seconds of a stored instant (floor: the fraction never moves a moment past midnight)."""
    return f"CAST(floor(date_part('epoch', {expression})) AS BIGINT)"  # extract() would compute in numeric


def _at(second: int) -> str:
    """An epoch second as the text SQLite keeps instants in, to the second ("YYYY-MM-DD HH:MM:SS": a stored instant
    within that second sorts after it); the spans' open ends: below and above any stored instant."""
    if second <= -FOREVER:
        return ""
    if second >= FOREVER:
        return "~"
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _moment(expression: str, postgres: bool) -> str:
    """A stored instant as text, the same on both databases (SQLite keeps exactly this)."""
    return f"to_char({expression} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')" if postgres else expression


def _popcount(expression: str, bits: int, postgres: bool) -> str:
    """How many bits of `expression` (a value with no bits beyond `bits`, at most 62) are set. SQLite has no
    popcount: a function of ours would call Python per person and word (slow, and the query would hold the GIL),
    so it adds up 14-bit chunks, each counted with one multiplication, a mask and a modulo (Sean Anderson's "Bit
    Twiddling Hacks": four copies 15 bits apart, every fourth bit kept, and 16^k % 15 = 1 adds them up; at most
    14 < 15 bits are set, and 16383 × 0x200040008001 < 2^60: no overflow into a float). The chunks start at the
    lowest bit `bits` holds and cover only its span: a window of 14 days in one word is one chunk."""
    if postgres:
        return f"bit_count(CAST({expression} AS bit(64)))"
    assert 0 <= bits < 1 << 62
    chunks = []
    while bits:
        low = (bits & -bits).bit_length() - 1
        rest = bits >> low
        cut = "" if rest < 1 << 14 else " & 16383"  # no bits above the chunk: nothing to cut off
        chunks.append(f"((((({expression}) >> {low}){cut}) * {_COPIES} & {_EVERY_FOURTH}) % 15)")
        bits &= ~((1 << 14) - 1 << low)
    return " + ".join(chunks) or "0"


# each 14-bit chunk copied four times, 15 bits apart; of those, every fourth bit kept: each of the chunk's bits once
_COPIES, _EVERY_FOURTH = 0x200040008001, 0x111111111111111


def _joined(expression: str, separator: str, postgres: bool) -> str:
    return f"string_agg({expression}, '{separator}')" if postgres else f"group_concat({expression}, '{separator}')"
