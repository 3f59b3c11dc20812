"""queue and rescore indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:20:00

The daily rescore aggregates ``amount_due`` of open invoices per debtor: with the amount
in ``ix_invoices_debtor_status`` the aggregate reads the index alone. The contact-window
filter needs the distinct jurisdictions in use: ``ix_debtors_jurisdiction`` answers that
from the index instead of a scan of the debtors table.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("ix_invoices_debtor_status")
        batch_op.create_index(
            "ix_invoices_debtor_status",
            ["debtor_id", "status", "due_date", "amount_due"],
            unique=False,
        )
    with op.batch_alter_table("debtors", schema=None) as batch_op:
        batch_op.create_index(
            "ix_debtors_jurisdiction", ["country", "region", "time_zone"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("debtors", schema=None) as batch_op:
        batch_op.drop_index("ix_debtors_jurisdiction")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("ix_invoices_debtor_status")
        batch_op.create_index(
            "ix_invoices_debtor_status", ["debtor_id", "status", "due_date"], unique=False
        )
