"""An agent's work queue: a keyset-paginated window onto the priority-ordered accounts.

The database sorts (``ix_debtors_queue``); a page is read by the position of the last
row seen, so every page costs the same whether the portfolio holds 1k or 200k accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import and_, func, or_, select

from collect_tui.domain.money import to_money
from collect_tui.services.agents import AgentInfo
from collect_tui.services.database import Database
from collect_tui.storage.models import Debtor


@dataclass(frozen=True)
class QueueKey:
    """Where a page ends: the sort key of its last row."""

    score: float
    debtor_id: int


@dataclass(frozen=True)
class QueueRow:
    """One account as the queue shows it."""

    debtor_id: int
    name: str
    time_zone: str
    currency: str
    balance: Decimal
    open_invoices: int
    oldest_due_date: date | None
    last_contact_at: datetime | None
    next_action: str | None
    next_action_at: datetime | None
    score: float
    reason: str | None

    @property
    def key(self) -> QueueKey:
        """The keyset position of this row."""
        return QueueKey(self.score, self.debtor_id)


@dataclass(frozen=True)
class QueueSummary:
    """The line above the queue: how much work there is."""

    accounts: int
    balance: dict[str, Decimal]


_COLUMNS = (
    Debtor.id,
    Debtor.name,
    Debtor.time_zone,
    Debtor.currency,
    Debtor.open_balance,
    Debtor.open_invoices,
    Debtor.oldest_due_date,
    Debtor.last_contact_at,
    Debtor.next_action,
    Debtor.next_action_at,
    Debtor.priority_score,
    Debtor.priority_reason,
)


def queue_page(
    db: Database, agent: AgentInfo, *, after: QueueKey | None = None, limit: int = 100
) -> list[QueueRow]:
    """The next ``limit`` accounts of ``agent``'s queue after ``after``, best first."""
    query = (
        select(*_COLUMNS)
        .where(Debtor.assigned_agent_id == agent.id)
        .order_by(Debtor.priority_score.desc(), Debtor.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(
            or_(
                Debtor.priority_score < after.score,
                and_(Debtor.priority_score == after.score, Debtor.id > after.debtor_id),
            )
        )
    with db.session() as session:
        return [
            QueueRow(
                debtor_id=row[0],
                name=row[1],
                time_zone=row[2],
                currency=row[3],
                balance=to_money(row[4]),
                open_invoices=row[5],
                oldest_due_date=row[6],
                last_contact_at=row[7],
                next_action=row[8],
                next_action_at=row[9],
                score=row[10],
                reason=row[11],
            )
            for row in session.execute(query)
        ]


def queue_summary(db: Database, agent: AgentInfo) -> QueueSummary:
    """How many accounts ``agent`` holds and their open balance by currency."""
    with db.session() as session:
        rows = session.execute(
            select(Debtor.currency, func.count(), func.sum(Debtor.open_balance))
            .where(Debtor.assigned_agent_id == agent.id)
            .group_by(Debtor.currency)
        ).all()
    return QueueSummary(
        accounts=sum(count for _, count, _ in rows),
        balance={currency: to_money(Decimal(str(total or 0))) for currency, _, total in rows},
    )
