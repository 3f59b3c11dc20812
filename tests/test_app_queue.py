"""The app through Pilot at 80x24: sign-in lands on the agent's queue, read from the database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from collect_tui.app import CollectApp
from collect_tui.services.agents import get_agent
from collect_tui.services.database import Database, open_database
from collect_tui.services.queue import queue_page
from collect_tui.services.seed import seed_portfolio
from collect_tui.widgets import queue_table
from collect_tui.widgets.queue_table import QueueTable

AS_OF = date(2026, 11, 2)
FIXED_NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Database:
    path: Path = tmp_path_factory.mktemp("app") / "app.db"
    db = open_database(f"sqlite:///{path}")
    seed_portfolio(db.engine, debtors=1500, agents=3, seed=9, as_of=AS_OF)
    return db


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue_table, "current_time", lambda: FIXED_NOW)


async def test_queue_shows_the_agents_accounts_in_priority_order(seeded: Database) -> None:
    agent = get_agent(seeded, "alice")
    expected = queue_page(seeded, agent, limit=5)
    app = CollectApp(seeded, agent)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one(QueueTable)
        assert table.row_count >= 100
        first = table.get_row_at(0)
        assert first[0] == expected[0].name
        names = [table.get_row_at(i)[0] for i in range(5)]
        assert names == [row.name for row in expected]
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


async def test_refresh_reloads_from_the_top(seeded: Database) -> None:
    agent = get_agent(seeded, "alice")
    app = CollectApp(seeded, agent)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("end")
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one(QueueTable)
        assert table.row_count == 100


def test_queue_screen_snapshot(seeded: Database, snap_compare) -> None:
    agent = get_agent(seeded, "alice")

    async def settle(pilot) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(CollectApp(seeded, agent), terminal_size=(80, 24), run_before=settle)
