"""SQLite: the audience's layout — profile and feature rows kept in their keys, users read from one index

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

The audience query looks up each person's profile and feature row by (tenant, person). In an ordinary SQLite table
that is two B-tree searches, the primary key's index and then the table by rowid; a WITHOUT ROWID table keeps the
row in the key's B-tree, one search. The folds' upserts search the same way.

SQLite decides a large audience in ranges of AAD object ids (storage.targeting), reading the people of a range in
id order from ix_users_audience, which holds all the query reads of a user row: the profile look-ups then go in the
order the rows are stored, and no user row is read by rowid.

PostgreSQL hashes the tables for this query and gets neither.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AUDIENCE_COLUMNS = [
    "aad_object_id", "tenant_id", "locale", "time_zone", "installed_at", "uninstalled_at", "unreachable_at",
    "opted_out_at",
]  # fmt: skip


def _rebuild(with_rowid: bool) -> None:
    """Each table copied into a new one of the other kind, which then takes its name (Alembic's batch mode, which
    reads the table's columns and keys from the database)."""
    for table in ("usage_profiles", "usage_features"):
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_with_rowid": with_rowid}):
            pass


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(with_rowid=False)
        op.create_index("ix_users_audience", "users", _AUDIENCE_COLUMNS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_users_audience", table_name="users")
        _rebuild(with_rowid=True)
