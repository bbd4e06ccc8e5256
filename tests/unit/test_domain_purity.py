"""The pure domain (bot/engagement) and the card builders import no web framework, bot SDK or SQL session."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("botbuilder", "botframework", "aiohttp", "sqlalchemy", "storage", "requests", "msal")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


PURE_FILES = sorted([*(ROOT / "bot" / "engagement").rglob("*.py"), *(ROOT / "cards").rglob("*.py")])


def test_there_is_a_domain_to_check() -> None:
    assert any(p.parent.name == "engagement" and p.name != "__init__.py" for p in PURE_FILES)


@pytest.mark.parametrize("path", PURE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_imports(path: Path) -> None:
    bad = {name for name in _imports(path) if name.split(".")[0] in FORBIDDEN}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "leaky.py"
    sample.write_text("from botbuilder.core import TurnContext\nimport aiohttp.web\n")
    assert {n.split(".")[0] for n in _imports(sample)} >= {"botbuilder", "aiohttp"}


def test_botbuilder_stays_inside_bot_teams() -> None:
    """Moving to the Microsoft 365 Agents SDK must only mean rewriting bot/teams/."""
    leaks = [
        str(path.relative_to(ROOT))
        for package in ("bot", "cards", "storage")
        for path in (ROOT / package).rglob("*.py")
        if "teams" not in path.relative_to(ROOT).parts[:2]
        and any(name.split(".")[0] in ("botbuilder", "botframework") for name in _imports(path))
    ]
    assert leaks == []


@pytest.mark.parametrize(
    "path", [p for p in PURE_FILES if p.parent.name == "engagement"], ids=lambda p: p.relative_to(ROOT).name
)
def test_the_domain_leans_on_no_card_builder(path: Path) -> None:
    """Cards render the domain's values (a Phrase, a Health); the domain never needs a card module."""
    bad = {name for name in _imports(path) if name.split(".")[0] == "cards"}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
