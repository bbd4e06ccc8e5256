"""Card builders: golden snapshots per locale (they double as Designer samples), size limit, locale completeness."""

from __future__ import annotations

import json
import os
import string
from pathlib import Path

import pytest

from cards import MAX_CARD_BYTES
from cards.catalog import sample_cards
from cards.i18n import DEFAULT_LOCALE, SUPPORTED_LOCALES, Strings, _catalog, catalog_keys, negotiate
from cards.welcome import WelcomeView, build_welcome_card

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("NURTURE_UPDATE_SNAPSHOTS") == "1"

CARDS = sample_cards()


@pytest.mark.parametrize("name", sorted(CARDS))
def test_snapshot(name: str) -> None:
    path = SNAPSHOTS / f"{name}.json"
    rendered = json.dumps(CARDS[name], ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}: run with NURTURE_UPDATE_SNAPSHOTS=1 and review the diff"
    assert rendered == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(CARDS))
def test_card_is_adaptive_card_1_5_under_size_limit(name: str) -> None:
    card = CARDS[name]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    assert card["fallbackText"]
    assert len(json.dumps(card, ensure_ascii=False).encode("utf-8")) < MAX_CARD_BYTES


def test_user_text_is_data_not_json() -> None:
    """A quote in a value cannot break the card: builders never build JSON by string substitution."""
    card = build_welcome_card(WelcomeView('Acme "Pro" \\ {x}', "en", 1, 3, 4, 30))
    assert json.loads(json.dumps(card))["body"][0]["text"] == 'Welcome to Acme "Pro" \\ {x} tips'


@pytest.mark.parametrize("language", SUPPORTED_LOCALES)
def test_every_locale_has_every_english_key(language: str) -> None:
    assert catalog_keys(language) == catalog_keys(DEFAULT_LOCALE)


def _fields(text: object) -> set[str]:
    items = text if isinstance(text, list) else [text]
    return {name for item in items for _, name, _, _ in string.Formatter().parse(str(item)) if name}


@pytest.mark.parametrize("language", [lang for lang in SUPPORTED_LOCALES if lang != DEFAULT_LOCALE])
def test_every_locale_fills_in_the_same_values_as_english(language: str) -> None:
    """A translation that names a value English does not pass (or drops one) would fail or mislead at run time."""
    english = _catalog(DEFAULT_LOCALE)
    different = {
        key: (sorted(_fields(text)), sorted(_fields(english[key])))
        for key, text in _catalog(language).items()
        if _fields(text) != _fields(english[key])
    }
    assert different == {}


@pytest.mark.parametrize(
    ("teams_locale", "expected"),
    [
        ("de-DE", "de"),
        ("fr-CA", "fr"),
        ("es_MX", "es"),
        ("ja", "ja"),
        ("EN-gb", "en"),
        ("pt-BR", "en"),
        (None, "en"),
        ("", "en"),
    ],
)
def test_negotiate(teams_locale: str | None, expected: str) -> None:
    assert negotiate(teams_locale) == expected


def test_missing_key_is_an_error() -> None:
    with pytest.raises(KeyError):
        Strings("en")("no.such.key")


def test_cards_export_writes_every_card(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "bot", "cards", "export", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    written = sorted(p.stem for p in (tmp_path / "out").glob("*.json"))
    assert written == sorted(CARDS)
    sample = json.loads((tmp_path / "out" / "nps-ask.de.json").read_text(encoding="utf-8"))
    assert sample == CARDS["nps-ask.de"]
