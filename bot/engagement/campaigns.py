"""Campaign definitions: the five nurture programs plus renewal reminders, validated when Nurture starts.

Each campaign has an audience rule (its kind and numbers), a card (the kind's localized text, optional per-step
text and a link), a cooldown and an optional holdout percentage. Order in the file is priority: when a person
matches several campaigns in one run, the first one wins and the others wait. Each kind lives in its own module
under bot.engagement.kinds; this module holds the file as a whole.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from bot.engagement.health import HealthPolicy
from bot.engagement.kinds import Adoption, Campaign
from bot.engagement.kinds.base import LANGUAGES, Model, Text, as_text, check_link, event_name

__all__ = ["LANGUAGES", "AlertSettings", "Campaign", "CampaignSet", "Feature", "HealthSettings", "Text"]


class Feature(Model):
    """How cards name an event and where its button goes."""

    label: Text
    link: str | None = None

    _label = field_validator("label", mode="before")(as_text)
    _link = field_validator("link")(check_link)


class HealthSettings(Model):
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


class AlertSettings(Model):
    """Who hears about an alert nobody claimed, and when CSMs get their digest."""

    escalate_after_business_days: float = Field(default=2.0, gt=0, le=30)
    escalation_conversation: str | None = Field(default=None, max_length=512)  # a channel where the bot is installed
    digest_hour: int = Field(default=8, ge=0, le=23)  # local time of each CSM


class CampaignSet(Model):
    features: dict[str, Feature] = Field(default_factory=dict)
    campaigns: tuple[Campaign, ...]
    health: HealthSettings = Field(default_factory=HealthSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)

    @property
    def value_event(self) -> str | None:
        """The value milestone: set in `health`, else the first adoption campaign's milestone."""
        if self.health.value_event:
            return self.health.value_event
        return next((c.milestone for c in self.active if isinstance(c, Adoption)), None)

    @field_validator("features")
    @classmethod
    def _feature_names(cls, values: dict[str, Feature]) -> dict[str, Feature]:
        for name in values:
            event_name(name)
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
        return tuple(sorted({name for c in self.active for name in c.events()}))

    def get(self, campaign_id: str) -> Campaign:
        """The campaign with this id (enabled or not)."""
        return next(c for c in self.campaigns if c.id == campaign_id)
