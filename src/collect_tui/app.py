"""The Textual application: signs an agent in and opens their queue."""

from __future__ import annotations

import gc
import time
import tomllib
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs
from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from collect_tui import clock
from collect_tui.screens.queue import QueueScreen
from collect_tui.services.agents import AgentInfo
from collect_tui.services.claims import new_session_id, release_claims, renew_claims
from collect_tui.services.daily import cadence_needed, rescore_needed
from collect_tui.services.database import Database
from collect_tui.services.scoring import rescore_portfolio

# The account and supervisor screens are imported where they are first needed, so that
# an agent's queue is painted without waiting for them (see QueueScreen's preload).
if TYPE_CHECKING:
    from collect_tui.screens.account import AccountScreen
    from collect_tui.services.workspace import AccountView


def keymap_path() -> Path:
    """Where users remap keys: ``[keymap]`` of binding id = keys, e.g. ``"queue.next" = "j"``."""
    return Path(platformdirs.user_config_dir("collect-tui", appauthor=False)) / "keymap.toml"


def load_keymap(path: Path | None = None) -> tuple[dict[str, str], str | None]:
    """The user's key remapping and an error line if the file could not be used."""
    path = path or keymap_path()
    if not path.exists():
        return {}, None
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return {}, f"{path}: {exc}; using the default keys"
    table = data.get("keymap", {})
    if not isinstance(table, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in table.items()
    ):
        return {}, f"{path}: [keymap] must map binding ids to key strings; using the defaults"
    return dict(table), None


CLAIM_RENEW_SECONDS = 60.0
ACCOUNT_POLL_SECONDS = 5.0  # how often the open account checks for others' changes
GC_CHECK_SECONDS = 2.0  # how often the app looks for a pause to collect garbage in
GC_IDLE_SECONDS = 1.0  # a pause: this long since the last key or click
GC_LONGEST_WAIT_SECONDS = 30.0  # collected after this long even without a pause


class IdleCollections:
    """Python's full garbage collections moved to the agent's pauses.

    A full collection walks every object the app holds: 50-100 ms at a time, about
    every 1.5 s while keys come quickly, each one freezing the screen mid-keystroke.
    While started, Python collects only young objects by itself; the full collection
    runs when the agent has paused (or at the latest every
    ``GC_LONGEST_WAIT_SECONDS``), and the objects built at start (modules, mapped models,
    the first screen), which live as long as the app, are frozen out of it.
    """

    def __init__(self) -> None:
        self._thresholds: tuple[int, int, int] | None = None
        self._last = time.monotonic()

    def start(self) -> None:
        """Stop automatic full collections (undone by :meth:`stop`)."""
        if self._thresholds is None:
            self._thresholds = gc.get_threshold()
            young, middle, _ = self._thresholds
            gc.set_threshold(young, middle, 1_000_000_000)
            gc.freeze()

    def collect_if_due(self, idle_seconds: float) -> bool:
        """Collect everything now if the agent has paused or it has been too long."""
        now = time.monotonic()
        if self._thresholds is None or (
            idle_seconds < GC_IDLE_SECONDS and now - self._last < GC_LONGEST_WAIT_SECONDS
        ):
            return False
        gc.collect()
        self._last = time.monotonic()
        return True

    def stop(self) -> None:
        """Give the process its own collections back (the app is closing)."""
        if self._thresholds is not None:
            gc.unfreeze()
            gc.set_threshold(*self._thresholds)
            self._thresholds = None


KEY_SETTLE_LIMIT_SECONDS = 0.5  # a key held back longer than this is let through anyway
KEY_WAIT_LIMIT_SECONDS = 3.0  # keys held for work the agent waits for (hold_keys), at most


class KeySettled(Message):
    """Posted behind a key to the widget the key went to: it bubbles to the app after the
    key has done whatever it does there (a binding's action included)."""


class KeyOrder:
    """Keys handled one after another, so that keys typed ahead are not lost.

    Textual hands a key to the focused widget and goes on to the next key at once; the
    first key's binding runs only when the key has bubbled back to the app. Typed in one
    burst (a fast typist, an SSH packet), ``c n`` opened the contact form while the ``n``
    had already gone to the account screen, or to the new form before it had a focused
    field, and was lost. Here a key that arrives while the one before is still on its way
    waits, and so does every key while a screen just pushed is not mounted yet, or while
    a screen waits for work that decides what comes next (:meth:`CollectApp.hold_keys`).
    Keys typed one at a time go straight through.
    """

    def __init__(self) -> None:
        self.held: deque[events.Key] = deque()
        self.in_flight_since: float | None = None
        self.screen: Screen[Any] | None = None  # the screen when the key in flight went
        self.hold: int | None = None  # the number of the hold in force (hold_keys)
        self.holds = 0


class CollectApp(App[None]):
    """The collections workstation."""

    TITLE = "collect-tui"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("f2", "supervisor_console", "Console", show=False, id="app.supervisor_console"),
        Binding("f6", "sync_screen", "Sync", show=False, id="app.sync"),
    ]

    def __init__(self, db: Database, agent: AgentInfo, *, keymap_file: Path | None = None):
        super().__init__()
        self.db = db
        self.agent = agent
        self.keymap_file = keymap_file
        self.session_id = new_session_id()  # the claims `n` takes belong to this run
        self.last_input = time.monotonic()
        self._collections = IdleCollections()
        self._keys = KeyOrder()

    def on_mount(self) -> None:
        keymap, problem = load_keymap(self.keymap_file)
        if keymap:
            self.set_keymap(keymap)
        if problem:
            self.notify(problem, title="Keymap", severity="warning", timeout=10)
        if self.agent.is_supervisor:  # supervisors and admins start on their console
            from collect_tui.screens.supervisor import SupervisorScreen

            self.push_screen(SupervisorScreen(self.db, self.agent))
        else:
            self.push_screen(QueueScreen(self.db, self.agent))
        self._daily_rescore()
        self._collections.start()
        self.set_interval(GC_CHECK_SECONDS, self._collect_when_idle)
        self.set_interval(CLAIM_RENEW_SECONDS, self._renew_claims)
        self.set_interval(ACCOUNT_POLL_SECONDS, self._poll_open_account)

    async def on_event(self, event: events.Event) -> None:
        """Note when the agent last pressed a key or clicked (idle agents lose their claim);
        keys go through one after another (see :class:`KeyOrder`)."""
        if isinstance(event, events.Key | events.MouseDown):
            self.last_input = time.monotonic()
        if isinstance(event, events.Key) and not event.is_forwarded:
            self._keys.held.append(event)
            if self._keys.in_flight_since is not None and len(self._keys.held) == 1:
                self.set_timer(KEY_SETTLE_LIMIT_SECONDS, self._unstick_keys)
            await self._release_keys()
            return
        await super().on_event(event)

    async def _unstick_keys(self) -> None:
        """Let held keys through if the key in flight never reported back (its widget was
        removed first, say), rather than leave the keyboard dead."""
        since = self._keys.in_flight_since
        if since is not None and time.monotonic() - since >= KEY_SETTLE_LIMIT_SECONDS:
            self._keys.in_flight_since = None
            await self._release_keys()
        elif self._keys.held:
            self.set_timer(KEY_SETTLE_LIMIT_SECONDS, self._unstick_keys)

    async def _send_key(self, event: events.Key) -> None:
        """Handle ``event`` as Textual does; if it went on to a widget, post the marker
        that follows it there."""
        self._keys.screen = self.screen
        await super().on_event(event)
        if not event.is_forwarded:  # a priority binding took it: already done
            return
        target = self.focused or self.screen  # where Textual sent it (nothing ran since)
        self._keys.in_flight_since = time.monotonic()
        target.post_message(KeySettled())

    def hold_keys(self) -> None:
        """Hold the keys typed from now on until :meth:`release_keys` (at most
        ``KEY_WAIT_LIMIT_SECONDS``): the screen is waiting for work that decides where
        they go, as ``n`` waits for the claim that opens the next account."""
        self._keys.holds += 1
        hold = self._keys.hold = self._keys.holds
        self.set_timer(KEY_WAIT_LIMIT_SECONDS, lambda: self._end_hold(hold))

    def release_keys(self) -> None:
        """End the hold: the held keys go to the screen now shown (once it is mounted)."""
        if self._keys.hold is not None:
            self._end_hold(self._keys.hold)

    def _end_hold(self, hold: int) -> None:
        if self._keys.hold == hold:
            self._keys.hold = None
            self.call_later(self._release_keys)

    async def _release_keys(self) -> None:
        """Send the held keys while nothing is in flight or held and the screen is ready."""
        keys = self._keys
        while keys.held and keys.in_flight_since is None and keys.hold is None:
            screen = self.screen
            if screen is not keys.screen:
                # A screen the last key (or the work held for) brought up: let it mount,
                # then take the focus its on_mount gives (Widget.focus lands a moment
                # later), before it gets keys.
                keys.in_flight_since = time.monotonic()
                self.call_after_refresh(self._screen_ready, screen, screen.is_mounted)
                return
            await self._send_key(keys.held.popleft())

    async def _screen_ready(self, screen: Screen[Any], was_mounted: bool) -> None:
        self._keys.in_flight_since = None
        if was_mounted and screen is self.screen:
            self._keys.screen = screen
        await self._release_keys()

    async def on_key_settled(self, message: KeySettled) -> None:
        """The key in flight has been handled: send the next one."""
        message.stop()
        self._keys.in_flight_since = None
        await self._release_keys()

    @work(thread=True, exclusive=True, group="claims")
    def _renew_claims(self) -> None:
        """Keep the account the agent is working while they are active; let it lapse if idle."""
        if time.monotonic() - self.last_input > CLAIM_RENEW_SECONDS:
            return
        try:
            renew_claims(self.db, self.agent, session_id=self.session_id, now=clock.now())
        except Exception as exc:  # a lapsed claim is not an error the agent must act on
            self.log.warning(f"renewing claims failed: {type(exc).__name__}")

    def _poll_open_account(self) -> None:
        """Every few seconds, check the open account for others' changes (in a thread).

        The screen is read here, on the app's thread: a worker reading it while the app
        quits would find the screen stack already empty.
        """
        if not self.screen_stack:
            return
        from collect_tui.screens.account import AccountScreen

        screen = self.screen
        if isinstance(screen, AccountScreen) and screen.account is not None:
            self._watch_account(screen, screen.account)

    @work(thread=True, exclusive=True, group="account-watch")
    def _watch_account(self, screen: AccountScreen, account: AccountView) -> None:
        """Reload the open account when someone else (a sync, a supervisor, another
        session) changed it, and say who; the agent's own saves reload it themselves."""
        from collect_tui.services.workspace import latest_change

        shown = (account.version, account.freshness.debtor_synced_at)
        try:
            change = latest_change(self.db, screen.debtor_id, account.version)
        except Exception:  # polling again in a few seconds is the remedy
            return
        if change is None or (change.version, change.synced_at) == shown:
            return
        if screen.account is not account:  # reloaded meanwhile
            return
        self.call_from_thread(screen.reload)
        if change.version != account.version and change.actor != self.agent.name:
            self.call_from_thread(
                self.notify,
                f"This account was changed by {change.actor or 'someone else'}; reloaded.",
                title="Updated",
                timeout=5,
            )

    def _collect_when_idle(self) -> None:
        self._collections.collect_if_due(time.monotonic() - self.last_input)

    def on_unmount(self) -> None:
        """Quitting hands the account back at once instead of when the claim lapses."""
        self._collections.stop()
        try:
            release_claims(self.db, session_id=self.session_id)
        except Exception as exc:
            self.log.warning(f"releasing claims failed: {type(exc).__name__}")

    def action_sync_screen(self) -> None:
        """The accounting sync screen (F6, or "Sync" in the command palette)."""
        from collect_tui.screens.sync import SyncScreen

        if not isinstance(self.screen, SyncScreen):
            self.push_screen(SyncScreen(self.db, self.agent))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The palette's commands, plus the sync screen."""
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Sync", "Accounting sync: runs, outbox, quarantine (F6)", self.action_sync_screen
        )

    def action_supervisor_console(self) -> None:
        """Back to the supervisor console (F2); an agent is told it is not for them."""
        from collect_tui.screens.supervisor import SupervisorScreen, refusal

        if not self.agent.is_supervisor:
            self.notify(refusal(self.agent), title="Supervisor", severity="error", timeout=10)
            return
        for screen in reversed(self.screen_stack):
            if isinstance(screen, SupervisorScreen):
                while self.screen is not screen:
                    self.pop_screen()
                return
        self.push_screen(SupervisorScreen(self.db, self.agent))

    @work(thread=True, exclusive=True, group="daily-rescore")
    def _daily_rescore(self) -> None:
        """The first start of a day refreshes every score (after the first paint), shows
        them, then turns the collection rule's due steps into tasks (rescoring the accounts
        they touch), which takes longer on a big portfolio. Each is recorded when done, so
        a start after a crash in between does what is left."""
        try:
            rescore, cadence = rescore_needed(self.db), cadence_needed(self.db)
            if not (rescore or cadence):
                return
            if rescore:
                self.call_from_thread(self.notify, "Refreshing priorities for today...", timeout=3)
                rescore_portfolio(self.db)
                self._refresh_queue_screen()
            if cadence:
                # Imported here: the cadence brings the letter templates' engine, which the
                # start (and every other day's start) does not need.
                from collect_tui.services.cadence import run_cadence

                run_cadence(self.db, deliver=False)  # due steps become tasks, rescored
        except Exception as exc:
            self.call_from_thread(
                self.notify, f"Daily rescore failed: {exc}", severity="error", timeout=10
            )
            return
        self._refresh_queue_screen()

    def _refresh_queue_screen(self) -> None:
        """Reload the queue if it is on screen (from a worker thread)."""
        self.call_from_thread(self._refresh_queue_if_shown)

    def _refresh_queue_if_shown(self) -> None:
        if self.screen_stack and isinstance(self.screen, QueueScreen):
            self.screen.action_refresh_queue()
