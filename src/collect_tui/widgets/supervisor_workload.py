"""The workload table of the supervisor console: one row per agent, the pool, the totals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable

from collect_tui.domain.money import format_money
from collect_tui.services.supervisor import BASE_CURRENCY, AgentWorkload

COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("name", "Agent", 11),
    ("accounts", "Accts", 6),
    ("balance", f"Bal {BASE_CURRENCY}", 13),
    ("due", "PTP", 4),
    ("broken", "Brkn", 4),
    ("callbacks", "CB", 4),
    ("contacts", "Cont", 4),
    ("rpc", "RPC", 4),
    ("kept", "Kept", 4),
)
LEGEND = (
    "PTP promises due today  Brkn broken (30d)  CB callbacks due  Cont contacts today  "
    "RPC right-party today  Kept kept rate (30d)"
)


@dataclass(frozen=True)
class SortKey:
    """One way to order the agent rows (the pool and totals stay at the bottom)."""

    label: str
    key: Callable[[AgentWorkload], tuple[object, ...]]


def _kept(row: AgentWorkload) -> float:
    return -1.0 if row.kept_rate is None else row.kept_rate


SORT_KEYS: tuple[SortKey, ...] = (
    SortKey("name", lambda r: (r.name,)),
    SortKey("accounts", lambda r: (-r.accounts, r.name)),
    SortKey("balance", lambda r: (-r.balance_base, r.name)),
    SortKey("promises due", lambda r: (-r.promises_due_today, r.name)),
    SortKey("broken promises", lambda r: (-r.broken_promises, r.name)),
    SortKey("callbacks due", lambda r: (-r.callbacks_due, r.name)),
    SortKey("contacts today", lambda r: (-r.contacts_today, r.name)),
    SortKey("kept rate", lambda r: (-_kept(r), r.name)),
)


def sort_rows(rows: list[AgentWorkload], sort: SortKey) -> list[AgentWorkload]:
    """Agents ordered by ``sort``, then the pool, then the totals."""
    agents = sorted((r for r in rows if r.kind == "agent"), key=sort.key)
    return agents + [r for r in rows if r.kind == "pool"] + [r for r in rows if r.kind == "total"]


def format_workload(row: AgentWorkload) -> tuple[str, ...]:
    """The cells of one row."""
    name = row.name
    if row.kind == "agent" and not row.active:
        name += " (off)"
    elif row.kind == "agent" and row.over_capacity:
        name += " (!)"
    elif row.kind == "pool":
        name = "(pool)"
    elif row.kind == "total":
        name = "Total"
    kept = "-" if row.kept_rate is None else f"{row.kept_rate * 100:.0f}%"
    return (
        name,
        f"{row.accounts:,}",
        format_money(row.balance_base),
        str(row.promises_due_today),
        str(row.broken_promises),
        str(row.callbacks_due),
        str(row.contacts_today),
        str(row.right_party_today),
        kept,
    )


class WorkloadTable(DataTable[Text]):
    """Agents' workloads; the row key is the agent id ("pool", "total" for the others)."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for key, label, width in COLUMNS:
            self.add_column(label, width=width, key=key)

    def show(self, rows: list[AgentWorkload], keep: str | None = None) -> None:
        """Replace the rows, keeping the cursor on the row keyed ``keep`` if present."""
        self.clear()
        for row in rows:
            style = "bold" if row.kind == "total" else ("italic" if row.kind == "pool" else "")
            if row.kind == "agent" and (row.over_capacity or not row.active):
                style = "yellow"
            cells = [Text(cell, style=style, no_wrap=True) for cell in format_workload(row)]
            for cell in cells[1:]:
                cell.justify = "right"
            key = str(row.agent_id) if row.kind == "agent" else row.kind
            self.add_row(*cells, key=key)
        if keep is not None:
            keys = [str(r.agent_id) if r.kind == "agent" else r.kind for r in rows]
            if keep in keys:
                self.move_cursor(row=keys.index(keep), animate=False)
