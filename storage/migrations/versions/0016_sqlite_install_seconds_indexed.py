"""SQLite: ix_users_audience also holds each install's epoch seconds

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04

SQLite's audience query works out every person's local days since install from the stored instant's text (a parse
a person, a good part of what the query does for them besides looking them up and grouping them). An index on that
expression holds the value, worked out once when the user row is written, and the query reads it from the index it
already reads people from (storage.targeting). PostgreSQL has no such index.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    "aad_object_id, tenant_id, locale, time_zone, installed_at, uninstalled_at, unreachable_at, opted_out_at"
)
_INSTALL_SECONDS = "CAST(strftime('%s', substr(installed_at, 1, 19)) AS INTEGER)"  # storage.models.sqlite_seconds


def _index(columns: str) -> None:
    op.execute("DROP INDEX ix_users_audience")
    op.execute(f"CREATE INDEX ix_users_audience ON users ({columns})")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _index(f"{_COLUMNS}, {_INSTALL_SECONDS}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _index(_COLUMNS)
