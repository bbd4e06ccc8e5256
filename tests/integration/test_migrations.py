"""Migrations: upgrade head then downgrade base on both databases, and the schema matches the models."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Date, bindparam, inspect, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.schema import CreateIndex

from bot.demo import demo_id
from bot.engagement.usage import ActiveDays
from storage.engine import create_engine
from storage.migrate import current_revision, downgrade, head_revision, upgrade
from storage.models import Base, User, on_dialect
from storage.schema import EXPECTED_REVISION, schema_revision
from storage.usage import PROFILE_COLUMNS
from tests.support.cli import nurture
from tests.support.database import create_postgres_database, drop_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    else:
        url = create_postgres_database("nurture_migrate")
        yield url
        drop_postgres_database(url)


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_then_downgrade(fresh_url: str) -> None:
    engine = create_engine(fresh_url)
    try:
        assert await schema_revision(engine) is None
    finally:
        await engine.dispose()
    upgrade(fresh_url)
    engine = create_engine(fresh_url)
    try:
        assert await current_revision(engine) == head_revision()
        assert await schema_revision(engine) == head_revision()
    finally:
        await engine.dispose()
    assert {t.name for t in Base.metadata.sorted_tables} <= await _tables(fresh_url)

    downgrade(fresh_url, "base")
    assert await _tables(fresh_url) <= {"alembic_version"}

    upgrade(fresh_url)  # and back up again: downgrade left nothing behind that blocks it
    assert {t.name for t in Base.metadata.sorted_tables} <= await _tables(fresh_url)


KEPT = ("tenants", "users", "conversation_references", "survey_instances", "nps_answers", "outbox")


async def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return {t: (await connection.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one() for t in KEPT}
    finally:
        await engine.dispose()


async def test_stepping_down_and_up_again_keeps_the_rows_of_the_tables_that_stay(fresh_url: str) -> None:
    """SQLite alters a table by copying it: with foreign keys on, dropping the old copy deleted every row that
    referred to it (stepping down through 0005 rebuilt tenants and emptied users, chats, asks and answers)."""
    upgrade(fresh_url)
    code, _, err = await nurture(fresh_url, "demo", NURTURE_DEV_MODE="1")
    assert code == 0, err
    code, _, err = await nurture(
        fresh_url, "survey", "send", "--tenant", demo_id("tenant", 0), "--force", NURTURE_DEV_MODE="1"
    )
    assert code == 0, err
    engine = create_engine(fresh_url)
    try:
        async with engine.begin() as connection:  # one of them answers
            await connection.execute(
                text(
                    "INSERT INTO nps_answers (survey_instance_id, tenant_id, aad_object_id, score, comment,"
                    " answered_at, updated_at, edits) SELECT i.id, i.tenant_id, u.aad_object_id, 3, 'slow',"
                    " i.created_at, i.created_at, 0 FROM survey_instances i JOIN users u ON u.id = i.user_id"
                    " ORDER BY i.id LIMIT 1"
                )
            )
    finally:
        await engine.dispose()
    before = await _counts(fresh_url)
    assert all(before.values()), before  # something in every table, or the test would prove nothing
    downgrade(fresh_url, "0004")
    assert await _counts(fresh_url) == before
    upgrade(fresh_url)
    assert await _counts(fresh_url) == before


# Alembic cannot reflect SQLite's expression indexes (ix_users_audience): test_sqlite_audience_index_is_the_models
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index:UserWarning")
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
async def test_migrated_schema_matches_models(fresh_url: str) -> None:
    upgrade(fresh_url)
    engine = create_engine(fresh_url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(
                        c, opts={"compare_type": True, "include_object": on_dialect(c.dialect.name)}
                    ),
                    Base.metadata,
                )
            )
    finally:
        await engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_database: str) -> None:
    engine = create_engine(sqlite_database)
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_active_days_survive_the_move_to_words_and_back(fresh_url: str) -> None:
    """0009 turns one usage_daily row per active day into 62-day words (across a word boundary and far apart), and
    downgrade puts the same days back (with a count of 1: the per-day counts are not kept)."""
    upgrade(fresh_url, "0008")
    days = {("t1", "u1"): [date(2026, 11, 1), date(2026, 11, 2), date(2026, 12, 31)], ("t1", "u2"): [date(2025, 1, 5)]}
    rows = [{"t": t, "u": u, "d": d, "n": 3} for (t, u), ds in days.items() for d in ds]
    engine = create_engine(fresh_url)
    try:
        async with engine.begin() as connection:
            insert_daily = text(
                "INSERT INTO usage_daily (tenant_id, aad_object_id, day, count) VALUES (:t, :u, :d, :n)"
            )
            await connection.execute(insert_daily.bindparams(bindparam("d", type_=Date())), rows)
        upgrade(fresh_url, "0009")
        async with engine.connect() as connection:
            words = (
                await connection.execute(text("SELECT tenant_id, aad_object_id, word, bits FROM usage_activity"))
            ).all()
        found: dict[tuple[str, str], set[date]] = {}
        for t, u, word, bits in words:
            found.setdefault((t, u), set()).update(ActiveDays.from_words({word: bits}))
        assert found == {key: set(ds) for key, ds in days.items()}
        assert len(words) == 3  # November 1 and 2 share a word; December 31 starts the next one here

        downgrade(fresh_url, "0008")
        async with engine.connect() as connection:
            back = (
                await connection.execute(text("SELECT tenant_id, aad_object_id, day, count FROM usage_daily"))
            ).all()
        assert {(t, u, date.fromisoformat(str(d)), n) for t, u, d, n in back} == {
            (t, u, d, 1) for (t, u), ds in days.items() for d in ds
        }
    finally:
        await engine.dispose()


async def test_profiles_get_their_newest_four_words(fresh_url: str) -> None:
    """0013 copies each person's newest four active-day words into their profile, newest first, leaving gaps and
    older words out; a profile with no activity gets nothing."""
    upgrade(fresh_url, "0012")
    words = {("t1", "u1"): {300: 5, 302: 1 << 61, 303: 7, 304: 9, 305: 11}, ("t1", "u2"): {100: 3}, ("t1", "u3"): {}}
    engine = create_engine(fresh_url)
    try:
        async with engine.begin() as connection:
            for (t, u), by_word in words.items():
                for word, bits in by_word.items():
                    await connection.execute(
                        text("INSERT INTO usage_activity VALUES (:t, :u, :w, :b, 0)"),
                        {"t": t, "u": u, "w": word, "b": bits},
                    )
                await connection.execute(
                    text(
                        "INSERT INTO usage_profiles (tenant_id, aad_object_id, first_seen_at, last_seen_at, events) "
                        "VALUES (:t, :u, '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)"
                    ),
                    {"t": t, "u": u},
                )
        upgrade(fresh_url)
        async with engine.connect() as connection:
            found = (
                await connection.execute(
                    text(
                        "SELECT aad_object_id, recent_word, recent_0, recent_1, recent_2, recent_3 FROM usage_profiles "
                        "ORDER BY aad_object_id"
                    )
                )
            ).all()
        assert [tuple(row) for row in found] == [
            ("u1", 305, 11, 9, 7, 1 << 61),  # word 301 had nothing; 300 is the fifth newest
            ("u2", 100, 3, 0, 0, 0),
            ("u3", 0, 0, 0, 0, 0),
        ]
    finally:
        await engine.dispose()


async def test_sqlite_profiles_and_features_move_into_their_keys_and_back(fresh_url: str) -> None:
    """0014 rebuilds usage_profiles and usage_features on SQLite as WITHOUT ROWID tables and gives users the
    audience's index (PostgreSQL: unchanged), every row kept, and downgrade puts them back as before; the upserts the
    folds run work on the rebuilt tables."""
    upgrade(fresh_url, "0013")
    profile = "'t1', 'u1', '2026-01-01 00:00:00.000000', '2026-01-02 00:00:00.000000', 4, 300, 5, 6, 7, 8"
    feature = "'t1', 'u1', 'export', 3, '2026-01-01 00:00:00.000000', '2026-01-02 00:00:00.000000'"
    engine = create_engine(fresh_url)
    sqlite = fresh_url.startswith("sqlite")

    async def rows() -> list[tuple[str, ...]]:
        async with engine.connect() as connection:
            found = []
            for table in ("usage_profiles", "usage_features"):
                found += [tuple(map(str, r)) for r in await connection.execute(text(f"SELECT * FROM {table}"))]
            return found

    async def without_rowid() -> list[bool]:
        """Whether each table keeps its rows in its key, and whether users have the audience's index."""
        async with engine.connect() as connection:
            sql = "SELECT name, sql FROM sqlite_master WHERE name IN ('usage_profiles', 'usage_features') ORDER BY name"
            found = [s.rstrip().endswith("WITHOUT ROWID") for _, s in await connection.execute(text(sql))]
            index = "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'ix_users_audience'"
            return [*found, (await connection.execute(text(index))).scalar_one() == 1]

    try:
        async with engine.begin() as connection:
            await connection.execute(text(f"INSERT INTO usage_profiles VALUES ({profile})"))
            await connection.execute(text(f"INSERT INTO usage_features VALUES ({feature})"))
        before = await rows()
        assert len(before) == 2
        if sqlite:
            assert await without_rowid() == [False, False, False]
        upgrade(fresh_url, "0014")
        assert await rows() == before
        if sqlite:
            assert await without_rowid() == [True, True, True]
        async with engine.begin() as connection:  # the key still refuses a second row for a person
            await connection.execute(
                text(
                    f"INSERT INTO usage_profiles VALUES ({profile}) ON CONFLICT (tenant_id, aad_object_id) "
                    "DO UPDATE SET events = usage_profiles.events + excluded.events"
                )
            )
        assert (await rows())[0][4] == "8"
        downgrade(fresh_url, "0013")
        if sqlite:
            assert await without_rowid() == [False, False, False]
        assert len(await rows()) == 2
    finally:
        await engine.dispose()


async def test_usage_rows_are_keyed_by_person_first_and_back(fresh_url: str) -> None:
    """0015 keys usage_profiles and usage_features by the AAD object id first (then the tenant), as the models do,
    with an index for a tenant's rows; every row is kept, the folds' upserts find their rows by the new keys (and
    still refuse a second row for a person), SQLite keeps the rows in their keys, and downgrade puts the old keys
    back."""
    upgrade(fresh_url, "0014")
    profile = "'t1', 'u1', '2026-01-01 00:00:00.000000', '2026-01-02 00:00:00.000000', 4, 300, 5, 6, 7, 8"
    features = [
        f"'{t}', '{u}', '{n}', 3, '2026-01-01 00:00:00.000000', '2026-01-02 00:00:00.000000'"
        for t, u, n in (("t1", "u1", "export"), ("t1", "u1", "share"), ("t2", "u1", "export"))
    ]
    engine = create_engine(fresh_url)
    sqlite = fresh_url.startswith("sqlite")

    async def layout() -> dict[str, tuple[list[str], list[str], int]]:
        """Each table's primary key, its indexes and its rows (and on SQLite, that it is still WITHOUT ROWID)."""
        async with engine.connect() as connection:

            def read(c: Any) -> dict[str, tuple[list[str], list[str], int]]:
                found = {}
                for table in ("usage_profiles", "usage_features"):
                    key = inspect(c).get_pk_constraint(table)["constrained_columns"]
                    indexes = sorted(i["name"] for i in inspect(c).get_indexes(table))
                    found[table] = (key, indexes, c.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
                    if sqlite:
                        ddl = c.execute(text(f"SELECT sql FROM sqlite_master WHERE name = '{table}'")).scalar_one()
                        assert ddl.rstrip().endswith("WITHOUT ROWID")
                return found

            return await connection.run_sync(read)

    try:
        async with engine.begin() as connection:
            await connection.execute(text(f"INSERT INTO usage_profiles VALUES ({profile})"))
            for feature in features:
                await connection.execute(text(f"INSERT INTO usage_features VALUES ({feature})"))
        assert await layout() == {
            "usage_profiles": (["tenant_id", "aad_object_id"], [], 1),
            "usage_features": (["tenant_id", "aad_object_id", "name"], [], 3),
        }
        upgrade(fresh_url, "0015")
        assert await layout() == {
            "usage_profiles": (["aad_object_id", "tenant_id"], ["ix_usage_profiles_tenant_id"], 1),
            "usage_features": (["aad_object_id", "tenant_id", "name"], ["ix_usage_features_tenant_name"], 3),
        }
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    f"INSERT INTO usage_profiles VALUES ({profile}) ON CONFLICT (tenant_id, aad_object_id) "
                    "DO UPDATE SET events = usage_profiles.events + excluded.events"
                )
            )
            await connection.execute(
                text(
                    f"INSERT INTO usage_features VALUES ({features[0]}) ON CONFLICT (tenant_id, aad_object_id, name) "
                    "DO UPDATE SET total = usage_features.total + excluded.total"
                )
            )
            events = (await connection.execute(text("SELECT events FROM usage_profiles"))).scalar_one()
            totals = await connection.execute(text("SELECT tenant_id, name, total FROM usage_features ORDER BY 1, 2"))
            assert (events, [tuple(r) for r in totals]) == (
                8,
                [("t1", "export", 6), ("t1", "share", 3), ("t2", "export", 3)],
            )
        downgrade(fresh_url, "0014")
        assert await layout() == {
            "usage_profiles": (["tenant_id", "aad_object_id"], [], 1),
            "usage_features": (["tenant_id", "aad_object_id", "name"], [], 3),
        }
    finally:
        await engine.dispose()


async def test_profiles_get_their_last_use_in_seconds_and_back(fresh_url: str) -> None:
    """0017 gives usage_profiles last_seen_second, worked out by the database from last_seen_at: for the rows there
    (SQLite rebuilds the table, keeping it WITHOUT ROWID with its tenant index) and whenever a row is written again;
    downgrade takes the column away and keeps the rows."""
    upgrade(fresh_url, "0016")
    profiles = [
        f"'t1', '{u}', '2026-01-01 00:00:00.000000', '{at}', 4, 300, 5, 6, 7, 8"
        for u, at in (("u1", "2026-01-02 23:59:59.999999"), ("u2", "2026-03-29 01:00:00.000000"))
    ]
    engine = create_engine(fresh_url)
    sqlite = fresh_url.startswith("sqlite")

    async def seconds() -> list[tuple[str, int | None]]:
        async with engine.connect() as connection:

            def read(c: Any) -> list[tuple[str, int | None]]:
                if sqlite:
                    ddl = c.execute(text("SELECT sql FROM sqlite_master WHERE name = 'usage_profiles'")).scalar_one()
                    assert ddl.rstrip().endswith("WITHOUT ROWID")
                assert [i["name"] for i in inspect(c).get_indexes("usage_profiles")] == ["ix_usage_profiles_tenant_id"]
                held = {col["name"] for col in inspect(c).get_columns("usage_profiles")}
                second = "last_seen_second" if "last_seen_second" in held else "NULL"
                sql = f"SELECT aad_object_id, {second} FROM usage_profiles ORDER BY 1"
                return [(u, n) for u, n in c.execute(text(sql))]

            return await connection.run_sync(read)

    try:
        async with engine.begin() as connection:
            for profile in profiles:
                await connection.execute(text(f"INSERT INTO usage_profiles VALUES ({profile})"))
        assert await seconds() == [("u1", None), ("u2", None)]
        upgrade(fresh_url, "0017")
        assert await seconds() == [("u1", 1767398399), ("u2", 1774746000)]
        async with engine.begin() as connection:  # written again: a later last use, and the seconds follow
            await connection.execute(
                text(
                    f"INSERT INTO usage_profiles ({PROFILE_COLUMNS}) "
                    f"VALUES ({profiles[0].replace('2026-01-02 23:59:59.999999', '2026-01-03 00:00:00.000001')}) "
                    "ON CONFLICT (tenant_id, aad_object_id) DO UPDATE SET last_seen_at = excluded.last_seen_at"
                )
            )
        assert await seconds() == [("u1", 1767398400), ("u2", 1774746000)]
        downgrade(fresh_url, "0016")
        assert await seconds() == [("u1", None), ("u2", None)]
    finally:
        await engine.dispose()


async def test_object_ids_stored_in_upper_case_become_lower_case(fresh_url: str) -> None:
    """0019 turns every stored Entra object id into lower case, except a row whose lower-case twin exists (the same
    person under two spellings, left for a person to merge); downgrade keeps them."""
    upgrade(fresh_url, "0018")
    engine = create_engine(fresh_url)
    at = "'2026-01-01 00:00:00.000000'"
    profile = "INSERT INTO usage_profiles (tenant_id, aad_object_id, first_seen_at, last_seen_at, events) VALUES "
    statements = [
        f"INSERT INTO tenants (tenant_id, first_seen_at, last_seen_at) VALUES ('t1', {at}, {at})",
        f"INSERT INTO users (tenant_id, aad_object_id, created_at, updated_at) VALUES ('t1', 'AB-1', {at}, {at})",
        "INSERT INTO csm_assignments (tenant_id, aad_object_id, position) VALUES ('t1', 'CD-2', 0)",
        *(f"{profile} ('t1', '{person}', {at}, {at}, 1)" for person in ("EF-3", "GH-4", "gh-4")),
    ]

    async def ids() -> dict[str, list[str]]:
        async with engine.connect() as connection:
            found = {}
            for table in ("users", "csm_assignments", "usage_profiles"):
                rows = await connection.execute(text(f"SELECT aad_object_id FROM {table}"))
                found[table] = sorted(value for (value,) in rows)
            return found

    try:
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement))
        upgrade(fresh_url, "0019")
        expected = {
            "users": ["ab-1"],
            "csm_assignments": ["cd-2"],
            "usage_profiles": ["GH-4", "ef-3", "gh-4"],  # GH-4 has a lower-case twin: left as it was
        }
        assert await ids() == expected
        downgrade(fresh_url, "0018")
        assert await ids() == expected
    finally:
        await engine.dispose()


def test_sqlite_audience_index_is_the_models(tmp_path: Path) -> None:
    """Alembic cannot compare SQLite's expression indexes: the audience index the migrations leave (0016: with the
    install's epoch seconds) is the one the models declare, and downgrade takes the seconds out again."""
    path = tmp_path / "audience.db"
    url = f"sqlite+aiosqlite:///{path}"

    def index_sql() -> str:
        connection = sqlite3.connect(path)
        try:
            sql = "SELECT sql FROM sqlite_master WHERE name = 'ix_users_audience'"
            return "".join(connection.execute(sql).fetchone()[0].split())
        finally:
            connection.close()

    upgrade(url)
    [declared] = [index for index in User.__table__.indexes if index.name == "ix_users_audience"]
    assert index_sql() == "".join(str(CreateIndex(declared).compile(dialect=sqlite.dialect())).split())
    assert "strftime('%s',substr(installed_at,1,19))" in index_sql()
    downgrade(url, "0015")
    assert "strftime" not in index_sql() and index_sql().startswith("CREATEINDEXix_users_audienceONusers(aad_object_id")


def test_the_commands_expect_the_newest_migration() -> None:
    """Commands check the database against storage.schema.EXPECTED_REVISION: a new migration must update it."""
    assert head_revision() == EXPECTED_REVISION, "set storage.schema.EXPECTED_REVISION to the newest migration"
