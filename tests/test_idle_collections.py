"""Full garbage collections wait for the agent's pauses, and the process gets its own back."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from conftest import no_daily_work

from collect_tui import app as app_module
from collect_tui.app import GC_IDLE_SECONDS, GC_LONGEST_WAIT_SECONDS, CollectApp, IdleCollections
from collect_tui.services.agents import get_agent
from collect_tui.services.database import Database
from collect_tui.services.seed import seed_portfolio


@pytest.fixture
def collections() -> Iterator[IdleCollections]:
    before = gc.get_threshold()
    collector = IdleCollections()
    yield collector
    collector.stop()
    assert gc.get_threshold() == before


def test_only_young_objects_are_collected_automatically_while_started(
    collections: IdleCollections,
) -> None:
    young, middle, _ = gc.get_threshold()
    collections.start()
    assert gc.get_threshold()[:2] == (young, middle)
    assert gc.get_threshold()[2] >= 1_000_000, "no automatic full collection"
    assert gc.get_freeze_count() > 0, "what exists at start is frozen out of collections"


def test_the_full_collection_waits_for_a_pause(
    collections: IdleCollections, monkeypatch: pytest.MonkeyPatch
) -> None:
    collected: list[int] = []
    monkeypatch.setattr(app_module.gc, "collect", lambda *a: collected.append(1) or 0)
    assert not collections.collect_if_due(GC_IDLE_SECONDS * 5), "not started: nothing to do"
    collections.start()
    assert not collections.collect_if_due(0.1), "keys are coming"
    assert collections.collect_if_due(GC_IDLE_SECONDS)
    assert collected == [1]
    clock = [app_module.time.monotonic()]
    monkeypatch.setattr(app_module.time, "monotonic", lambda: clock[0])
    clock[0] += GC_LONGEST_WAIT_SECONDS + 1
    assert collections.collect_if_due(0.1), "collected at last, even without a pause"


async def test_the_app_gives_the_process_its_collections_back(sqlite_db: Database) -> None:
    seed_portfolio(sqlite_db.engine, debtors=20, agents=1, seed=3)
    no_daily_work(sqlite_db)
    before = gc.get_threshold()
    app = CollectApp(sqlite_db, get_agent(sqlite_db, "alice"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert gc.get_threshold()[2] >= 1_000_000
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
