"""SnapshotReaders: several SQLite connections, one snapshot, statements run at once and stopped when cancelled."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from storage.sqlite_snapshot import SnapshotReaders, database_file

# a statement that runs for many seconds unless interrupted
ENDLESS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) SELECT max(i) FROM n"


def _database(tmp_path: Path) -> Path:
    path = tmp_path / "snapshot.db"
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE t (i INTEGER)")
    connection.close()
    return path


def test_every_reader_reads_the_same_snapshot_while_a_writer_commits(tmp_path: Path) -> None:
    """A writer commits a row after another (with a pause of half a millisecond, as writers leave between
    transactions); the readers, begun one after the other, each count the rows: always the same number (without
    the write lock held while they begin, they differ almost always)."""
    path = _database(tmp_path)
    stop = threading.Event()
    commits = 0

    def write() -> None:
        nonlocal commits
        writer = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            while not stop.is_set():
                writer.execute("INSERT INTO t VALUES (1)")
                commits += 1
                time.sleep(0.0005)
        finally:
            writer.close()

    writing = threading.Thread(target=write)
    writing.start()
    try:
        counts: list[list[int]] = []
        for _ in range(100):
            readers = SnapshotReaders(path, 4)
            counts.append(asyncio.run(readers.within(_counts)))
    finally:
        stop.set()
        writing.join()
    assert commits > 50  # the writer went on between and during the openings
    assert len({c[0] for c in counts}) > 1  # and the readers saw it: each opening a later snapshot
    for count in counts:
        assert len(set(count)) == 1, count


def _counts(readers: SnapshotReaders) -> list[int]:
    return [readers.fetch(("SELECT count(*) FROM t", []), i)[0][0] for i in range(readers.count)]


def test_parts_run_at_once_and_an_error_stops_the_others(tmp_path: Path) -> None:
    """Seven statements on three readers: each reader takes the next statement not yet begun, on a thread of its own,
    and converts its rows there; each result comes back with its statement's index, on the caller's thread."""
    path = _database(tmp_path)
    threads: dict[int, set[int]] = {}

    def converted(rows: list[tuple[int]]) -> int:
        threads.setdefault(threading.get_ident(), set()).add(rows[0][0])
        return rows[0][0] * 10

    def work(readers: SnapshotReaders) -> tuple[list[tuple[int, int]], int]:
        counting = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)"
        statements = [(f"{counting} SELECT {n} FROM (SELECT max(i) FROM n)", []) for n in range(7)]  # ~0.15 s each
        return list(readers.each_part(statements, converted)), threading.get_ident()

    results, caller = asyncio.run(SnapshotReaders(path, 3).within(work))
    assert sorted(results) == [(n, n * 10) for n in range(7)]
    assert sorted(n for taken in threads.values() for n in taken) == list(range(7))
    assert len(threads) == 3  # every reader took some: none waited for another
    assert caller not in threads  # the caller only took the results

    started = time.perf_counter()
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        asyncio.run(
            SnapshotReaders(path, 2).within(
                lambda r: list(r.each_part([(ENDLESS, []), ("SELECT * FROM missing_table", [])], list))
            )
        )
    assert time.perf_counter() - started < 5  # the endless part was interrupted, not waited for


def test_a_part_comes_back_as_soon_as_it_is_ready_and_stopping_early_interrupts_the_rest(tmp_path: Path) -> None:
    """The caller works on a finished part while another still runs; when it stops taking them, the statements still
    running are interrupted, not waited for."""
    path = _database(tmp_path)

    def work(readers: SnapshotReaders) -> tuple[int, list[Any]]:
        parts = readers.each_part([(ENDLESS, []), ("SELECT 42", [])], list)
        first = next(parts)  # the endless statement is still running
        parts.close()
        return first

    started = time.perf_counter()
    assert asyncio.run(SnapshotReaders(path, 2).within(work)) == (1, [(42,)])
    assert time.perf_counter() - started < 5


def test_cancelling_interrupts_the_readers_and_closes_them(tmp_path: Path) -> None:
    path = _database(tmp_path)
    readers = SnapshotReaders(path, 2)

    async def cancel_soon() -> None:
        task = asyncio.create_task(readers.within(lambda r: list(r.each_part([(ENDLESS, []), (ENDLESS, [])], list))))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    started = time.perf_counter()
    asyncio.run(cancel_soon())
    while readers.connections and time.perf_counter() - started < 5:
        time.sleep(0.01)
    assert readers.connections == []  # the worker thread's statements stopped and it closed its connections
    assert time.perf_counter() - started < 5
    writer = sqlite3.connect(path, timeout=0, isolation_level=None)  # and nothing holds a lock
    writer.execute("INSERT INTO t VALUES (1)")
    writer.close()


def test_readers_cannot_write(tmp_path: Path) -> None:
    path = _database(tmp_path)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        asyncio.run(SnapshotReaders(path, 1).within(lambda r: r.fetch(("INSERT INTO t VALUES (1)", []))))


def test_only_a_file_other_connections_can_open_is_read_in_parts(tmp_path: Path) -> None:
    assert database_file(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}") == tmp_path / "a.db"
    assert database_file("sqlite+aiosqlite:///relative.db") == Path("relative.db").absolute()
    for url in (
        "sqlite+aiosqlite://",
        "sqlite+aiosqlite:///:memory:",
        "sqlite+aiosqlite:///file:shared?mode=memory&cache=shared&uri=true",
        "postgresql+asyncpg://postgres@127.0.0.1/test",
    ):
        assert database_file(url) is None, url
