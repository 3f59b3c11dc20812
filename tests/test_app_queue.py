"""The app through Pilot at 80x24: sign-in lands on the agent's queue, read from the database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from collect_tui import clock
from collect_tui.app import CollectApp
from collect_tui.services.agents import get_agent
from collect_tui.services.database import Database, open_database
from collect_tui.services.queue import due_callbacks, queue_page
from collect_tui.services.scoring import mark_rescored
from collect_tui.services.seed import seed_portfolio
from collect_tui.widgets.queue_table import QueueTable

AS_OF = date(2026, 11, 2)
FIXED_NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Database:
    path: Path = tmp_path_factory.mktemp("app") / "app.db"
    db = open_database(f"sqlite:///{path}")
    seed_portfolio(db.engine, debtors=1500, agents=3, seed=9, as_of=AS_OF)
    mark_rescored(db, datetime.now(UTC).date())  # the scores stay as of AS_OF
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
        assert table.row_count >= 100
        names = [str(table.get_row_at(i)[0]).removeprefix("> ") for i in range(5)]
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
