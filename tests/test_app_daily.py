"""The first start of a day: fresh scores first, then the collection rule's tasks."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from textual.worker import WorkerCancelled

from collect_tui.app import CollectApp
from collect_tui.services.agents import get_agent
from collect_tui.services.cadence import cadence_needed
from collect_tui.services.database import Database, open_database
from collect_tui.services.scoring import mark_rescored, rescore_needed
from collect_tui.services.seed import seed_portfolio
from collect_tui.storage.models import Debtor


@pytest.fixture
def yesterdays(tmp_path: Path) -> Database:
    db = open_database(f"sqlite:///{tmp_path / 'daily.db'}")
    seed_portfolio(db.engine, debtors=300, agents=2, seed=4, as_of=date(2026, 11, 2))
    return db


async def test_first_start_of_a_day_rescores_then_runs_the_cadence(yesterdays: Database) -> None:
    assert rescore_needed(yesterdays) and cadence_needed(yesterdays)
    with yesterdays.session() as session:
        scored_before = session.scalar(select(func.max(Debtor.scored_at)))
    app = CollectApp(yesterdays, get_agent(yesterdays, "alice"))
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(100):  # the daily worker runs after the first paint
            with contextlib.suppress(WorkerCancelled):  # exclusive workers replace others
                await app.workers.wait_for_complete()
            if not cadence_needed(yesterdays):
                break
            await pilot.pause(0.1)
    assert not rescore_needed(yesterdays)
    assert not cadence_needed(yesterdays), "the cadence ran after the rescore"
    with yesterdays.session() as session:
        assert session.scalar(select(func.max(Debtor.scored_at))) > scored_before


async def test_a_start_after_a_crash_between_rescore_and_cadence_runs_the_cadence(
    yesterdays: Database,
) -> None:
    """The rescore was recorded, then the app died before the cadence: the next start
    runs the cadence alone (it used to wait for the next day)."""
    mark_rescored(yesterdays, datetime.now(UTC).date())
    assert not rescore_needed(yesterdays) and cadence_needed(yesterdays)
    app = CollectApp(yesterdays, get_agent(yesterdays, "alice"))
    notices: list[str] = []
    app.notify = lambda message, **kw: notices.append(message)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(100):
            with contextlib.suppress(WorkerCancelled):
                await app.workers.wait_for_complete()
            if not cadence_needed(yesterdays):
                break
            await pilot.pause(0.1)
    assert not cadence_needed(yesterdays)
    assert not notices, "no rescore (it was done) and no error"
