"""tenant_rates: a shared send schedule (the next free moment) instead of a token bucket

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26

Workers reserve their sends' moments from the schedule, several in one statement, and wait for them locally instead
of polling a bucket (storage.outbox.OutboxRepository.reserve_slots). The rows hold only pacing state: nothing to carry
over.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenant_rates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_slot_epoch", sa.Float(), server_default="0", nullable=False))
        batch_op.drop_column("tokens")
        batch_op.drop_column("updated_epoch")


def downgrade() -> None:
    with op.batch_alter_table("tenant_rates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tokens", sa.Float(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("updated_epoch", sa.Float(), server_default="0", nullable=False))
        batch_op.drop_column("next_slot_epoch")
