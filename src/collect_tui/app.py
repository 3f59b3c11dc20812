"""The Textual application: signs an agent in and opens their queue."""

from __future__ import annotations

from textual.app import App

from collect_tui.screens.queue import QueueScreen
from collect_tui.services.agents import AgentInfo
from collect_tui.services.database import Database


class CollectApp(App[None]):
    """The collections workstation."""

    TITLE = "collect-tui"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, db: Database, agent: AgentInfo) -> None:
        super().__init__()
        self.db = db
        self.agent = agent

    def on_mount(self) -> None:
        self.push_screen(QueueScreen(self.db, self.agent))
