"""partial callbacks index

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 12:45:00

``ix_debtors_callbacks`` only serves queries on due callbacks (``next_action_at`` compared
with a time), so it now holds only the debtors that have one. On PostgreSQL every row
the daily rescore writes is a new tuple with an entry in each index on ``debtors``
(the score is in the queue index, so the update cannot be HOT); a partial index gets
no entry for the rows without a callback, about a tenth of the update's work.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HAS_CALLBACK = "next_action_at IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("debtors", schema=None) as batch_op:
        batch_op.drop_index("ix_debtors_callbacks")
        batch_op.create_index(
            "ix_debtors_callbacks",
            ["assigned_agent_id", "next_action_at"],
            unique=False,
            postgresql_where=sa.text(HAS_CALLBACK),
            sqlite_where=sa.text(HAS_CALLBACK),
        )


def downgrade() -> None:
    with op.batch_alter_table("debtors", schema=None) as batch_op:
        batch_op.drop_index("ix_debtors_callbacks")
        batch_op.create_index(
            "ix_debtors_callbacks", ["assigned_agent_id", "next_action_at"], unique=False
        )
