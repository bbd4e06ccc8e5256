"""Usage events: the one shape the vendor's SaaS (and the bot itself) reports, and how each one is checked.

An event is (tenant, person, name, moment). Its *day* is the calendar date in the offset the timestamp was sent
with: a SaaS that sends local time with its offset gets the person's local days; one that sends `Z` gets UTC days.
Checks never raise: each bad event gets a reason in words, and the caller decides what a rejection means.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from bot.engagement.ids import DIRECTORY_ID, stored_id

MAX_BATCH_EVENTS = 10_000
MAX_PROPERTIES_BYTES = 4096
FUTURE_TOLERANCE = timedelta(minutes=5)  # clock skew between the vendor's servers and ours
MAX_EVENT_AGE = timedelta(days=400)  # backfills of a year of history are fine; older is almost surely a bug

# Names: letters, digits and _ . : - ; they start with a letter or digit.
EVENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}")
# Tenant ids and AAD object ids are GUIDs; other directory ids are accepted if they look like ids.
EVENT_FIELDS = frozenset({"tenant_id", "user_id", "name", "timestamp", "properties"})
RESERVED_PREFIX = "teams."  # the bot's own signals (install, message, card answer)


class BotSignal:
    """Names of the signals Nurture records itself; they count as activity like the vendor's own events."""

    INSTALLED = "teams.installed"
    MESSAGE = "teams.message"
    CARD_ANSWER = "teams.card_answer"


class UsageEvent(NamedTuple):
    """One event, checked. A tuple: a batch makes up to ten thousand of them (a frozen dataclass cost a large share
    of checking an event), and its fields are the order the storage's columns take them in."""

    tenant_id: str
    aad_object_id: str
    name: str
    occurred_at: datetime  # aware; stored in UTC
    day: date

    @property
    def identity(self) -> tuple[str, str, str, datetime]:
        """What makes two events the same event (sent twice, or in two batches)."""
        return (self.tenant_id, self.aad_object_id, self.name, self.occurred_at)


EPOCH = date(1970, 1, 1)
_EPOCH_ORDINAL = EPOCH.toordinal()
WORD_DAYS = 62  # days per stored word: 2**62 - 1 still fits a signed 64-bit integer on both databases


def epoch_day(day: date) -> int:
    """Days since 1970-01-01: how storage numbers days (a day's word is epoch_day // 62, its bit epoch_day % 62)."""
    return day.toordinal() - _EPOCH_ORDINAL


def day_of(epoch: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + epoch)


@dataclass(frozen=True)
class ActiveDays:
    """The days a person was active, as bits: bit i set = active on `first` plus i days.

    One integer per person instead of a set of dates: counting the active days of a window is a mask and a
    popcount. Storage keeps the same bits, 62 days to a word (storage.models.UsageActivity).
    """

    first: date
    bits: int = 0

    @classmethod
    def of(cls, days: Iterable[date], first: date) -> ActiveDays:
        """From dates; days before `first` are left out."""
        bits = 0
        for day in days:
            offset = (day - first).days
            if offset >= 0:
                bits |= 1 << offset
        return cls(first, bits)

    @classmethod
    def from_words(cls, words: Mapping[int, int]) -> ActiveDays:
        """From stored words (word number → its 62 bits)."""
        if not words:
            return cls(EPOCH)
        low = min(words)
        bits = 0
        for word, value in words.items():
            bits |= value << (WORD_DAYS * (word - low))
        return cls(day_of(WORD_DAYS * low), bits)

    def within(self, oldest: date, newest: date) -> ActiveDays:
        """Only the days from `oldest` to `newest` (inclusive)."""
        count = (newest - oldest).days + 1
        shift = (oldest - self.first).days
        if count <= 0:
            return ActiveDays(oldest)
        bits = self.bits >> shift if shift >= 0 else self.bits << -shift
        return ActiveDays(oldest, bits & ((1 << count) - 1))

    def count(self, last_day: date, window: int) -> int:
        """Active days among the `window` days ending with `last_day` (inclusive)."""
        high = (last_day - self.first).days
        low = max(high - window + 1, 0)
        if high < low:
            return 0
        return (self.bits >> low & ((1 << (high - low + 1)) - 1)).bit_count()

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, date):
            return False
        offset = (day - self.first).days
        return offset >= 0 and bool(self.bits >> offset & 1)

    def __iter__(self) -> Iterator[date]:
        bits, offset = self.bits, 0
        while bits:
            if bits & 1:
                yield self.first + timedelta(days=offset)
            bits >>= 1
            offset += 1

    def __len__(self) -> int:
        return self.bits.bit_count()


@dataclass(frozen=True)
class FeatureUse:
    """A person's lifetime use of one event, from the rollups."""

    total: int
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True)
class Rejection:
    index: int  # position in the batch (0-based; for files, the line or row number)
    reason: str


def bot_signal(tenant_id: str, aad_object_id: str, name: str, at: datetime) -> UsageEvent:
    """One of the bot's own signals, already trusted (it comes from an authenticated Teams activity)."""
    return UsageEvent(stored_id(tenant_id), stored_id(aad_object_id), name, at, at.date())


@dataclass
class Checked:
    """What a batch's events have already passed: ids and names repeat within a batch (a few tenants, some thousand
    people, a handful of names), so each distinct one is checked once."""

    ids: dict[str, str] = field(default_factory=dict)  # as sent -> as stored (lower case)
    names: set[str] = field(default_factory=set)


def parse_event(
    raw: Any, now: datetime, *, allow_reserved: bool = False, checked: Checked | None = None
) -> UsageEvent | str:
    """The event, or the reason it is refused."""
    if not isinstance(raw, dict):
        return "an event must be a JSON object"
    if not raw.keys() <= EVENT_FIELDS:
        unknown = sorted(raw.keys() - EVENT_FIELDS)
        return f"unknown field(s): {', '.join(unknown[:5])}"
    known = checked or Checked()
    problems: list[str] = []
    tenant_id = _directory_id(raw.get("tenant_id"), "tenant_id", problems, known.ids)
    user_id = _directory_id(raw.get("user_id"), "user_id", problems, known.ids)
    name = _event_name(raw.get("name"), allow_reserved, problems, known.names)
    occurred = _timestamp(raw.get("timestamp"), now, problems)
    properties = raw.get("properties")
    if properties is not None:
        if not isinstance(properties, dict):
            problems.append("properties must be a JSON object")
        elif len(json.dumps(properties, ensure_ascii=False).encode()) > MAX_PROPERTIES_BYTES:
            problems.append(f"properties larger than {MAX_PROPERTIES_BYTES} bytes")
    if problems or tenant_id is None or user_id is None or name is None or occurred is None:
        return "; ".join(problems)
    return UsageEvent(tenant_id, user_id, name, occurred, occurred.date())


def parse_batch(
    raws: Sequence[Any], now: datetime, tenant_refusal: Callable[[str], str | None] = lambda _: None
) -> tuple[list[UsageEvent], list[Rejection]]:
    """Valid events and a reason for each refused one; `tenant_refusal` applies the tenant allow-list."""
    events: list[UsageEvent] = []
    rejections: list[Rejection] = []
    checked = Checked()
    refusals: dict[str, str | None] = {}  # by tenant
    for index, raw in enumerate(raws):
        parsed = parse_event(raw, now, checked=checked)
        if isinstance(parsed, str):
            refusal: str | None = parsed
        elif parsed.tenant_id in refusals:
            refusal = refusals[parsed.tenant_id]
        else:
            refusal = refusals[parsed.tenant_id] = tenant_refusal(parsed.tenant_id)
        if refusal is not None:
            rejections.append(Rejection(index, refusal))
        elif not isinstance(parsed, str):
            events.append(parsed)
    return events, rejections


def _directory_id(value: Any, name: str, problems: list[str], known: dict[str, str]) -> str | None:
    if isinstance(value, str):
        if value in known:
            return known[value]
        if DIRECTORY_ID.fullmatch(value):
            known[value] = stored = stored_id(value)  # events must match the people the bot knows
            return stored
    problems.append(f"{name} must be an id (a GUID; at most 64 letters, digits, _ . -)")
    return None


def _event_name(value: Any, allow_reserved: bool, problems: list[str], known: set[str]) -> str | None:
    if isinstance(value, str):
        if value in known:
            return value
        if EVENT_NAME.fullmatch(value):
            if not value.startswith(RESERVED_PREFIX):
                known.add(value)  # (a reserved name is checked each time: whether it passes depends on the caller)
                return value
            if allow_reserved:
                return value
            problems.append(f"names starting with {RESERVED_PREFIX!r} are reserved for the bot's own signals")
            return None
    problems.append("name must be 1-100 characters: letters, digits, _ . : - (starting with a letter or digit)")
    return None


def _timestamp(value: Any, now: datetime, problems: list[str]) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        problems.append("timestamp must be an ISO 8601 string, e.g. 2026-11-24T09:30:00+01:00")
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        problems.append(f"timestamp {value[:40]!r} is not ISO 8601")
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        problems.append("timestamp needs a UTC offset (Z or +hh:mm): a local time without one is ambiguous")
        return None
    if moment - now > FUTURE_TOLERANCE:
        problems.append("timestamp is in the future")
        return None
    if now - moment > MAX_EVENT_AGE:
        problems.append(f"timestamp is older than {MAX_EVENT_AGE.days} days")
        return None
    return moment
