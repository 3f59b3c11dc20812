"""The account's timeline: one scrollable list of everything that happened, newest first.

Pages come from a loader (the workspace service) run in a thread worker, so the UI
never waits on the database; the next page is fetched as the cursor nears the end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from rich.text import Text
from textual import work
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from collect_tui.services.workspace import TimelineEntry

PAGE_SIZE = 100
PREFETCH_MARGIN = 10

# (label shown to the agent, kinds of the service) cycled by the account screen's ``f`` key.
KIND_FILTERS: tuple[tuple[str, frozenset[str] | None], ...] = (
    ("everything", None),
    ("contacts", frozenset({"contact"})),
    ("promises", frozenset({"promise"})),
    ("plans", frozenset({"plan", "installment"})),
    ("settlements", frozenset({"settlement"})),
    ("disputes", frozenset({"dispute"})),
    ("callbacks", frozenset({"callback"})),
    ("payments", frozenset({"payment"})),
    ("assignments", frozenset({"reassignment"})),
    ("sync", frozenset({"sync"})),
)

_KIND_LABELS = {
    "contact": "contact",
    "promise": "promise",
    "plan": "plan",
    "installment": "instalmt",
    "settlement": "settle",
    "dispute": "dispute",
    "reassignment": "assign",
    "payment": "payment",
    "sync": "sync",
    "callback": "callback",
}
_KIND_STYLES = {
    "contact": "bold",
    "promise": "green",
    "plan": "green",
    "installment": "green",
    "settlement": "yellow",
    "dispute": "red",
    "payment": "cyan",
    "callback": "magenta",
}

Loader = Callable[[frozenset[str] | None, datetime | None, int], list[TimelineEntry]]


def entry_text(entry: TimelineEntry, zone: ZoneInfo) -> Text:
    """Two lines: local time, kind and title; then the detail, dimmed."""
    local = entry.at.astimezone(zone)
    text = Text(no_wrap=False, overflow="fold")
    text.append(f"{local:%Y-%m-%d %H:%M} ", style="dim")
    text.append(
        f"{_KIND_LABELS.get(entry.kind, entry.kind):<8} ", style=_KIND_STYLES.get(entry.kind, "")
    )
    text.append(entry.title)
    if entry.detail:
        text.append("\n" + " " * 26)
        text.append(entry.detail, style="dim")
    return text


class Timeline(OptionList):
    """Timeline entries of one account, paged from ``loader``, filterable by kind."""

    DEFAULT_CSS = """
    Timeline {
        height: 1fr;
        border: none;
        padding: 0;
    }
    Timeline:focus {
        border: none;
    }
    """

    class Failed(Message):
        """Loading a page failed; ``error`` says why."""

        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.loader: Loader | None = None
        self.zone = ZoneInfo("UTC")
        self.filter_index = 0
        self.entries: list[TimelineEntry] = []
        self._refs: set[str] = set()
        self._more = False
        self._loading = False
        self._generation = 0

    @property
    def filter_label(self) -> str:
        """The name of the kinds shown (``everything``, ``contacts``, ...)."""
        return KIND_FILTERS[self.filter_index][0]

    @property
    def kinds(self) -> frozenset[str] | None:
        """The kinds shown, None for all."""
        return KIND_FILTERS[self.filter_index][1]

    @property
    def has_more(self) -> bool:
        """True when older entries may still be fetched."""
        return self._more

    def reset(self) -> None:
        """Empty, showing everything again, with any page under way dropped (a new account)."""
        self._generation += 1
        self.filter_index = 0
        self.entries = []
        self._refs = set()
        self._more = False
        self._loading = False
        self.clear_options()

    def show(self, entries: Sequence[TimelineEntry], *, more: bool) -> None:
        """Replace the list with ``entries`` (the first page of the current filter)."""
        self._generation += 1
        self.entries = []
        self._refs = set()
        self.clear_options()
        self._loading = False
        self._append(entries, more)
        if self.option_count:
            self.highlighted = 0

    def _append(self, entries: Sequence[TimelineEntry], more: bool) -> None:
        fresh = [e for e in entries if e.ref not in self._refs]
        self.entries.extend(fresh)
        self._refs.update(e.ref for e in fresh)
        self._more = more and bool(fresh)
        self.add_options(Option(entry_text(e, self.zone), id=e.ref) for e in fresh)
        if not self.entries:
            empty = "Nothing in the history yet." if self.kinds is None else "Nothing of this kind."
            self.add_option(Option(Text(empty, style="dim"), disabled=True))

    def cycle_filter(self, step: int = 1) -> str:
        """Show the next kind filter and reload; returns its label."""
        self.filter_index = (self.filter_index + step) % len(KIND_FILTERS)
        self.reload()
        return self.filter_label

    def reload(self) -> None:
        """Fetch the first page of the current filter again."""
        self._generation += 1
        self._loading = True
        self._fetch(self._generation, self.kinds, None, replace=True)

    def load_more(self) -> None:
        """Fetch the next (older) page, if any and not already under way."""
        if not self._more or self._loading or not self.entries or self.loader is None:
            return
        self._loading = True
        # ``before`` is exclusive: step a microsecond past the last entry so entries that
        # share its instant are not skipped; the duplicates are dropped by ref.
        before = self.entries[-1].at + timedelta(microseconds=1)
        self._fetch(self._generation, self.kinds, before, replace=False)

    @work(thread=True, exclusive=True, group="timeline")
    def _fetch(
        self,
        generation: int,
        kinds: frozenset[str] | None,
        before: datetime | None,
        *,
        replace: bool,
    ) -> None:
        if self.loader is None:
            return
        try:
            page = self.loader(kinds, before, PAGE_SIZE)
        except Exception as exc:  # shown by the screen, never a crash
            self.app.call_from_thread(self._failed, str(exc))
            return
        self.app.call_from_thread(self._arrived, generation, page, replace)

    def _failed(self, error: str) -> None:
        self._loading = False
        self.post_message(self.Failed(error))

    def _arrived(self, generation: int, page: list[TimelineEntry], replace: bool) -> None:
        if generation != self._generation:
            return
        more = len(page) >= PAGE_SIZE
        if replace:
            self.show(page, more=more)
        else:
            self._loading = False
            self._append(page, more)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_index >= self.option_count - PREFETCH_MARGIN:
            self.load_more()
