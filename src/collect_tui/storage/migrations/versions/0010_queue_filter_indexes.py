"""queue filter indexes

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-02 19:10:00

The queue's bucket and "promise due" filters walked an agent's whole queue in score
order when few accounts matched (about 100 ms for 9k accounts on SQLite): they can now
take the matching accounts from an index and sort them. ``ix_debtors_due_date`` serves
the aging buckets (a range of ``oldest_due_date``); ``ix_debtors_promises`` is partial,
holding only the debtors with a promise fact, so most rows cost it nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROMISE_FACTS = "promise_due_on IS NOT NULL OR broken_promise_on IS NOT NULL OR installment_missed"


def upgrade() -> None:
    op.create_index("ix_debtors_due_date", "debtors", ["assigned_agent_id", "oldest_due_date"])
    op.create_index(
        "ix_debtors_promises",
        "debtors",
        ["assigned_agent_id"],
        postgresql_where=sa.text(PROMISE_FACTS),
        sqlite_where=sa.text(PROMISE_FACTS),
    )


def downgrade() -> None:
    op.drop_index("ix_debtors_promises", table_name="debtors")
    op.drop_index("ix_debtors_due_date", table_name="debtors")
