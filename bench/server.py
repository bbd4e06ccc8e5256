"""What the PostgreSQL server spends while a benchmark runs: CPU and memory of all its processes, read from /proc.

The benchmarks compare Nurture's work with a baseline, and on PostgreSQL part of that work happens in the server's
processes (one backend per connection, parallel workers, the WAL writer, the checkpointer). Leaving them out would
flatter whichever side hands more work to the server, so every PostgreSQL figure counts them. This needs the server
on this machine (as in CI); SQLite works inside the benchmark's own process, where it is counted anyway.

CPU: user + system time of the postmaster and every live child, plus the time of children that have ended, which the
kernel adds to the postmaster's "children" counters when it reaps them (a closed connection's backend, a parallel
worker). Memory: the sum of the processes' private resident memory (RssAnon), sampled; shared_buffers is a fixed
setting shared by all databases and is not counted.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PROC = Path("/proc")
SAMPLE_SECONDS = 0.05


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
        """User + system CPU of the server so far: its live processes and the children it has reaped."""
        ticks = 0
        for pid in self._processes():
            try:
                fields = _stat(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue  # ended just now: its time moves to the postmaster's children counters
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
            if pid == self.postmaster:
                ticks += int(fields[13]) + int(fields[14])  # cutime, cstime: children reaped
        return ticks / self._clock

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


class Watch:
    """`with server.watch() as w:` the server's CPU seconds spent inside the block (`w.cpu`) and the highest private
    memory sampled meanwhile, every 50 ms (`w.peak_mb`), and what it held before (`w.before_mb`)."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.cpu = 0.0
        self.before_mb = 0.0
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.peak_mb = max(self.peak_mb, self.server.private_mb())

    def __enter__(self) -> Watch:
        self.before_mb = self.peak_mb = self.server.private_mb()
        self._started = self.server.cpu_seconds()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self.server.private_mb())
        self.cpu = self.server.cpu_seconds() - self._started
