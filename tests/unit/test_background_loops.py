"""Background loops in `nurture serve` log a failed run and go on, whatever the error."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.app import repeat


async def test_a_failing_run_is_logged_and_the_next_one_still_happens(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []
    done = asyncio.Event()

    async def job() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise KeyError("not a database error")
        if len(runs) == 3:
            done.set()

    caplog.set_level(logging.ERROR, logger="bot.app")
    loop = asyncio.create_task(repeat(job, first_delay=0, interval=0.01, what="test job"))
    await asyncio.wait_for(done.wait(), timeout=5)
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop

    assert runs == [0, 1, 2]
    failures = [r for r in caplog.records if r.getMessage().startswith("test job failed")]
    assert len(failures) == 1
    assert failures[0].exc_info is not None and failures[0].exc_info[0] is KeyError


async def test_cancelling_stops_the_loop_even_inside_a_run() -> None:
    started = asyncio.Event()

    async def job() -> None:
        started.set()
        await asyncio.sleep(60)

    loop = asyncio.create_task(repeat(job, first_delay=0, interval=60, what="slow job"))
    await asyncio.wait_for(started.wait(), timeout=5)
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(loop, timeout=5)
