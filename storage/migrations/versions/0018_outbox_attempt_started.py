"""outbox: when the current attempt's request may have left, and whether a message waits for the recipient's day

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07

attempt_started_at is written (and committed) right before a request leaves, and cleared with its outcome. A worker
that dies leaves its rows in `sending`; when their lease ends, a row without it was never sent and goes out normally,
a row with it may have reached Teams and becomes `unknown` instead of being sent again.

quiet_hours marks a message that must not arrive in the recipient's quiet hours or weekend: the worker checks it
again when it is about to send, since a message queued in the afternoon may be sent at night.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempt_started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("quiet_hours", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("quiet_hours")
        batch_op.drop_column("attempt_started_at")
