"""usage_profiles and usage_features keyed by the person's AAD object id first, then the tenant

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04

SQLite's audience query reads people in ranges of their AAD object ids and looks up each one's profile and feature
rows (storage.targeting). Keyed (tenant, person), every look-up compared the 36-character tenant id everyone in the
tenant shares before reaching the part that differs, and landed wherever the person's tenant put them; keyed
(person, tenant), the keys differ in their first bytes and each look-up lands next to the one before, which makes
the dry run faster. A tenant's rows, read by health reports and when the app's users are adopted, get an index of
their own. PostgreSQL hashes these tables for the audience; it gets the same keys so both databases keep one schema.

SQLite cannot change a primary key in place: each table is rebuilt (a copy under the new key, then the name).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = {
    "usage_profiles": (
        "tenant_id VARCHAR(64) NOT NULL, aad_object_id VARCHAR(64) NOT NULL, first_seen_at DATETIME NOT NULL, "
        "last_seen_at DATETIME NOT NULL, events INTEGER NOT NULL, recent_word INTEGER DEFAULT '0' NOT NULL, "
        "recent_0 BIGINT DEFAULT '0' NOT NULL, recent_1 BIGINT DEFAULT '0' NOT NULL, "
        "recent_2 BIGINT DEFAULT '0' NOT NULL, recent_3 BIGINT DEFAULT '0' NOT NULL"
    ),
    "usage_features": (
        "tenant_id VARCHAR(64) NOT NULL, aad_object_id VARCHAR(64) NOT NULL, name VARCHAR(100) NOT NULL, "
        "total INTEGER NOT NULL, first_at DATETIME NOT NULL, last_at DATETIME NOT NULL"
    ),
}
_BY_PERSON = {"usage_profiles": ["aad_object_id", "tenant_id"], "usage_features": ["aad_object_id", "tenant_id", "name"]}
_BY_TENANT = {"usage_profiles": ["tenant_id", "aad_object_id"], "usage_features": ["tenant_id", "aad_object_id", "name"]}
_INDEXES = {
    "usage_profiles": ("ix_usage_profiles_tenant_id", ["tenant_id"]),
    "usage_features": ("ix_usage_features_tenant_name", ["tenant_id", "name"]),
}


def _rekey(keys: dict[str, list[str]]) -> None:
    """Each table under the primary key `keys` gives it, every row kept."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, key in keys.items():
        if sqlite:
            op.execute(
                f"CREATE TABLE {table}_rekeyed ({_COLUMNS[table]}, "
                f"CONSTRAINT pk_{table} PRIMARY KEY ({', '.join(key)})) WITHOUT ROWID"
            )
            op.execute(f"INSERT INTO {table}_rekeyed SELECT * FROM {table} ORDER BY {', '.join(key)}")
            op.execute(f"DROP TABLE {table}")
            op.execute(f"ALTER TABLE {table}_rekeyed RENAME TO {table}")
        else:
            op.drop_constraint(f"pk_{table}", table, type_="primary")
            op.create_primary_key(f"pk_{table}", table, key)


def upgrade() -> None:
    _rekey(_BY_PERSON)
    for table, (name, columns) in _INDEXES.items():
        op.create_index(name, table, columns)


def downgrade() -> None:
    for table, (name, _) in _INDEXES.items():
        op.drop_index(name, table_name=table)
    _rekey(_BY_TENANT)
