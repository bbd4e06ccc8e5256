"""Entra object ids in lower case everywhere

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07

Object ids are GUIDs, which are case-insensitive, but rows were keyed by the id as it arrived: `nurture forget` with
an id in upper case found nothing. Every boundary now stores the lower-case form (bot.engagement.ids); this turns
ids stored before into it. A row whose lower-case twin already exists (the same person stored under two spellings,
which Teams' own lower-case ids make unlikely) is left as it is, and counted in the log: merging two histories is a
decision for a person, not a migration.

Tenant ids are not changed here: Teams and the usage API have always delivered them in lower case, and they are the
key of foreign keys in most tables.
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

# table, id column, the other columns of the key it is unique in (None: not unique)
_IDS: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    ("users", "aad_object_id", ("tenant_id",)),
    ("inbound_activities", "aad_object_id", None),
    ("nps_answers", "aad_object_id", ("survey_instance_id",)),
    ("pending_alerts", "aad_object_id", None),
    ("usage_events", "aad_object_id", ("tenant_id", "name", "occurred_at")),
    ("usage_activity", "aad_object_id", ("tenant_id", "word")),
    ("usage_features", "aad_object_id", ("tenant_id", "name")),
    ("usage_profiles", "aad_object_id", ("tenant_id",)),
    ("csm_assignments", "aad_object_id", ("tenant_id",)),
    ("campaign_touches", "aad_object_id", ("campaign_id", "tenant_id", "step")),
    ("alerts", "claimed_by", None),
    ("alerts", "resolved_by", None),
    ("alert_log", "actor", None),
)


def upgrade() -> None:
    connection = op.get_bind()
    for table, column, key in _IDS:
        mixed = f"{column} <> lower({column})"
        no_twin = ""
        if key is not None:
            same_key = " AND ".join(f"twin.{c} = {table}.{c}" for c in key)
            no_twin = (
                f" AND NOT EXISTS (SELECT 1 FROM {table} twin WHERE {same_key}"
                f" AND lower(twin.{column}) = lower({table}.{column}) AND twin.{column} <> {table}.{column})"
            )
        connection.execute(sa.text(f"UPDATE {table} SET {column} = lower({column}) WHERE {mixed}{no_twin}"))
        left = connection.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {mixed}")).scalar_one()
        if left:
            log.warning("%s.%s: %s row(s) keep an upper-case id: the same person has rows in lower case", table, column, left)


def downgrade() -> None:
    """Nothing to undo: lower case is a valid spelling of every id."""
