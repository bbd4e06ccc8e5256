"""Every exported card parses and renders in the official Adaptive Cards renderer (npm `adaptivecards`) in Chromium.

Any parse error or warning fails, except "unknown element type" for Teams-only elements (charts) where every
occurrence carries a `fallback` — which is what Teams clients without charts will render.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, RENDERER_JS, require_browser_prerequisites

PARSE_AND_RENDER = """(payload) => {
  const card = new AdaptiveCards.AdaptiveCard();
  const context = new AdaptiveCards.SerializationContext();
  card.parse(payload, context);
  const events = [];
  for (let i = 0; i < context.eventCount; i++) {
    const e = context.getEventAt(i);
    events.push({phase: e.phase, event: e.event, message: e.message});
  }
  const validation = card.validateProperties();
  for (let i = 0; i < validation.eventCount; i++) {
    const e = validation.getEventAt(i);
    events.push({phase: e.phase, event: e.event, message: e.message});
  }
  const element = card.render();
  if (element) { document.body.appendChild(element); }
  return {events, rendered: !!element && element.childElementCount > 0};
}"""
UNKNOWN_TYPE = 'Unknown element type "'


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    require_browser_prerequisites()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_content("<html><body></body></html>")
        page.add_script_tag(content=RENDERER_JS.read_text(encoding="utf-8"))
        yield page
        browser.close()


def _elements_of_type(node: Any, element_type: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == element_type:
            found.append(node)
        for value in node.values():
            found += _elements_of_type(value, element_type)
    elif isinstance(node, list):
        for item in node:
            found += _elements_of_type(item, element_type)
    return found


def problems(page: Page, card: dict[str, Any]) -> list[str]:
    """What the renderer objected to, after allowing unknown Teams-only elements that carry a fallback."""
    result = page.evaluate(PARSE_AND_RENDER, card)
    found = []
    for event in result["events"]:
        message = event["message"]
        if message.startswith(UNKNOWN_TYPE):
            element_type = message[len(UNKNOWN_TYPE) :].split('"')[0]
            if all("fallback" in e for e in _elements_of_type(card, element_type)):
                continue
        found.append(message)
    if not result["rendered"]:
        found.append("the card rendered nothing")
    return found


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The cards as `nurture cards export` writes them: the files people paste into the Designer."""
    folder = tmp_path_factory.mktemp("cards")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "cards", "export", str(folder)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(Path(folder).glob("*.json"))}


def test_every_exported_card_renders_without_errors_or_warnings(page: Page, exported: dict[str, Any]) -> None:
    assert len(exported) > 50
    failures = {name: found for name, card in exported.items() if (found := problems(page, card))}
    assert failures == {}


def test_charts_really_are_unknown_to_the_renderer(page: Page, exported: dict[str, Any]) -> None:
    """The allowance above is exercised: the report card does use Teams-only charts, with fallbacks."""
    result = page.evaluate(PARSE_AND_RENDER, exported["nps-report.en"])
    assert any(e["message"].startswith(UNKNOWN_TYPE + "Chart.Gauge") for e in result["events"])


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ({"type": "Chart.Gauge", "value": 3}, "Unknown element type"),
        ({"type": "Fancy.Widget", "text": "x"}, "Unknown element type"),
        ({"type": "TextBlock", "text": "x", "size": "Enormous"}, "Invalid value"),
        ({"type": "Image", "url": "https://example.com/a.png", "size": "gigantic"}, "Invalid value"),
    ],
)
def test_a_broken_card_fails(page: Page, broken: dict[str, Any], expected: str) -> None:
    card = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "ok"}, broken]}
    found = problems(page, card)
    assert any(expected in message for message in found), found
