"""One SQLite snapshot read on several connections at once, each on its own thread.

SQLite works a query out on one core. A large read split into parts (the audience of a million people, in ranges
of AAD object ids) runs on every core when each part has its own connection and thread: Python's sqlite3 lets go of the
GIL while SQLite works. The parts must read one snapshot, as one statement would: while a connection holds the
write lock nothing can commit, so the read transactions begun meanwhile all read the same, latest commit. The lock
is held only while the readers begin (milliseconds); writers wait that long on their busy timeout.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import URL, make_url

T = TypeVar("T")

Statement = tuple[str, Sequence[Any]]


def database_file(url: str | URL) -> Path | None:
    """The file of an SQLite URL that other connections can open too (not an in-memory or URI-form database)."""
    parsed = make_url(url)
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:" or name.startswith("file:"):
        return None
    if parsed.query.get("uri") or parsed.query.get("mode"):
        return None
    return Path(name).absolute()


class SnapshotReaders:
    """`count` read-only connections to `path`, all in one read transaction of the same snapshot."""

    def __init__(self, path: Path, count: int, timeout: float = 30.0) -> None:
        self.path = path
        self.count = count
        self.timeout = timeout
        self.connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._interrupted = False

    async def within(self, work: Callable[[SnapshotReaders], T]) -> T:
        """Open the readers, run `work` with them and close them, on a worker thread. Cancelled, the statements
        running are interrupted (the thread then closes the connections itself)."""
        try:
            return await asyncio.to_thread(self._within, work)
        except asyncio.CancelledError:
            self.interrupt()
            raise

    def _within(self, work: Callable[[SnapshotReaders], T]) -> T:
        try:
            self._open()
            return work(self)
        finally:
            with self._lock:
                for connection in self.connections:
                    connection.close()
                self.connections.clear()

    def _open(self) -> None:
        guard = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            guard.execute("BEGIN IMMEDIATE")  # nothing commits until every reader has begun
            try:
                for _ in range(self.count):
                    reader = sqlite3.connect(
                        f"{self.path.as_uri()}?mode=ro",
                        uri=True,
                        timeout=self.timeout,
                        isolation_level=None,
                        check_same_thread=False,
                    )
                    # a statement begun just after interrupt() would miss it: each also looks every million steps
                    reader.set_progress_handler(self._stopping, 1_000_000)
                    with self._lock:
                        self.connections.append(reader)
                        if self._interrupted:
                            raise sqlite3.OperationalError("interrupted")
                    reader.execute("BEGIN")
                    reader.execute("SELECT count(*) FROM sqlite_master").fetchall()  # the snapshot is taken here
            finally:
                guard.execute("ROLLBACK")
        finally:
            guard.close()

    def fetch(self, statement: Statement, reader: int = 0) -> list[Any]:
        """One statement's rows, on one reader (in the calling thread)."""
        sql, parameters = statement
        cursor = self.connections[reader].execute(sql, parameters)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

    def each_part(self, statements: Sequence[Statement], convert: Callable[[list[Any]], T]) -> Iterator[tuple[int, T]]:
        """Each statement's rows, `convert`ed, with the statement's index, as soon as they are ready (in the order
        the statements finish). Every reader runs on a thread of its own, one statement after another, taking the
        next one not yet begun: with more statements than readers, a reader given less of the CPU takes fewer.
        `convert` runs on the reader's thread; the caller works on each result on its own thread while the readers
        go on. Left early (an error, or the caller stops), the statements still running are interrupted."""
        finished: queue.SimpleQueue[tuple[int, T] | BaseException | None] = queue.SimpleQueue()
        taken = iter(range(len(statements)))  # next() on it is atomic under the GIL

        def read(reader: int) -> None:
            try:
                for i in taken:
                    finished.put((i, convert(self.fetch(statements[i], reader))))
            except BaseException as exc:  # handed to the caller below
                finished.put(exc)
            finally:
                finished.put(None)  # this reader is through

        threads = [threading.Thread(target=read, args=(r,), daemon=True) for r in range(len(self.connections))]
        for thread in threads:
            thread.start()
        running, complete = len(threads), False
        try:
            while running:
                item = finished.get()
                if item is None:
                    running -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
            complete = True
        finally:
            if not complete:
                self.interrupt()  # the other statements are of no use now
            for thread in threads:
                thread.join()

    def _stopping(self) -> bool:
        return self._interrupted

    def interrupt(self) -> None:
        """Stop whatever the readers run (from any thread); readers not open yet are never opened."""
        with self._lock:
            self._interrupted = True
            for connection in self.connections:
                connection.interrupt()
