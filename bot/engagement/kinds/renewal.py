"""Renewals: reminders to a tenant's CSMs 90, 60 and 30 days before its renewal date (per tenant, not per person)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from bot.engagement.kinds.base import CampaignBase, plural, sorted_days
from bot.engagement.phrases import Phrase


class Renewal(CampaignBase):
    """Reminders to the tenant's CSMs 90 / 60 / 30 days before its renewal date."""

    per_person: ClassVar[bool] = False

    kind: Literal["renewal"]
    days_before: tuple[Annotated[int, Field(ge=1, le=365)], ...] = (90, 60, 30)

    _sorted = field_validator("days_before")(sorted_days)

    def targets(self, renewals: Mapping[str, date], already: set[str], today: date) -> list[RenewalTarget]:
        """The reminder due for each tenant with a renewal date: the tightest threshold not yet passed.

        A tenant whose date was set 58 days ahead gets the 60-day reminder, not a late 90-day one.
        """
        found = []
        for tenant_id, renewal in sorted(renewals.items()):
            left = (renewal - today).days
            due = [d for d in self.days_before if d >= left]
            if left < 0 or not due:
                continue
            threshold = min(due)
            key = f"renewal:{tenant_id}:{renewal.isoformat()}:{threshold}"
            if key in already:
                continue
            reason = f"renewal on {renewal.isoformat()}, in {plural(left, 'day')} (the {threshold}-day reminder)"
            found.append(RenewalTarget(tenant_id, self.id, renewal, threshold, left, key, reason))
        return found


@dataclass(frozen=True)
class RenewalTarget:
    tenant_id: str
    campaign_id: str
    renewal_date: date
    days_before: int  # which reminder (90, 60, 30)
    days_left: int
    cause_key: str  # one alert per tenant, renewal date and reminder
    reason: str

    @property
    def phrase(self) -> Phrase:
        """The reason for the CSM's alert, worded in their language where it is shown."""
        date_, left, threshold = self.renewal_date.isoformat(), self.days_left, self.days_before
        return Phrase("reason.renewal_reminder", {"date": date_, "days": left, "threshold": threshold})
