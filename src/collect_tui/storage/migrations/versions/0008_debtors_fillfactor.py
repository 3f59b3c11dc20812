"""debtors fillfactor

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 17:00:00

PostgreSQL only: ``debtors`` pages are filled to half (fillfactor 50), so that the daily
rescore can write each debtor's new version on the page of the old one. Such an update
is HOT (no new index entries) when no indexed column changes: the pass drops the queue
index, the only one holding the score, and builds it again once at the end
(``collect_tui.storage.scoring``). Without the room, every rewritten row gets an entry in
each index on ``debtors``: about 40 us a row, most of an 8-10 s pass over 200k debtors.

The table is rewritten with the room (``CLUSTER`` in id order, about 3 s for 200k
debtors, under an exclusive lock like any upgrade); else the first daily pass would move
every row once, slower than before. The table then takes about twice the pages. SQLite
has no such setting: nothing to do there.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE debtors SET (fillfactor = 50)")
        op.execute("CLUSTER debtors USING pk_debtors")  # in a transaction, unlike VACUUM FULL
        op.execute("ALTER TABLE debtors SET WITHOUT CLUSTER")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE debtors RESET (fillfactor)")
