"""The queue screen: the signed-in agent's accounts, best first, with search and filters."""

from __future__ import annotations

from dataclasses import replace

from textual import on, work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from collect_tui import clock
from collect_tui.domain.aging import BUCKETS
from collect_tui.domain.money import format_money
from collect_tui.screens.account import account_screen, read_account
from collect_tui.screens.help import HelpScreen
from collect_tui.screens.queue_filters import QueueFilterScreen
from collect_tui.services.agents import AgentInfo
from collect_tui.services.claims import claim_holder, claim_next, release_claims
from collect_tui.services.database import Database
from collect_tui.services.queue import (
    QueueFilter,
    QueueRow,
    QueueSummary,
    due_callbacks,
    queue_marker,
    queue_page,
    queue_summary,
)
from collect_tui.services.workspace import AccountView
from collect_tui.widgets.queue_table import QueueTable

PAGE_SIZE = 50
PREFETCH_MARGIN = 20  # rows before the end at which the next page is fetched
POLL_SECONDS = 10.0  # how often the queue checks whether its data changed underneath
SEARCH_DEBOUNCE = 0.15
CACHED_FILTERS = 16  # first windows kept to show a filter again at once (then revalidated)


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


class QueueCommands(Provider):
    """The queue's commands in the command palette (ctrl+p)."""

    def _commands(self) -> list[tuple[str, str, object]]:
        screen = self.screen
        assert isinstance(screen, QueueScreen)
        commands: list[tuple[str, str, object]] = [
            ("Next best account", "Take the next contactable account (n)", screen.action_next),
            ("Refresh queue", "Reload from the database (r)", screen.action_refresh_queue),
            ("Search", "Search by name, invoice number, phone or email (/)", screen.action_search),
            ("Filters", "Open the filter dialog (f)", screen.action_filters),
            ("Clear filters", "Show the whole queue", screen.action_clear_filters),
            (
                "Filter: contactable now",
                "Only accounts that may be called now",
                lambda: screen.apply_filter(replace(screen.queue_filter, contactable_now=True)),
            ),
            (
                "Filter: promise due or broken",
                "Promises due today, broken, or installments missed",
                lambda: screen.apply_filter(replace(screen.queue_filter, promise_due=True)),
            ),
            (
                "Filter: callbacks due today",
                "Accounts with a callback today",
                lambda: screen.apply_filter(replace(screen.queue_filter, callbacks=True)),
            ),
        ]
        for bucket in BUCKETS:
            commands.append(
                (
                    f"Filter: bucket {bucket}",
                    f"Oldest invoice in the {bucket} aging bucket",
                    lambda b=bucket: screen.apply_filter(replace(screen.queue_filter, bucket=b)),
                )
            )
        commands.append(("Queue help", "Keys of the queue (?)", screen.action_help))
        return commands

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)  # type: ignore[arg-type]


class QueueScreen(Screen[None]):
    """A window onto the agent's queue, fed page by page from thread workers."""

    COMMANDS = {QueueCommands}
    BINDINGS = [
        Binding("n", "next", "Next", id="queue.next"),
        # A priority binding acts as the key arrives, before the keys typed after it are
        # routed: otherwise `/smith` typed quickly sends "smith" to the table.
        Binding("slash", "search", "Search", key_display="/", priority=True, id="queue.search"),
        Binding("f", "filters", "Filters", id="queue.filters"),
        Binding("r", "refresh_queue", "Refresh", id="queue.refresh"),
        Binding("question_mark", "help", "Help", key_display="?", id="queue.help"),
        Binding("escape", "clear_search", "Clear search", show=False, id="queue.clear_search"),
        Binding("q", "app.quit", "Quit", id="app.quit"),
    ]

    def __init__(self, db: Database, agent: AgentInfo) -> None:
        super().__init__()
        self.db = db
        self.agent = agent
        self.queue_filter = QueueFilter()
        self.rows: list[QueueRow] = []
        self._exhausted = False
        self._loading = False
        self._generation = 0  # bumps on every reload; stale pages are dropped
        self.shown_generation = 0  # the reload whose rows are on screen
        self._marker: tuple[object, ...] | None = None
        self._search_timer: Timer | None = None
        self._next_account: AccountView | None = None  # read by `n` with its claim
        # The first window last shown for each filter (searches excepted): a filter shown
        # again appears at once from here while the worker fetches it afresh.
        self._windows: dict[QueueFilter, tuple[list[QueueRow], bool]] = {}

    def compose(self) -> ComposeResult:
        yield Static(
            f"collect-tui  {self.agent.display_name} ({self.agent.role})  queue", id="queue-title"
        )
        yield Static("Loading queue...", id="queue-summary")
        yield Static("", id="queue-filters")
        yield Input(placeholder="Search name, invoice, phone, email", id="queue-search")
        yield QueueTable(id="queue-table", opens_accounts=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#queue-search", Input).display = False
        self.query_one(QueueTable).focus()
        self.reload()
        self.set_interval(POLL_SECONDS, self._poll_changes)

    # Loading -------------------------------------------------------------------------

    def reload(
        self, *, keep_debtor: int | None = None, minimum: int = PAGE_SIZE, counts: bool = True
    ) -> None:
        """Reload the queue from the top, keeping the cursor on ``keep_debtor`` if given.

        ``counts=False`` (a filter change) keeps the summary line: it does not depend on
        the filter, and skipping its aggregates keeps filtering fast; a filter shown before
        appears at once from the last window shown for it, then is revalidated.
        """
        self._generation += 1
        cached = None if counts else self._windows.get(self.queue_filter)
        if cached is not None:
            rows, more = cached
            self._show_window(self._generation, self.queue_filter, list(rows), more, None,
                              self._marker, keep_debtor)  # fmt: skip
            self._loading = True  # until the fresh window arrives
        self._load_window(self._generation, self.queue_filter, keep_debtor, minimum, counts)

    @work(thread=True, exclusive=True, group="queue-window")
    def _load_window(
        self,
        generation: int,
        queue_filter: QueueFilter,
        keep_debtor: int | None,
        minimum: int,
        counts: bool,
    ) -> None:
        now = clock.now()
        limit = max(PAGE_SIZE, minimum)

        def window() -> tuple[list[QueueRow], bool]:
            """Due callbacks pinned on top, then the page; and whether more follow."""
            pinned = [] if queue_filter.active else due_callbacks(self.db, self.agent, now=now)
            rows = queue_page(self.db, self.agent, queue_filter=queue_filter, limit=limit, now=now)
            pinned_ids = {row.debtor_id for row in pinned}
            return pinned + [r for r in rows if r.debtor_id not in pinned_ids], len(rows) >= limit

        try:
            rows, more = window()
            summary = None
            if counts:
                # The rows are shown first. The summary line and the change marker come
                # from one scan of every account (the slow part on a cold start); then the
                # rows are read again, so a change made between the two reads is shown now
                # rather than missed by the marker.
                self.app.call_from_thread(
                    self._show_window, generation, queue_filter, rows, more, None,
                    self._marker, keep_debtor, loading=True,
                )  # fmt: skip
                summary = queue_summary(self.db, self.agent, now=now)
                rows, more = window()
                keep_debtor = None  # the agent may have moved meanwhile: keep their place
        except Exception as exc:  # shown on screen, never a crash
            self.app.call_from_thread(self._show_error, str(exc))
            return
        marker = summary.marker if summary is not None else self._marker
        self.app.call_from_thread(
            self._show_window, generation, queue_filter, rows, more, summary, marker, keep_debtor
        )

    def _live(self) -> bool:
        """False once the app is shutting down or this screen has left it: a worker's late
        result is then dropped (its widgets may already be gone)."""
        return self.app.is_running and self.is_attached and not (self._closing or self._pruning)

    def _show_error(self, message: str) -> None:
        self._loading = False
        if not self._live():
            return
        self.notify(message, title="Queue", severity="error", timeout=10)

    def _show_window(
        self,
        generation: int,
        queue_filter: QueueFilter,
        rows: list[QueueRow],
        more: bool,
        summary: QueueSummary | None,
        marker: tuple[object, ...] | None,
        keep_debtor: int | None,
        *,
        loading: bool = False,
    ) -> None:
        """Show a window of rows (and the summary line if given); ``loading``: more of
        this reload is coming."""
        if generation != self._generation or not self._live():
            return
        if not queue_filter.search:
            self._windows.pop(queue_filter, None)
            self._windows[queue_filter] = (rows[:PAGE_SIZE], more or len(rows) > PAGE_SIZE)
            while len(self._windows) > CACHED_FILTERS:
                del self._windows[next(iter(self._windows))]
        table = self.query_one(QueueTable)
        old_row = table.cursor_row
        if generation != self.shown_generation or rows != self.rows:  # else: cache confirmed
            if generation == self.shown_generation and keep_debtor is None:
                selected = self.selected_row()  # the cache was stale: keep the agent's place
                keep_debtor = selected.debtor_id if selected else None
            table.clear()
            self.rows = rows
            table.append_rows(rows)
        self._exhausted = not more
        self._loading = loading
        self._marker = marker
        if summary is not None:
            self._show_summary(summary)
        self._show_filters()
        self.shown_generation = generation
        if keep_debtor is not None:
            index = next((i for i, r in enumerate(rows) if r.debtor_id == keep_debtor), None)
            target = index if index is not None else min(old_row, max(0, len(rows) - 1))
            table.move_cursor(row=target, animate=False)

    def _load_more(self) -> None:
        if self._exhausted or self._loading or not self.rows:
            return
        self._loading = True
        last = next((r for r in reversed(self.rows) if not r.pinned), None)
        self._fetch_page(self._generation, self.queue_filter, last.key if last else None)

    @work(thread=True, group="queue-page")
    def _fetch_page(self, generation: int, queue_filter: QueueFilter, after: object) -> None:
        try:
            rows = queue_page(
                self.db, self.agent, queue_filter=queue_filter, after=after,  # type: ignore[arg-type]
                limit=PAGE_SIZE, now=clock.now(),
            )  # fmt: skip
        except Exception as exc:
            self.app.call_from_thread(self._show_error, str(exc))
            return
        self.app.call_from_thread(self._append_page, generation, rows)

    def _append_page(self, generation: int, rows: list[QueueRow]) -> None:
        if generation != self._generation or not self._live():
            return
        shown = {row.debtor_id for row in self.rows}
        fresh = [row for row in rows if row.debtor_id not in shown]
        self.rows.extend(fresh)
        self.query_one(QueueTable).append_rows(fresh)
        self._exhausted = len(rows) < PAGE_SIZE
        self._loading = False

    def _show_summary(self, summary: QueueSummary) -> None:
        if not summary.accounts:
            text = "No accounts assigned to you yet. Ask a supervisor to assign some."
        else:
            parts = [f"{summary.accounts:,} accounts"]
            parts.append(_count(summary.promises_due_today, "promise") + " due today")
            parts.append(_count(summary.callbacks_due, "callback") + " due")
            money = "  ".join(format_money(v, c) for c, v in sorted(summary.balance.items()))
            text = "  ".join(parts) + ("  " + money if money else "")
        self.query_one("#queue-summary", Static).update(text)

    def _show_filters(self) -> None:
        words = self.queue_filter.active
        line = self.query_one("#queue-filters", Static)
        line.display = bool(words)
        count = len(self.rows) if self._exhausted else f"{len(self.rows)}+"
        line.update(f"Showing {count} matching: " + ", ".join(words) + "  (f filters, esc clears)")

    def _poll_changes(self) -> None:
        if not self._loading:
            self._check_marker(self._generation)

    @work(thread=True, exclusive=True, group="queue-poll")
    def _check_marker(self, generation: int) -> None:
        try:
            marker = queue_marker(self.db, self.agent)
        except Exception:
            return  # a passing database hiccup: the next poll tries again
        if marker != self._marker and generation == self._generation:
            self.app.call_from_thread(self.action_refresh_queue)

    # Actions ---------------------------------------------------------------------------

    def selected_row(self) -> QueueRow | None:
        """The queue row under the cursor."""
        table = self.query_one(QueueTable)
        if not self.rows or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    def action_refresh_queue(self) -> None:
        """Reload, keeping the cursor on the same account."""
        self._windows.clear()  # the data changed (or may have): no window is current
        row = self.selected_row()
        self.reload(keep_debtor=row.debtor_id if row else None, minimum=len(self.rows))

    def apply_filter(self, queue_filter: QueueFilter) -> None:
        """Show the queue narrowed to ``queue_filter``."""
        self.queue_filter = queue_filter
        self.reload(counts=False)

    def action_clear_filters(self) -> None:
        self.apply_filter(QueueFilter())

    def action_filters(self) -> None:
        def chosen(result: QueueFilter | None) -> None:
            if result is not None:
                self.apply_filter(result)

        self.app.push_screen(QueueFilterScreen(self.queue_filter), chosen)

    def action_search(self) -> None:
        search = self.query_one("#queue-search", Input)
        if search.has_focus:
            raise SkipAction()  # a "/" typed in the search is part of it
        search.display = True
        self.set_focus(search)  # at once: Widget.focus would wait for the queued keys

    def action_clear_search(self) -> None:
        search = self.query_one("#queue-search", Input)
        if search.value or self.queue_filter.active:
            search.value = ""
            self.apply_filter(QueueFilter())
        search.display = False
        self.query_one(QueueTable).focus()

    @on(Input.Changed, "#queue-search")
    def _search_changed(self, event: Input.Changed) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        text = event.value
        self._search_timer = self.set_timer(
            SEARCH_DEBOUNCE, lambda: self.apply_filter(replace(self.queue_filter, search=text))
        )

    @on(Input.Submitted, "#queue-search")
    def _search_submitted(self) -> None:
        self.query_one(QueueTable).focus()

    def action_next(self) -> None:
        self.app.hold_keys()  # type: ignore[attr-defined]  # keys typed ahead: for the account
        self._find_next()

    @work(thread=True, exclusive=True, group="queue-next")
    def _find_next(self) -> None:
        try:
            claimed = claim_next(self.db, self.agent, session_id=self.session_id, now=clock.now())
        except Exception as exc:
            self.app.call_from_thread(self.app.release_keys)  # type: ignore[attr-defined]
            self.app.call_from_thread(self._show_error, str(exc))
            return
        if claimed is not None:
            # Read while the UI thread is idle: the account screen's first frame shows it.
            self._next_account = read_account(self.db, self.agent, claimed.row.debtor_id)
        self.app.call_from_thread(self._go_to_next, claimed.row if claimed else None)
        if claimed is not None and claimed.from_pool:
            self.app.call_from_thread(
                self.notify, "Taken from the pool: it is now in your queue.", title="Next"
            )

    def _go_to_next(self, row: QueueRow | None) -> None:
        if row is None:
            self.app.release_keys()  # type: ignore[attr-defined]
            self.notify(
                "No account can be contacted right now (contact hours, call limits or flags).",
                title="Next",
                severity="warning",
            )
            return
        index = next((i for i, r in enumerate(self.rows) if r.debtor_id == row.debtor_id), None)
        if index is None:
            # Not in the filtered window: show the whole queue, then land on it.
            self.queue_filter = QueueFilter()
            self.query_one("#queue-search", Input).value = ""
            self.reload(keep_debtor=row.debtor_id)
        else:
            self.query_one(QueueTable).move_cursor(row=index, animate=False)
        account, self._next_account = self._next_account, None
        if account is not None and account.debtor.id != row.debtor_id:
            account = None
        self.post_message(self.AccountChosen(row.debtor_id, account, claimed=True))
        why = row.top_reason or "top of the queue"
        self.notify(f"{row.name}: {why}", title="Next account", timeout=4)

    def action_help(self) -> None:
        keys = [
            ("n", "next best account you may contact now"),
            ("enter", "open the selected account"),
            ("up/down pgup/pgdn", "move; more rows load as you scroll"),
            ("/", "search by name, invoice number, phone or email"),
            ("esc", "clear search and filters"),
            ("f", "filters: aging bucket, promise due, callbacks, contactable now"),
            ("r", "refresh (the queue also refreshes when data changes)"),
            ("ctrl+p", "command palette with every queue command"),
            ("q", "quit"),
        ]
        notes = (
            "Rows are ordered by priority; due callbacks are pinned on top. "
            "Dim rows cannot be contacted now; the last column says why."
        )
        self.app.push_screen(HelpScreen("Queue", keys, notes))

    # Messages --------------------------------------------------------------------------

    class AccountChosen(Message):
        """The agent picked an account to work (by ``n`` or ``enter``)."""

        def __init__(
            self, debtor_id: int, account: AccountView | None = None, *, claimed: bool = False
        ) -> None:
            super().__init__()
            self.debtor_id = debtor_id
            self.account = account  # already read (by `n`), else None
            self.claimed = claimed  # `n` claimed it for this session just now

    def on_queue_screen_account_chosen(self, event: QueueScreen.AccountChosen) -> None:
        """Open the chosen account; back on the queue, refresh it keeping the cursor."""
        # The keys held since `n` or enter go to the account screen, which holds them
        # again until it has read an account it was not given.
        self.app.release_keys()  # type: ignore[attr-defined]
        if not event.claimed:  # an account `n` just claimed is open in no other session
            self._warn_if_claimed(event.debtor_id)
        self.app.push_screen(
            account_screen(self.app, self.db, self.agent, event.debtor_id, event.account),
            lambda _result: self._back_from_account(),
        )

    @work(thread=True, group="queue-claims")
    def _warn_if_claimed(self, debtor_id: int) -> None:
        """Say so when another session is working the account just opened."""
        try:
            holder = claim_holder(self.db, debtor_id, now=clock.now())
        except Exception:  # only a courtesy: opening the account goes on regardless
            return
        if holder is None or holder.session_id == self.session_id:
            return
        who = "You have" if holder.agent_id == self.agent.id else "Another agent has"
        self.app.call_from_thread(
            self.notify,
            f"{who} this account open in another session (until "
            f"{holder.expires_at.astimezone().strftime('%H:%M')} unless renewed). Saves are "
            "checked: a change made there is never overwritten.",
            title="Claimed",
            severity="warning",
            timeout=6,
        )

    def _back_from_account(self) -> None:
        self._release_claims()
        self.action_refresh_queue()

    @work(thread=True, group="queue-claims")
    def _release_claims(self) -> None:
        """Leaving the account hands it back: other sessions' `n` may take it again."""
        try:
            release_claims(self.db, session_id=self.session_id)
        except Exception as exc:  # the claim lapses by itself; say so, do not crash
            self.app.call_from_thread(self._show_error, f"releasing the account: {exc}")

    @property
    def session_id(self) -> str:
        """This app's claim session (one per running app: SSH login, browser tab)."""
        return self.app.session_id  # type: ignore[attr-defined, no-any-return]

    def on_data_table_row_highlighted(self, event: QueueTable.RowHighlighted) -> None:
        table = self.query_one(QueueTable)
        if event.cursor_row >= table.row_count - PREFETCH_MARGIN:
            self._load_more()

    def on_data_table_row_selected(self, event: QueueTable.RowSelected) -> None:
        row = self.selected_row()
        if row is not None:
            self.post_message(self.AccountChosen(row.debtor_id))  # it releases the keys
        else:
            self.app.release_keys()  # type: ignore[attr-defined]  # held by the table
