"""usage_profiles.last_seen_second: last_seen_at's epoch seconds, worked out by the database when a row is written

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04

The audience query works out every person's local day of last use from last_seen_at; on SQLite, parsing the
instant's text was a noticeable part of the work the query does for a person (storage.targeting). A stored
generated column holds the seconds, so the parse happens once per write (each fold writes a person's profile once)
instead of once per person on every run. PostgreSQL gets the same column so both databases keep one schema; its
expression names UTC, as a generated column's must not depend on the session's time zone.

SQLite cannot add a stored generated column to a table: the table is rebuilt (a copy in key order, then the name).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    "tenant_id, aad_object_id, first_seen_at, last_seen_at, events, recent_word, recent_0, recent_1, recent_2, recent_3"
)
_DDL = (
    "tenant_id VARCHAR(64) NOT NULL, aad_object_id VARCHAR(64) NOT NULL, first_seen_at DATETIME NOT NULL, "
    "last_seen_at DATETIME NOT NULL, events INTEGER NOT NULL, recent_word INTEGER DEFAULT '0' NOT NULL, "
    "recent_0 BIGINT DEFAULT '0' NOT NULL, recent_1 BIGINT DEFAULT '0' NOT NULL, "
    "recent_2 BIGINT DEFAULT '0' NOT NULL, recent_3 BIGINT DEFAULT '0' NOT NULL"
)
_SECONDS = {  # storage.models.EpochSeconds("last_seen_at")
    "sqlite": "CAST(strftime('%s', substr(last_seen_at, 1, 19)) AS INTEGER)",
    "postgresql": "CAST(floor(date_part('epoch', last_seen_at AT TIME ZONE 'UTC')) AS BIGINT)",
}


def _rebuild_sqlite(columns: str) -> None:
    """usage_profiles with `columns`, every row kept, under its key and with its tenant index."""
    op.execute(
        f"CREATE TABLE usage_profiles_rebuilt ({columns}, "
        "CONSTRAINT pk_usage_profiles PRIMARY KEY (aad_object_id, tenant_id)) WITHOUT ROWID"
    )
    op.execute(
        f"INSERT INTO usage_profiles_rebuilt ({_COLUMNS}) SELECT {_COLUMNS} FROM usage_profiles "
        "ORDER BY aad_object_id, tenant_id"
    )
    op.execute("DROP TABLE usage_profiles")
    op.execute("ALTER TABLE usage_profiles_rebuilt RENAME TO usage_profiles")
    op.execute("CREATE INDEX ix_usage_profiles_tenant_id ON usage_profiles (tenant_id)")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        generated = f"last_seen_second BIGINT NOT NULL GENERATED ALWAYS AS ({_SECONDS['sqlite']}) STORED"
        _rebuild_sqlite(f"{_DDL}, {generated}")
    else:
        op.add_column(
            "usage_profiles",
            sa.Column("last_seen_second", sa.BigInteger(), sa.Computed(_SECONDS[dialect], persisted=True), nullable=False),
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(_DDL)
    else:
        op.drop_column("usage_profiles", "last_seen_second")
