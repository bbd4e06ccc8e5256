"""outbox updates and recalls

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

Outbox rows can update or delete a card sent before (an expired survey closes; a message is recalled), and an index
for the per-conversation send windows shared by every worker process.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("operation", sa.String(length=16), server_default="send", nullable=False))
        batch_op.add_column(sa.Column("target_activity_id", sa.String(length=256), nullable=True))
        batch_op.create_index("ix_outbox_conversation_sent", ["conversation_id", "sent_at"], unique=False)
        batch_op.create_index("ix_outbox_tenant_due", ["tenant_id", "status", "next_attempt_at"], unique=False)



def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_tenant_due")
        batch_op.drop_index("ix_outbox_conversation_sent")
        batch_op.drop_column("target_activity_id")
        batch_op.drop_column("operation")

