"""usage_daily: one row per person per active day

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25

The per-event daily rows were written for every event and read by nothing (rules read the all-events row, and
lifetime per-event use lives in usage_features): they go, and so does the name column.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM usage_daily WHERE name <> '*'")
    with op.batch_alter_table("usage_daily", schema=None, recreate="always") as batch_op:
        batch_op.drop_constraint("pk_usage_daily", type_="primary")
        batch_op.drop_column("name")
        batch_op.create_primary_key("pk_usage_daily", ["tenant_id", "aad_object_id", "day"])


def downgrade() -> None:
    with op.batch_alter_table("usage_daily", schema=None, recreate="always") as batch_op:
        batch_op.drop_constraint("pk_usage_daily", type_="primary")
        batch_op.add_column(sa.Column("name", sa.String(length=100), server_default="*", nullable=False))
        batch_op.create_primary_key("pk_usage_daily", ["tenant_id", "aad_object_id", "day", "name"])
