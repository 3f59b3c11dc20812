"""The Textual application: signs an agent in and opens their queue."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import platformdirs
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from collect_tui.screens.queue import QueueScreen
from collect_tui.screens.supervisor import SupervisorScreen, refusal
from collect_tui.services.agents import AgentInfo
from collect_tui.services.cadence import run_cadence
from collect_tui.services.database import Database
from collect_tui.services.scoring import rescore_needed, rescore_portfolio


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

    def on_mount(self) -> None:
        keymap, problem = load_keymap(self.keymap_file)
        if keymap:
            self.set_keymap(keymap)
        if problem:
            self.notify(problem, title="Keymap", severity="warning", timeout=10)
        if self.agent.is_supervisor:  # supervisors and admins start on their console
            self.push_screen(SupervisorScreen(self.db, self.agent))
        else:
            self.push_screen(QueueScreen(self.db, self.agent))
        self._daily_rescore()

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
        """The first start of a day refreshes every score (after the first paint)."""
        try:
            if not rescore_needed(self.db):
                return
            self.call_from_thread(self.notify, "Refreshing priorities for today...", timeout=3)
            run_cadence(self.db, deliver=False, rescore=False)  # due steps become tasks
            rescore_portfolio(self.db)
        except Exception as exc:
            self.call_from_thread(
                self.notify, f"Daily rescore failed: {exc}", severity="error", timeout=10
            )
            return
        screen = self.screen
        if isinstance(screen, QueueScreen):
            self.call_from_thread(screen.action_refresh_queue)
