"""Only `serve` and `db upgrade` migrate; every other command refuses a database at another schema, in one line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from storage.migrate import downgrade, upgrade
from tests.support.cli import clean_env
from tests.support.database import create_postgres_database, drop_postgres_database

COMMANDS = [
    ("deliveries", "--json"),
    ("nps", "--json"),
    ("alerts", "--json"),
    ("demo", "--json"),
    ("forget", "0b0b0b0b-0000-4000-8000-000000000001"),
]


def _nurture(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(NURTURE_DATABASE_URL=database_url)
    return subprocess.run([sys.executable, "-m", "bot", *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/fresh.db"
        return
    url = create_postgres_database("nurture_cli_schema")
    yield url
    drop_postgres_database(url)


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_commands_refuse_a_database_without_tables_and_create_none(fresh_url: str, command: tuple[str, ...]) -> None:
    done = _nurture(fresh_url, *command)
    assert done.returncode == 1
    assert done.stdout == ""
    path = make_url(fresh_url).database
    if fresh_url.startswith("sqlite"):  # no file yet: refused before connecting, which would create it
        said = f"the database file {path} does not exist"
        assert path is not None and not Path(path).exists()
    else:
        said = "the database has no tables yet"
    assert done.stderr.strip().splitlines() == [f"nurture: {said}; this version needs 0019: run `nurture db upgrade`"]
    upgraded = _nurture(fresh_url, "db", "upgrade")  # a fresh database: no migration ran before
    assert upgraded.returncode == 0, upgraded.stderr


def test_an_older_schema_is_named_and_left_as_it_is(fresh_url: str) -> None:
    upgrade(fresh_url, "0018")
    done = _nurture(fresh_url, "deliveries", "--json")
    assert done.returncode == 1
    assert "the database is at revision 0018; this version needs 0019: run `nurture db upgrade`" in done.stderr
    assert _nurture(fresh_url, "deliveries", "--json").returncode == 1  # still 0018: nothing migrated it
    upgrade(fresh_url)
    assert _nurture(fresh_url, "deliveries", "--json").returncode == 0
    downgrade(fresh_url, "base")


@pytest.mark.parametrize("command", [("upgrade", "0099"), ("downgrade", "0099"), ("downgrade", "0019")])
def test_a_revision_alembic_refuses_is_one_line_and_changes_nothing(fresh_url: str, command: tuple[str, str]) -> None:
    upgrade(fresh_url, "0018")
    done = _nurture(fresh_url, "db", *command)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("nurture: cannot migrate: ") and ("0099" in line or "0019" in line), line
    assert "the database is at revision 0018" in _nurture(fresh_url, "nps").stderr
    downgrade(fresh_url, "base")


def test_help_loads_neither_the_database_layer_nor_the_bot_framework() -> None:
    """`nurture --help` stays quick: the command modules import what they need only when a command runs."""
    probe = (
        "import sys; from bot.cli import admin, campaigns, server, success, surveys, usage; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'botbuilder', 'aiohttp', 'alembic'}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_a_read_only_command_loads_no_alembic(fresh_url: str) -> None:
    """Only migrating needs Alembic (and Mako under it): a read-only command checks the schema without it."""
    upgrade(fresh_url)
    probe = (
        "import atexit, sys; "
        "atexit.register(lambda: print('alembic' in sys.modules, file=sys.stderr)); "
        "sys.argv = ['nurture', 'deliveries', '--json']; from bot.cli import main; main()"
    )
    env = clean_env(NURTURE_DATABASE_URL=fresh_url)
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "False"
    downgrade(fresh_url, "base")
