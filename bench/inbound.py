"""Inbound-turn benchmark: four NPS card actions through /api/messages (real JWT validation against a local OpenID key
server, service-URL and tenant checks, validation, the SQL writes, the updated card back) against a bare botbuilder
echo invoke on the same server, the same stack and the same token checks (/api/echo).

The NPS actions: a first answer (a score), a first answer with a comment, an edit (a new score for an answer given
earlier) and a comment added to an answer given earlier; comments are sentences of several languages. The people
are bench/workloads.py's: Zipf-sized tenants, installs over years, each request in the person's locale and zone. A load
generator in a separate process offers a fixed rate (open loop: latency is counted from each request's scheduled
time, so a stall is not hidden), the five paths taking turns in rounds so that all share the machine's ups and downs,
and then finds each path's saturation throughput (closed loop, 8 in flight). CPU per request counts the server
process and, on PostgreSQL, the database server (bench/server.py). Fails (exit 1) unless every request was answered
200 and the database holds exactly the scores and comments sent, one card-answer usage signal a person who
answered and one detractor alert an ask last scored 0-6. Prints the paths and their ratios to echo side by
side, on SQLite and PostgreSQL; writes bench/results/inbound.json. Run: `python -m bench.inbound [--rate 100]
[--seconds 15] [--rounds 15] [--database both|sqlite|postgresql] [--profile DIR]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from botbuilder.core import ActivityHandler, TurnContext
from botbuilder.core.invoke_response import InvokeResponse
from sqlalchemy import func, insert, select

from bench import begin, enforce, finish, is_baseline, workloads
from bench.server import Peak, PostgresServer, resident_mb
from bot.app import MESSAGES, create_app
from bot.config import Settings
from bot.engagement.usage import BotSignal
from cards.verbs import Verb
from storage.engine import create_engine
from storage.migrate import upgrade
from storage.models import (
    NpsAnswer,
    PendingAlert,
    SurveyInstance,
    Tenant,
    TenantUsageDaily,
    UsageActivity,
    UsageEvent,
    UsageFeature,
    UsageProfile,
    User,
)
from tests.support.activities import make_activity
from tests.support.credentials import FixedTokenCredentialsFactory
from tests.support.database import create_postgres_database, drop_postgres_database
from tests.support.keys import KeyServer, RsaKey, claims

APP_ID = "00000000-aaaa-bbbb-cccc-0000000000be"
SERVICE_URL = "http://127.0.0.1:9/"  # named by the activities; an invoke's answer goes back in the HTTP response
SATURATION_IN_FLIGHT = 8
PATHS = ("echo", "answer", "answer_comment", "edit", "comment")
NPS_PATHS = PATHS[1:]
EARLIER = ("edit", "comment")  # paths that act on an answer given before the clock starts
COMMENTS = (
    "The weekly report is great, but exporting to Excel takes too many clicks.",
    "Die Synchronisierung mit Outlook dauert manchmal mehrere Minuten.",
    "L'application est utile, mais les notifications arrivent trop tard.",
    "Nos encanta el panel, aunque falta un modo oscuro.",
    "レポートの作成は簡単ですが、共有の手順が分かりにくいです。",
    "Too slow on Mondays 🐢 — everything else works.",
)


# -- the server (a separate process) --------------------------------------------------------------------------


class EchoBot(ActivityHandler):
    """The baseline: botbuilder's own invoke turn, answering a card that echoes the action's data."""

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        action = (turn_context.activity.value or {}).get("action") or {}
        card = {
            "type": "AdaptiveCard",
            "version": "1.5",
            "body": [{"type": "TextBlock", "text": json.dumps(action.get("data"))}],
        }
        body = {"statusCode": 200, "type": "application/vnd.microsoft.card.adaptive", "value": card}
        return InvokeResponse(status=200, body=body)


def serve(database_url: str, metadata_url: str, port: int, tenants: list[str]) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        app_id=APP_ID,
        app_password="outbound-credentials-are-injected",
        database_url=database_url,
        openid_metadata_url=metadata_url,
        allowed_tenants=tenants,
        service_url_hosts=["127.0.0.1"],
        delivery_workers=0,
        campaign_interval_minutes=0,
        log_level="WARNING",
    )
    app = create_app(settings, credentials_factory=FixedTokenCredentialsFactory(APP_ID))
    # the same endpoint (body limits, JWT validation, service-URL and tenant checks) in front of a bare bot
    app.router.add_post("/api/echo", dataclasses.replace(app[MESSAGES], bot=EchoBot()).handle)  # type: ignore[arg-type]
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# -- the load generator (a separate process) ------------------------------------------------------------------


async def load(url: str, requests_file: str, rate: float, in_flight: int) -> dict[str, Any]:
    """Open loop at `rate` requests/s when rate > 0; else closed loop with `in_flight` concurrent requests."""
    requests = json.loads(await asyncio.to_thread(Path(requests_file).read_text))
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(url, connector=connector) as session:

        async def one(request: dict[str, Any], scheduled: float) -> None:
            headers = {"Authorization": f"Bearer {request['token']}"}
            try:
                async with session.post(request["path"], json=request["body"], headers=headers) as response:
                    await response.read()
                    key = str(response.status)
            except aiohttp.ClientError as exc:
                key = type(exc).__name__
            latencies.append(time.perf_counter() - scheduled)
            statuses[key] = statuses.get(key, 0) + 1

        started = time.perf_counter()
        if rate > 0:
            tasks = []
            for i, request in enumerate(requests):
                scheduled = started + i / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(request, scheduled)))
            await asyncio.gather(*tasks)
        else:
            queue = list(reversed(requests))

            async def lane() -> None:
                while queue:
                    await one(queue.pop(), time.perf_counter())

            await asyncio.gather(*(lane() for _ in range(in_flight)))
        elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "latencies": latencies, "statuses": statuses}


def summary(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure set from the load generator's runs (latencies of every run together)."""
    latencies = sorted(latency for part in parts for latency in part["latencies"])
    statuses: dict[str, int] = {}
    for part in parts:
        for key, count in part["statuses"].items():
            statuses[key] = statuses.get(key, 0) + count
    seconds = sum(part["seconds"] for part in parts)
    return {
        "requests": len(latencies),
        "seconds": round(seconds, 2),
        "throughput": round(len(latencies) / seconds, 1),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "max_ms": round(1000 * latencies[-1], 2),
        "mean_ms": round(1000 * statistics.fmean(latencies), 2),
        "statuses": statuses,
    }


# -- the orchestrator -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Asked:
    """A person with an NPS card sent to them, able to answer it once."""

    tenant_id: str
    aad_object_id: str
    locale: str
    time_zone: str | None
    instance: str  # the survey instance the card asks about


async def seed(database_url: str, people: int) -> list[Asked]:
    """bench/workloads.py's people (Zipf-sized tenants, installs over years, mixed zones and locales), each with an
    NPS card sent to them, in a random order so that each path gets people of every tenant."""
    now = datetime.now(UTC)
    engine = create_engine(database_url)
    crowd = list(workloads.people(people, now))
    random.Random(workloads.SEED).shuffle(crowd)
    asked = [Asked(p.tenant_id, p.aad_object_id, p.locale, p.time_zone, str(uuid.uuid4())) for p in crowd]
    try:
        async with engine.begin() as connection:
            tenants = sorted({p.tenant_id for p in crowd})
            await connection.execute(
                insert(Tenant), [{"tenant_id": t, "first_seen_at": now, "last_seen_at": now} for t in tenants]
            )
            users = [
                {
                    "tenant_id": p.tenant_id,
                    "aad_object_id": p.aad_object_id,
                    "locale": p.locale,
                    "time_zone": p.time_zone,
                    "installed_at": p.installed_at,
                    "created_at": p.installed_at,
                    "updated_at": now,
                }
                for p in crowd
            ]
            for start in range(0, len(users), 2000):
                await connection.execute(insert(User), users[start : start + 2000])
            ids = dict((await connection.execute(select(User.aad_object_id, User.id))).tuples().all())
            instances = [
                {
                    "id": a.instance,
                    "tenant_id": a.tenant_id,
                    "user_id": ids[a.aad_object_id],
                    "kind": "nps",
                    "status": "sent",
                    "locale": a.locale,
                    "created_at": now,
                    "sent_at": now,
                    "expires_at": now + timedelta(days=14),
                    "forced": False,
                }
                for a in asked
            ]
            for start in range(0, len(instances), 2000):
                await connection.execute(insert(SurveyInstance), instances[start : start + 2000])
    finally:
        await engine.dispose()
    return asked


async def check_stored(database_url: str, sent: Sent) -> dict[str, int]:
    """How much of what was sent the database holds as it should: answers, card-answer signals (raw event and
    feature rollup, one a person) and detractor alerts (one an ask)."""
    engine = create_engine(database_url)
    signal = BotSignal.CARD_ANSWER
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(select(NpsAnswer.survey_instance_id, NpsAnswer.score, NpsAnswer.comment))
            stored = {instance: (score, comment) for instance, score, comment in rows}
            events = (
                await connection.execute(
                    select(UsageEvent.tenant_id, UsageEvent.aad_object_id).where(UsageEvent.name == signal)
                )
            ).all()
            features = dict(
                ((t, p), total)
                for t, p, total in await connection.execute(
                    select(UsageFeature.tenant_id, UsageFeature.aad_object_id, UsageFeature.total).where(
                        UsageFeature.name == signal
                    )
                )
            )
            # nothing else was used in the benchmark's database: each person's profile, active days and tenant day
            # hold that one signal
            profiles = dict(
                ((t, p), n)
                for t, p, n in await connection.execute(
                    select(UsageProfile.tenant_id, UsageProfile.aad_object_id, UsageProfile.events)
                )
            )
            active = (await connection.execute(select(UsageActivity.tenant_id, UsageActivity.aad_object_id))).all()
            tenant_days = (
                await connection.execute(
                    select(func.sum(TenantUsageDaily.events), func.sum(TenantUsageDaily.active_users))
                )
            ).one()
            alerts = (
                (
                    await connection.execute(
                        select(PendingAlert.survey_instance_id).where(PendingAlert.kind == "detractor")
                    )
                )
                .scalars()
                .all()
            )
    finally:
        await engine.dispose()
    people = set(sent.answered_by.values())
    return {
        "answers_expected": len(sent.answers),
        "answers_as_sent": sum(1 for instance, value in sent.answers.items() if stored.get(instance) == value),
        "answers_stored": len(stored),
        "signals_expected": len(people),
        "signals_as_expected": int(
            sorted(events) == sorted(people) == sorted(active)
            and features == profiles == dict.fromkeys(people, 1)
            and tuple(tenant_days) == (len(people), len(people))
        ),
        "signals_stored": len(events),
        "alerts_expected": len(sent.detractors),
        "alerts_as_expected": int(sorted(alerts) == sorted(sent.detractors)),
        "alerts_stored": len(alerts),
    }


@dataclass
class Sent:
    """What the NPS requests must leave in the database, besides the answers' (score, comment): one card-answer
    usage signal (with its rollup) a person who answered, and one detractor alert an ask last scored 0-6 (no alert
    run happens meanwhile: an edit out of 0-6 withdraws the waiting alert)."""

    answers: dict[str, tuple[int, str | None]] = field(default_factory=dict)  # survey instance -> (score, comment)
    answered_by: dict[str, tuple[str, str]] = field(default_factory=dict)  # survey instance -> (tenant, person)
    detractors: set[str] = field(default_factory=set)  # survey instances

    def score(self, person: Asked, score: int, comment: str | None) -> None:
        self.answers[person.instance] = (score, comment)
        self.answered_by[person.instance] = (person.tenant_id, person.aad_object_id)
        if score <= 6:
            self.detractors.add(person.instance)
        else:
            self.detractors.discard(person.instance)


def requests_for(path: str, token: str, people: list[Asked], sent: Sent) -> list[dict[str, Any]]:
    """One request a person on `path`, each with a fresh activity id (Teams' retries would be answered once), from
    the person's tenant, in their locale and zone; what each NPS request must leave in the database goes into
    `sent`."""
    requests = []
    for n, person in enumerate(people):
        instance = person.instance
        score, comment = n % 11, COMMENTS[n % len(COMMENTS)]
        if path == "echo":
            verb, data = Verb.NPS_SUBMIT, {"instance": instance, "score": score}
        elif path == "answer":
            verb, data = Verb.NPS_SUBMIT, {"instance": instance, "score": score}
            sent.score(person, score, None)
        elif path == "answer_comment":
            verb, data = Verb.NPS_SUBMIT, {"instance": instance, "score": score, "comment": comment}
            sent.score(person, score, comment)
        elif path == "edit":  # a new score for the earlier answer
            edited = (sent.answers[instance][0] + 5) % 11
            verb, data = Verb.NPS_SUBMIT, {"instance": instance, "score": edited}
            sent.score(person, edited, None)
        else:  # a comment on the earlier answer
            verb, data = Verb.NPS_COMMENT, {"instance": instance, "comment": comment}
            sent.answers[instance] = (sent.answers[instance][0], comment)
        action = {"type": "Action.Execute", "verb": verb.value, "data": data}
        body = make_activity(
            "invoke",
            service_url=SERVICE_URL,
            tenant_id=person.tenant_id,
            aad_object_id=person.aad_object_id,
            locale=person.locale,
            name="adaptiveCard/action",
            value={"action": action, "trigger": "manual"},
        )
        if person.time_zone:
            body["localTimezone"] = person.time_zone
        else:  # Teams did not tell the zone
            body.pop("localTimezone")
        requests.append({"path": "/api/echo" if path == "echo" else "/api/messages", "token": token, "body": body})
    return requests


def earlier_answers(token: str, people: list[Asked], sent: Sent) -> list[dict[str, Any]]:
    """The answers the edit and comment paths act on, given before the clock starts: (n % 11, no comment)."""
    return requests_for("answer", token, people, sent)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def run_load(url: str, requests: list[dict[str, Any]], rate: float, work: Path, name: str) -> dict[str, Any]:
    file = work / f"{name}.json"
    file.write_text(json.dumps(requests))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.inbound", "load", "--url", url, "--requests", str(file),
        "--rate", str(rate), "--in-flight", str(SATURATION_IN_FLIGHT),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate()
    return dict(json.loads(out))


async def profiled(pid: int, out: Path) -> asyncio.subprocess.Process:
    """py-spy samples the server (collapsed stacks, one line per stack) while a saturation run goes."""
    return await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
        "--format", "raw", "--rate", "250", "--output", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


class People:
    """Hands out people with an open NPS ask, each to one request only."""

    def __init__(self, asked: list[Asked]) -> None:
        self.asked = asked

    def take(self, n: int) -> list[Asked]:
        taken, self.asked = self.asked[:n], self.asked[n:]
        if len(taken) < n:
            raise RuntimeError("the benchmark seeded too few people")
        return taken


async def run_database(
    database: str, rate: float, seconds: float, rounds: int, profile: Path | None = None, saturation: int = 1500
) -> dict[str, Any]:
    """One database's run: the fixed load (rate x seconds requests a path, in rounds), then `saturation` requests a
    path with 8 in flight."""
    work = Path(tempfile.mkdtemp(prefix="nurture-inbound-"))
    url = f"sqlite+aiosqlite:///{work / 'bench.db'}" if database == "sqlite" else create_postgres_database("nurture_in")
    key = RsaKey("bench-key")
    keys = KeyServer([key]).start()
    db_server = PostgresServer() if database == "postgresql" else None
    per_round = int(rate * seconds) // rounds
    warm = 100
    server: asyncio.subprocess.Process | None = None
    try:
        upgrade(url)
        asked = await seed(url, len(PATHS) * (warm + per_round * rounds + saturation))
        people = People(asked)
        token = key.sign(claims(APP_ID, SERVICE_URL))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.inbound", "serve", "--database", url, "--metadata", keys.metadata_url,
            "--port", str(port), "--tenants", ",".join(sorted({a.tenant_id for a in asked})),
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        await wait_healthy(base)
        sent = Sent()
        statuses: dict[str, int] = {}
        # each path's people for the warm-up, the rounds and the saturation run; the edit and comment paths' people
        # answer first (untimed, 8 in flight)
        mine = {path: people.take(warm + per_round * rounds + saturation) for path in PATHS}
        for path in EARLIER:
            before = await run_load(base, earlier_answers(token, mine[path], sent), 0, work, "earlier")
            _add(statuses, before["statuses"])
        for path in PATHS:  # warm up every path: keys fetched, pools filled, code paths loaded
            warmed = await run_load(base, requests_for(path, token, mine[path][:warm], sent), 0, work, "warm")
            _add(statuses, warmed["statuses"])
        # the fixed load in rounds, the paths taking turns (each round starting with the next), so all share the
        # machine's ups and downs
        parts: dict[str, list[dict[str, Any]]] = {path: [] for path in PATHS}
        cpu = dict.fromkeys(PATHS, 0.0)
        database_cpu = dict.fromkeys(PATHS, 0.0)
        with contextlib.ExitStack() as measuring:
            memory = measuring.enter_context(Peak(lambda: resident_mb([server.pid])))
            database_memory = measuring.enter_context(db_server.watch()) if db_server else None
            for r in range(rounds):
                for path in PATHS[r % len(PATHS) :] + PATHS[: r % len(PATHS)]:
                    offset = warm + r * per_round
                    batch = requests_for(path, token, mine[path][offset : offset + per_round], sent)
                    started, started_db = cpu_seconds(server.pid), db_server.cpu_seconds() if db_server else 0.0
                    parts[path].append(await run_load(base, batch, rate, work, path))
                    cpu[path] += cpu_seconds(server.pid) - started
                    database_cpu[path] += db_server.cpu_seconds() - started_db if db_server else 0.0
        results: dict[str, Any] = {"database": database, "offered_rate": rate, "rounds": rounds}
        results["server_peak_mb"] = round(memory.mb, 1)  # over the fixed load
        if database_memory:
            results["database_extra_mb"] = round(database_memory.extra_mb, 1)
        for path in PATHS:
            fixed_load = summary(parts[path])
            # an overloaded path's backlog ends with each round: its latencies hold only if it kept up with the rate
            fixed_load["kept_up"] = fixed_load["throughput"] >= 0.95 * rate
            fixed_load["server_cpu_ms_per_request"] = round(1000 * cpu[path] / fixed_load["requests"], 3)
            fixed_load["database_cpu_ms_per_request"] = round(1000 * database_cpu[path] / fixed_load["requests"], 3)
            fixed_load["cpu_ms_per_request"] = round(
                fixed_load["server_cpu_ms_per_request"] + fixed_load["database_cpu_ms_per_request"], 3
            )
            spy = await profiled(server.pid, profile / f"{database}-{path}.txt") if profile else None
            last = mine[path][warm + per_round * rounds :]
            saturated = summary([await run_load(base, requests_for(path, token, last, sent), 0, work, path)])
            if spy:
                spy.send_signal(signal.SIGINT)
                await spy.wait()
            results[path] = {"fixed_load": fixed_load, "saturation": saturated}
            _add(statuses, fixed_load["statuses"])
            _add(statuses, saturated["statuses"])
        server.terminate()
        await server.wait()
        results["statuses"] = statuses
        results |= await check_stored(url, sent)
        echo = results["echo"]["fixed_load"]
        results["ratios"] = {
            path: {
                "cpu_per_request": round(
                    results[path]["fixed_load"]["cpu_ms_per_request"] / echo["cpu_ms_per_request"], 2
                ),
                "p50": round(results[path]["fixed_load"]["p50_ms"] / echo["p50_ms"], 2),
                "p99": round(results[path]["fixed_load"]["p99_ms"] / echo["p99_ms"], 2),
                "saturation_echo_over_path": round(
                    results["echo"]["saturation"]["throughput"] / results[path]["saturation"]["throughput"], 2
                ),
            }
            for path in NPS_PATHS
        }
        return results
    finally:
        if server is not None and server.returncode is None:  # the run failed on the way: stop the server too
            server.terminate()
            await server.wait()
        keys.stop()
        if database != "sqlite":
            drop_postgres_database(url)
        shutil.rmtree(work, ignore_errors=True)


def _add(total: dict[str, int], more: dict[str, int]) -> None:
    for key, count in more.items():
        total[key] = total.get(key, 0) + count


def problems(run: dict[str, Any]) -> list[str]:
    """What makes a run's figures worthless: a request not answered 200, an answer not stored as it was sent."""
    found = []
    failed = {code: n for code, n in run["statuses"].items() if code != "200"}
    if failed:
        found.append(f"{run['database']}: requests not answered 200: {failed}")
    if not run["answers_as_sent"] == run["answers_expected"] == run["answers_stored"]:
        found.append(
            f"{run['database']}: {run['answers_as_sent']:,} of {run['answers_expected']:,} answers stored as sent"
            f" ({run['answers_stored']:,} answers in the database)"
        )
    for what, name in (("signals", "card-answer usage signals"), ("alerts", "detractor alerts")):
        if not run[f"{what}_as_expected"]:
            found.append(
                f"{run['database']}: {run[f'{what}_stored']:,} {name} stored, expected one each for"
                f" {run[f'{what}_expected']:,} (or their rollups differ)"
            )
    return found


async def wait_healthy(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the benchmark server did not start")


def report(runs: list[dict[str, Any]]) -> None:
    header = f"{'database':>10} {'path':>14} {'offered/s':>9} {'done/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
    print(header + f"{'server ms':>9} {'db ms':>6} {'CPU ms/req':>10} {'÷ echo':>6} {'max/s (8 in flight)':>19}")
    for run in runs:
        for path in PATHS:
            fixed, saturated = run[path]["fixed_load"], run[path]["saturation"]
            ratio = run["ratios"][path]["cpu_per_request"] if path in run["ratios"] else 1.0
            print(
                f"{run['database']:>10} {path:>14} {run['offered_rate']:>9g} {fixed['throughput']:>7} "
                f"{fixed['p50_ms']:>7} {fixed['p99_ms']:>7} {fixed['server_cpu_ms_per_request']:>9} "
                f"{fixed['database_cpu_ms_per_request']:>6} {fixed['cpu_ms_per_request']:>10} {ratio:>6} "
                f"{saturated['throughput']:>19}"
            )
        print(
            f"{run['database']:>10} answers stored as sent: {run['answers_as_sent']:,} of {run['answers_expected']:,};"
            f" statuses {run['statuses']}"
        )
        behind = [path for path in PATHS if not run[path]["fixed_load"]["kept_up"]]
        if behind:
            print(
                f"{run['database']:>10} did not keep up with {run['offered_rate']:g}/s: {', '.join(behind)}"
                " (its latencies understate a steady load: each round's backlog was dropped)"
            )


async def main(args: argparse.Namespace, baseline: bool) -> None:
    begin("inbound", baseline and not args.profile)
    databases = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    runs = [await run_database(database, args.rate, args.seconds, args.rounds, args.profile) for database in databases]
    report(runs)
    failed = [p for run in runs for p in problems(run)]
    if args.profile:  # the sampler slows the server: a profiled run's timings are not results
        print(f"profiled run: samples in {args.profile}; bench/results/inbound.json left as it was")
        enforce(failed, "inbound")
        return
    await finish("inbound", runs, failed, baseline=baseline)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run")
    run.add_argument("--rate", type=float, default=100.0)
    run.add_argument("--seconds", type=float, default=15.0, help="of fixed load per path, over all rounds")
    run.add_argument(  # short turns, so that the machine's slow and fast moments fall on every path alike
        "--rounds", type=int, default=15, help="echo and NPS take turns this many times"
    )
    run.add_argument("--database", choices=("both", "sqlite", "postgresql"), default="both")
    run.add_argument("--profile", type=Path, help="folder for py-spy's samples of the server's saturation runs")
    server = sub.add_parser("serve")
    server.add_argument("--database", required=True)
    server.add_argument("--metadata", required=True)
    server.add_argument("--port", type=int, required=True)
    server.add_argument("--tenants", required=True, help="the allowed tenants, comma-separated")
    loader = sub.add_parser("load")
    loader.add_argument("--url", required=True)
    loader.add_argument("--requests", required=True)
    loader.add_argument("--rate", type=float, required=True)
    loader.add_argument("--in-flight", type=int, default=SATURATION_IN_FLIGHT)
    arguments = sys.argv[1:]
    if not arguments or arguments[0] not in ("run", "serve", "load", "-h", "--help"):
        arguments = ["run", *arguments]  # `run` is the default: `python -m bench.inbound --seconds 3` works too
    parsed = parser.parse_args(arguments)
    if parsed.command == "serve":
        serve(parsed.database, parsed.metadata, parsed.port, parsed.tenants.split(","))
    elif parsed.command == "load":
        print(json.dumps(asyncio.run(load(parsed.url, parsed.requests, parsed.rate, parsed.in_flight))))
    else:
        asyncio.run(main(parsed, is_baseline(run, parsed)))
