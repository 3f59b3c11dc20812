"""The filter dialog of the queue (``f``)."""

from __future__ import annotations

from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Label, Select

from collect_tui.domain.aging import BUCKETS
from collect_tui.services.queue import QueueFilter


class QueueFilterScreen(ModalScreen[QueueFilter | None]):
    """Pick the bucket and flags; enter applies, escape cancels."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="filters.cancel"),
        Binding("enter", "apply", "Apply", id="filters.apply", priority=True),
        Binding("c", "clear", "Clear all", id="filters.clear"),
    ]

    def __init__(self, current: QueueFilter) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="filter-dialog"):
            yield Label("[b]Filter the queue[/b]")
            yield Label(
                "tab moves, space toggles, enter applies,\nc clears all, esc cancels",
                id="filter-keys",
            )
            yield Select(
                [(f"Aging bucket {b}", b) for b in BUCKETS],
                prompt="Any aging bucket",
                value=self.current.bucket if self.current.bucket else Select.NULL,
                id="filter-bucket",
            )
            yield Checkbox("Promise due or broken", self.current.promise_due, id="filter-promise")
            yield Checkbox("Callbacks due today", self.current.callbacks, id="filter-callbacks")
            yield Checkbox("Contactable now", self.current.contactable_now, id="filter-contactable")

    def on_mount(self) -> None:
        self.query_one("#filter-bucket", Select).focus()

    def _chosen(self) -> QueueFilter:
        bucket = self.query_one("#filter-bucket", Select).value
        return QueueFilter(
            bucket=bucket if isinstance(bucket, str) else None,
            promise_due=self.query_one("#filter-promise", Checkbox).value,
            callbacks=self.query_one("#filter-callbacks", Checkbox).value,
            contactable_now=self.query_one("#filter-contactable", Checkbox).value,
            search=self.current.search,
        )

    def action_apply(self) -> None:
        select = self.query_one("#filter-bucket", Select)
        if select.expanded:  # enter picks an option in the open list first
            raise SkipAction()
        self.dismiss(self._chosen())

    def action_clear(self) -> None:
        self.dismiss(QueueFilter(search=self.current.search))

    def action_cancel(self) -> None:
        self.dismiss(None)
