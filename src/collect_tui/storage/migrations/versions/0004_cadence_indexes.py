"""cadence indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:25:00

The cadence turns the open invoices whose due date falls in a step's window into tasks:
``ix_invoices_status_due`` reads that window as one index range instead of a probe per
debtor. ``ix_tasks_invoice`` finds the open steps of invoices that were paid, voided or
deleted.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index("ix_invoices_status_due", ["status", "due_date"], unique=False)
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_invoice", ["invoice_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_invoice")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("ix_invoices_status_due")
