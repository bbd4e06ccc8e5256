"""Inbound-turn benchmark: an NPS answer (Action.Execute invoke through /api/messages: real JWT validation against
a local OpenID key server, service-URL and tenant checks, validation, the SQL writes, the updated card back) versus a
bare botbuilder echo invoke on the same server, the same stack and the same token checks (/api/echo).

A load generator in a separate process offers a fixed rate (open loop: latency is counted from each request's
scheduled time, so a stall is not hidden), echo and NPS taking turns in rounds so that both share the machine's ups
and downs, and then finds the saturation throughput (closed loop, 8 in flight). The server's CPU time per request is
read from /proc. Every NPS request must have written exactly one answer. Prints both paths and their ratios side by
side, on SQLite and PostgreSQL; writes bench/results/inbound.json (a run of one database keeps the other's figures).
Run: `python -m bench.inbound [--rate 100] [--seconds 15] [--rounds 15] [--database both|sqlite|postgresql]
[--profile DIR]`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from botbuilder.core import ActivityHandler, TurnContext
from botbuilder.core.invoke_response import InvokeResponse
from sqlalchemy import func, insert, select

from bench import merged_runs
from bot.app import MESSAGES, create_app
from bot.config import Settings
from cards.verbs import Verb
from storage.engine import create_engine
from storage.migrate import upgrade
from storage.models import NpsAnswer, SurveyInstance, Tenant, User
from tests.support.activities import make_activity
from tests.support.credentials import FixedTokenCredentialsFactory
from tests.support.database import create_postgres_database, drop_postgres_database
from tests.support.keys import KeyServer, RsaKey, claims

RESULTS = Path(__file__).parent / "results"
APP_ID = "00000000-aaaa-bbbb-cccc-0000000000be"
TENANT = "11111111-1111-1111-1111-111111111111"
SERVICE_URL = "http://127.0.0.1:9/"  # named by the activities; an invoke's answer goes back in the HTTP response
SATURATION_IN_FLIGHT = 8
PATHS = (("echo", "/api/echo"), ("nps", "/api/messages"))


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


def serve(database_url: str, metadata_url: str, port: int) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        app_id=APP_ID,
        app_password="outbound-credentials-are-injected",
        database_url=database_url,
        openid_metadata_url=metadata_url,
        allowed_tenants=[TENANT],
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


async def seed(database_url: str, people: int) -> list[tuple[str, str]]:
    """People with an NPS card sent to them, each able to answer once: (aad object id, survey instance id)."""
    now = datetime.now(UTC)
    engine = create_engine(database_url)
    pairs = [(f"bench-{i:06d}", str(uuid.uuid4())) for i in range(people)]
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(Tenant).values(tenant_id=TENANT, first_seen_at=now, last_seen_at=now))
            users = [
                {"tenant_id": TENANT, "aad_object_id": aad, "installed_at": now, "created_at": now, "updated_at": now}
                for aad, _ in pairs
            ]
            await connection.execute(insert(User), users)
            ids = dict((await connection.execute(select(User.aad_object_id, User.id))).tuples().all())
            instances = [
                {
                    "id": instance,
                    "tenant_id": TENANT,
                    "user_id": ids[aad],
                    "kind": "nps",
                    "status": "sent",
                    "locale": "en-US",
                    "created_at": now,
                    "sent_at": now,
                    "expires_at": now + timedelta(days=14),
                    "forced": False,
                }
                for aad, instance in pairs
            ]
            for start in range(0, len(instances), 2000):
                await connection.execute(insert(SurveyInstance), instances[start : start + 2000])
    finally:
        await engine.dispose()
    return pairs


async def answers(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(select(func.count()).select_from(NpsAnswer))).scalar_one())
    finally:
        await engine.dispose()


def requests_for(path: str, token: str, pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """One NPS answer per person (a fresh activity id each: Teams' retries would be answered once)."""
    return [
        {
            "path": path,
            "token": token,
            "body": make_activity(
                "invoke",
                service_url=SERVICE_URL,
                aad_object_id=aad,
                name="adaptiveCard/action",
                value={
                    "action": {
                        "type": "Action.Execute",
                        "verb": Verb.NPS_SUBMIT.value,
                        "data": {"instance": instance, "score": n % 11},
                    },
                    "trigger": "manual",
                },
            ),
        }
        for n, (aad, instance) in enumerate(pairs)
    ]


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


async def run_database(
    database: str, rate: float, seconds: float, rounds: int, profile: Path | None = None, saturation: int = 1500
) -> dict[str, Any]:
    """One database's run: the fixed load (rate x seconds requests a path, in rounds), then `saturation` requests a
    path with 8 in flight."""
    work = Path(tempfile.mkdtemp(prefix="nurture-inbound-"))
    url = f"sqlite+aiosqlite:///{work / 'bench.db'}" if database == "sqlite" else create_postgres_database("nurture_in")
    key = RsaKey("bench-key")
    keys = KeyServer([key]).start()
    fixed = int(rate * seconds)
    try:
        upgrade(url)
        pairs = await seed(url, 2 * (fixed + saturation) + 200)
        token = key.sign(claims(APP_ID, SERVICE_URL))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.inbound", "serve", "--database", url, "--metadata", keys.metadata_url,
            "--port", str(port),
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        await wait_healthy(base)
        rest = pairs[2 * fixed :]
        results: dict[str, Any] = {"database": database, "offered_rate": rate, "rounds": rounds}
        for path in ("/api/echo", "/api/messages"):  # warm up both: keys fetched, pools filled, code paths loaded
            await run_load(base, requests_for(path, token, rest[:100]), 0, work, "warm")
            rest = rest[100:]
        # the fixed load in rounds, echo and NPS in turn, so both paths share the machine's ups and downs
        per_round = fixed // rounds
        parts: dict[str, list[dict[str, Any]]] = {"echo": [], "nps": []}
        cpu = {"echo": 0.0, "nps": 0.0}
        for r in range(rounds):
            for name, path in PATHS:
                offset = (2 * r + (name == "nps")) * per_round
                batch = requests_for(path, token, pairs[offset : offset + per_round])
                before = cpu_seconds(server.pid)
                parts[name].append(await run_load(base, batch, rate, work, name))
                cpu[name] += cpu_seconds(server.pid) - before
        for name, path in PATHS:
            fixed_load = summary(parts[name])
            fixed_load["server_cpu_ms_per_request"] = round(1000 * cpu[name] / fixed_load["requests"], 2)
            spy = await profiled(server.pid, profile / f"{database}-{name}.txt") if profile else None
            saturated = summary([await run_load(base, requests_for(path, token, rest[:saturation]), 0, work, name)])
            if spy:
                spy.send_signal(signal.SIGINT)
                await spy.wait()
            rest = rest[saturation:]
            results[name] = {"fixed_load": fixed_load, "saturation": saturated}
        written = await answers(url)
        expected = 100 + per_round * rounds + saturation  # warm-up, fixed load and saturation NPS requests
        results["nps_answers_written"] = written
        results["nps_answers_expected"] = expected
        server.terminate()
        await server.wait()
        echo, nps = results["echo"], results["nps"]
        results["ratios"] = {
            "p50_nps_over_echo": round(nps["fixed_load"]["p50_ms"] / echo["fixed_load"]["p50_ms"], 2),
            "p99_nps_over_echo": round(nps["fixed_load"]["p99_ms"] / echo["fixed_load"]["p99_ms"], 2),
            "cpu_per_request_nps_over_echo": round(
                nps["fixed_load"]["server_cpu_ms_per_request"] / echo["fixed_load"]["server_cpu_ms_per_request"], 2
            ),
            "saturation_echo_over_nps": round(echo["saturation"]["throughput"] / nps["saturation"]["throughput"], 2),
        }
        return results
    finally:
        keys.stop()
        if database != "sqlite":
            drop_postgres_database(url)
        shutil.rmtree(work, ignore_errors=True)


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
    header = f"{'database':>10} {'path':>5} {'offered/s':>9} {'done/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
    print(header + f"{'cpu ms/req':>10} {'max/s (8 in flight)':>19} {'errors':>6}")
    for run in runs:
        for name in ("echo", "nps"):
            fixed, saturated = run[name]["fixed_load"], run[name]["saturation"]
            errors = sum(n for code, n in fixed["statuses"].items() if code != "200")
            errors += sum(n for code, n in saturated["statuses"].items() if code != "200")
            print(
                f"{run['database']:>10} {name:>5} {run['offered_rate']:>9g} {fixed['throughput']:>7} "
                f"{fixed['p50_ms']:>7} {fixed['p99_ms']:>7} {fixed['server_cpu_ms_per_request']:>10} "
                f"{saturated['throughput']:>19} {errors:>6}"
            )
        ratios = run["ratios"]
        print(
            f"{run['database']:>10} nps ÷ echo: p50 {ratios['p50_nps_over_echo']}×, p99 {ratios['p99_nps_over_echo']}×,"
            f" CPU per request {ratios['cpu_per_request_nps_over_echo']}×; echo max ÷ nps max"
            f" {ratios['saturation_echo_over_nps']}×; answers written {run['nps_answers_written']}"
            f" of {run['nps_answers_expected']}"
        )


async def main(args: argparse.Namespace) -> None:
    databases = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    runs = [await run_database(database, args.rate, args.seconds, args.rounds, args.profile) for database in databases]
    report(runs)
    if args.profile:  # the sampler slows the server: a profiled run's timings are not results
        print(f"profiled run: samples in {args.profile}; bench/results/inbound.json left as it was")
        return
    RESULTS.mkdir(exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    file = RESULTS / "inbound.json"
    file.write_text(json.dumps({"machine": machine, "runs": merged_runs(file, runs, "sqlite")}, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run")
    run.add_argument("--rate", type=float, default=100.0)
    run.add_argument("--seconds", type=float, default=15.0, help="of fixed load per path, over all rounds")
    run.add_argument(  # 15 turns of one second each: three of five seconds left 1.28-1.56x between runs of one code
        "--rounds", type=int, default=15, help="echo and NPS take turns this many times"
    )
    run.add_argument("--database", choices=("both", "sqlite", "postgresql"), default="both")
    run.add_argument("--profile", type=Path, help="folder for py-spy's samples of the server's saturation runs")
    server = sub.add_parser("serve")
    server.add_argument("--database", required=True)
    server.add_argument("--metadata", required=True)
    server.add_argument("--port", type=int, required=True)
    loader = sub.add_parser("load")
    loader.add_argument("--url", required=True)
    loader.add_argument("--requests", required=True)
    loader.add_argument("--rate", type=float, required=True)
    loader.add_argument("--in-flight", type=int, default=SATURATION_IN_FLIGHT)
    parsed = parser.parse_args(sys.argv[1:] or ["run"])
    if parsed.command == "serve":
        serve(parsed.database, parsed.metadata, parsed.port)
    elif parsed.command == "load":
        print(json.dumps(asyncio.run(load(parsed.url, parsed.requests, parsed.rate, parsed.in_flight))))
    else:
        asyncio.run(main(parsed))
