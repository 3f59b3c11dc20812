"""The portfolio at a glance, for supervisors' scripts (``collect-tui report``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select

from collect_tui.domain.aging import BUCKETS, bucket_due_date_floors
from collect_tui.domain.money import format_money, to_money
from collect_tui.services.database import Database
from collect_tui.services.supervisor import KpiReport, kpi_report, kpis_json
from collect_tui.storage.models import Agent, Contact, Debtor, Invoice, Promise


@dataclass
class AgentLine:
    """One agent's share of the portfolio."""

    name: str
    role: str
    accounts: int
    balance: dict[str, Decimal]


@dataclass
class PortfolioReport:
    """Counts and sums over the whole portfolio; money by currency."""

    as_of: date
    debtors: int
    open_invoices: int
    open_balance: dict[str, Decimal]
    aging: dict[str, dict[str, Any]]
    agents: list[AgentLine]
    unassigned: AgentLine
    promises: dict[str, dict[str, Any]]
    contacts_today: int
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    kpis: KpiReport | None = None

    def _plain(self) -> dict[str, Any]:
        data = asdict(self)
        data["kpis"] = kpis_json(self.kpis) if self.kpis is not None else None
        return data

    def to_json(self) -> str:
        """JSON with money as decimal strings (never floats) and ISO dates."""

        def default(value: Any) -> Any:
            if isinstance(value, Decimal):
                return str(value)
            if isinstance(value, date | datetime):
                return value.isoformat()
            raise TypeError(type(value).__name__)

        return json.dumps(self._plain(), default=default, indent=2)

    def to_text(self) -> str:
        """A plain-text page for a terminal or an email."""

        def money(by_currency: dict[str, Decimal]) -> str:
            if not by_currency:
                return "-"
            return ", ".join(format_money(v, c) for c, v in sorted(by_currency.items()))

        lines = [
            f"Portfolio as of {self.as_of.isoformat()}",
            "",
            f"Debtors          {self.debtors:>12,}",
            f"Open invoices    {self.open_invoices:>12,}",
            f"Open balance     {money(self.open_balance)}",
            f"Contacts today   {self.contacts_today:>12,}",
            "",
            "Aging (open invoices)",
        ]
        for bucket in BUCKETS:
            row = self.aging[bucket]
            lines.append(f"  {bucket:<8} {row['invoices']:>10,}  {money(row['balance'])}")
        lines += ["", "Promises to pay"]
        for status, row in self.promises.items():
            lines.append(f"  {status:<15} {row['count']:>8,}  {money(row['amount'])}")
        lines += ["", "Agents"]
        width = max([len(a.name) for a in self.agents] + [10])
        for line in [*self.agents, self.unassigned]:
            lines.append(f"  {line.name:<{width}} {line.accounts:>8,}  {money(line.balance)}")
        if self.kpis is not None:
            lines += ["", kpi_text(self.kpis)]
        return "\n".join(lines)


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _num(value: float | Decimal | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def kpi_text(report: KpiReport, *, aging: bool = True) -> str:
    """The KPIs as plain text within 80 columns (formulas in the README's "KPIs")."""
    cur = report.base_currency
    lines = [
        f"KPIs as of {report.as_of.isoformat()} (money in {cur} at approximate rates; "
        f"{report.window_days}-day window)",
    ]
    if aging:
        lines += ["", f"Aging (open invoices, {cur})"]
        for line in report.aging:
            lines.append(
                f"  {line.bucket:<8} {line.invoices:>10,}  {format_money(line.balance_base)}"
            )
        lines.append(f"  {'total':<8} {'':>10}  {format_money(report.open_balance_base)}")
    per_day = report.collected_per_day
    lines += [
        "",
        f"Collected in {report.window_days} days  {cur} {format_money(report.collected_total)}"
        f"  ({cur} {_num(per_day, 2)} per day)",
        "",
        "DSO and CEI by month",
        f"  {'month':<8} {'DSO days':>9} {'CEI %':>7} {'credit sales':>16} {'receivables':>16}",
    ]
    for month in report.months:
        lines.append(
            f"  {month.month:<8} {_num(month.dso):>9} {_num(month.cei):>7} "
            f"{format_money(month.credit_sales):>16} {format_money(month.ending_receivables):>16}"
        )
    lines += [
        "",
        f"Per agent ({report.window_days} days; contacts/hour today)",
        f"  {'agent':<14} {'calls':>7} {'RPC':>6} {'RPC %':>6} {'PTPs':>5} {'PTP %':>6} "
        f"{'kept %':>6} {'today':>5} {'/hour':>5}",
    ]
    for row in [*report.agents, report.team]:
        lines.append(
            f"  {row.name[:14]:<14} {row.call_attempts:>7,} {row.right_party_contacts:>6,} "
            f"{_pct(row.right_party_contact_rate):>6} {row.promises:>5,} "
            f"{_pct(row.promise_rate):>6} {_pct(row.kept_rate):>6} {row.contacts_today:>5,} "
            f"{_num(row.contacts_per_hour):>5}"
        )
    busy = [h for h in report.contacts_by_hour if h.contacts]
    lines += ["", "Contacts today by hour"]
    if busy:
        cells = [f"{h.hour:02d}h {h.contacts:,}" for h in busy]
        for start in range(0, len(cells), 6):
            lines.append("  " + "  ".join(f"{c:<10}" for c in cells[start : start + 6]).rstrip())
    else:
        lines.append("  none yet")
    return "\n".join(lines)


def _by_currency(rows: list[Any]) -> dict[str, Decimal]:
    return {currency: to_money(Decimal(str(total or 0))) for currency, total in rows}


def portfolio_report(
    db: Database,
    *,
    today: date | None = None,
    zone: tzinfo | None = None,
    with_kpis: bool = True,
) -> PortfolioReport:
    """Aggregate the portfolio with set-based queries (no row is loaded into Python).

    ``zone`` decides what "today" means for contacts (default: this machine's zone).
    ``with_kpis`` adds the supervisor's KPIs (the console's numbers).
    """
    zone = zone or datetime.now().astimezone().tzinfo or UTC
    today = today or datetime.now(zone).date()
    day_start = datetime.combine(today, time(0), zone).astimezone(UTC)
    day_end = day_start + timedelta(days=1)
    open_invoice = Invoice.status == "open"

    floors = bucket_due_date_floors(today)
    bucket_expr = case(
        *[(Invoice.due_date >= floor, bucket) for bucket, floor in floors if floor is not None],
        else_=BUCKETS[-1],
    )
    with db.session() as session:
        debtors = session.scalar(select(func.count()).select_from(Debtor)) or 0
        open_invoices = session.scalar(select(func.count()).where(open_invoice)) or 0
        balance = _by_currency(
            session.execute(
                select(Invoice.currency, func.sum(Invoice.amount_due))
                .where(open_invoice)
                .group_by(Invoice.currency)
            ).all()
        )
        aging: dict[str, dict[str, Any]] = {b: {"invoices": 0, "balance": {}} for b in BUCKETS}
        bucket_col = bucket_expr.label("bucket")
        for bucket, currency, count, total in session.execute(
            select(bucket_col, Invoice.currency, func.count(), func.sum(Invoice.amount_due))
            .where(open_invoice)
            .group_by(bucket_col, Invoice.currency)
        ):
            aging[bucket]["invoices"] += count
            aging[bucket]["balance"][currency] = to_money(Decimal(str(total or 0)))

        per_agent: dict[int | None, AgentLine] = {}
        for agent in session.scalars(select(Agent).order_by(Agent.name)):
            per_agent[agent.id] = AgentLine(agent.name, agent.role, 0, {})
        unassigned = AgentLine("(unassigned)", "pool", 0, {})
        for agent_id, currency, count, total in session.execute(
            select(
                Debtor.assigned_agent_id,
                Debtor.currency,
                func.count(),
                func.sum(Debtor.open_balance),
            ).group_by(Debtor.assigned_agent_id, Debtor.currency)
        ):
            line = per_agent.get(agent_id, unassigned) if agent_id is not None else unassigned
            line.accounts += count
            if total:
                line.balance[currency] = to_money(Decimal(str(total)))

        promises: dict[str, dict[str, Any]] = {}
        for status, currency, count, total in session.execute(
            select(Promise.status, Promise.currency, func.count(), func.sum(Promise.amount))
            .group_by(Promise.status, Promise.currency)
            .order_by(Promise.status)
        ):
            row = promises.setdefault(status, {"count": 0, "amount": {}})
            row["count"] += count
            row["amount"][currency] = to_money(Decimal(str(total or 0)))

        contacts_today = (
            session.scalar(
                select(func.count()).where(
                    Contact.started_at >= day_start, Contact.started_at < day_end
                )
            )
            or 0
        )
    return PortfolioReport(
        as_of=today,
        debtors=debtors,
        open_invoices=open_invoices,
        open_balance=balance,
        aging=aging,
        agents=[line for line in per_agent.values() if line.role != "admin" or line.accounts],
        unassigned=unassigned,
        promises=promises,
        contacts_today=contacts_today,
        kpis=kpi_report(db, today=today, zone=zone) if with_kpis else None,
    )
