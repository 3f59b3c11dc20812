"""The app through Pilot at 80x24: sign-in lands on the agent's queue, read from the database."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from conftest import burst, no_daily_work
from sqlalchemy import select
from textual.widgets import DataTable, Input, Static

from collect_tui import clock
from collect_tui.app import KEY_SETTLE_LIMIT_SECONDS, CollectApp
from collect_tui.screens.help import HelpScreen
from collect_tui.screens.queue import PAGE_SIZE, QueueScreen
from collect_tui.screens.queue_filters import QueueFilterScreen
from collect_tui.services.agents import get_agent
from collect_tui.services.database import Database, open_database
from collect_tui.services.queue import QueueFilter, due_callbacks, queue_page
from collect_tui.services.seed import seed_portfolio
from collect_tui.storage.models import Debtor, Invoice
from collect_tui.widgets.queue_table import QueueTable

AS_OF = date(2026, 11, 2)
FIXED_NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Database:
    path: Path = tmp_path_factory.mktemp("app") / "app.db"
    db = open_database(f"sqlite:///{path}")
    seed_portfolio(db.engine, debtors=1500, agents=3, seed=9, as_of=AS_OF)
    no_daily_work(db)  # the scores and tasks stay as of AS_OF
    return db


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: FIXED_NOW)


async def test_queue_shows_the_agents_accounts_in_priority_order(seeded: Database) -> None:
    agent = get_agent(seeded, "alice")
    pinned = due_callbacks(seeded, agent, now=FIXED_NOW)
    scored = queue_page(seeded, agent, limit=5, now=FIXED_NOW)
    expected = [row.name for row in pinned] + [row.name for row in scored]
    app = CollectApp(seeded, agent)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one(QueueTable)
        assert table.row_count >= PAGE_SIZE
        names = [str(table.get_row_at(i)[0])[1:] for i in range(5)]
        assert names == expected[:5]
        summary = str(app.screen.query_one("#queue-summary").render())
        assert "accounts" in summary


async def test_scrolling_fetches_further_pages(seeded: Database) -> None:
    agent = get_agent(seeded, "alice")
    app = CollectApp(seeded, agent)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        table = app.screen.query_one(QueueTable)
        first_count = table.row_count
        for _ in range(5):
            await pilot.press("pagedown")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert table.row_count > first_count
        keys = [table.coordinate_to_cell_key((i, 0)).row_key.value for i in range(table.row_count)]
        assert len(keys) == len(set(keys)), "a page was appended twice"


async def test_refresh_keeps_the_cursor_on_the_same_account(seeded: Database) -> None:
    agent = get_agent(seeded, "alice")
    app = CollectApp(seeded, agent)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        for _ in range(7):
            await pilot.press("down")
        table = app.screen.query_one(QueueTable)
        before = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        after = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        assert after == before
        assert table.cursor_row == 7


def test_queue_screen_snapshot(seeded: Database, snap_compare) -> None:
    agent = get_agent(seeded, "alice")

    async def settle(pilot) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(CollectApp(seeded, agent), terminal_size=(80, 24), run_before=settle)


async def _settle(app: CollectApp, pilot: object) -> None:
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()  # type: ignore[attr-defined]


def _shown_names(table: QueueTable) -> list[str]:
    return [str(table.get_row_at(i)[0])[1:] for i in range(table.row_count)]


async def test_filter_dialog_narrows_the_queue_and_escape_clears_it(seeded: Database) -> None:
    agent = get_agent(seeded, "alice")
    app = CollectApp(seeded, agent)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, QueueFilterScreen)
        await pilot.press("tab", "space")  # tick "Promise due or broken"
        await pilot.press("enter")
        await _settle(app, pilot)
        assert app.screen is screen
        assert screen.queue_filter == QueueFilter(promise_due=True)
        expected = queue_page(
            seeded, agent, queue_filter=QueueFilter(promise_due=True), limit=500, now=FIXED_NOW
        )
        assert _shown_names(screen.query_one(QueueTable)) == [row.name for row in expected]
        assert "promise due" in str(screen.query_one("#queue-filters", Static).render())
        await pilot.press("escape")
        await _settle(app, pilot)
        assert screen.queue_filter == QueueFilter()
        assert screen.query_one(QueueTable).row_count >= PAGE_SIZE


async def test_search_finds_an_account_by_invoice_number(seeded: Database) -> None:
    agent = get_agent(seeded, "alice")
    target = queue_page(seeded, agent, limit=40, now=FIXED_NOW)[-1]
    with seeded.session() as session:
        number = session.scalar(select(Invoice.number).where(Invoice.debtor_id == target.debtor_id))
    assert number
    app = CollectApp(seeded, agent)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        await pilot.press("slash")
        await pilot.press(*number)
        await pilot.pause(0.3)  # the search waits for a pause in typing
        await _settle(app, pilot)
        table = app.screen.query_one(QueueTable)
        assert _shown_names(table) == [target.name]
        await pilot.press("enter")  # leaves the search box for the table
        assert app.focused is table


async def test_help_and_command_palette_list_the_queue_commands(seeded: Database) -> None:
    app = CollectApp(seeded, get_agent(seeded, "alice"))
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, QueueScreen)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"contactable")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        assert screen.queue_filter.contactable_now


async def test_queue_refreshes_when_another_agent_changes_the_data(seeded: Database) -> None:
    agent = get_agent(seeded, "alice")
    app = CollectApp(seeded, agent)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        for _ in range(4):
            await pilot.press("down")
        table = screen.query_one(QueueTable)
        kept = screen.rows[table.cursor_row].debtor_id
        top = next(row for row in screen.rows if not row.pinned and row.debtor_id != kept)
        with seeded.session() as session:  # someone else moves the top account away
            debtor = session.get(Debtor, top.debtor_id)
            assert debtor is not None
            previous_agent = debtor.assigned_agent_id
            debtor.assigned_agent_id = None
        try:
            screen._poll_changes()
            await _settle(app, pilot)
            assert top.debtor_id not in {row.debtor_id for row in screen.rows}
            assert screen.rows[table.cursor_row].debtor_id == kept
        finally:
            with seeded.session() as session:
                debtor = session.get(Debtor, top.debtor_id)
                assert debtor is not None
                debtor.assigned_agent_id = previous_agent


async def test_a_filter_shown_again_appears_at_once_then_is_revalidated(seeded: Database) -> None:
    agent = get_agent(seeded, "alice")
    bucket = QueueFilter(bucket="31-60")
    app = CollectApp(seeded, agent)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        screen.apply_filter(bucket)
        await _settle(app, pilot)
        first = [row.debtor_id for row in screen.rows]
        assert len(first) >= 2
        screen.apply_filter(QueueFilter(promise_due=True))
        await _settle(app, pilot)
        with seeded.session() as session:  # meanwhile the top of that bucket moves away
            debtor = session.get(Debtor, first[0])
            assert debtor is not None
            previous_agent = debtor.assigned_agent_id
            debtor.assigned_agent_id = None
        try:
            screen.apply_filter(bucket)
            # Shown at once, before any worker ran: the window last seen for this filter.
            assert screen.shown_generation == screen._generation
            assert [row.debtor_id for row in screen.rows] == first
            await _settle(app, pilot)
            # Then revalidated: the account that moved away is gone.
            fresh = queue_page(seeded, agent, queue_filter=bucket, limit=PAGE_SIZE, now=FIXED_NOW)
            assert [row.debtor_id for row in screen.rows] == [row.debtor_id for row in fresh]
            assert first[0] not in {row.debtor_id for row in screen.rows}
            table = screen.query_one(QueueTable)
            assert table.row_count == len(fresh)
        finally:
            with seeded.session() as session:
                debtor = session.get(Debtor, first[0])
                assert debtor is not None
                debtor.assigned_agent_id = previous_agent


async def test_queue_cells_render_as_the_general_data_table_would(seeded: Database) -> None:
    """The table's fast cell rendering gives the very segments of DataTable's own."""
    app = CollectApp(seeded, get_agent(seeded, "alice"))
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        table = app.screen.query_one(QueueTable)
        assert any(row.blocked for row in app.screen.rows[:20])  # dim rows are covered
        for row_index in range(20):
            row_style = table._get_row_style(row_index, table.rich_style)
            for column_index, column in enumerate(table.ordered_columns):
                width = column.get_render_width(table)
                for cursor in (False, True):
                    table._cell_render_cache.clear()
                    fast = table._render_cell(row_index, column_index, row_style, width, cursor)
                    table._cell_render_cache.clear()
                    general = DataTable._render_cell(
                        table, row_index, column_index, row_style, width, cursor
                    )
                    assert fast == general, (row_index, column_index, cursor)


async def test_a_change_while_the_queue_loads_is_shown_not_missed(
    seeded: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows are shown before the summary's slow count; an account that changes in
    between (another agent, the sync) is shown changed when the count arrives, instead of
    waiting unseen behind a marker that already counts the change."""
    import collect_tui.screens.queue as queue_screen

    agent = get_agent(seeded, "bruno")
    last = queue_page(seeded, agent, limit=PAGE_SIZE, now=FIXED_NOW)[-1]
    counted = queue_screen.queue_summary

    def count_after_a_change(*args: object, **kwargs: object) -> object:
        with seeded.session() as session:  # the last account shot up meanwhile
            debtor = session.get(Debtor, last.debtor_id)
            debtor.priority_score = 10_000.0
        return counted(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(queue_screen, "queue_summary", count_after_a_change)
    app = CollectApp(seeded, agent)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        scored = [row for row in screen.rows if not row.pinned]
        assert scored[0].debtor_id == last.debtor_id
        assert "accounts" in str(screen.query_one("#queue-summary").render())


async def test_a_window_arriving_after_the_app_quit_is_dropped(seeded: Database) -> None:
    """A load still under way when the app quits finishes without touching the gone
    widgets or reporting an error (it once put "No nodes match" on screen)."""
    app = CollectApp(seeded, get_agent(seeded, "alice"))
    notices: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        app.notify = lambda message, **kw: notices.append(message)  # type: ignore[method-assign]
    rows = list(screen.rows)
    with app._context():  # as the app's thread runs a worker's call_from_thread
        screen._show_window(screen._generation, screen.queue_filter, rows, False, None, None, None)
        screen._append_page(screen._generation, rows)
        screen._show_error("late")
    assert notices == []


async def test_keys_typed_straight_after_slash_land_in_the_search(seeded: Database) -> None:
    """`/smith` typed faster than the screen updates: every letter reaches the search."""
    app = CollectApp(seeded, get_agent(seeded, "alice"))
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        burst(app, "slash", "s", "m", "i")
        await _settle(app, pilot)
        search = app.screen.query_one("#queue-search", Input)
        assert search.value == "smi"
        await pilot.press("slash", "2")  # a "/" typed in the search is part of it
        assert search.value == "smi/2"


async def test_filter_keys_typed_before_the_dialog_opens_reach_it(seeded: Database) -> None:
    """`f`, `tab`, `space`, `enter` in one burst: the dialog opens, ticks "Promise due
    or broken" and applies it."""
    app = CollectApp(seeded, get_agent(seeded, "alice"))
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        screen = app.screen
        burst(app, "f", "tab", "space", "enter")
        await _settle(app, pilot)
        assert app.screen is screen
        assert screen.queue_filter == QueueFilter(promise_due=True)


async def test_keys_are_not_held_for_ever_behind_a_key_that_never_reports_back(
    seeded: Database,
) -> None:
    """A key whose widget went away before it reported back holds the next keys only
    briefly."""
    app = CollectApp(seeded, get_agent(seeded, "alice"))
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        app._keys.in_flight_since = time.monotonic()  # as if its report were lost
        burst(app, "f")
        await pilot.pause()
        assert not isinstance(app.screen, QueueFilterScreen)  # held for now
        await pilot.pause(KEY_SETTLE_LIMIT_SECONDS + 0.2)
        await _settle(app, pilot)
        assert isinstance(app.screen, QueueFilterScreen)
