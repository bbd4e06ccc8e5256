"""Campaign definitions: the five nurture programs plus renewal reminders, validated when Nurture starts.

Each campaign has an audience rule (its kind and numbers), a card (the kind's localized text, optional per-step
text and a link), a cooldown and an optional holdout percentage. Order in the file is priority: when a person
matches several campaigns in one run, the first one wins and the others wait.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.engagement.health import HealthPolicy
from bot.engagement.usage import EVENT_NAME

LANGUAGES = ("en", "de", "fr", "es", "ja")
CAMPAIGN_ID = r"^[a-z0-9][a-z0-9-]{0,63}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_link(value: str | None) -> str | None:
    if value is not None and not value.startswith(("https://", "msteams:")):
        raise ValueError("links must start with https:// (a Teams deep link https://teams.microsoft.com/l/… is fine)")
    return value


class Text(_Model):
    """Text in several languages; English is required and is the fallback."""

    en: str = Field(min_length=1, max_length=500)
    de: str | None = Field(default=None, max_length=500)
    fr: str | None = Field(default=None, max_length=500)
    es: str | None = Field(default=None, max_length=500)
    ja: str | None = Field(default=None, max_length=500)

    def get(self, language: str) -> str:
        value = getattr(self, language, None) if language in LANGUAGES else None
        return value if isinstance(value, str) else self.en


def _as_text(value: object) -> object:
    return {"en": value} if isinstance(value, str) else value


class Feature(_Model):
    """How cards name an event and where its button goes."""

    label: Text
    link: str | None = None

    _label = field_validator("label", mode="before")(_as_text)
    _link = field_validator("link")(_check_link)


class Step(_Model):
    """Per-step card text that replaces the kind's default text (e.g. the tip of onboarding day 3)."""

    title: Text | None = None
    text: Text | None = None
    link: str | None = None

    _texts = field_validator("title", "text", mode="before")(_as_text)
    _link = field_validator("link")(_check_link)


class _Campaign(_Model):
    id: str = Field(pattern=CAMPAIGN_ID)
    cooldown_days: int = Field(default=7, ge=0, le=365)
    holdout_percent: float = Field(default=0.0, ge=0, le=50)
    enabled: bool = True
    link: str | None = None  # the card's main button; falls back to the feature's link

    _link = field_validator("link")(_check_link)


def _event_name(value: str) -> str:
    if not EVENT_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not an event name (letters, digits, _ . : -)")
    return value


def _days(values: tuple[int, ...]) -> tuple[int, ...]:
    if len(set(values)) != len(values):
        raise ValueError("days must not repeat")
    return tuple(sorted(values))


class Onboarding(_Campaign):
    """Tips on day 0, 3, 7 and 14 after install (local calendar days of the person)."""

    kind: Literal["onboarding"]
    days: tuple[Annotated[int, Field(ge=0, le=90)], ...] = (0, 3, 7, 14)
    catch_up_days: int = Field(default=2, ge=0, le=14)  # a tip missed (quiet hours, budget) may follow this late
    steps: dict[int, Step] = Field(default_factory=dict)
    cooldown_days: int = Field(default=0, ge=0, le=365)

    _sorted = field_validator("days")(_days)

    @model_validator(mode="after")
    def _steps_are_days(self) -> Onboarding:
        stray = sorted(set(self.steps) - set(self.days))
        if stray:
            raise ValueError(f"steps for days {stray} that are not in days {list(self.days)}")
        if not self.days:
            raise ValueError("days must name at least one day")
        return self


class Adoption(_Campaign):
    """Active recently, but the value milestone event not reached within N days of install."""

    kind: Literal["adoption"]
    milestone: str
    within_days: int = Field(default=7, ge=1, le=365)
    min_active_days: int = Field(default=3, ge=1, le=90)
    window_days: int = Field(default=14, ge=1, le=90)
    max_sends: int = Field(default=2, ge=1, le=10)
    cooldown_days: int = Field(default=14, ge=0, le=365)

    _event = field_validator("milestone")(_event_name)

    @model_validator(mode="after")
    def _window_fits(self) -> Adoption:
        if self.min_active_days > self.window_days:
            raise ValueError("min_active_days cannot exceed window_days")
        return self


class Milestone(_Campaign):
    """Celebrate the Nth use of a key feature, or a usage anniversary; the card offers "share with your team"."""

    kind: Literal["milestone"]
    event: str | None = None
    counts: tuple[Annotated[int, Field(ge=1)], ...] = ()
    anniversary_days: tuple[Annotated[int, Field(ge=1)], ...] = ()
    recent_days: int = Field(default=7, ge=1, le=90)  # celebrate only while it is fresh
    cooldown_days: int = Field(default=3, ge=0, le=365)

    _sorted = field_validator("counts", "anniversary_days")(_days)

    @model_validator(mode="after")
    def _has_a_goal(self) -> Milestone:
        if not self.counts and not self.anniversary_days:
            raise ValueError("a milestone campaign needs counts (with event) or anniversary_days")
        if self.counts and self.event is None:
            raise ValueError("counts need the event they count")
        if self.event is not None:
            _event_name(self.event)
        return self


class Legacy(_Campaign):
    """Low usage: active days fell (last window vs the one before), or key features were never used."""

    kind: Literal["legacy"]
    window_days: int = Field(default=14, ge=3, le=90)
    min_drop_percent: float = Field(default=50.0, gt=0, le=100)
    min_previous_active_days: int = Field(default=4, ge=1, le=90)  # the noise guard: a drop from 2 to 1 is not a drop
    key_features: tuple[str, ...] = ()
    unused_after_days: int = Field(default=30, ge=1, le=365)
    cooldown_days: int = Field(default=30, ge=0, le=365)

    @field_validator("key_features")
    @classmethod
    def _names(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_event_name(v) for v in values)

    @model_validator(mode="after")
    def _guard_fits(self) -> Legacy:
        if self.min_previous_active_days > self.window_days:
            raise ValueError("min_previous_active_days cannot exceed window_days")
        return self


class Reengagement(_Campaign):
    """Not seen for N days: a "what's new" card, once per absence."""

    kind: Literal["reengagement"]
    inactive_days: int = Field(default=30, ge=1, le=365)
    cooldown_days: int = Field(default=30, ge=0, le=365)


class Renewal(_Campaign):
    """Reminders to the tenant's CSMs 90 / 60 / 30 days before its renewal date."""

    kind: Literal["renewal"]
    days_before: tuple[Annotated[int, Field(ge=1, le=365)], ...] = (90, 60, 30)

    _sorted = field_validator("days_before")(_days)


Campaign = Annotated[Onboarding | Adoption | Milestone | Legacy | Reengagement | Renewal, Field(discriminator="kind")]


class HealthSettings(_Model):
    """How account health is scored (see bot.engagement.health)."""

    weights: dict[str, float] = Field(default_factory=lambda: dict(HealthPolicy().weights))
    at_risk_below: float = Field(default=50.0, ge=0, le=100)
    activation_target: float = Field(default=0.6, gt=0, le=1)
    milestone_target: float = Field(default=0.5, gt=0, le=1)
    detractor_limit: int = Field(default=3, ge=1, le=100)
    value_event: str | None = None  # the value milestone; defaults to the first adoption campaign's

    @field_validator("weights")
    @classmethod
    def _known(cls, values: dict[str, float]) -> dict[str, float]:
        HealthPolicy(weights=values)  # raises with the unknown names
        return values

    def policy(self, min_answers: int) -> HealthPolicy:
        return HealthPolicy(
            weights=self.weights,
            at_risk_below=self.at_risk_below,
            activation_target=self.activation_target,
            milestone_target=self.milestone_target,
            detractor_limit=self.detractor_limit,
            min_answers=min_answers,
        )


class AlertSettings(_Model):
    """Who hears about an alert nobody claimed, and when CSMs get their digest."""

    escalate_after_business_days: float = Field(default=2.0, gt=0, le=30)
    escalation_conversation: str | None = Field(default=None, max_length=512)  # a channel where the bot is installed
    digest_hour: int = Field(default=8, ge=0, le=23)  # local time of each CSM


class CampaignSet(_Model):
    features: dict[str, Feature] = Field(default_factory=dict)
    campaigns: tuple[Campaign, ...]
    health: HealthSettings = Field(default_factory=HealthSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)

    @property
    def value_event(self) -> str | None:
        if self.health.value_event:
            return self.health.value_event
        return next((c.milestone for c in self.active if isinstance(c, Adoption)), None)

    @field_validator("features")
    @classmethod
    def _feature_names(cls, values: dict[str, Feature]) -> dict[str, Feature]:
        for name in values:
            _event_name(name)
        return values

    @model_validator(mode="after")
    def _unique_ids(self) -> CampaignSet:
        seen: set[str] = set()
        for campaign in self.campaigns:
            if campaign.id in seen:
                raise ValueError(f"campaign id {campaign.id!r} is used twice")
            seen.add(campaign.id)
        return self

    @property
    def active(self) -> tuple[Campaign, ...]:
        return tuple(c for c in self.campaigns if c.enabled)

    def feature_label(self, name: str, language: str) -> str:
        feature = self.features.get(name)
        return feature.label.get(language) if feature else name

    def feature_link(self, name: str | None) -> str | None:
        feature = self.features.get(name) if name else None
        return feature.link if feature else None

    def event_names(self) -> tuple[str, ...]:
        """Every event a rule reads lifetime counts of."""
        names: set[str] = set()
        for c in self.active:
            if isinstance(c, Adoption):
                names.add(c.milestone)
            elif isinstance(c, Milestone) and c.event:
                names.add(c.event)
            elif isinstance(c, Legacy):
                names.update(c.key_features)
        return tuple(sorted(names))
