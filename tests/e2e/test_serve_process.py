"""`nurture serve` as a real process: start-up refusal, JSON access log, graceful shutdown with a turn in flight."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.activities import message
from tests.support.cli import clean_env
from tests.support.connector import FakeConnector
from tests.support.serve import dev_serve, stderr_of

ROOT = Path(__file__).resolve().parents[2]


def test_serve_without_app_id_refuses_with_one_line_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        cwd=tmp_path,
        env=clean_env(NURTURE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/x.db"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "MicrosoftAppId" in lines[0]
    assert not (tmp_path / "x.db").exists(), "refusing to start must not touch the database"


def test_nurture_console_script_and_module_agree() -> None:
    script = Path(sys.executable).with_name("nurture")
    for command in ([str(script), "--help"], [sys.executable, "-m", "bot", "--help"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "serve" in result.stdout and "demo" in result.stdout


@pytest.fixture
async def slow_connector() -> AsyncIterator[FakeConnector]:
    fake = await FakeConnector(delay_seconds=1.5).start()
    yield fake
    await fake.close()


async def test_sigterm_finishes_the_turn_in_flight(tmp_path: Path, slow_connector: FakeConnector) -> None:
    async with dev_serve(tmp_path) as (process, port):
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            secret_text = "zebra-quartz-42 my private words"  # the logs must not carry message text
            activity = message(secret_text, service_url=slow_connector.service_url, activity_id="in-flight")
            request = asyncio.create_task(session.post(f"{base}/api/messages", json=activity))
            await asyncio.sleep(0.5)  # the turn is now waiting on the slow connector
            assert len(slow_connector.calls) == 1
            process.send_signal(signal.SIGTERM)
            response = await request
            assert response.status == 200  # the in-flight turn completed during shutdown
        assert await asyncio.wait_for(process.wait(), 30) == 0
    stderr, lines = await stderr_of(process)
    access = [line for line in lines if line.get("logger") == "nurture.access" and line.get("path") == "/api/messages"]
    assert access, stderr
    assert access[0]["activity_type"] == "message" and access[0]["activity_id"] == "in-flight"
    assert access[0]["status"] == 200 and access[0]["latency_ms"] >= 1000
    assert any("DEV MODE" in line.get("msg", "") for line in lines)
    assert "Bearer" not in stderr and "zebra-quartz" not in stderr


async def test_dev_mode_listens_on_this_machine_only_unless_told(tmp_path: Path) -> None:
    """Dev mode checks no tokens: without --host it must not be reachable from the network."""
    async with dev_serve(tmp_path, host=None) as (process, port):
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    stderr, lines = await stderr_of(process)
    running = [line["msg"].splitlines()[0] for line in lines if "Running on" in line.get("msg", "")]
    assert running == [f"======== Running on http://127.0.0.1:{port} ========"], stderr
