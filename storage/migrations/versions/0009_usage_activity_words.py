"""usage_activity: a person's active days as 62-day words instead of one usage_daily row per active day

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

Targeting reads a person's last 90 days as two or three rows, not one row for each day they were active. Bit b of
word w = active on day 62·w + b, counted from 1970-01-01.
The per-day event counts go: nothing read them. Downgrade puts back one usage_daily row per active day with a count
of 1 (the counts themselves are gone).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# days since 1970-01-01 of usage_daily.day, and back
_EPOCH_DAY = {"postgresql": "(day - DATE '1970-01-01')", "sqlite": "CAST(julianday(day) - 2440587.5 AS INTEGER)"}
_DAY_OF = {
    "postgresql": "DATE '1970-01-01' + CAST(word * 62 + bit AS INTEGER)",
    "sqlite": "date((word * 62 + bit) * 86400, 'unixepoch')",
}


def upgrade() -> None:
    op.create_table(
        "usage_activity",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("aad_object_id", sa.String(length=64), nullable=False),
        sa.Column("word", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("bits", sa.BigInteger(), nullable=False),
        sa.Column("added", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "aad_object_id", "word", name=op.f("pk_usage_activity")),
    )
    epoch_day = _EPOCH_DAY[op.get_bind().dialect.name]
    # one row per person and day: the powers of two of a word's days are distinct, so their sum is their OR
    op.execute(
        "INSERT INTO usage_activity (tenant_id, aad_object_id, word, bits, added) "
        "SELECT tenant_id, aad_object_id, e / 62, sum(CAST(1 AS BIGINT) << (e % 62)), 0 "
        f"FROM (SELECT tenant_id, aad_object_id, {epoch_day} AS e FROM usage_daily) AS days "
        "GROUP BY tenant_id, aad_object_id, e / 62"
    )
    with op.batch_alter_table("usage_daily", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_daily_tenant_day")
    op.drop_table("usage_daily")


def downgrade() -> None:
    op.create_table(
        "usage_daily",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("aad_object_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "aad_object_id", "day", name=op.f("pk_usage_daily")),
    )
    with op.batch_alter_table("usage_daily", schema=None) as batch_op:
        batch_op.create_index("ix_usage_daily_tenant_day", ["tenant_id", "day"], unique=False)
    day_of = _DAY_OF[op.get_bind().dialect.name]
    op.execute(
        "WITH RECURSIVE positions (bit) AS (SELECT 0 UNION ALL SELECT bit + 1 FROM positions WHERE bit < 61) "
        f"INSERT INTO usage_daily (tenant_id, aad_object_id, day, count) SELECT tenant_id, aad_object_id, {day_of}, 1 "
        "FROM usage_activity JOIN positions ON (bits >> bit) & 1 = 1"
    )
    op.drop_table("usage_activity")
