"""users: an index on time_zone

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

Targeting works out each time zone's local day and offsets once; with the index, finding the zones in use is one
index look-up per zone instead of a scan of every person (storage.targeting).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_time_zone"), ["time_zone"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_time_zone"))
