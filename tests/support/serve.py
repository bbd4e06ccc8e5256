"""`nurture serve` as a real process in dev mode on SQLite: started on a free port, waited for until it is healthy."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.cli import clean_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_health(port: int) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(150):
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as health:
                    if health.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    pytest.fail("serve did not come up")


@asynccontextmanager
async def dev_serve(
    folder: Path, host: str | None = "127.0.0.1"
) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """`nurture serve --host HOST` (None: no --host) on a free port, its database in `folder`, healthy:
    (process, port). Killed on the way out if the test has not stopped it."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        *(["--host", host] if host else []),
        "--port",
        str(port),
        cwd=folder,
        env=clean_env(NURTURE_DEV_MODE="1", NURTURE_DATABASE_URL=f"sqlite+aiosqlite:///{folder}/s.db"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_for_health(port)
        yield process, port
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def stderr_of(process: asyncio.subprocess.Process) -> tuple[str, list[dict[str, Any]]]:
    """What the stopped process wrote on stderr, and its JSON log lines."""
    stderr = (await process.stderr.read()).decode() if process.stderr else ""
    return stderr, [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
