"""What the PostgreSQL server spends while a benchmark runs: CPU and memory of all its processes, read from /proc.

The benchmarks compare Nurture's work with a baseline, and on PostgreSQL part of that work happens in the server's
processes (one backend per connection, parallel workers, the WAL writer, the checkpointer). Leaving them out would
flatter whichever side hands more work to the server, so every PostgreSQL figure counts them. This needs the server
on this machine (as in CI); SQLite works inside the benchmark's own process, where it is counted anyway.

CPU: user + system time of the postmaster and every live child, plus the time of children that have ended, which the
kernel adds to the postmaster's "children" counters when it reaps them (a closed connection's backend, a parallel
worker). Memory: the sum of the processes' private resident memory (RssAnon), sampled; shared_buffers is a fixed
setting shared by all databases and is not counted.

Both count the whole server: other databases' clients and background work (the checkpointer, autovacuum when it is
on) while a benchmark runs are counted with it, so run benchmarks on a server nothing else uses.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from tests.support.database import postgres_admin_url

PROC = Path("/proc")
SAMPLE_SECONDS = 0.2  # each sample reads every server process's status: more often would load the machine


class ServerNotFound(RuntimeError):
    pass


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces): [0] is the state."""
    return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()


def _comm(pid: int) -> str:
    return (PROC / str(pid) / "comm").read_text().strip()


def _parent(pid: int) -> int:
    return int(_stat(pid)[1])


def find_postmaster() -> int:
    """The pid of the one PostgreSQL server on this machine: the `postgres` process whose parent is not one."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if _comm(int(entry.name)) == "postgres" and _comm(_parent(int(entry.name))) != "postgres":
                found.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended while we looked
    if len(found) != 1:
        raise ServerNotFound(
            f"found {len(found)} PostgreSQL servers on this machine; the benchmarks count the server's CPU and memory"
            " and need exactly one, here"
        )
    return found[0]


class PostgresServer:
    """CPU seconds and private memory of a local PostgreSQL server's processes (see the module's docstring)."""

    def __init__(self, postmaster: int | None = None) -> None:
        self.postmaster = postmaster or find_postmaster()
        self._clock = os.sysconf("SC_CLK_TCK")

    def _processes(self) -> list[int]:
        children = []
        for entry in PROC.iterdir():
            if entry.name.isdigit():
                try:
                    if _parent(int(entry.name)) == self.postmaster:
                        children.append(int(entry.name))
                except (FileNotFoundError, ProcessLookupError):
                    continue
        return [self.postmaster, *children]

    def cpu_seconds(self) -> float:
        """User + system CPU of the server so far: its live processes and the children it has reaped.

        A child reaped while the children are read would be counted twice (or not at all), so the scan is taken
        again until the postmaster's reaped-children counters stay the same across it."""
        while True:
            before = _stat(self.postmaster)
            ticks = 0
            for pid in self._processes()[1:]:
                try:
                    fields = _stat(pid)
                except (FileNotFoundError, ProcessLookupError):
                    continue  # ended just now: its time moves to the postmaster's children counters
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
            after = _stat(self.postmaster)
            if after[13:15] == before[13:15]:  # cutime, cstime: no child reaped meanwhile
                return (ticks + sum(int(f) for f in after[11:15])) / self._clock

    def private_mb(self) -> float:
        """The server's private resident memory now (RssAnon summed over its processes), in MB."""
        kib = 0
        for pid in self._processes():
            try:
                for line in (PROC / str(pid) / "status").read_text().splitlines():
                    if line.startswith("RssAnon:"):
                        kib += int(line.split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
        return kib / 1024

    def watch(self) -> Watch:
        return Watch(self)


def resident_mb(pids: list[int]) -> float:
    """The resident memory (VmRSS) of these processes now, summed, in MB; those that ended count nothing."""
    kib = 0
    for pid in pids:
        try:
            for line in (PROC / str(pid) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kib += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return kib / 1024


class Peak:
    """`with Peak(measure) as p:` the highest of `measure()` (MB) sampled every 200 ms inside the block (`p.mb`)."""

    def __init__(self, measure: Callable[[], float]) -> None:
        self.measure = measure
        self.mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.mb = max(self.mb, self.measure())

    def __enter__(self) -> Peak:
        self.mb = self.measure()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.mb = max(self.mb, self.measure())


class Watch:
    """`with server.watch() as w:` the server's CPU seconds spent inside the block (`w.cpu`) and the highest private
    memory sampled meanwhile, every 200 ms (`w.peak_mb`), and what it held before (`w.before_mb`)."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.cpu = 0.0
        self.before_mb = 0.0
        self.peak_mb = 0.0
        self._peak = Peak(server.private_mb)

    @property
    def extra_mb(self) -> float:
        """How much more private memory the server held at its peak than before the block."""
        return max(0.0, self.peak_mb - self.before_mb)

    def __enter__(self) -> Watch:
        self._started = self.server.cpu_seconds()
        self._peak.__enter__()
        self.before_mb = self._peak.mb
        return self

    def __exit__(self, *_: object) -> None:
        self._peak.__exit__()
        self.peak_mb = self._peak.mb
        self.cpu = self.server.cpu_seconds() - self._started


async def describe_postgres() -> dict[str, str]:
    """The server's version and the settings that change what a benchmark measures, for the results file."""
    url = make_url(postgres_admin_url()).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(url)
    try:
        names = ("server_version", "autovacuum", "shared_buffers", "work_mem", "max_parallel_workers_per_gather")
        return {name: await connection.fetchval(f"SHOW {name}") for name in names}
    finally:
        await connection.close()
