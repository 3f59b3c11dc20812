"""A help dialog listing the keys of the screen below it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    """Keys and a few words on how the screen works; any of escape, q or ? closes it."""

    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="help.close"),
    ]

    def __init__(self, title: str, keys: list[tuple[str, str]], notes: str = "") -> None:
        super().__init__()
        self.help_title = title
        self.keys = keys
        self.notes = notes

    def compose(self) -> ComposeResult:
        width = max((len(k) for k, _ in self.keys), default=4)
        lines = [f"[b]{self.help_title}[/b]", ""]
        lines += [f"  [b]{key:<{width}}[/b]  {what}" for key, what in self.keys]
        if self.notes:
            lines += ["", self.notes]
        lines += ["", "escape closes this help"]
        with VerticalScroll(id="help-dialog"):
            yield Static("\n".join(lines))
