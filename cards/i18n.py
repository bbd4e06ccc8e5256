"""Card strings per locale, from cards/locales/<lang>.json, with fallback to English."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from bot.engagement.phrases import Phrase

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
