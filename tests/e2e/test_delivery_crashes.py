"""`nurture deliver` processes killed with SIGKILL (and PostgreSQL restarted) in the middle of a campaign.

The contract (README, "What the server promises"): a send is either not started (it goes out normally once its lease
ends), in flight (it may have reached Teams: it ends `unknown` and is never sent again), or answered (its outcome is
written before the worker claims more). After any crash: nothing sent twice, nothing lost but what was really on its
way, and a 403/404/413 answered before the crash is kept.

Every message's notification text is its dedupe key (tests.support.seed.seed_outbox), so the fake Teams connector
can tell each message that reaches it apart. Runs on both databases, with one and two processes, over three tenants.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from storage.models import OutboxMessage
from tests.conftest import Harness
from tests.e2e.test_nps_flow import table
from tests.support.browser import missing_prerequisite
from tests.support.cli import clean_env, nurture
from tests.support.connector import Call, FakeConnector
from tests.support.database import refusing_connections
from tests.support.seed import seed_outbox

TENANTS = [f"{n}{n}{n}{n}{n}{n}{n}{n}-0000-4000-8000-00000000000{n}" for n in (3, 5, 7)]
LEASE_SECONDS = 3


def _settings(harness: Harness, **overrides: str) -> dict[str, str]:
    values = {
        "NURTURE_DATABASE_URL": harness.database_url,
        "NURTURE_DEV_MODE": "1",  # loopback service URLs (the fake connector), no outbound token
        "NURTURE_DELIVERY_LEASE": str(LEASE_SECONDS),
        "NURTURE_SEND_TIMEOUT": "2",
        "NURTURE_TENANT_LIMIT": "10",  # slow enough that a kill lands mid-campaign, with rows waiting in hand
        "NURTURE_TENANT_RATE": "8",
    }
    return clean_env(**(values | overrides))


class Crew:
    """`processes` × `nurture deliver --workers 1`, each writing its log to a file of its own."""

    def __init__(self, environment: dict[str, str], logs: Path) -> None:
        self.environment = environment
        self.logs = logs
        self.running: list[asyncio.subprocess.Process] = []
        self._files: list[IO[bytes]] = []

    async def start(self, processes: int) -> None:
        for _ in range(processes):
            log = (self.logs / f"deliver-{len(self._files)}.log").open("wb")
            self._files.append(log)
            self.running.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot", "deliver", "--workers", "1",
                    env=self.environment, stdout=asyncio.subprocess.DEVNULL, stderr=log,
                )
            )  # fmt: skip

    async def kill(self) -> float:
        """SIGKILL every process at once: no drain, leases and in-flight requests left behind. Returns when."""
        killed_at = time.monotonic()
        for process in self.running:
            process.kill()
        for process in self.running:
            await process.wait()
        self.running = []
        return killed_at

    async def stop(self) -> None:
        for process in self.running:
            process.terminate()
        for process in self.running:
            await process.wait()
        self.running = []
        for log in self._files:
            log.close()

    def log_text(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in sorted(self.logs.glob("deliver-*.log")))


def _sends(connector: FakeConnector) -> list[Call]:
    return [c for c in connector.calls if c.method == "POST" and "/activities" in c.path and c.body is not None]


def delivered(connector: FakeConnector) -> Counter[str]:
    """How often Teams took each message (by dedupe key), whether or not its answer reached the bot."""
    return Counter(str(c.body["summary"]) for c in _sends(connector) if c.accepted and c.body)


async def rows_by_key(harness: Harness) -> dict[str, OutboxMessage]:
    return {row.dedupe_key: row for row in await table(harness, OutboxMessage)}


async def _until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


async def _settled(harness: Harness, seconds: float = 90.0) -> dict[str, OutboxMessage]:
    """The outbox once nothing is queued or sending any more (the test fails if that takes too long)."""
    deadline = time.monotonic() + seconds
    while True:
        rows = await rows_by_key(harness)
        if all(row.status not in ("queued", "sending") for row in rows.values()):
            return rows
        assert time.monotonic() < deadline, Counter(row.status for row in rows.values())
        await asyncio.sleep(0.2)


async def _seed(harness: Harness, people: int, prefix: str = "c") -> list[str]:
    """`people` per tenant, two cards each (so each conversation's windows matter); returns the dedupe keys."""
    url, service = harness.database_url, harness.connector.service_url
    conversations = await seed_outbox(url, service, TENANTS, people, messages_per_conversation=2, prefix=prefix)
    return [f"{conversation}:{n}" for conversation in conversations for n in range(2)]


def _in_flight_at(connector: FakeConnector, moment: float, answered_within: float) -> set[str]:
    """Messages Teams had taken by `moment` whose answers had not reached the bot, or only `answered_within` seconds
    before it (an outcome still being written when the process died)."""
    return {
        str(c.body["summary"])
        for c in _sends(connector)
        if c.body and c.arrived <= moment and (c.answered is None or c.answered >= moment - answered_within)
    }


@pytest.mark.parametrize("processes", [1, 2])
async def test_kills_at_random_moments_never_send_twice_and_lose_only_what_was_on_its_way(
    harness: Harness, tmp_path: Path, processes: int
) -> None:
    """Two SIGKILLs of every delivery process at random moments, each followed by a restart, over 3 tenants and
    240 cards (two per conversation). Teams takes 50-150 ms to answer. Afterwards: no card reached Teams twice,
    every `sent` card reached it exactly once, nothing is left queued or sending, and only cards that were on their
    way at a kill (or answered in its last second) may be `unknown`."""
    connector = harness.connector
    connector.delay_seconds, connector.jitter_seconds = 0.05, 0.1
    keys = await _seed(harness, 40)
    crew = Crew(_settings(harness), tmp_path)
    rng = random.Random(os.environ.get("NURTURE_TEST_SEED", "kill-9"))
    kills = []
    try:
        await crew.start(processes)
        for threshold in (rng.randint(15, 60), rng.randint(90, 150)):
            await _until(lambda threshold=threshold: len(_sends(connector)) >= threshold, 30)
            await asyncio.sleep(rng.uniform(0, 0.3))
            kills.append(await crew.kill())
            await crew.start(processes)
        rows = await _settled(harness)
    finally:
        await crew.stop()
    times = delivered(connector)
    twice = {key: n for key, n in times.items() if n > 1}
    assert not twice, f"sent twice: {twice}\n{crew.log_text()}"
    assert set(rows) == set(keys)
    assert {row.status for row in rows.values()} <= {"sent", "unknown"}, crew.log_text()
    assert all(times[key] == 1 for key, row in rows.items() if row.status == "sent")
    unknown = {key for key, row in rows.items() if row.status == "unknown"}
    on_its_way = set().union(*(_in_flight_at(connector, moment, answered_within=1.0) for moment in kills))
    # a card marked as leaving whose request had not left the process when it died is `unknown` without having
    # reached Teams: that can only be a card in its last instant before leaving, a handful per kill at most
    never_arrived = unknown - set(times)
    assert len(never_arrived) <= 3 * len(kills), (never_arrived, crew.log_text())
    assert unknown - never_arrived <= on_its_way, (unknown - never_arrived - on_its_way, crew.log_text())
    assert all(row.last_error and "not resent" in row.last_error for key, row in rows.items() if key in unknown)


@pytest.mark.parametrize("processes", [1, 2])
async def test_a_kill_while_teams_holds_the_answers_leaves_exactly_those_unknown(
    harness: Harness, tmp_path: Path, processes: int
) -> None:
    """Teams stops answering mid-campaign (it takes the requests in and holds the answers); once nothing more
    arrives, every delivery process is killed, and Teams then answers. Exactly the cards Teams was holding end
    `unknown`; the 403, 404 and 413 answered before the kill stay `failed` (the people unreachable) and are not
    sent again; cards claimed but never sent — waiting in hand for the tenant's rate — go out after the restart;
    every other card reaches Teams exactly once."""
    connector = harness.connector
    connector.delay_seconds = 0.05
    url, service = harness.database_url, connector.service_url
    # the oldest rows, so claimed first; two cards each, both refused
    refused = await seed_outbox(url, service, TENANTS[:1], 3, messages_per_conversation=2, prefix="refused")
    codes = dict(zip(refused, (403, 404, 413), strict=True))
    for conversation, code in codes.items():
        connector.fail_for(conversation, code, times=2)
    keys = await _seed(harness, 30)
    crew = Crew(_settings(harness, NURTURE_SEND_TIMEOUT="8", NURTURE_DELIVERY_LEASE="10"), tmp_path)
    try:
        await crew.start(processes)
        failed_keys = {f"{conversation}:{n}" for conversation in refused for n in range(2)}
        answered = lambda: {str(c.body["summary"]) for c in _sends(connector) if c.body and c.status}  # noqa: E731
        assert await _until(lambda: failed_keys <= answered() and len(_sends(connector)) >= 40, 30), crew.log_text()
        await asyncio.sleep(0.3)  # the refusals' outcomes are written
        connector.freeze()
        await _until_quiet(connector, quiet_seconds=0.5, most_seconds=5)
        held = {str(c.body["summary"]) for c in _sends(connector) if c.body and c.answered is None}
        await crew.kill()
        connector.thaw()  # Teams answers at last: the cards it held were delivered, the bot never heard so
        assert held, "Teams held no request at the kill: the test proves nothing"
        rows = await rows_by_key(harness)
        assert {k for k, r in rows.items() if r.status == "sending" and r.attempt_started_at is not None} == held
        await asyncio.sleep(10.2)  # the dead workers' leases end
        code, _, err = await nurture(harness.database_url, "deliver", "--once", "--quiet", **_quiet_env(harness))
        assert code == 0, err
        rows = await _settled(harness, seconds=5)
    finally:
        await crew.stop()
    times = delivered(connector)
    assert {k for k, r in rows.items() if r.status == "unknown"} == held, crew.log_text()
    assert {k: (r.status, r.last_status_code) for k, r in rows.items() if k in failed_keys} == {
        f"{conversation}:{n}": ("failed", code) for conversation, code in codes.items() for n in range(2)
    }
    assert all(connector.sends_to(conversation) == 2 for conversation in refused)  # each of its two cards once
    assert {k: times[k] for k in keys} == dict.fromkeys(keys, 1), crew.log_text()  # held ones included, once
    assert {k for k, r in rows.items() if r.status == "sent"} == set(keys) - held
    async with harness.surveys().uow_factory() as uow:
        users = {u.aad_object_id: u for u in await uow.users.in_tenant(TENANTS[0])}
    unreachable = {f"a:{aad}" for aad, u in users.items() if u.unreachable_at is not None}
    assert unreachable == {c for c, code in codes.items() if code in (403, 404)}


def _quiet_env(harness: Harness) -> dict[str, str]:
    return {k: v for k, v in _settings(harness).items() if k.startswith("NURTURE_") and k != "NURTURE_DATABASE_URL"}


async def _until_quiet(connector: FakeConnector, quiet_seconds: float, most_seconds: float) -> None:
    """Wait until no request has arrived for `quiet_seconds` (the workers wait on the answers Teams holds)."""
    deadline = time.monotonic() + most_seconds
    while time.monotonic() < deadline:
        last = max((c.arrived for c in connector.calls), default=0.0)
        if time.monotonic() - last >= quiet_seconds:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("requests kept arriving while Teams held its answers")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_postgresql_restart_mid_campaign_loses_nothing_and_sends_nothing_twice(
    harness: Harness, tmp_path: Path
) -> None:
    """Two delivery processes; PostgreSQL itself is restarted (pg_ctlcluster, fast mode) twice mid-campaign.
    The workers wait for it, keep the answers they have in hand and finish: every card exactly once, none unknown."""
    restart = _postgres_restart_command()
    connector = harness.connector
    connector.delay_seconds, connector.jitter_seconds = 0.05, 0.1
    keys = await _seed(harness, 40)
    crew = Crew(_settings(harness, NURTURE_DELIVERY_LEASE="30", NURTURE_SEND_TIMEOUT="5"), tmp_path)
    try:
        await crew.start(2)
        for threshold in (40, 120):
            await _until(lambda threshold=threshold: len(_sends(connector)) >= threshold, 30)
            done = await asyncio.create_subprocess_exec(*restart, stdout=asyncio.subprocess.DEVNULL)
            assert await done.wait() == 0, "PostgreSQL did not restart"
        rows = await _settled(harness)
        assert all(process.returncode is None for process in crew.running), crew.log_text()
    finally:
        await crew.stop()
    assert "database unavailable" in crew.log_text()  # the outage happened and was ridden out
    assert {k: delivered(connector)[k] for k in keys} == dict.fromkeys(keys, 1), crew.log_text()
    assert {r.status for r in rows.values()} == {"sent"}, crew.log_text()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_answers_that_come_while_the_database_refuses_connections_are_kept(
    harness: Harness, tmp_path: Path
) -> None:
    """Teams answers the cards it held while PostgreSQL refuses every new connection for three seconds: the worker
    keeps the answers in hand until the database is back and writes them; every card `sent`, none `unknown`."""
    connector = harness.connector
    connector.delay_seconds = 0.05
    keys = await _seed(harness, 20)
    crew = Crew(_settings(harness, NURTURE_DELIVERY_LEASE="30", NURTURE_SEND_TIMEOUT="10"), tmp_path)
    try:
        await crew.start(1)
        assert await _until(lambda: len(_sends(connector)) >= 20, 30), crew.log_text()
        connector.freeze()
        await _until_quiet(connector, quiet_seconds=0.5, most_seconds=5)
        async with refusing_connections(harness.database_url):
            connector.thaw()  # the answers arrive now, with no database to write them to
            await asyncio.sleep(3)
        rows = await _settled(harness)
    finally:
        await crew.stop()
    assert "database unavailable" in crew.log_text()
    assert {r.status for r in rows.values()} == {"sent"}, crew.log_text()
    assert {k: delivered(connector)[k] for k in keys} == dict.fromkeys(keys, 1)


def _postgres_restart_command() -> list[str]:
    """The machine's own PostgreSQL, restarted as its service would be; a machine without it (or without the right
    to restart it) skips the test, and fails it in CI, where it must run."""
    clusters = Path("/etc/postgresql")
    tool = shutil.which("pg_ctlcluster")
    versions = sorted(p.name for p in clusters.iterdir()) if clusters.is_dir() else []
    if tool is None or not versions or os.geteuid() != 0:
        missing_prerequisite("restarting PostgreSQL needs Debian's pg_ctlcluster and root")
    return [tool, "--skip-systemctl-redirect", versions[0], "main", "restart", "-m", "fast"]


async def test_a_429_stops_the_tenants_sends_already_claimed(harness: Harness, tmp_path: Path) -> None:
    """Teams answers one request with 429 (Retry-After: 2). From the moment that answer is out, no request of that
    tenant arrives for two seconds — not even those the worker had claimed and cleared for sending — while the other
    tenants' go on; the throttled card is sent once after the pause."""
    connector = harness.connector
    connector.delay_seconds = 0.03
    url, service = harness.database_url, connector.service_url
    conversations = await seed_outbox(url, service, TENANTS, 40, prefix="t")
    throttled_tenant = TENANTS[0]
    victim = next(c for c in conversations if throttled_tenant in c)
    connector.fail_for(victim, 429, retry_after=2)
    crew = Crew(_settings(harness, NURTURE_TENANT_LIMIT="50", NURTURE_TENANT_RATE="45"), tmp_path)
    try:
        await crew.start(1)
        rows = await _settled(harness, seconds=60)
    finally:
        await crew.stop()
    throttle = next(c for c in _sends(connector) if c.status == 429)
    assert throttle.answered is not None
    paused = [
        c
        for c in _sends(connector)
        if throttled_tenant in c.path and throttle.answered + 0.05 < c.arrived < throttle.answered + 1.95
    ]
    assert paused == [], f"{len(paused)} request(s) of the paused tenant\n{crew.log_text()}"
    others = [c for c in _sends(connector) if throttled_tenant not in c.path and c.arrived > throttle.answered]
    assert others, "the other tenants' sends went on during the pause"
    assert {r.status for r in rows.values()} == {"sent"}
    assert connector.sends_to(victim) == 2 and delivered(connector)[f"{victim}:0"] == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_429_pauses_the_tenant_at_once_even_while_its_outcome_waits_for_the_database(
    harness: Harness, tmp_path: Path
) -> None:
    """As above, but the moment Teams answers 429 another session locks the throttled card's row for a second, so
    writing down the 429 (and the tenant's pause) waits: the worker must not go on sending to the tenant meanwhile."""
    import asyncpg
    from sqlalchemy.engine import make_url

    connector = harness.connector
    connector.delay_seconds = 0.03
    url, service = harness.database_url, connector.service_url
    conversations = await seed_outbox(url, service, TENANTS[:1], 80, prefix="t")
    victim = conversations[10]
    connector.fail_for(victim, 429, retry_after=2)
    database = make_url(url)
    blocker = await asyncpg.connect(
        host=database.host, port=database.port, user=database.username, database=database.database
    )
    release = asyncio.Event()

    async def hold_the_schedule(call: Call) -> None:
        if call.status == 429:
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("SELECT 1 FROM outbox WHERE conversation_id = $1 FOR UPDATE", victim)

            async def let_go() -> None:
                await asyncio.sleep(1.0)
                await transaction.rollback()
                release.set()

            asyncio.ensure_future(let_go())

    connector.before_answer = hold_the_schedule
    crew = Crew(_settings(harness, NURTURE_TENANT_LIMIT="50", NURTURE_TENANT_RATE="45"), tmp_path)
    try:
        await crew.start(1)
        rows = await _settled(harness, seconds=60)
        assert release.is_set(), "the 429 never came"
    finally:
        await crew.stop()
        await blocker.close()
    throttle = next(c for c in _sends(connector) if c.status == 429)
    assert throttle.answered is not None
    late = [c for c in _sends(connector) if throttle.answered + 0.05 < c.arrived < throttle.answered + 1.95]
    assert late == [], f"{len(late)} request(s) during the pause\n{crew.log_text()}"
    assert {r.status for r in rows.values()} == {"sent"}


BERLIN_CHAT = "a:berlin"


async def _berlin_person(harness: Harness, messages: dict[str, bool]) -> None:
    """A person in Berlin with a chat, and a card queued for them under each key (True: held in their night)."""
    from storage.outbox import NewMessage
    from storage.people import ConversationTarget, UserProfile

    now = harness.clock()
    async with harness.surveys().uow_factory() as uow:
        await uow.tenants.touch(TENANTS[0], now)
        user = await uow.users.upsert(UserProfile(TENANTS[0], "berlin-user", "de-DE", "Europe/Berlin"), now)
        await uow.users.mark_installed(user, now)
        service = harness.connector.service_url
        target = ConversationTarget(BERLIN_CHAT, TENANTS[0], "personal", "msteams", service, "28:x", user_id=user)
        await uow.conversations.upsert(target, now)
        card = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "hi"}]}
        for key, quiet in messages.items():
            message = NewMessage.of_card(key, "adoption", TENANTS[0], user, BERLIN_CHAT, card, quiet_hours=quiet)
            await uow.outbox.enqueue(message, now)
        await uow.commit()


async def test_quiet_hours_hold_a_queued_message_until_the_recipients_morning(harness: Harness) -> None:
    """A nudge queued in Berlin's afternoon waits in the queue; the worker claims it at 20:00 Berlin time: it goes
    back until 09:00 the next morning, sent then — while a forced NPS ask (an operator's) goes at once."""
    from datetime import UTC, datetime

    from bot.engagement.asking import AskPolicy

    harness.clock.now = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)  # a Tuesday, 20:00 in Berlin
    await _berlin_person(harness, {"nudge": True, "forced-nps": False})
    worker = harness.worker(quiet=AskPolicy())
    await worker.drain()
    rows = await rows_by_key(harness)
    assert (rows["forced-nps"].status, rows["nudge"].status) == ("sent", "queued")
    assert rows["nudge"].next_attempt_at == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    assert rows["nudge"].attempts == 0 and rows["nudge"].leased_by is None
    harness.clock.now = datetime(2026, 11, 25, 8, 0, 1, tzinfo=UTC)
    await worker.drain()
    rows = await rows_by_key(harness)
    assert rows["nudge"].status == "sent" and harness.connector.delivered_to(BERLIN_CHAT) == 2


async def test_a_message_that_waits_into_the_night_is_held_until_morning(harness: Harness) -> None:
    """Two nudges for a person in Berlin are claimed a second before 18:00 their time; the first is answered 429
    with a pause of two seconds, which the second waits out in hand. Then it is night in Berlin: it is not sent, but
    goes back to the queue until 09:00 (the check is made again when a message is about to leave, not only when
    it is claimed)."""
    from datetime import UTC, datetime

    from bot.engagement.asking import AskPolicy

    harness.clock.now = datetime(2026, 11, 24, 16, 59, 59, tzinfo=UTC)  # a Tuesday, 17:59:59 in Berlin
    await _berlin_person(harness, {"first": True, "second": True})
    conversation = BERLIN_CHAT
    harness.connector.fail_for(conversation, 429, retry_after=2)
    await harness.worker(quiet=AskPolicy()).drain()
    rows = await rows_by_key(harness)
    morning = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    assert (rows["second"].status, rows["second"].next_attempt_at, rows["second"].attempts) == ("queued", morning, 0)
    assert rows["first"].status == "queued" and rows["first"].last_status_code == 429
    assert harness.connector.sends_to(conversation) == 1  # only the first, answered 429: nothing went at night
