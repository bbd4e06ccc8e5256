"""The signing-key cache: one fetch at a time, bounded refetch on unknown key ids, old keys kept on failure."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from bot.security.tokens import OpenIdKeyStore, SigningKeysUnavailable
from tests.support.keys import KeyServer, RsaKey


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[KeyServer]:
    running = KeyServer([RsaKey("k1")]).start()
    yield running
    running.stop()


async def test_concurrent_lookups_share_one_fetch(server: KeyServer) -> None:
    store = OpenIdKeyStore(server.metadata_url)
    found = await asyncio.gather(*(store.get("k1") for _ in range(20)))
    assert all(key is not None and key.kid == "k1" for key in found)
    assert server.requests == 2  # metadata + JWKS, once
    assert store.issuer == "https://api.botframework.com"


async def test_unknown_kid_refetches_at_most_once_per_interval(server: KeyServer) -> None:
    clock = Clock()
    store = OpenIdKeyStore(server.metadata_url, unknown_kid_refetch_seconds=300, clock=clock)
    assert await store.get("k1") is not None
    assert server.requests == 2
    assert await store.get("rotated") is None  # within the interval: no refetch storm from forged kids
    assert await store.get("rotated") is None
    assert server.requests == 2
    server.keys.append(RsaKey("rotated"))
    clock.now += 301
    assert await store.get("rotated") is not None  # Microsoft rotated keys: picked up on the next allowed fetch
    assert server.requests == 4


async def test_daily_refresh_runs_in_background_and_failure_keeps_old_keys(server: KeyServer) -> None:
    clock = Clock()
    store = OpenIdKeyStore(server.metadata_url, timeout_seconds=0.5, clock=clock)
    assert await store.get("k1") is not None
    server.hang()
    clock.now += 24 * 3600 + 1
    started = time.perf_counter()
    assert await store.get("k1") is not None  # stale keys served at once while the refresh runs
    assert time.perf_counter() - started < 0.1
    await asyncio.sleep(0.8)  # the background refresh times out
    assert store.status.last_error and "timed out" in store.status.last_error
    assert await store.get("k1") is not None  # cached keys still verify
    server.release()
    clock.now += 11
    await store.get("k1")
    await asyncio.sleep(0.3)
    assert store.status.last_error is None  # the next background refresh succeeded
    await store.close()


async def test_no_keys_at_all_fails_closed() -> None:
    store = OpenIdKeyStore("http://127.0.0.1:1/openid", timeout_seconds=0.5)
    with pytest.raises(SigningKeysUnavailable) as error:
        await store.get("k1")
    assert error.value.status == 503
