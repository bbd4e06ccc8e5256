"""outbox: the claim indexes end with the id, the claims' tie-break

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

Claims take rows in (next attempt, id) order. A campaign queues its rows at one moment, so without the id in the index
PostgreSQL read every due row of the tenant, checked each against the other workers' conversations and holds, and
sorted them all to hand out twenty: with many rows due, the claims alone set the worker's pace. With the id, a
claim reads the index in order and stops after twenty.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_tenant_due")
        batch_op.drop_index("ix_outbox_due")
        batch_op.create_index("ix_outbox_tenant_due", ["tenant_id", "status", "next_attempt_at", "id"], unique=False)
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due")
        batch_op.drop_index("ix_outbox_tenant_due")
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_outbox_tenant_due", ["tenant_id", "status", "next_attempt_at"], unique=False)
