"""The campaign kinds, one module each: its definition, what its rule reads, the rule, and its SQL prefilter.

Adding a kind is adding its module and naming its class in KINDS: the campaigns file, targeting (person by person
and in SQL) and the cards find it through this table.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from bot.engagement.kinds.adoption import Adoption
from bot.engagement.kinds.base import Columns, Facts, Match, Window
from bot.engagement.kinds.legacy import Legacy
from bot.engagement.kinds.milestone import Milestone
from bot.engagement.kinds.onboarding import Onboarding
from bot.engagement.kinds.reengagement import Reengagement
from bot.engagement.kinds.renewal import Renewal, RenewalTarget

KINDS = (Onboarding, Adoption, Milestone, Legacy, Reengagement, Renewal)
BY_NAME = {kind.name(): kind for kind in KINDS}  # "onboarding": Onboarding

# a campaign of the file: the kind named by its `kind` field
Campaign = Annotated[Onboarding | Adoption | Milestone | Legacy | Reengagement | Renewal, Field(discriminator="kind")]

__all__ = [
    "BY_NAME",
    "KINDS",
    "Adoption",
    "Campaign",
    "Columns",
    "Facts",
    "Legacy",
    "Match",
    "Milestone",
    "Onboarding",
    "Reengagement",
    "Renewal",
    "RenewalTarget",
    "Window",
]
