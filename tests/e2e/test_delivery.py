"""The outbox and its workers against the fake Teams connector, on both databases.

Status codes follow Microsoft's table; Teams' per-conversation and per-tenant limits are enforced by the connector and
must never be exceeded; concurrent workers (and processes) deliver every message exactly once; leases of dead workers
expire and their rows are delivered by others.
"""

from __future__ import annotations

import asyncio
import bisect
import csv
import json
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from storage.models import OutboxMessage, TenantRate, User
from storage.outbox import NewMessage
from storage.people import ConversationTarget, UserProfile
from tests.conftest import Harness
from tests.e2e.test_nps_flow import table
from tests.support.activities import TENANT, message
from tests.support.cli import clean_env, nurture
from tests.support.seed import seed_outbox

BIG_BUCKET = {"tenant_rate_per_second": 1e6, "tenant_limit_per_second": 10**6}  # no tenant waits: other limits alone


async def seed_recipients(harness: Harness, count: int, tenant: str = TENANT, prefix: str = "r") -> list[str]:
    """Installed users with personal conversations on the fake connector; returns their conversation ids."""
    conversations = []
    async with harness.surveys().uow_factory() as uow:
        await uow.tenants.touch(tenant, harness.clock())
        for i in range(count):
            aad = f"{prefix}-{tenant[:4]}-{i:05d}"
            user_id = await uow.users.upsert(UserProfile(tenant, aad, "en-US", "UTC"), harness.clock())
            await uow.users.mark_installed(user_id, harness.clock())
            conversation = f"a:{aad}"
            await uow.conversations.upsert(
                ConversationTarget(
                    conversation,
                    tenant,
                    "personal",
                    "msteams",
                    harness.connector.service_url,
                    "28:nurture-bot",
                    user_id=user_id,
                ),
                harness.clock(),
            )
            conversations.append(conversation)
        await uow.commit()
    return conversations


async def enqueue(harness: Harness, conversations: list[str], per_conversation: int = 1, tenant: str = TENANT) -> int:
    queued = 0
    async with harness.surveys().uow_factory() as uow:
        for conversation in conversations:
            reference = await uow.conversations.get(conversation)
            assert reference is not None
            for n in range(per_conversation):
                message_id = await uow.outbox.enqueue(
                    NewMessage(
                        f"test:{conversation}:{n}",
                        "nudge",
                        tenant,
                        reference.user_id,
                        conversation,
                        {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "hi"}]},
                        "hi",
                    ),
                    harness.clock(),
                )
                queued += message_id is not None
        await uow.commit()
    return queued


async def statuses(harness: Harness) -> dict[str, str]:
    return {row.conversation_id: row.status for row in await table(harness, OutboxMessage)}


async def test_status_codes_follow_microsofts_table(harness: Harness) -> None:
    ok, blocked, gone, broken, too_big, busy = await seed_recipients(harness, 6)
    await enqueue(harness, [ok, blocked, gone, broken, too_big, busy])
    connector = harness.connector
    connector.fail_for(blocked, 403, "ConversationBlockedByUser")
    connector.fail_for(gone, 404, "ConversationNotFound")
    connector.fail_for(broken, 500, "InternalServerError")
    connector.fail_for(too_big, 413, "MessageSizeTooBig")
    connector.fail_for(busy, 503)

    await harness.worker().run_once()  # one attempt each (a drain would retry the 503 once the test clock passed it)
    state = await statuses(harness)
    assert state == {
        ok: "sent",
        blocked: "failed",
        gone: "failed",
        broken: "unknown",
        too_big: "failed",
        busy: "queued",
    }
    users = {u.aad_object_id: u for u in await table(harness, User)}
    assert users["r-1111-00001"].unreachable_at is not None
    assert "ConversationBlockedByUser" in (users["r-1111-00001"].unreachable_reason or "")
    assert users["r-1111-00002"].unreachable_at is not None and users["r-1111-00000"].unreachable_at is None

    harness.clock.advance(seconds=2)  # past the 503's jittered backoff (at most 2 s on the first retry)
    await harness.deliver()
    assert (await statuses(harness))[busy] == "sent"
    # final outcomes were tried once and never again; the 500 is not resent (a send is not idempotent)
    assert [connector.sends_to(c) for c in (ok, blocked, gone, broken, too_big)] == [1, 1, 1, 1, 1]
    assert connector.sends_to(busy) == 2
    rows = {r.conversation_id: r for r in await table(harness, OutboxMessage)}
    assert rows[ok].activity_id and rows[broken].last_status_code == 500
    assert "not resent" in (rows[broken].last_error or "")


async def test_429_pauses_the_whole_tenant_for_retry_after(harness: Harness) -> None:
    throttled, neighbour = await seed_recipients(harness, 2)
    await enqueue(harness, [throttled])
    harness.connector.fail_for(throttled, 429, retry_after=5)
    started = harness.clock()
    await harness.deliver()
    [bucket] = await table(harness, TenantRate)
    assert bucket.throttled == 1 and bucket.paused_until_epoch == (started + timedelta(seconds=5)).timestamp()
    assert (await statuses(harness))[throttled] == "queued"

    await enqueue(harness, [neighbour])  # another person in the same tenant waits for the pause too
    await harness.deliver()
    rows = {r.conversation_id: r for r in await table(harness, OutboxMessage)}
    assert rows[neighbour].status == "sent" and rows[neighbour].sent_at is not None
    assert rows[neighbour].sent_at >= started + timedelta(seconds=5)
    harness.clock.advance(seconds=1)
    await harness.deliver()
    rows = {r.conversation_id: r for r in await table(harness, OutboxMessage)}
    assert rows[throttled].status == "sent" and harness.connector.sends_to(throttled) == 2


async def test_retries_are_bounded(harness: Harness) -> None:
    [conversation] = await seed_recipients(harness, 1)
    await enqueue(harness, [conversation])
    harness.connector.fail_for(conversation, 503, times=10)
    for _ in range(10):
        await harness.deliver()
        harness.clock.advance(minutes=10)
    [row] = await table(harness, OutboxMessage)
    assert row.status == "failed" and row.attempts == 6 and "gave up after 6 attempts" in (row.last_error or "")
    assert harness.connector.sends_to(conversation) == 6


async def test_unreachable_person_is_reachable_again_after_writing(harness: Harness) -> None:
    [conversation] = await seed_recipients(harness, 1)
    await enqueue(harness, [conversation])
    harness.connector.fail_for(conversation, 403, "BotNotInConversationRoster")
    await harness.deliver()
    [user] = await table(harness, User)
    assert user.unreachable_at is not None
    await harness.post(
        message(
            "help",
            service_url=harness.connector.service_url,
            aad_object_id=user.aad_object_id,
            conversation_id=conversation,
        )
    )
    [user] = await table(harness, User)
    assert user.unreachable_at is None and user.unreachable_reason is None


async def test_the_same_message_is_never_queued_twice(harness: Harness) -> None:
    [conversation] = await seed_recipients(harness, 1)
    assert await enqueue(harness, [conversation]) == 1
    assert await enqueue(harness, [conversation]) == 0
    assert len(await table(harness, OutboxMessage)) == 1


async def test_concurrent_workers_deliver_each_message_exactly_once(harness: Harness) -> None:
    conversations = await seed_recipients(harness, 120)
    await enqueue(harness, conversations)
    workers = [harness.worker(worker_id=f"w{i}", **BIG_BUCKET) for i in range(4)]
    await asyncio.gather(*(worker.drain() for worker in workers))
    assert {harness.connector.sends_to(c) for c in conversations} == {1}  # no connector error: every send counts
    assert set((await statuses(harness)).values()) == {"sent"}


async def test_per_conversation_limits_are_never_exceeded(harness: Harness) -> None:
    harness.connector.enforce_limits = True
    [conversation] = await seed_recipients(harness, 1)
    await enqueue(harness, [conversation], per_conversation=16)  # 16 messages into one chat: 8 per 2 s at most
    started = asyncio.get_running_loop().time()
    await harness.worker(**BIG_BUCKET).drain()
    assert harness.connector.violations == []
    assert harness.connector.sends_to(conversation) == 16
    assert asyncio.get_running_loop().time() - started >= 2.0  # the limiter really spaced them


async def test_a_dead_workers_lease_expires_and_another_delivers(harness: Harness) -> None:
    conversations = await seed_recipients(harness, 3)
    await enqueue(harness, conversations)
    async with harness.surveys().uow_factory() as uow:  # a worker claims, then dies before sending
        claimed = await uow.outbox.claim("dead-worker", harness.clock(), timedelta(seconds=60), 10)
        await uow.commit()
    assert len(claimed) == 3
    await harness.deliver()
    assert harness.connector.sent() == []  # leased rows are not touched while the lease holds
    harness.clock.advance(seconds=61)
    await harness.deliver()
    assert {harness.connector.sends_to(c) for c in conversations} == {1}
    rows = await table(harness, OutboxMessage)
    assert {r.status for r in rows} == {"sent"} and {r.attempts for r in rows} == {2}


async def test_worker_processes_share_the_outbox_and_the_limits(harness: Harness) -> None:
    """Three `nurture deliver` processes on one database: exactly once, no limit exceeded."""
    harness.connector.enforce_limits = True
    harness.connector.tenant_rate = 20
    tenants = ["11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"]
    conversations: list[str] = []
    for tenant in tenants:
        mine = await seed_recipients(harness, 60, tenant=tenant, prefix="p")
        await enqueue(harness, mine, tenant=tenant)
        conversations += mine
    runs = await asyncio.gather(
        *(
            nurture(
                harness.database_url,
                "deliver",
                "--once",
                "--workers",
                "2",
                NURTURE_DEV_MODE="1",
                NURTURE_TENANT_LIMIT="20",  # Teams' limit is the connector's here
                NURTURE_TENANT_RATE="18",
            )
            for _ in range(3)
        )
    )
    assert all(code == 0 for code, _, _ in runs), [err[-500:] for _, _, err in runs]
    assert {harness.connector.delivered_to(c) for c in conversations} == {1}
    assert harness.connector.violations == []
    assert set((await statuses(harness)).values()) == {"sent"}


async def test_deliveries_report_and_csv(harness: Harness, tmp_path: Path) -> None:
    ok, blocked = await seed_recipients(harness, 2)
    await enqueue(harness, [ok, blocked])
    harness.connector.fail_for(blocked, 403, "ConversationBlockedByUser")
    await harness.deliver()
    code, out, err = await nurture(harness.database_url, "deliveries", "--json", "--csv", str(tmp_path / "d.csv"))
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    assert report["by_status"] == {"sent": 1, "failed": 1} and report["status_codes"] == {"403": 1}
    assert report["by_kind"] == {"nudge": {"sent": 1, "failed": 1}}
    assert "ConversationBlockedByUser" in report["recent_errors"][0]["error"]
    with (tmp_path / "d.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["user"], r["status"]) for r in rows} == {("r-1111-00000", "sent"), ("r-1111-00001", "failed")}


@pytest.mark.parametrize("answer", [{"status": 404, "code": "ConversationNotFound"}])
async def test_survey_instance_follows_its_delivery(harness: Harness, answer: dict[str, Any]) -> None:
    from tests.e2e.test_nps_flow import ask

    await ask(harness)  # delivered: the instance is "sent" with the activity id
    async with harness.surveys().uow_factory() as uow:
        row = (await uow.session.execute(select(OutboxMessage))).scalar_one()
        instance = await uow.surveys.instance(str(row.survey_instance_id))
    assert instance is not None and instance.status == "sent" and instance.activity_id == row.activity_id


async def _until(condition: Callable[[], bool], seconds: float = 4.0) -> None:
    """Wait (real time) until `condition` holds or `seconds` pass; the test's assertions say what should hold."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)


async def test_an_unforeseen_error_does_not_end_the_worker(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The sender raises something nobody planned for, once: the worker logs it and goes on. The row it broke may or
    may not have reached Teams, like a send that timed out: it is `unknown`, never sent again; the other row is sent
    right away, once."""
    broken, fine = await seed_recipients(harness, 2)
    await enqueue(harness, [broken])
    worker = harness.worker(**BIG_BUCKET)
    attempt = worker.sender.attempt
    failures = []

    async def fails_once(target: Any, card: Any, summary: str) -> Any:
        if not failures:
            failures.append(target.conversation_id)
            raise RuntimeError("unforeseen")
        return await attempt(target, card, summary)

    monkeypatch.setattr(worker.sender, "attempt", fails_once)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await _until(lambda: bool(failures))
        await enqueue(harness, [fine])
        await _until(lambda: harness.connector.delivered_to(fine) > 0)
        assert not running.done()  # still working after the error
        harness.clock.advance(seconds=61)  # the broken row's lease would have ended: it is not claimed again
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        await running
    assert failures == [broken] and "delivery worker test-worker failed" in caplog.text
    assert {c: harness.connector.delivered_to(c) for c in (broken, fine)} == {broken: 0, fine: 1}
    assert await statuses(harness) == {broken: "unknown", fine: "sent"}
    rows = {r.conversation_id: r for r in await table(harness, OutboxMessage)}
    assert rows[broken].last_error == "no answer after the request was sent: delivery unknown, not resent"


async def test_a_send_that_times_out_is_unknown_and_never_sent_again(harness: Harness) -> None:
    """Teams takes 3 s (and does deliver); the bot gives up after 0.5 s: `unknown`, within the lease, never resent."""
    from bot.app import SESSIONS, card_sender
    from bot.teams.adapter import build_adapter
    from bot.usecases.delivery.worker import DeliveryConfig, DeliveryWorker
    from storage.uow import UnitOfWork
    from tests.conftest import APP_ID, make_settings
    from tests.support.credentials import FixedTokenCredentialsFactory

    slow, fine = await seed_recipients(harness, 2)
    await enqueue(harness, [slow, fine])
    harness.connector.hang_for(slow, 3.0)
    settings = make_settings(harness.database_url, harness.settings.openid_metadata_url, send_timeout_seconds=0.5)
    _, authentication = build_adapter(settings, FixedTokenCredentialsFactory(APP_ID))
    sessions = harness.app[SESSIONS]
    sender = card_sender(settings, authentication)
    worker = DeliveryWorker(lambda: UnitOfWork(sessions), sender, "slow-test", harness.clock, DeliveryConfig())
    await worker.drain()
    state = await statuses(harness)
    assert state == {slow: "unknown", fine: "sent"}
    rows = {r.conversation_id: r for r in await table(harness, OutboxMessage)}
    assert rows[slow].last_status_code is None
    assert rows[slow].last_error == "no answer after the request was sent: delivery unknown, not resent"
    assert harness.connector.delivered_to(slow) == 1  # Teams did get it
    harness.clock.advance(hours=1)
    await worker.drain()
    assert harness.connector.sends_to(slow) == 1  # not resent: that would have been a duplicate
    await sender.close()


def test_the_send_timeout_must_fit_inside_the_lease() -> None:
    from bot.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="NURTURE_SEND_TIMEOUT must be shorter than NURTURE_DELIVERY_LEASE"):
        load_settings(_env_file=None, send_timeout_seconds=30, delivery_lease_seconds=30)


def test_the_tenant_rate_must_be_within_teams_limit() -> None:
    from bot.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="NURTURE_TENANT_RATE must not be above NURTURE_TENANT_LIMIT"):
        load_settings(_env_file=None, tenant_rate_per_second=35, tenant_limit_per_second=30)
    settings = load_settings(_env_file=None, tenant_rate_per_second=28, tenant_limit_per_second=30)
    assert (settings.tenant_rate_per_second, settings.tenant_limit_per_second) == (28, 30)


async def _drop_connections(database_url: str) -> int:
    """What clients see when PostgreSQL restarts: every server connection to the database is cut — first one that
    is inside a query or transaction (found and cut in one statement, so it cannot finish in between), then the rest."""
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    admin = await asyncpg.connect(host=url.host, port=url.port, user=url.username, database=url.database)
    others = "FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
    try:
        busy = []
        for _ in range(4000):
            busy = await admin.fetch(
                f"SELECT pg_terminate_backend(pid) {others} AND state IN ('active', 'idle in transaction')",
                url.database,
            )
            if busy:
                break
            await asyncio.sleep(0.001)
        rest = await admin.fetch(f"SELECT pg_terminate_backend(pid) {others}", url.database)
        return len(busy) + len(rest)
    finally:
        await admin.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_workers_survive_lost_database_connections_mid_campaign(harness: Harness) -> None:
    """Two `nurture deliver` processes; mid-campaign every database connection is cut, twice. They reconnect and
    finish: every message delivered exactly once, nothing lost, no limit broken, both processes still running."""
    harness.connector.delay_seconds = 0.02
    harness.connector.enforce_limits = True
    conversations = await seed_recipients(harness, 240)
    await enqueue(harness, conversations)
    environment = clean_env(
        NURTURE_DATABASE_URL=harness.database_url, NURTURE_DEV_MODE="1", NURTURE_DELIVERY_LEASE="30"
    )
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "deliver", "--workers", "1",
            env=environment, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]  # fmt: skip
    try:
        for threshold in (20, 60):
            for _ in range(400):
                if len(harness.connector.accepted) >= threshold:
                    break
                await asyncio.sleep(0.05)
            assert await _drop_connections(harness.database_url) >= 1
        for _ in range(600):
            if len(harness.connector.accepted) >= len(conversations):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        assert all(p.returncode is None for p in processes)  # still running
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
        logs = [(await p.communicate())[1].decode() for p in processes]
    assert all(p.returncode == 0 for p in processes), logs
    assert any("database unavailable" in log for log in logs), logs  # the outage happened and was survived
    assert set((await statuses(harness)).values()) == {"sent"}
    assert all(harness.connector.delivered_to(c) == 1 for c in conversations)
    assert harness.connector.violations == []


async def test_three_processes_deliver_six_thousand_messages_exactly_once_within_every_limit(
    harness: Harness,
) -> None:
    """3 `nurture deliver` processes x 2,000 messages over 4 tenants against a connector that enforces Teams' limits
    (per conversation and 50/s per tenant): every message exactly once, no limit exceeded, injected 429s obeyed.
    Some conversations get 5 messages each, so the per-conversation windows are shared across processes."""
    harness.connector.enforce_limits = True
    tenants = [f"{n}{n}{n}{n}{n}{n}{n}{n}-0000-0000-0000-000000000000" for n in range(3, 7)]
    url, service = harness.database_url, harness.connector.service_url
    singles = await seed_outbox(url, service, tenants, 1450, prefix="s")
    busy = await seed_outbox(url, service, tenants, 10, messages_per_conversation=5, prefix="b")
    expected = {**dict.fromkeys(singles, 1), **dict.fromkeys(busy, 5)}
    assert sum(expected.values()) == 6000
    throttled = [c for c in singles if c.startswith("a:s-33333333")][:5]
    for conversation in throttled:
        harness.connector.fail_for(conversation, 429, retry_after=1)
    runs = await asyncio.gather(
        *(
            nurture(
                harness.database_url,
                "deliver",
                "--once",
                "--quiet",
                "--workers",
                "2",
                wait_seconds=600,
                NURTURE_DEV_MODE="1",
            )
            for _ in range(3)
        )
    )
    assert all(code == 0 for code, _, _ in runs), [err[-500:] for _, _, err in runs]
    assert harness.connector.violations == []
    assert {c: harness.connector.delivered_to(c) for c in expected} == expected  # exactly once each
    assert all(harness.connector.sends_to(c) == 2 for c in throttled)  # the 429, then the send after Retry-After
    assert set((await statuses(harness)).values()) == {"sent"}
    async with harness.surveys().uow_factory() as uow:
        assert await uow.outbox.throttled() == len(throttled)


def _most_in_one_second(times: list[float]) -> int:
    ordered = sorted(times)
    return max((bisect.bisect_left(ordered, t + 1.0) - i for i, t in enumerate(ordered)), default=0)


async def test_a_tenant_gets_at_most_its_limit_in_any_second_even_after_a_hold_up(harness: Harness) -> None:
    """200 cards at 45/s on the test clock, twice: the worker's log lets requests go 1/50 s apart until 50 count in
    the window of 50/45 s, then as they leave it. Held up 0.3 s in a wait (descheduled) the second time, it goes on
    from its log: no second holds more than 50 either time, and the hold-up costs the campaign 0.3 s at most."""
    conversations = await seed_recipients(harness, 400)
    hold_up_at: int | None = None
    waits = 0

    async def held_up(seconds: float) -> None:
        nonlocal waits
        waits += 1
        await harness._simulated_sleep(seconds + (0.3 if waits == hold_up_at else 0.0))

    worker = harness.worker(sleep=held_up, tenant_rate_per_second=45.0)

    times: list[float] = []  # when each request left, on the test clock
    attempt = worker.sender.attempt

    async def timed(*args: Any) -> Any:
        times.append(harness.clock().timestamp())
        return await attempt(*args)

    worker.sender = SimpleNamespace(attempt=timed)  # type: ignore[assignment]
    took = []
    for half, hold_up in ((conversations[:200], None), (conversations[200:], 60)):
        await enqueue(harness, half)
        hold_up_at, waits, times = hold_up, 0, []
        started = harness.clock().timestamp()
        await worker.drain()
        assert len(times) == 200 and _most_in_one_second(times) <= 50
        took.append(max(times) - started)
        harness.clock.advance(seconds=5)
    assert set((await statuses(harness)).values()) == {"sent"}
    assert took[0] >= 3 * 50 / 45  # three windows at least between the first of 200 and the last
    assert took[0] < took[1] <= took[0] + 0.3 + 0.01
    assert all(harness.connector.sends_to(c) == 1 for c in conversations)


async def test_one_worker_at_a_time_sends_to_a_tenant(harness: Harness) -> None:
    """Two workers: while one holds a tenant the other leaves its rows alone (and sends another tenant's); once the
    holder has let go, the other takes the tenant, and sends only after the first one's requests have left Teams'
    window."""
    other_tenant = "99999999-0000-0000-0000-000000000000"
    mine = await seed_recipients(harness, 4)
    theirs = await seed_recipients(harness, 2, tenant=other_tenant, prefix="o")
    await enqueue(harness, mine[:2])
    first = harness.worker(worker_id="first", tenant_rate_per_second=45.0)
    second = harness.worker(worker_id="second", tenant_rate_per_second=45.0)
    rows, known = await first._claim(10)
    assert {row.tenant_id for row in rows} == {TENANT}
    await enqueue(harness, mine[2:])
    await enqueue(harness, theirs, tenant=other_tenant)
    await second.drain()
    assert {c: s for c, s in (await statuses(harness)).items() if s == "sent"} == dict.fromkeys(theirs, "sent")

    await asyncio.gather(*(first.deliver(row, known) for row in rows))
    await first._release_all()
    released = harness.clock().timestamp()
    await second.drain()
    assert set((await statuses(harness)).values()) == {"sent"}
    late = [row.sent_at.timestamp() for row in await table(harness, OutboxMessage) if row.conversation_id in mine[2:]]
    assert min(late) == pytest.approx(released + 50 / 45)  # the first worker's sends have left the window
    assert all(harness.connector.sends_to(c) == 1 for c in mine + theirs)


async def test_a_worker_whose_hold_ran_out_gives_its_rows_back(harness: Harness) -> None:
    """A worker stalls past its hold on a tenant and another worker takes the tenant: the stalled one sends nothing
    more to it; its rows go back to the queue untouched, for the new holder."""
    conversations = await seed_recipients(harness, 3)
    await enqueue(harness, conversations)
    stalled = harness.worker()
    rows, known = await stalled._claim(10)
    assert len(rows) == 3
    harness.clock.advance(seconds=stalled.config.hold_seconds + 1)
    async with harness.surveys().uow_factory() as uow:
        taken = await uow.outbox.hold_tenants("newcomer", [TENANT], harness.clock().timestamp(), 10.0, 1.2)
        await uow.commit()
    assert TENANT in taken
    await asyncio.gather(*(stalled.deliver(row, known) for row in rows))
    assert harness.connector.sent() == []
    back = await table(harness, OutboxMessage)
    assert {(r.status, r.attempts, r.leased_by) for r in back} == {("queued", 0, None)}


async def test_a_worker_at_its_limit_of_tenants_takes_the_next_one_when_one_is_done(harness: Harness) -> None:
    """One tenant at a time per worker (NURTURE_TENANTS_PER_WORKER=1) and three tenants with cards due: the drain
    sends to one, lets it go when nothing of it is left, takes the next, and ends only when all three are done."""
    tenants = [f"{n}{n}{n}{n}{n}{n}{n}{n}-0000-0000-0000-000000000000" for n in (7, 8, 9)]
    conversations: list[str] = []
    for tenant in tenants:
        mine = await seed_recipients(harness, 5, tenant=tenant, prefix="t")
        await enqueue(harness, mine, tenant=tenant)
        conversations += mine
    worker = harness.worker(tenants_per_worker=1)
    await worker.drain()
    assert set((await statuses(harness)).values()) == {"sent"}
    assert all(harness.connector.sends_to(c) == 1 for c in conversations)
    async with harness.surveys().uow_factory() as uow:
        rates = (await uow.session.execute(select(TenantRate))).scalars().all()
    assert {r.tenant_id for r in rates} == set(tenants) and {r.holder for r in rates} == {None}  # all let go
