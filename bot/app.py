"""The aiohttp application: `create_app(settings)` builds everything; nothing connects at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from aiohttp import web
from opentelemetry.trace import SpanKind
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import __version__, telemetry, tuning
from bot.clock import utc_now
from bot.config import Settings
from bot.engagement.campaigns import CampaignSet
from bot.engagement.reach import ChatOpening
from bot.graph_install import GraphAppInstaller, GraphToken, MsalGraphTokens
from bot.logging_setup import install_redaction
from bot.packaging.manifest import default_teams_app_id
from bot.policies import (
    alert_config,
    campaign_config,
    delivery_config,
    retention,
    service_url_policy,
    survey_config,
    tenant_policy,
)
from bot.security.tokens import BotConnectorTokenValidator, OpenIdKeyStore
from bot.teams.adapter import CredentialsFactory, NurtureAuthentication, build_adapter
from bot.teams.bot_connector import BotConnectorClient, CachedToken
from bot.teams.handler import NurtureBot
from bot.teams.messages import ACTIVITY, MessagesEndpoint
from bot.teams.proactive import TeamsCardSender
from bot.usage_api import UsageApi
from bot.usecases.alerts.accounts import Accounts
from bot.usecases.alerts.actions import AlertActions
from bot.usecases.alerts.digests import Digests
from bot.usecases.alerts.run import AlertRun
from bot.usecases.alerts.views import CsmViews
from bot.usecases.campaigns import Campaigns
from bot.usecases.card_actions import CardActions
from bot.usecases.delivery.worker import DeliveryWorker
from bot.usecases.ingest import UsageIngest
from bot.usecases.lifecycle import Lifecycle
from bot.usecases.privacy import purge
from bot.usecases.surveys import Surveys
from storage.answers import AnswerWriter, answer_writer_for
from storage.engine import DATABASE_UNAVAILABLE, READS_ONLY, create_engine, session_factory
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)
access_log = logging.getLogger("nurture.access")

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
KEY_STORE = web.AppKey("key_store", OpenIdKeyStore)
MESSAGES = web.AppKey("messages", MessagesEndpoint)
WORKERS = web.AppKey("workers", list[DeliveryWorker])
CAMPAIGNS = web.AppKey("campaigns", Campaigns)
ALERTS = web.AppKey("alerts", AlertRun)
SURVEYS = web.AppKey("surveys", Surveys)
ANSWERS = web.AppKey("answers", AnswerWriter)
SENDER = web.AppKey("sender", TeamsCardSender)
INSTALLER: web.AppKey[GraphAppInstaller | None] = web.AppKey("installer")
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")

HEALTH_DB_TIMEOUT_SECONDS = 2.0
HEALTH_PROBE_FAILURES: tuple[type[BaseException], ...] = (TimeoutError, SQLAlchemyError, *DATABASE_UNAVAILABLE)
PURGE_FIRST_DELAY_SECONDS = 300  # after start-up, when the first retention purge runs


def create_app(
    settings: Settings,
    *,
    credentials_factory: CredentialsFactory | None = None,
    clock: Callable[[], datetime] = utc_now,
    campaigns: CampaignSet | None = None,
    graph_tokens: GraphToken | None = None,
) -> web.Application:
    """Build the web app. `credentials_factory` replaces msal for outbound tokens (tests, custom clouds);
    `graph_tokens` replaces msal for Microsoft Graph tokens (proactive install).

    `campaigns` defaults to NURTURE_CAMPAIGNS (or the packaged file); a bad file raises ConfigError here, at start-up.
    """
    # aiohttp logs the start of a header it refuses as too long, which for an Authorization header is the token;
    # `nurture serve` redacts every line it writes, this covers servers started without configure_logging (tests)
    install_redaction()
    # each route checks its own limit; this is the largest of them
    body_limit = max(settings.max_request_bytes, settings.max_ingest_bytes)
    app = web.Application(client_max_size=body_limit, middlewares=[access_log_middleware])
    app[SETTINGS] = settings
    app[CLOCK] = clock

    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    app[ENGINE] = engine
    app[SESSIONS] = sessions

    key_store = OpenIdKeyStore(settings.openid_metadata_url, timeout_seconds=settings.key_fetch_timeout_seconds)
    app[KEY_STORE] = key_store
    validator = None if settings.dev_mode else BotConnectorTokenValidator(key_store, settings.app_id)

    adapter, authentication = build_adapter(settings, credentials_factory)
    lifecycle = Lifecycle(
        uow_factory=lambda: UnitOfWork(sessions),
        product_name=settings.product_name,
        csm_ids=frozenset(i.lower() for i in settings.csm_ids),
        min_answers=settings.nps_min_answers,
    )
    app[ANSWERS] = answer_writer_for(settings.database_url, lambda: UnitOfWork(sessions))
    surveys = Surveys(lambda: UnitOfWork(sessions), survey_config(settings), app[ANSWERS])
    app[SURVEYS] = surveys
    app[CAMPAIGNS] = Campaigns(
        lambda: UnitOfWork(sessions), campaign_config(settings, campaigns), bulk_work=tuning.collector_paused
    )
    accounts = Accounts(lambda: UnitOfWork(sessions), alert_config(settings, app[CAMPAIGNS].config.campaigns))
    app[ALERTS] = AlertRun(accounts, Digests(accounts))
    lifecycle.alerts = CsmViews(accounts)
    actions = CardActions()
    for use_case in (surveys, app[CAMPAIGNS], AlertActions(accounts)):
        use_case.register(actions)
    bot = NurtureBot(lifecycle, actions, clock)
    app[MESSAGES] = MessagesEndpoint(settings, adapter, authentication, validator, bot)
    sender = card_sender(settings, authentication)
    app[SENDER] = sender
    installer = app_installer(settings, graph_tokens)
    app[INSTALLER] = installer
    app[WORKERS] = delivery_crew(
        settings, sessions, sender, installer, clock, f"{socket.gethostname()}-{os.getpid()}", settings.delivery_workers
    )

    usage_api = UsageApi(
        tokens=tuple(settings.ingest_tokens),
        max_bytes=settings.max_ingest_bytes,
        ingest=UsageIngest(lambda: UnitOfWork(sessions), tenant_policy(settings)),
        uow_factory=lambda: UnitOfWork(sessions),
        clock=clock,
        tenants=tenant_policy(settings),
    )

    app.cleanup_ctx.append(_resources)
    app.router.add_post("/api/messages", app[MESSAGES].handle)
    app.router.add_post("/api/usage/events", usage_api.events)
    app.router.add_put("/api/tenants/{tenant_id}/renewal", usage_api.renewal)
    app.router.add_get("/healthz", healthz)
    return app


def delivery_crew(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    sender: TeamsCardSender,
    installer: GraphAppInstaller | None,
    clock: Callable[[], datetime],
    name: str,
    count: int,
) -> list[DeliveryWorker]:
    """`count` delivery workers sharing one sender (and, with NURTURE_OPEN_CHATS, the ways to open chats)."""
    return [
        DeliveryWorker(
            lambda: UnitOfWork(sessions),
            sender,
            f"{name}-{i}",
            clock,
            delivery_config(settings),
            opener=sender if settings.open_chats is not ChatOpening.OFF else None,
            installer=installer,
        )
        for i in range(count)
    ]


def app_installer(settings: Settings, tokens: GraphToken | None = None) -> GraphAppInstaller | None:
    """The Graph installer when NURTURE_OPEN_CHATS=install; msal client credentials unless `tokens` is given."""
    if settings.open_chats is not ChatOpening.INSTALL:
        return None
    if tokens is None:
        tokens = MsalGraphTokens(
            settings.app_id, settings.app_password, login_url=settings.login_url, graph_url=settings.graph_url
        )
    external_id = settings.teams_app_id or default_teams_app_id(settings.app_id)
    return GraphAppInstaller(tokens, external_id, graph_url=settings.graph_url)


async def repeat(job: Callable[[], Awaitable[None]], *, first_delay: float, interval: float, what: str) -> None:
    """Runs `job` after `first_delay` seconds, then every `interval` seconds, until cancelled.

    A failed run is logged and the next one starts on time, whatever the error: a background loop that died
    silently would stop campaigns or retention with no sign in the log."""
    await asyncio.sleep(first_delay)
    while True:
        try:
            await job()
        except Exception:
            log.exception("%s failed; trying again in %s s", what, interval)
        await asyncio.sleep(interval)


async def _purge_once(app: web.Application) -> None:
    """Retention runs inside the server too, so a deployment without cron still forgets on time."""
    async with UnitOfWork(app[SESSIONS]) as uow:
        counts = await purge(uow, retention(app[SETTINGS]), utc_now())
        await uow.commit()
    log.info("retention purge done", extra={"purged": counts})


async def _run_programs_once(app: web.Application) -> None:
    """One scheduler round: campaigns, then expired surveys, then alerts and digests."""
    report = await app[CAMPAIGNS].run(app[CLOCK]())
    log.info("campaigns run: %s queued, %s held out", report.queued, report.held_out)
    closed = await app[SURVEYS].close_expired(app[CLOCK]())
    log.info("expired surveys closed: %s", closed)
    alerts = await app[ALERTS].run(app[CLOCK]())
    log.info("alerts run: raised %s, escalated %s, %s digest(s)", alerts.raised, alerts.escalated, alerts.digests)


def _background_loops(app: web.Application) -> list[Coroutine[Any, Any, None]]:
    """The daily retention purge and, every NURTURE_CAMPAIGN_INTERVAL minutes (0 = never: run
    `nurture run-campaigns` from cron), the campaign and alert runs."""
    loops: list[Coroutine[Any, Any, None]] = [
        repeat(
            lambda: _purge_once(app),
            first_delay=PURGE_FIRST_DELAY_SECONDS,
            interval=24 * 3600,
            what="retention purge",
        )
    ]
    minutes = app[SETTINGS].campaign_interval_minutes
    if minutes:
        seconds = minutes * 60
        loops.append(
            repeat(lambda: _run_programs_once(app), first_delay=seconds, interval=seconds, what="campaign or alert run")
        )
    return loops


REPLY_THREADS = 16


def size_http_executor(loop: asyncio.AbstractEventLoop) -> None:
    """botbuilder replies to inbound turns with `requests` on the loop's default thread pool (min(32, CPUs + 4)
    threads: 6 on 2 cores), so a seventh concurrent reply would wait for a thread. Proactive sends do not use it
    (bot.teams.bot_connector)."""
    loop.set_default_executor(ThreadPoolExecutor(max_workers=REPLY_THREADS, thread_name_prefix="nurture-http"))


def card_sender(settings: Settings, authentication: NurtureAuthentication) -> TeamsCardSender:
    """The proactive sender: Bot Connector REST calls with the bot's outbound token."""
    token = CachedToken(lambda: authentication.outbound_token(settings.app_id))
    return TeamsCardSender(BotConnectorClient(token, service_url_policy(settings), settings.send_timeout_seconds))


async def _resources(app: web.Application) -> AsyncIterator[None]:
    if not app[SETTINGS].dev_mode:
        app[KEY_STORE].start_background_refresh()
    loop = asyncio.get_running_loop()
    size_http_executor(loop)
    background = [loop.create_task(job) for job in _background_loops(app)]
    stop = asyncio.Event()
    workers = [loop.create_task(worker.run(stop)) for worker in app[WORKERS]]
    tuning.freeze_start_up()
    yield
    stop.set()  # workers finish the rows they hold, then return
    await asyncio.gather(*workers, return_exceptions=True)
    for task in background:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await app[KEY_STORE].close()
    installer = app[INSTALLER]
    if installer is not None:
        await installer.close()
    await app[SENDER].close()
    await app[ANSWERS].close()
    await app[ENGINE].dispose()
    tuning.thaw()  # an app built again in this process (tests) lets the old one's objects be collected


async def healthz(request: web.Request) -> web.Response:
    """Fast by design: never waits on the signing-key fetch, and bounds the database probe."""
    app = request.app
    started = time.perf_counter()
    try:
        async with asyncio.timeout(HEALTH_DB_TIMEOUT_SECONDS):
            async with app[ENGINE].connect() as connection:
                # a read-only transaction: on SQLite it takes no write lock, so a writer holding it never delays this
                reader = await connection.execution_options(**{READS_ONLY: True})
                await reader.execute(text("SELECT 1"))
        database: dict[str, Any] = {"reachable": True}
    except HEALTH_PROBE_FAILURES as exc:
        database = {"reachable": False, "error": type(exc).__name__}
    database["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    body: dict[str, Any] = {
        "status": "ok" if database["reachable"] else "degraded",
        "version": __version__,
        "dev_mode": app[SETTINGS].dev_mode,
        "database": database,
    }
    if not app[SETTINGS].dev_mode:
        keys = app[KEY_STORE].status
        body["signing_keys"] = {"count": keys.keys, "last_error": keys.last_error}
    return web.json_response(body, status=200 if database["reachable"] else 503)


@web.middleware
async def access_log_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """One structured line and one trace span per request: method, path, status, latency, activity type and id.

    Never tokens, never message text.
    """
    started = time.perf_counter()
    status = 500
    with telemetry.tracer.start_as_current_span(f"{request.method} {request.path}", kind=SpanKind.SERVER) as span:
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            raise
        finally:
            if status >= 500:
                telemetry.errors.add(1, {"route": request.path})
            activity = request.get(ACTIVITY)
            fields = {
                "http_method": request.method,
                "path": request.path,
                "status": status,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                "activity_type": getattr(activity, "type", None),
                "activity_id": getattr(activity, "id", None),
            }
            span.set_attributes({f"nurture.{k}": v for k, v in fields.items() if v is not None})
            access_log.info("%s %s %s", request.method, request.path, status, extra=fields)
