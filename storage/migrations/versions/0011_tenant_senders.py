"""tenant_rates: one worker sends to a tenant at a time (holder, held until), and when a new one may start

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

A shared schedule of moments gave each request one moment, and a request that missed it (a busy or descheduled
process) had to give it up: near Teams' 50 a second, a shared machine missed many of its moments that way. Now a
tenant's sends come from the one worker that holds it, which counts its own departures in a sliding log
(bot.engagement.delivery.SendLog) and catches up after a delay without crowding Teams' second. `next_slot_epoch`
becomes `quiet_until_epoch`: the moment the last holder's requests have left every window, before which a new holder
does not send. The rows hold only pacing state: nothing to carry over.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenant_rates", schema=None) as batch_op:
        batch_op.alter_column("next_slot_epoch", new_column_name="quiet_until_epoch")
        batch_op.add_column(sa.Column("holder", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("held_until_epoch", sa.Float(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("tenant_rates", schema=None) as batch_op:
        batch_op.drop_column("held_until_epoch")
        batch_op.drop_column("holder")
        batch_op.alter_column("quiet_until_epoch", new_column_name="next_slot_epoch")
