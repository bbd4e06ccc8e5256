"""What every campaign kind shares: the fields of a definition, the facts a rule reads, and its SQL columns.

A kind (one module beside this one) is a pydantic model with four parts:
- `windows()` and `events()`: the active-day windows and the event counts its rule reads;
- `match(facts, done, now)`: the rule itself, over one person's facts (or a group of people alike);
- `prefilter(columns)`: the same rule loosened into an SQL condition that holds wherever `match` can, so the
  audience query (storage.targeting) keeps only the people some rule may pick. `match` still decides.
Keeping the rule and its SQL side by side is what lets a reader check that they agree; tests check it too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import ClassVar, NamedTuple, Protocol, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.engagement.usage import EVENT_NAME

LANGUAGES = ("en", "de", "fr", "es", "ja")
CAMPAIGN_ID = r"^[a-z0-9][a-z0-9-]{0,63}$"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_link(value: str | None) -> str | None:
    if value is not None and not value.startswith(("https://", "msteams:")):
        raise ValueError("links must start with https:// (a Teams deep link https://teams.microsoft.com/l/… is fine)")
    return value


def event_name(value: str) -> str:
    if not EVENT_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not an event name (letters, digits, _ . : -)")
    return value


def sorted_days(values: tuple[int, ...]) -> tuple[int, ...]:
    if len(set(values)) != len(values):
        raise ValueError("days must not repeat")
    return tuple(sorted(values))


def as_text(value: object) -> object:
    return {"en": value} if isinstance(value, str) else value


class Text(Model):
    """Text in several languages; English is required and is the fallback."""

    en: str = Field(min_length=1, max_length=500)
    de: str | None = Field(default=None, max_length=500)
    fr: str | None = Field(default=None, max_length=500)
    es: str | None = Field(default=None, max_length=500)
    ja: str | None = Field(default=None, max_length=500)

    def get(self, language: str) -> str:
        value = getattr(self, language, None) if language in LANGUAGES else None
        return value if isinstance(value, str) else self.en


class Step(Model):
    """Per-step card text that replaces the kind's default text (e.g. the tip of onboarding day 3)."""

    title: Text | None = None
    text: Text | None = None
    link: str | None = None

    _texts = field_validator("title", "text", mode="before")(as_text)
    _link = field_validator("link")(check_link)


class Window(NamedTuple):  # a tuple: a key looked up for every group of people a run
    """`length` days ending `ends_before` days before the person's local today."""

    ends_before: int
    length: int


# Matches are built by the hundred thousand: a plain slotted dataclass, which is made much faster than a frozen one.
@dataclass(slots=True)
class Match:
    step: str  # the campaign's step: each is sent at most once per person
    reason: str
    facts: Mapping[str, str | int] = field(default_factory=dict)  # for the card: feature, count, days


class Facts(Protocol):
    """What a rule reads about one person, or about a group of people alike in all of it."""

    @property
    def today(self) -> date: ...  # the local calendar day (their Teams zone, else UTC)

    @property
    def days_since_install(self) -> int | None: ...  # local calendar days; None: never installed

    @property
    def last_day(self) -> date | None: ...  # the local day last seen in the app, else installed

    @property
    def seen(self) -> bool: ...  # ever seen in the app

    @property
    def since(self) -> datetime | None: ...  # first seen in the app, else installed

    @property
    def last_seen_at(self) -> datetime | None: ...

    def active(self, window: Window) -> int: ...  # active days in the window

    def total(self, event: str) -> int | None: ...  # lifetime uses of the event; None: never

    def last_used(self, event: str) -> datetime | None: ...


class Columns(Protocol):
    """The audience query's columns, named by what they hold, for a kind's prefilter (storage.targeting)."""

    day: str  # local calendar days since install (NULL: never installed)
    idle: str  # local calendar days since last seen, else since installed
    since: str  # first seen, else installed: an instant
    last_seen: str  # last seen: an instant (NULL: never)

    def active(self, window: Window) -> str: ...

    def total(self, event: str) -> str: ...  # NULL: never used

    def last_used(self, event: str) -> str: ...  # an instant (NULL: never used)

    def value(self, value: float | datetime) -> str: ...  # a bound parameter holding the value


class CampaignBase(Model):
    """The fields every campaign has, and what a kind that is not about people's usage answers."""

    per_person: ClassVar[bool] = True  # decided for each person (renewals: for each tenant)
    reads_moments: ClassVar[bool] = False  # its rule reads first and last seen and when events were last used
    shareable: ClassVar[bool] = False  # its card offers "share with your team"

    id: str = Field(pattern=CAMPAIGN_ID)
    cooldown_days: int = Field(default=7, ge=0, le=365)
    holdout_percent: float = Field(default=0.0, ge=0, le=50)
    enabled: bool = True
    link: str | None = None  # the card's main button; falls back to the feature's link

    _link = field_validator("link")(check_link)

    def windows(self) -> tuple[Window, ...]:
        """The active-day windows the rule reads."""
        return ()

    def events(self) -> tuple[str, ...]:
        """The events whose lifetime counts the rule reads."""
        return ()

    def card_event(self) -> str | None:
        """The event a card of this campaign is about when its match names none."""
        return None

    @classmethod
    def name(cls) -> str:
        """The kind's name in the campaigns file (its `kind` field's one value)."""
        value: str = get_args(cls.model_fields["kind"].annotation)[0]
        return value

    @classmethod
    def card_strings(cls, step: str) -> str:
        """The family of card strings (cards/locales) for a step of this kind: `nurture.<kind>` unless the kind has
        flavours."""
        return f"nurture.{cls.name()}"

    def step_card(self, facts: Mapping[str, str | int]) -> Step | None:
        """Card text the campaign's file sets for the step with these facts, if any."""
        return None

    def match(self, facts: Facts, done: Collection[str], now: datetime) -> Match | None:
        """The rule: whether the person is in the audience, and for which step (`done`: steps they had)."""
        raise NotImplementedError(f"{self.__class__.__name__} is not decided per person")

    def prefilter(self, columns: Columns, now: datetime) -> str:
        """An SQL condition that holds wherever `match` can hold at `now`."""
        raise NotImplementedError(f"{self.__class__.__name__} is not decided per person")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
