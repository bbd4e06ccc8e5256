"""A database that is locked by someone else: Teams and the vendor's senders get an answer in time, and nothing is
half stored. On SQLite another connection holds the write lock; on PostgreSQL another session holds a table lock.

- An NPS answer is answered within 4.5 s (Teams gives a card action about 5 s): stored and thanked, or a card that
  says nothing was saved, whose "Try again" sends the same answer once the database is free.
- Other activities and usage batches get 503 with Retry-After instead of a hung request; the retry is processed.
- /healthz answers within its 2 s bound, reading without waiting for the writer.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from storage.models import InboundActivity, NpsAnswer, UsageEvent
from tests.conftest import Harness
from tests.e2e.test_nps_flow import ask, invoke, submit, table
from tests.e2e.test_usage_ingest import post_events
from tests.support.activities import message
from tests.support.database import refusing_connections
from tests.support.usage import event


@asynccontextmanager
async def locked(database_url: str, table_name: str) -> AsyncIterator[None]:
    """Someone else holds the lock writers need: SQLite's write lock, or PostgreSQL's strongest lock on a table."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        holder = sqlite3.connect(str(url.database), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    session = await asyncpg.connect(host=url.host, port=url.port, user=url.username, database=url.database)
    transaction = session.transaction()
    await transaction.start()
    await session.execute(f"LOCK TABLE {table_name} IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        await transaction.rollback()
        await session.close()


async def _timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = await call
    return result, time.monotonic() - started


async def test_an_nps_answer_is_answered_in_time_and_can_be_sent_again(harness: Harness) -> None:
    instance = await ask(harness)
    answer = invoke(harness, "nps.submit", submit(instance, "2", "Too slow"))
    async with locked(harness.database_url, "nps_answers"):
        response, took = await _timed(harness.post(answer))
        assert response.status == 200 and took < 4.5, took
        body = await response.json()
        card = body["value"]
        assert body["statusCode"] == 200 and "Nothing was saved" in card["fallbackText"]
        [again] = card["body"][-1]["actions"]
        assert (again["verb"], again["data"]) == ("nps.submit", submit(instance, "2", "Too slow"))
    assert await table(harness, NpsAnswer) == []  # nothing half stored
    retry = invoke(harness, "nps.submit", again["data"])  # the person presses "Try again"
    response = await harness.post(retry)
    assert response.status == 200
    assert "Thank" in (await response.json())["value"]["fallbackText"]
    assert [(a.score, a.comment) for a in await table(harness, NpsAnswer)] == [(2, "Too slow")]


async def test_answers_arriving_with_messages_are_still_answered_in_time(harness: Harness) -> None:
    """Ten answers and ten messages at once, with the database locked for 8 s. The messages wait longest for the
    lock; nothing they do may hold up the event loop (a SQLite connection waiting inside SQLite for its lock once
    stopped it, through the garbage collector, for the whole wait), so every answer still comes within 4.5 s."""
    people = [f"cccccccc-0000-0000-0000-{i:012d}" for i in range(20)]
    asks = [await ask(harness, aad=person) for person in people[:10]]
    service = harness.connector.service_url

    async def collect_garbage_meanwhile() -> float:
        """A full collection while the messages wait for the lock and failed answers have left their statements."""
        await asyncio.sleep(3.5)
        started = time.monotonic()
        gc.collect()
        return time.monotonic() - started

    async with locked(harness.database_url, "users"):
        answers = [
            harness.post(invoke(harness, "nps.submit", submit(i, "7"), aad=p))
            for i, p in zip(asks, people[:10], strict=True)
        ]
        messages = [harness.post(message("help", service_url=service, aad_object_id=p)) for p in people[10:]]
        collecting = asyncio.ensure_future(collect_garbage_meanwhile())
        timed = await asyncio.gather(*(_timed(request) for request in answers + messages))
    assert await collecting < 0.5
    took = sorted(seconds for _, seconds in timed[:10])
    assert took[-1] < 4.5, took
    assert {response.status for response, _ in timed} <= {200, 503}
    assert all(response.status == 200 for response, _ in timed[:10])


async def test_a_message_gets_503_and_its_retry_is_processed(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.teams import messages

    monkeypatch.setattr(messages, "TURN_SECONDS", 2.0)  # the same rule as in production, with less waiting
    monkeypatch.setattr(messages, "TURN_LOCK_WAIT", 1.5)
    activity = message("help", service_url=harness.connector.service_url)
    async with locked(harness.database_url, "inbound_activities"):
        response, took = await _timed(harness.post(activity))
        assert response.status == 503 and took < 2.5, took
        assert response.headers["Retry-After"] == "5"
        assert "nothing was stored" in (await response.json())["error"]
    for _ in range(100):  # the claim of the failed turn (if it was made) goes in the background
        if not await table(harness, InboundActivity):
            break
        await asyncio.sleep(0.05)
    sent = len(harness.connector.sent())
    response = await harness.post(activity)  # Teams sends it again
    assert response.status == 200
    assert len(harness.connector.sent()) == sent + 1  # processed this time: the help card


async def test_a_usage_batch_gets_503_and_stores_nothing(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import usage_api

    monkeypatch.setattr(usage_api, "STORE_SECONDS", 2.0)
    monkeypatch.setattr(usage_api, "LOCK_WAIT_SECONDS", 1.5)
    batch = [event("report_created", harness.clock(), user=f"user-{i}") for i in range(50)]
    async with locked(harness.database_url, "usage_events"):
        response, took = await _timed(post_events(harness, batch))
        assert response.status == 503 and took < 2.5, took
        assert response.headers["Retry-After"] == "5"
    assert await table(harness, UsageEvent) == []
    assert (await post_events(harness, batch)).status == 202
    assert len(await table(harness, UsageEvent)) == 50


async def test_healthz_does_not_wait_for_a_writer(harness: Harness) -> None:
    async with locked(harness.database_url, "users"):
        response, took = await _timed(harness.client.get("/healthz"))
    assert response.status == 200 and took < 2.0, took
    assert (await response.json())["database"]["reachable"] is True


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_database_that_refuses_connections_gets_503s_and_a_not_saved_card(harness: Harness) -> None:
    """PostgreSQL refusing new connections (its connection limit, or a database being moved) answers asyncpg's own
    errors while connecting, which SQLAlchemy passes on unwrapped: each request still gets its answer in time."""
    instance = await ask(harness)
    answer = invoke(harness, "nps.submit", submit(instance, "9"))
    async with refusing_connections(harness.database_url):
        response, took = await _timed(harness.client.get("/healthz"))
        assert response.status == 503 and took < 2.0
        assert (await response.json())["database"]["reachable"] is False
        response = await harness.post(answer)
        assert response.status == 200 and "Nothing was saved" in (await response.json())["value"]["fallbackText"]
        response = await harness.post(message("help", service_url=harness.connector.service_url))
        assert response.status == 503 and response.headers["Retry-After"] == "5"
        response = await post_events(harness, [event("report_created", harness.clock())])
        assert response.status == 503 and response.headers["Retry-After"] == "5"
    response = await harness.post(answer)  # "Try again", with the database back
    assert "Thank" in (await response.json())["value"]["fallbackText"]
    assert [a.score for a in await table(harness, NpsAnswer)] == [9]
