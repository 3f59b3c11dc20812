"""Working as a team in the app: `n` claims the account for this session, leaving it hands it
back, and the open account follows changes made by others."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import burst
from sqlalchemy import delete, select

from collect_tui import clock
from collect_tui.app import CollectApp
from collect_tui.screens.account import AccountScreen
from collect_tui.screens.queue import QueueScreen
from collect_tui.services.agents import UnknownAgentError, create_agent, get_agent
from collect_tui.services.claims import CLAIM_TTL, claim_holder, claim_next
from collect_tui.services.database import Database, open_database
from collect_tui.services.scoring import mark_rescored
from collect_tui.services.seed import seed_portfolio
from collect_tui.services.workspace import log_contact
from collect_tui.storage.models import Claim, Contact

AS_OF = date(2026, 11, 2)
FIXED_NOW = datetime(2026, 11, 2, 18, 0, tzinfo=UTC)  # 10:00-15:00 in the Americas


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Database:
    path: Path = tmp_path_factory.mktemp("claims") / "claims.db"
    db = open_database(f"sqlite:///{path}")
    seed_portfolio(db.engine, debtors=300, agents=2, seed=9, as_of=AS_OF)
    mark_rescored(db, datetime.now(UTC).date())
    return db


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: FIXED_NOW)


@pytest.fixture(autouse=True)
def no_claims(seeded: Database) -> None:
    """Each test starts with nobody working any account."""
    with seeded.session() as session:
        session.execute(delete(Claim))


async def _settle(app: CollectApp) -> None:
    for _ in range(3):
        await app.workers.wait_for_complete()
        await app.animator.wait_until_complete()


def _claims(db: Database, session_id: str) -> list[int]:
    with db.session() as session:
        return list(session.scalars(select(Claim.debtor_id).where(Claim.session_id == session_id)))


async def test_next_claims_and_escape_releases(seeded: Database) -> None:
    alice = get_agent(seeded, "alice")
    # Another session (alice's browser tab) is working the best account already.
    other = claim_next(seeded, alice, session_id="browser-tab", now=FIXED_NOW)
    assert other is not None
    app = CollectApp(seeded, alice)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app)
        await pilot.press("n")
        await _settle(app)
        assert isinstance(app.screen, AccountScreen)
        mine = _claims(seeded, app.session_id)
        assert len(mine) == 1 and mine != [other.row.debtor_id]
        assert app.screen.debtor_id == mine[0]
        await pilot.press("escape")
        await _settle(app)
        assert isinstance(app.screen, QueueScreen)
        assert _claims(seeded, app.session_id) == []
    holder = claim_holder(seeded, other.row.debtor_id, now=FIXED_NOW)
    assert holder is not None and holder.session_id == "browser-tab"


async def test_an_active_agent_keeps_the_claim_an_idle_one_does_not(
    seeded: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = CollectApp(seeded, get_agent(seeded, "alice"))
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app)
        await pilot.press("n")
        await _settle(app)
        (debtor_id,) = _claims(seeded, app.session_id)
        # Nine minutes on: the agent pressed a key, and the renewal tick extends the claim.
        renewed_at = FIXED_NOW + CLAIM_TTL - timedelta(minutes=1)
        monkeypatch.setattr(clock, "now", lambda: renewed_at)
        await pilot.press("down")
        app._renew_claims()
        await _settle(app)
        past_first_expiry = FIXED_NOW + CLAIM_TTL + timedelta(minutes=1)
        holder = claim_holder(seeded, debtor_id, now=past_first_expiry)
        assert holder is not None and holder.session_id == app.session_id
        # Then idle for an hour: the tick does not renew, and the claim lapses.
        app.last_input -= 3600
        monkeypatch.setattr(clock, "now", lambda: renewed_at + timedelta(minutes=5))
        app._renew_claims()
        await _settle(app)
        assert claim_holder(seeded, debtor_id, now=renewed_at + CLAIM_TTL) is None


async def test_opening_an_account_claimed_elsewhere_warns(seeded: Database) -> None:
    alice = get_agent(seeded, "alice")
    app = CollectApp(seeded, alice)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app)
        queue = app.screen
        assert isinstance(queue, QueueScreen)
        row = queue.selected_row()
        assert row is not None
        with seeded.session() as session:
            session.add(
                Claim(debtor_id=row.debtor_id, agent_id=alice.id, session_id="ssh-login",
                      claimed_at=FIXED_NOW, expires_at=FIXED_NOW + CLAIM_TTL)
            )  # fmt: skip
        await pilot.press("enter")
        await _settle(app)
        assert isinstance(app.screen, AccountScreen)
        messages = [n.message for n in app._notifications]
        assert any("open in another session" in m for m in messages), messages


async def test_the_open_account_reloads_when_someone_else_changes_it(seeded: Database) -> None:
    alice = get_agent(seeded, "alice")
    try:
        sam = get_agent(seeded, "sam")
    except UnknownAgentError:
        sam = create_agent(seeded, "sam", display_name="Sam Super", role="supervisor")
    app = CollectApp(seeded, alice)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app)
        await pilot.press("n")
        await _settle(app)
        screen = app.screen
        assert isinstance(screen, AccountScreen) and screen.account is not None
        before = screen.account.version
        log_contact(seeded, sam, screen.debtor_id, before, channel="call", direction="inbound",
                    disposition="right_party", notes="took the call", now=FIXED_NOW)  # fmt: skip
        app._poll_open_account()
        await _settle(app)
        await pilot.pause()
        assert screen.account is not None and screen.account.version > before
        messages = [n.message for n in app._notifications]
        assert any("changed by sam" in m for m in messages), messages


async def test_next_again_reuses_the_screen_and_claims_only_the_new_account(
    seeded: Database,
) -> None:
    """The second `n` opens the next account on the same (kept) screen: the first account is
    released, the screen shows the new one, and leaving hands that one back too."""
    alice = get_agent(seeded, "alice")
    app = CollectApp(seeded, alice)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app)
        await pilot.press("n")
        await _settle(app)
        first = app.screen
        assert isinstance(first, AccountScreen) and first.account is not None
        (first_id,) = _claims(seeded, app.session_id)
        assert first.account.debtor.id == first_id
        await pilot.press("escape")
        await _settle(app)
        assert _claims(seeded, app.session_id) == []
        # The first account is worked elsewhere meanwhile, so `n` must offer another one.
        claim_next(seeded, alice, session_id="browser-tab", now=FIXED_NOW)
        await pilot.press("n")
        await _settle(app)
        await pilot.pause()
        screen = app.screen
        assert screen is first, "the kept account screen is reused"
        (second_id,) = _claims(seeded, app.session_id)
        assert second_id != first_id
        assert screen.debtor_id == second_id
        assert screen.account is not None and screen.account.debtor.id == second_id
        await pilot.press("escape")
        await _settle(app)
        assert _claims(seeded, app.session_id) == []


def _logged_now(db: Database, debtor_id: int) -> list[str]:
    """The dispositions of the contacts logged on ``debtor_id`` at the tests' fixed now."""
    with db.session() as session:
        return list(
            session.scalars(
                select(Contact.disposition).where(
                    Contact.debtor_id == debtor_id, Contact.started_at == FIXED_NOW
                )
            )
        )


async def test_keys_typed_after_next_go_to_the_account_it_opens(seeded: Database) -> None:
    """`n`, `c`, `n`, `ctrl+s` in one burst: the next account opens and the call is
    logged on it, although the claim is still running when `c` arrives."""
    alice = get_agent(seeded, "alice")
    app = CollectApp(seeded, alice)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app)
        burst(app, "n", "c", "n", "ctrl+s")
        for _ in range(3):
            await _settle(app)
            await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AccountScreen), screen
        assert _claims(seeded, app.session_id) == [screen.debtor_id]
        assert _logged_now(seeded, screen.debtor_id) == ["no_answer"]


async def test_keys_typed_after_enter_go_to_the_account_it_opens(seeded: Database) -> None:
    """`enter`, `c`, `n`, `ctrl+s` in one burst: the selected account opens and the call
    is logged on it, although the account is still being read when `c` arrives."""
    alice = get_agent(seeded, "alice")
    app = CollectApp(seeded, alice)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app)
        second = app.screen.rows[1].debtor_id  # type: ignore[attr-defined]
        burst(app, "down", "enter", "c", "n", "ctrl+s")
        for _ in range(3):
            await _settle(app)
            await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AccountScreen), screen
        assert screen.debtor_id == second  # the row the cursor went down to
        assert _logged_now(seeded, screen.debtor_id) == ["no_answer"]
