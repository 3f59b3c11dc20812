"""Small form pieces shared by the supervisor dialogs."""

from __future__ import annotations

from textual.visual import VisualType
from textual.widgets import Static


class FieldError(Static):
    """A validation message next to a field; takes no room while empty."""

    DEFAULT_CSS = """
    FieldError { color: $error; height: auto; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__("", id=id, classes=classes)
        self.display = False

    def update(self, content: VisualType = "", *, layout: bool = True) -> None:
        """Show ``content``; hide the line when it is empty."""
        super().update(content, layout=layout)
        self.display = bool(str(content))
