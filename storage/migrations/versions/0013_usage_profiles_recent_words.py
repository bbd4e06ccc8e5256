"""usage_profiles: each person's newest four active-day words, beside their first and last moment seen

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

The audience query read a person's windows by joining usage_activity once per word (two or three hash joins of the
whole table on PostgreSQL, as many index look-ups a person on SQLite); with the words in the profile row it already
joins, those joins go. The folds keep both (storage.usage); here the copies are filled from usage_activity.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SLOTS = ("recent_0", "recent_1", "recent_2", "recent_3")
_PERSON = "a.tenant_id = usage_profiles.tenant_id AND a.aad_object_id = usage_profiles.aad_object_id"


def upgrade() -> None:
    with op.batch_alter_table("usage_profiles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recent_word", sa.Integer(), server_default="0", nullable=False))
        for slot in _SLOTS:
            batch_op.add_column(sa.Column(slot, sa.BigInteger(), server_default="0", nullable=False))
    op.execute(
        f"UPDATE usage_profiles SET recent_word = coalesce((SELECT max(word) FROM usage_activity a WHERE {_PERSON}), 0)"
    )
    op.execute(
        "UPDATE usage_profiles SET "
        + ", ".join(
            f"{slot} = coalesce((SELECT bits FROM usage_activity a WHERE {_PERSON} "
            f"AND a.word = usage_profiles.recent_word - {k}), 0)"
            for k, slot in enumerate(_SLOTS)
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("usage_profiles", schema=None) as batch_op:
        for slot in reversed(_SLOTS):
            batch_op.drop_column(slot)
        batch_op.drop_column("recent_word")
