"""Nurture in a real Teams-like client: the Microsoft 365 Agents Playground driven in Chromium as a person would.

`nurture serve` (dev mode, SQLite) and the Playground run as real processes; every step checks what the page shows
and what the database holds. Each card kind is photographed into NURTURE_SCREENSHOTS_DIR (docs/cards via
`make screenshots`), or a temporary folder.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright
from sqlalchemy import select

from storage.engine import create_engine, session_factory
from storage.models import Alert, CampaignOptOut, NpsAnswer, PendingAlert, User
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, PLAYGROUND_BIN, require_browser_prerequisites
from tests.support.cli import clean_env

# The Playground's default personal-chat user and tenant (its mock data); asserted below, not assumed silently.
PLAYGROUND_USER = "00000000-0000-0000-0000-0000000000020"
PLAYGROUND_TENANT = "00000000-0000-0000-0000-0000000000001"
TIMEOUT_MS = 15_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not come up within {seconds:.0f} s")


@dataclass
class Session:
    page: Page
    env: dict[str, str]
    database_url: str
    shots: Path

    def cards(self) -> Locator:
        return self.page.locator(".ac-adaptiveCard")

    def wait_for_new_card(self, before: int) -> Locator:
        expect(self.cards()).to_have_count(before + 1, timeout=TIMEOUT_MS)
        return self.cards().last

    def say(self, text: str) -> Locator:
        before = self.cards().count()
        box = self.page.get_by_role("textbox").last  # the Playground's chat box comes after every card
        box.fill(text)
        box.press("Enter")
        return self.wait_for_new_card(before)

    def nurture(self, *args: str) -> dict[str, Any]:
        result = subprocess.run(
            [sys.executable, "-m", "bot", *args, "--json"], env=self.env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        parsed: dict[str, Any] = json.loads(result.stdout)
        return parsed

    def ask_nps(self) -> Locator:
        before = self.cards().count()
        sent = self.nurture("survey", "send", "--user", PLAYGROUND_USER, "--force")
        assert [r["queued"] for r in sent["results"]] == [True], sent  # the server's delivery worker sends it
        return self.wait_for_new_card(before)

    def shot(self, card: Locator, name: str) -> None:
        card.scroll_into_view_if_needed()
        card.screenshot(path=str(self.shots / f"{name}.png"))

    def rows(self, model: type) -> list[Any]:
        async def read() -> list[Any]:
            engine = create_engine(self.database_url)
            try:
                async with session_factory(engine)() as session:
                    return list((await session.execute(select(model))).scalars())
            finally:
                await engine.dispose()

        # Playwright's sync API keeps an event loop on this thread: read on another one
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, read()).result()


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    require_browser_prerequisites()
    work = tmp_path_factory.mktemp("playground")
    shots = Path(os.environ.get("NURTURE_SCREENSHOTS_DIR") or work / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite+aiosqlite:///{work / 'nurture.db'}"
    bot_port, playground_port = _free_port(), _free_port()
    env = clean_env(
        NURTURE_DEV_MODE="1",
        NURTURE_DATABASE_URL=database_url,
        NURTURE_CSM_IDS=PLAYGROUND_USER,
        NURTURE_QUIET_HOURS="0-0",
        NURTURE_SKIP_WEEKENDS="0",  # campaigns follow the timing rules (no --force): let them run any day
        NURTURE_NPS_MIN_ANSWERS="3",  # so the report card shows a score, gauge and all
    )
    logs = (work / "serve.log").open("w"), (work / "playground.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(bot_port)],
        env=env,
        cwd=work,
        stdout=logs[0],
        stderr=subprocess.STDOUT,
    )
    playground = subprocess.Popen(
        [
            str(PLAYGROUND_BIN),
            "-e",
            f"http://127.0.0.1:{bot_port}/api/messages",
            "-c",
            "msteams",
            "-p",
            str(playground_port),
            "--disable-telemetry",
        ],
        env={**env, "TEAMSAPPTESTER_BROWSER": "none"},
        cwd=work,
        stdout=logs[1],
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_http(f"http://127.0.0.1:{bot_port}/healthz")
        _wait_http(f"http://127.0.0.1:{playground_port}/")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(f"http://127.0.0.1:{playground_port}/", wait_until="networkidle")
            yield Session(page, env, database_url, shots)
            browser.close()
    finally:
        for process in (playground, server):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()


def test_install_shows_the_welcome_card(session: Session) -> None:
    welcome = session.cards().first
    expect(welcome).to_contain_text("Welcome to Contoso Insights tips", timeout=TIMEOUT_MS)
    expect(welcome).to_contain_text("delete my data")
    session.shot(welcome, "welcome")
    [user] = session.rows(User)
    assert (user.aad_object_id, user.tenant_id) == (PLAYGROUND_USER, PLAYGROUND_TENANT)
    assert user.installed_at is not None


def test_help_answers_with_the_welcome_card(session: Session) -> None:
    card = session.say("help")
    expect(card).to_contain_text("Type any of these")


def test_onboarding_tip_and_stop_these(session: Session) -> None:
    """`nurture run-campaigns` queues the day-0 tip for the person who just installed; the server sends it."""
    before = session.cards().count()
    report = session.nurture("run-campaigns")
    assert report["by_campaign"] == {"onboarding": 1}, report
    card = session.wait_for_new_card(before)
    expect(card).to_contain_text("Day 0 with Contoso Insights: a tip")
    expect(card).to_contain_text("pinning it to the left of Teams")
    session.shot(card, "nurture-onboarding")
    card.get_by_role("button", name="Not useful — stop these").click()
    stopped = session.cards().last
    expect(stopped).to_contain_text("Got it — no more of these", timeout=TIMEOUT_MS)
    expect(stopped).to_contain_text("You will not get onboarding tips from Contoso Insights any more.")
    session.shot(stopped, "nurture-stopped")
    [optout] = session.rows(CampaignOptOut)
    assert optout.kind == "onboarding"


def test_nps_promoter(session: Session) -> None:
    card = session.ask_nps()
    expect(card).to_contain_text("How likely are you to recommend Contoso Insights to a colleague?")
    session.shot(card, "nps-ask")
    card.get_by_role("radio", name="9", exact=True).check()
    card.get_by_role("button", name="Send").click()
    answered = session.cards().last
    expect(answered).to_contain_text("Thank you!", timeout=TIMEOUT_MS)
    expect(answered).to_contain_text("Your score: 9")
    session.shot(answered, "nps-promoter")
    assert [a.score for a in session.rows(NpsAnswer)] == [9]


def test_nps_empty_submission_shows_the_validation_message(session: Session) -> None:
    card = session.ask_nps()
    card.get_by_role("button", name="Send").click()
    expect(card).to_contain_text("Please pick a score from 0 to 10.", timeout=TIMEOUT_MS)
    session.shot(card, "nps-validation")
    assert len(session.rows(NpsAnswer)) == 1  # nothing new stored


def test_nps_detractor_creates_a_pending_alert(session: Session) -> None:
    card = session.cards().last  # the card left unanswered by the previous test
    card.get_by_role("radio", name="3", exact=True).check()
    card.get_by_role("textbox").fill("Exports keep timing out")
    card.get_by_role("button", name="Send").click()
    answered = session.cards().last
    expect(answered).to_contain_text("Someone from our team will reach out", timeout=TIMEOUT_MS)
    session.shot(answered, "nps-detractor")
    assert sorted(a.score for a in session.rows(NpsAnswer)) == [3, 9]
    [alert] = session.rows(PendingAlert)
    assert (alert.kind, alert.score, alert.status) == ("detractor", 3, "pending")


def test_csm_claims_the_detractor_alert(session: Session) -> None:
    """The Playground's user is also a CSM here: `nurture run-alerts` sends them the detractor alert; they claim it."""
    report = session.nurture("run-alerts")
    assert report["raised"] == {"detractor": 1}, report
    card = session.page.locator(".ac-adaptiveCard", has_text="Detractor at").last
    expect(card).to_contain_text("3/10", timeout=TIMEOUT_MS)
    card.get_by_role("button", name="Claim").click()
    claimed = session.page.locator(".ac-adaptiveCard", has_text="Claimed by you.").last
    expect(claimed).to_contain_text("Exports keep timing out", timeout=TIMEOUT_MS)  # the live card shows the comment
    session.shot(claimed, "alert-claimed")
    claimed.get_by_role("textbox").fill("Called their admin")
    claimed.get_by_role("button", name="Log outreach").click()
    noted = session.page.locator(".ac-adaptiveCard", has_text="outreach logged by you").last
    expect(noted).to_contain_text("Called their admin", timeout=TIMEOUT_MS)
    [alert] = session.rows(Alert)
    assert (alert.status, alert.claimed_by) == ("claimed", PLAYGROUND_USER)


def test_nps_passive_follow_up(session: Session) -> None:
    card = session.ask_nps()
    card.get_by_role("radio", name="7", exact=True).check()
    card.get_by_role("button", name="Send").click()
    answered = session.cards().last
    expect(answered).to_contain_text("What would make it a 10?", timeout=TIMEOUT_MS)
    session.shot(answered, "nps-passive")
    answered.get_by_role("textbox").fill("A mobile app")
    answered.get_by_role("button", name="Send").click()
    expect(session.cards().last).to_contain_text("Your comment: A mobile app", timeout=TIMEOUT_MS)
    assert ("A mobile app", 7) in [(a.comment, a.score) for a in session.rows(NpsAnswer)]


def test_csm_nps_report(session: Session) -> None:
    card = session.say("nps")
    expect(card).to_contain_text("NPS — all accounts")
    expect(card).to_contain_text("NPS +0 (95 % interval")  # one promoter, one passive, one detractor
    session.shot(card, "nps-report")


def test_stop_and_start(session: Session) -> None:
    card = session.say("stop")
    expect(card).to_contain_text("You won't get messages from me any more")
    session.shot(card, "notice-stop")
    refused = session.nurture("survey", "send", "--user", PLAYGROUND_USER, "--force", "--dry-run")
    assert refused["results"][0]["reason"] == "opted out of all messages"
    expect(session.say("start")).to_contain_text("Welcome back")
