"""Card strings per locale, from cards/locales/<lang>.json, with fallback to English."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

DEFAULT_LOCALE = "en"
SUPPORTED_LOCALES = ("en", "de", "fr", "es", "ja")


def negotiate(locale: str | None) -> str:
    """Map a Teams locale ("de-DE", "fr-ca", "ja") to a supported language, else English."""
    if not locale:
        return DEFAULT_LOCALE
    language = locale.replace("_", "-").split("-")[0].strip().lower()
    return language if language in SUPPORTED_LOCALES else DEFAULT_LOCALE


@cache
def _catalog(language: str) -> dict[str, Any]:
    text = resources.files("cards").joinpath("locales", f"{language}.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@dataclass(frozen=True)
class Phrase:
    """Words for people, kept as a card-string key and its values until a reader's locale words them: a reason worked
    out once (a health score's, an alert's) is stored and shown to each CSM in their own language."""

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


class Strings:
    """Lookup of one locale's strings; a key missing there falls back to English, a key missing in English is a bug."""

    def __init__(self, locale: str | None) -> None:
        self.language = negotiate(locale)

    def __call__(self, key: str, **values: object) -> str:
        raw = _catalog(self.language).get(key, _catalog(DEFAULT_LOCALE).get(key))
        if not isinstance(raw, str):
            raise KeyError(f"no card string {key!r}")
        return raw.format(**values) if values else raw

    def phrase(self, phrase: Phrase | str) -> str:
        return phrase if isinstance(phrase, str) else self(phrase.key, **phrase.values)

    def has(self, key: str) -> bool:
        return key in _catalog(self.language) or key in _catalog(DEFAULT_LOCALE)

    def items(self, key: str, **values: object) -> list[str]:
        raw = _catalog(self.language).get(key, _catalog(DEFAULT_LOCALE).get(key))
        if not isinstance(raw, list):
            raise KeyError(f"no card string list {key!r}")
        return [str(item).format(**values) for item in raw]


def catalog_keys(language: str) -> set[str]:
    return set(_catalog(language))
