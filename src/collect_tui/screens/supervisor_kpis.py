"""KPIs with charts: aging buckets, collected per day, DSO and CEI by month, contact and
promise rates per agent, contacts per hour (formulas in the README's "KPIs")."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane
from textual_plotext import PlotextPlot

from collect_tui import clock
from collect_tui.domain.money import format_money
from collect_tui.screens.help import HelpScreen
from collect_tui.services.agents import AgentInfo
from collect_tui.services.database import Database
from collect_tui.services.supervisor import AgentKpi, KpiReport, NotSupervisor, kpis

TABS: tuple[tuple[str, str], ...] = (
    ("aging", "Aging"),
    ("collected", "Collected"),
    ("dso", "DSO/CEI"),
    ("agents", "Agents"),
    ("hours", "Hours"),
)


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"


def _thousands(value: object) -> float:
    return round(float(value) / 1000, 1)  # type: ignore[arg-type]


def rate_bar(rate: float | None, width: int = 10) -> Text:
    """A rate 0..1 as a bar of block characters and the percentage."""
    if rate is None:
        return Text("-".rjust(width + 5))
    eighths = round(max(0.0, min(rate, 1.0)) * width * 8)
    full, part = divmod(eighths, 8)
    bar = "\u2588" * full + (" \u258f\u258e\u258d\u258c\u258b\u258a\u2589"[part] if part else "")
    return Text.assemble((bar.ljust(width), "green"), f"{rate * 100:4.0f}%")


class KpiScreen(Screen[None]):
    """The KPI charts, one tab each; number keys or left/right switch tabs."""

    DEFAULT_CSS = """
    #kpi-title {
        height: 1; background: $primary; color: $text; text-style: bold; padding: 0 1;
    }
    #kpi-tabs { height: 1fr; }
    #kpi-tabs TabPane { padding: 0; }
    .kpi-note { height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
    .kpi-pair PlotextPlot { width: 1fr; }
    #kpi-agents-table { height: 1fr; }
    """

    BINDINGS = [
        Binding("1", "tab('aging')", "Aging", show=False),
        Binding("2", "tab('collected')", "Collected", show=False),
        Binding("3", "tab('dso')", "DSO/CEI", show=False),
        Binding("4", "tab('agents')", "Agents", show=False),
        Binding("5", "tab('hours')", "Hours", show=False),
        Binding("left", "step(-1)", "Prev tab", key_display="<-", id="kpis.prev"),
        Binding("right", "step(1)", "Next tab", key_display="->", id="kpis.next"),
        Binding("r", "reload", "Refresh", id="kpis.refresh"),
        Binding("question_mark", "help", "Help", key_display="?", id="kpis.help"),
        Binding("escape", "back", "Back", id="kpis.back"),
    ]

    def __init__(self, db: Database, caller: AgentInfo) -> None:
        super().__init__()
        self.db = db
        self.caller = caller
        self.report: KpiReport | None = None

    def compose(self) -> ComposeResult:
        yield Static("KPIs  loading...", id="kpi-title")
        with TabbedContent(id="kpi-tabs"):
            with TabPane("1 Aging", id="aging"):
                yield PlotextPlot(id="kpi-aging")
                yield Static("", classes="kpi-note", id="kpi-aging-note")
            with TabPane("2 Collected", id="collected"):
                yield PlotextPlot(id="kpi-collected")
                yield Static("", classes="kpi-note", id="kpi-collected-note")
            with TabPane("3 DSO/CEI", id="dso"):
                with Horizontal(classes="kpi-pair"):
                    yield PlotextPlot(id="kpi-dso")
                    yield PlotextPlot(id="kpi-cei")
                yield Static("", classes="kpi-note", id="kpi-dso-note")
            with TabPane("4 Agents", id="agents"):
                yield DataTable(id="kpi-agents-table", cursor_type="row", zebra_stripes=True)
                yield Static("", classes="kpi-note", id="kpi-agents-note")
            with TabPane("5 Hours", id="hours"):
                yield PlotextPlot(id="kpi-hours")
                yield Static("", classes="kpi-note", id="kpi-hours-note")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#kpi-agents-table", DataTable)
        table.add_column("Agent", width=10, key="agent")
        table.add_column("RPC rate", width=15, key="rpc")
        table.add_column("Promise rate", width=15, key="ptp")
        table.add_column("Kept rate", width=15, key="kept")
        table.add_column("/hour", width=5, key="hour")
        self.action_reload()

    def action_reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="kpi-load")
    def _load(self) -> None:
        try:
            report = kpis(self.db, self.caller, today=clock.now().date())
        except NotSupervisor as exc:
            self.app.call_from_thread(self._refused, str(exc))
            return
        except Exception as exc:
            self.app.call_from_thread(self._refused, f"Could not compute the KPIs: {exc}")
            return
        self.app.call_from_thread(self._show, report)

    def _refused(self, message: str) -> None:
        self.query_one("#kpi-title", Static).update(f"KPIs  {message}")
        self.notify(message, title="KPIs", severity="error", timeout=10)

    def _show(self, report: KpiReport) -> None:
        self.report = report
        cur = report.base_currency
        self.query_one("#kpi-title", Static).update(
            f"KPIs as of {report.as_of.isoformat()}  open {cur} "
            f"{format_money(report.open_balance_base)}  (money in {cur})"
        )
        self._aging(report)
        self._collected(report)
        self._dso(report)
        self._agents(report)
        self._hours(report)

    def _plot(self, widget_id: str) -> PlotextPlot:
        plot = self.query_one(widget_id, PlotextPlot)
        plot.plt.clear_data()
        plot.plt.clear_figure()
        return plot

    def _aging(self, report: KpiReport) -> None:
        plot = self._plot("#kpi-aging")
        plt = plot.plt
        plt.bar(
            [a.bucket for a in report.aging], [_thousands(a.balance_base) for a in report.aging]
        )
        plt.title(f"Open balance by aging bucket ({report.base_currency} thousands)")
        plot.refresh()
        counts = "  ".join(f"{a.bucket} {a.invoices:,}" for a in report.aging)
        self.query_one("#kpi-aging-note", Static).update(f"Open invoices: {counts}")

    def _collected(self, report: KpiReport) -> None:
        plot = self._plot("#kpi-collected")
        plt = plot.plt
        days = report.collected_by_day
        xs = list(range(1, len(days) + 1))
        plt.bar(xs, [_thousands(d.amount_base) for d in days])
        ticks = xs[::7]
        plt.xticks(ticks, [days[x - 1].day.strftime("%m-%d") for x in ticks])
        plt.title(f"Collected per day, last {report.window_days} days (thousands)")
        plot.refresh()
        per_day = (
            "-" if report.collected_per_day is None else format_money(report.collected_per_day)
        )
        self.query_one("#kpi-collected-note", Static).update(
            f"Collected {format_money(report.collected_total)} in {report.window_days} days; "
            f"{per_day} per day ({report.base_currency})"
        )

    def _dso(self, report: KpiReport) -> None:
        months = [m.month[2:] for m in report.months]
        dso_plot = self._plot("#kpi-dso")
        dso_plot.plt.bar(months, [float(m.dso or 0) for m in report.months])
        dso_plot.plt.title("DSO (days)")
        dso_plot.refresh()
        cei_plot = self._plot("#kpi-cei")
        cei_plot.plt.bar(months, [float(m.cei or 0) for m in report.months])
        cei_plot.plt.title("CEI (%)")
        cei_plot.refresh()
        last = report.months[-1]
        dso = "-" if last.dso is None else f"{last.dso}"
        cei = "-" if last.cei is None else f"{last.cei}%"
        self.query_one("#kpi-dso-note", Static).update(
            f"{last.month} so far: DSO {dso} days, CEI {cei}. Credit sales "
            f"{format_money(last.credit_sales)}, "
            f"receivables {format_money(last.ending_receivables)}"
        )

    def _agents(self, report: KpiReport) -> None:
        table = self.query_one("#kpi-agents-table", DataTable)
        table.clear()

        def add(row: AgentKpi, style: str = "") -> None:
            per_hour = "-" if row.contacts_per_hour is None else f"{row.contacts_per_hour:.1f}"
            table.add_row(
                Text(row.name[:10], style=style),
                rate_bar(row.right_party_contact_rate),
                rate_bar(row.promise_rate),
                rate_bar(row.kept_rate),
                Text(per_hour, justify="right", style=style),
            )

        for row in report.agents:
            add(row)
        add(report.team, "bold")
        team = report.team
        self.query_one("#kpi-agents-note", Static).update(
            f"{report.window_days} days: {team.call_attempts:,} call attempts, "
            f"{team.right_party_contacts:,} right-party contacts, {team.promises:,} promises; "
            "contacts per hour are today's."
        )

    def _hours(self, report: KpiReport) -> None:
        plot = self._plot("#kpi-hours")
        plt = plot.plt
        hours = report.contacts_by_hour
        plt.bar([h.hour for h in hours], [h.contacts for h in hours])
        plt.xticks(list(range(0, 24, 3)), [f"{h:02d}h" for h in range(0, 24, 3)])
        plt.title("Contacts today by hour (UTC)")
        plot.refresh()
        total = sum(h.contacts for h in hours)
        rpc = sum(h.right_party_contacts for h in hours)
        team = report.team
        per_hour = "-" if team.contacts_per_hour is None else f"{team.contacts_per_hour:.1f}"
        self.query_one("#kpi-hours-note", Static).update(
            f"Today {total:,} contacts, {rpc:,} with the right party; team {per_hour} per "
            "active hour."
        )

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_step(self, step: int) -> None:
        ids = [tab for tab, _ in TABS]
        tabs = self.query_one(TabbedContent)
        index = ids.index(tabs.active) if tabs.active in ids else 0
        tabs.active = ids[(index + step) % len(ids)]

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_help(self) -> None:
        keys = [
            ("1-5", "Aging, Collected, DSO/CEI, Agents, Hours"),
            ("left/right", "previous / next chart"),
            ("r", "recompute"),
            ("esc", "back to the console"),
        ]
        notes = (
            "Money is in the base currency at approximate rates. DSO = receivables at "
            "month end / credit sales x days; CEI = collected / collectable x 100; RPC rate = "
            "right-party contacts / call attempts; promise rate = promises / right-party "
            "contacts; kept rate = kept / (kept + partially kept + broken). See the README."
        )
        self.app.push_screen(HelpScreen("KPIs", keys, notes))
