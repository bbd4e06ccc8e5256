"""Shared fixtures: real databases (SQLite and PostgreSQL), a real key server, a fake Teams connector, the app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import ANSWERS, INSTALLER, SENDER, SESSIONS, create_app
from bot.config import Settings
from bot.engagement.reach import ChatOpening
from bot.policies import survey_config
from bot.usecases.delivery.worker import DeliveryConfig, DeliveryWorker
from bot.usecases.surveys import Surveys
from storage.migrate import upgrade
from storage.uow import UnitOfWork
from tests.support.activities import BOT_ID, CSM, TENANT
from tests.support.connector import FakeConnector
from tests.support.credentials import FixedTokenCredentialsFactory
from tests.support.database import create_postgres_database, drop_postgres_database, empty_all_tables, row_counts
from tests.support.keys import KeyServer, RsaKey, claims
from tests.support.trap import Trap

APP_ID = "00000000-aaaa-bbbb-cccc-000000000001"
INGEST_TOKEN = "ingest-secret-for-tests"
BACKENDS = ["sqlite", "postgresql"]


# -- databases ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'nurture.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgresql_database() -> Iterator[str]:
    url = create_postgres_database()
    upgrade(url)
    yield url
    drop_postgres_database(url)


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database: every test that stores something runs once per backend."""
    url: str = request.getfixturevalue(f"{request.param}_database")
    await empty_all_tables(url)
    return url


# -- keys, tokens, connector ----------------------------------------------------------------------


@dataclass
class Keys:
    good: RsaKey
    skype_only: RsaKey
    bare: RsaKey
    rogue: RsaKey  # not published: a token it signs has a bad signature
    server: KeyServer


@pytest.fixture(scope="session")
def keys() -> Iterator[Keys]:
    good, skype_only, bare = RsaKey("key-ok"), RsaKey("key-skype", ["skype"]), RsaKey("key-bare", None)
    server = KeyServer([good, skype_only, bare]).start()
    yield Keys(good, skype_only, bare, RsaKey("key-ok"), server)
    server.stop()


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = await FakeConnector().start()
    yield fake
    await fake.close()


@pytest.fixture
async def trap() -> AsyncIterator[Trap]:
    """A listener where a leaked token would land: it must see no connection."""
    listener = await Trap().start()
    yield listener
    await listener.close()


# -- the application ------------------------------------------------------------------------------


class Clock:
    """The app's clock in tests: starts at a fixed Tuesday 10:00 UTC and moves only when told."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Harness:
    client: TestClient[Any, Any]
    connector: FakeConnector
    keys: Keys
    settings: Settings
    database_url: str
    clock: Clock

    def token(self, **overrides: Any) -> str:
        return self.keys.good.sign(claims(APP_ID, self.connector.service_url, **overrides))

    async def post(self, activity: dict[str, Any], token: str | None = "valid") -> ClientResponse:
        headers = {}
        if token == "valid":
            headers["Authorization"] = f"Bearer {self.token(serviceurl=activity['serviceUrl'])}"
        elif token is not None:
            headers["Authorization"] = token
        return await self.client.post("/api/messages", json=activity, headers=headers)

    async def rows(self) -> dict[str, int]:
        return await row_counts(self.database_url)

    @property
    def app(self) -> web.Application:
        return self.client.app  # type: ignore[no-any-return]

    def surveys(self) -> Surveys:
        sessions = self.app[SESSIONS]
        return Surveys(lambda: UnitOfWork(sessions), survey_config(self.settings), self.app[ANSWERS])

    def worker(
        self,
        *,
        worker_id: str = "test-worker",
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        **config: Any,
    ) -> DeliveryWorker:
        """A delivery worker on the app's adapter (outbound token injected); by default on the test clock, its waits
        moving that clock. Its parts are built with it, so what it runs on is given here, not changed after."""
        sessions = self.app[SESSIONS]
        sender = self.app[SENDER]
        return DeliveryWorker(
            lambda: UnitOfWork(sessions),
            sender,
            worker_id,
            clock or self.clock,
            DeliveryConfig(**config),
            sleep=sleep or self._simulated_sleep,
            opener=sender if self.settings.open_chats is not ChatOpening.OFF else None,
            installer=self.app[INSTALLER],
        )

    async def _simulated_sleep(self, seconds: float) -> None:
        """A worker waiting (a paused tenant, an empty bucket) moves the test clock instead of the wall clock."""
        self.clock.advance(seconds=seconds)
        await asyncio.sleep(0)

    async def deliver(self) -> None:
        """Send everything due now, as the server's workers would."""
        await self.worker().drain()


def make_settings(database_url: str, metadata_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "app_id": APP_ID,
        "app_password": "not-used-credentials-are-injected",
        "database_url": database_url,
        "openid_metadata_url": metadata_url,
        "allowed_tenants": [TENANT],
        "service_url_hosts": ["127.0.0.1"],
        "key_fetch_timeout_seconds": 2.0,
        "csm_ids": [CSM],
        "ingest_tokens": [INGEST_TOKEN],
        "delivery_workers": 0,  # tests deliver explicitly (harness.deliver), on the test clock
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def harness_settings() -> dict[str, Any]:
    """Settings the harness overrides; a test module redefines this fixture to run the app with other settings."""
    return {}


@pytest.fixture
async def harness(
    database_url: str, keys: Keys, connector: FakeConnector, harness_settings: dict[str, Any]
) -> AsyncIterator[Harness]:
    settings = make_settings(database_url, keys.server.metadata_url, **harness_settings)
    clock = Clock()
    app = create_app(settings, credentials_factory=FixedTokenCredentialsFactory(APP_ID), clock=clock)
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield Harness(client, connector, keys, settings, database_url, clock)
    await client.close()


@pytest.fixture
def bot_id() -> str:
    return BOT_ID


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
