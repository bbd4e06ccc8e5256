"""Usage commands: `ingest` events from a file, `usage verify` the rollups."""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from bot.cli.common import (
    EXIT_CONFIG,
    JSON_OUTPUT,
    app,
    load_settings,
    usage_app,
    with_database,
)

if TYPE_CHECKING:
    from bot.cli.common import UowFactory
    from storage.usage import DriftedProfile

INGEST_BATCH = 5000
CSV_COLUMNS = ("tenant_id", "user_id", "name", "timestamp")


@dataclass(frozen=True)
class Unreadable:
    """A JSONL line that is not an event object's JSON; `reason` says why (the line is refused, the rest go on)."""

    reason: str


def _read_events(path: Path) -> Iterator[tuple[int, Any]]:
    """(line or row number, raw event) from JSONL or CSV; a line that is not JSON this reads yields Unreadable."""
    from bot.config import ConfigError
    from bot.json_body import JsonRefused, parse_json

    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = tuple(reader.fieldnames or ())
            unknown = [c for c in header if c not in (*CSV_COLUMNS, "properties")]
            if unknown or not set(CSV_COLUMNS) <= set(header):
                raise ConfigError(
                    f"{path}: CSV header must be {','.join(CSV_COLUMNS)}[,properties] (found {','.join(header)})"
                )
            for row in reader:
                event: dict[str, Any] = {k: row[k] for k in CSV_COLUMNS}
                if row.get("properties"):
                    try:
                        event["properties"] = json.loads(row["properties"])
                    except ValueError:
                        event["properties"] = row["properties"]  # refused by validation, with its reason
                yield reader.line_num, event
        return
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:  # as the API reads a body: nesting bounded, numbers finite
                yield number, parse_json(line.encode())
            except JsonRefused as refused:
                yield number, Unreadable(str(refused).removeprefix("body ").removeprefix("is "))


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="Usage events: JSONL (one event object per line) or .csv.")],
    as_json: Annotated[bool, JSON_OUTPUT] = False,
) -> None:
    """Import usage events with the same checks as POST /api/usage/events; exit 1 if any line was refused."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from bot.clock import utc_now
    from bot.engagement.usage import Rejection
    from bot.policies import tenant_policy
    from bot.usecases.ingest import UsageIngest

    settings = load_settings()
    if not file.is_file():
        typer.echo(f"nurture: no such file: {file}", err=True)
        raise typer.Exit(EXIT_CONFIG)
    with file.open(encoding="utf-8", errors="replace") as handle:
        lines = sum(1 for _ in handle)

    async def work(uow_factory: UowFactory) -> dict[str, Any]:
        usage = UsageIngest(uow_factory, tenant_policy(settings))
        totals: Counter[str] = Counter()
        rejections: list[Rejection] = []
        columns = (TextColumn("ingesting"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=Console(stderr=True), disable=as_json) as progress:
            task = progress.add_task("events", total=lines)
            batch: list[tuple[int, Any]] = []

            async def flush() -> None:
                readable = [(number, raw) for number, raw in batch if not isinstance(raw, Unreadable)]
                rejections.extend(Rejection(n, raw.reason) for n, raw in batch if isinstance(raw, Unreadable))
                report = await usage.ingest([raw for _, raw in readable], utc_now())
                totals.update(accepted=report.accepted, stored=report.stored, duplicates=report.duplicates)
                rejections.extend(Rejection(readable[r.index][0], r.reason) for r in report.rejections)
                progress.advance(task, len(batch))
                batch.clear()

            for number, raw in _read_events(file):
                batch.append((number, raw))
                if len(batch) >= INGEST_BATCH:
                    await flush()
            if batch:
                await flush()
        return {
            "file": str(file),
            **{k: totals[k] for k in ("accepted", "stored", "duplicates")},
            "rejected": len(rejections),
            "rejections": [
                {"line": r.index, "reason": r.reason} for r in sorted(rejections, key=lambda r: r.index)[:100]
            ],
        }

    from bot.config import ConfigError

    try:
        result = with_database(work)
    except ConfigError as exc:
        typer.echo(f"nurture: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        out = Console()
        out.print(
            f"{result['accepted']} accepted ({result['stored']} new, {result['duplicates']} already known), "
            f"{result['rejected']} refused"
        )
        for rejection in result["rejections"][:20]:
            out.print(f"  line {rejection['line']}: {rejection['reason']}", markup=False, highlight=False)
    if result["rejected"]:
        raise typer.Exit(1)


@usage_app.command("verify")
def usage_verify(
    repair: Annotated[
        bool, typer.Option("--repair", help="Copy usage_activity's words into the drifted profiles.")
    ] = False,
    as_json: Annotated[bool, JSON_OUTPUT] = False,
) -> None:
    """Check that each person's profile holds their newest active-day words as usage_activity has them (what
    campaigns read); exit 1 if some do not, unless --repair copied them (ingestion waits meanwhile)."""

    async def work(uow_factory: UowFactory) -> list[DriftedProfile]:
        async with uow_factory() as uow:
            if not repair:
                return await uow.usage.drifted_profiles()
            drifted = await uow.usage.repair_profiles()
            await uow.commit()
            return drifted

    drifted = with_database(work)
    result = {
        "drifted": len(drifted),
        "repaired": len(drifted) if repair else 0,
        "people": [{"tenant": d.tenant_id, "user": d.aad_object_id} for d in drifted[:100]],
    }
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        out = Console()
        if not drifted:
            out.print("every usage profile holds its person's newest active days")
        else:
            verb = "repaired" if repair else "differ from usage_activity (run again with --repair)"
            out.print(f"{len(drifted)} usage profile(s) {verb}", highlight=False)
            for d in drifted[:20]:
                out.print(f"  tenant {d.tenant_id} user {d.aad_object_id}", markup=False, highlight=False)
    if drifted and not repair:
        raise typer.Exit(1)


# -- nurture targets / run-campaigns ----------------------------------------------------------------------------
