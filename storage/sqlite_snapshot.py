"""One SQLite snapshot read on several connections at once, each on its own thread.

SQLite works a query out on one core. A large read split into parts (the audience of a million people, in ranges
of AAD object ids) runs on every core when each part has its own connection and thread: Python's sqlite3 lets go of the
GIL while SQLite works. The parts must read one snapshot, as one statement would: while a connection holds the
write lock nothing can commit, so the read transactions begun meanwhile all read the same, latest commit. The lock
is held only while the readers begin (milliseconds); writers wait that long on their busy timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

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

    def fetch_parts(self, statements: Sequence[Statement], convert: Callable[[list[Any]], T]) -> list[T]:
        """Each statement's rows, `convert`ed, in the statements' order. Every reader runs one statement after
        another, taking the next one not yet begun, each on its own thread (the first in the calling thread): with
        more statements than readers, a reader that is given less of the CPU takes fewer of them. `convert` runs on
        the same thread, while the other readers go on."""
        results: list[T | None] = [None] * len(statements)
        errors: list[BaseException] = []
        taken = iter(range(len(statements)))  # next() on it is atomic under the GIL

        def read(reader: int) -> None:
            try:
                for i in taken:
                    results[i] = convert(self.fetch(statements[i], reader))
            except BaseException as exc:  # handed to the caller below
                errors.append(exc)
                self.interrupt()  # the other statements are of no use now

        threads = [threading.Thread(target=read, args=(r,), daemon=True) for r in range(1, len(self.connections))]
        for thread in threads:
            thread.start()
        read(0)
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return cast(list[T], results)  # every one was set, or an error was raised

    def _stopping(self) -> bool:
        return self._interrupted

    def interrupt(self) -> None:
        """Stop whatever the readers run (from any thread); readers not open yet are never opened."""
        with self._lock:
            self._interrupted = True
            for connection in self.connections:
                connection.interrupt()
