"""A turn that failed because the database was away drops its claim later, so Teams' retry is processed: the drop
is tried again while the database stays away, and given up on for faults that trying again would not change."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from bot.teams import handler
from bot.teams.handler import NurtureBot
from bot.usecases.lifecycle import Inbound

INBOUND = Inbound(
    activity_type="message",
    activity_id="1",
    conversation_id="a:1",
    scope="personal",
    channel_id="msteams",
    service_url="https://smba.trafficmanager.net/amer/",
    bot_id="28:bot",
    tenant_id="tenant",
    aad_object_id="person",
)


class Releases:
    """A lifecycle whose `release` fails with the given faults first, then succeeds."""

    def __init__(self, *faults: BaseException) -> None:
        self.faults = list(faults)
        self.calls = 0
        self.released: list[Inbound] = []

    async def release(self, inbound: Inbound) -> None:
        self.calls += 1
        if self.faults:
            raise self.faults.pop(0)
        self.released.append(inbound)


def _bot(lifecycle: Releases) -> NurtureBot:
    nothing: Any = None
    return NurtureBot(lifecycle, nothing, nothing)  # type: ignore[arg-type]


async def _settled(bot: NurtureBot) -> None:
    for _ in range(100):
        if not bot._releasing:
            return
        await asyncio.sleep(0)
    raise AssertionError("the release task did not end")


def _away() -> OperationalError:
    return OperationalError("DELETE FROM inbound_activities", {}, Exception("database is locked"))


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handler, "RELEASE_PAUSES", (0, 0, 0))


async def test_the_claim_is_dropped_once_the_database_is_back() -> None:
    lifecycle = Releases(_away(), TimeoutError())
    bot = _bot(lifecycle)
    bot._release_later(INBOUND)
    await _settled(bot)
    assert (lifecycle.calls, lifecycle.released) == (3, [INBOUND])


async def test_it_gives_up_after_the_last_pause(caplog: pytest.LogCaptureFixture) -> None:
    lifecycle = Releases(*(_away() for _ in range(10)))
    bot = _bot(lifecycle)
    with caplog.at_level(logging.WARNING):
        bot._release_later(INBOUND)
        await _settled(bot)
    assert (lifecycle.calls, lifecycle.released) == (4, [])  # the first try and one after each pause
    assert "could not be dropped" in caplog.records[-1].getMessage()


async def test_a_fault_that_would_not_change_is_not_tried_again() -> None:
    wrong = IntegrityError("DELETE FROM inbound_activities", {}, Exception("violates a constraint"))
    lifecycle = Releases(wrong)
    bot = _bot(lifecycle)
    bot._release_later(INBOUND)
    await _settled(bot)
    assert (lifecycle.calls, lifecycle.released) == (1, [])
