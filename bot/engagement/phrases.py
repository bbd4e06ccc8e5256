"""Words for people, kept as a card-string key and its values until a reader's locale words them.

A reason worked out once (a health score's, an alert's) is stored like this and shown to each CSM in their own
language; cards.i18n words a phrase for one locale.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Phrase:
    """A card-string key and the values its text needs."""

    key: str
    values: Mapping[str, str | int | float] = field(default_factory=dict)

    def __hash__(self) -> int:  # values are a mapping: hashed by their items (a Health holding phrases stays hashable)
        return hash((self.key, tuple(sorted(self.values.items()))))

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "values": dict(self.values)}


def phrase_json(phrase: Phrase | str) -> Any:
    """What a text column stores for a phrase (inside a JSON list, or alone); text stays text."""
    return phrase if isinstance(phrase, str) else phrase.to_json()


def phrase_from_json(stored: Any) -> Phrase | str:
    """A phrase as `phrase_json` stored it; text stored before phrases existed stays text."""
    if isinstance(stored, dict) and isinstance(stored.get("key"), str) and isinstance(stored.get("values"), dict):
        return Phrase(stored["key"], stored["values"])
    return str(stored)


def stored_phrases(text: str) -> list[Phrase | str]:
    """The phrases a text column holds: a JSON list of them (an alert's reasons), one alone (a cause's detail), or
    plain text written before phrases existed."""
    try:
        stored = json.loads(text)
    except ValueError:
        return [text]
    return [phrase_from_json(item) for item in (stored if isinstance(stored, list) else [stored])]
