"""The always-visible top of the account screen: who, where and when, flags, balance."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from collect_tui.domain.money import format_money
from collect_tui.services.workspace import AccountView, DebtorView
from collect_tui.widgets.account_fields import freshness_text

FLAG_LABELS = {
    "cease_communication": "CEASE COMMUNICATION",
    "dispute": "DISPUTE",
    "bankruptcy": "BANKRUPTCY",
    "deceased": "DECEASED",
    "time_barred": "TIME-BARRED",
}


def reach_text(debtor: DebtorView) -> Text:
    """Phones and emails with their do-not-contact marks, and the preferred channel."""
    text = Text()
    text.append(f"Prefers {debtor.preferred_channel}  ", style="bold")
    parts: list[tuple[str, str]] = []
    for phone in debtor.phones:
        mark = " [DNC]" if phone.do_not_call else ""
        parts.append((f"{phone.number}{mark}", "red" if phone.do_not_call else ""))
    for email in debtor.emails:
        mark = " [DNE]" if email.do_not_email else ""
        parts.append((f"{email.address}{mark}", "red" if email.do_not_email else ""))
    if not parts:
        text.append("no phone or email on file", style="dim")
    for index, (part, style) in enumerate(parts):
        if index:
            text.append("  ")
        text.append(part, style=style)
    return text


class AccountHeader(Static):
    """Four lines: name and local time; how to reach them; flags and balance; freshness."""

    DEFAULT_CSS = """
    AccountHeader {
        height: 4;
        padding: 0 1;
        background: $boost;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def show_account(self, account: AccountView, now: datetime) -> None:
        """Render ``account`` as seen at ``now`` (local time on the debtor's clock)."""
        debtor = account.debtor
        local = now.astimezone(debtor.local_time.tzinfo)
        clock = f"{local:%a %H:%M} {debtor.time_zone}"
        kind = "company" if debtor.is_company else "person"
        if debtor.contact_person:
            kind += f", contact {debtor.contact_person}"
        width = (self.size.width or 80) - 2
        room = max(0, width - len(clock) - 2)
        first = Text()
        first.append(debtor.name[:room], style="bold")
        first.append(f"  {kind}"[: max(0, room - len(first))], style="dim")
        first.append(" " * max(2, width - len(first) - len(clock)) + clock, style="bold")
        second = reach_text(debtor)
        third = Text()
        if debtor.flags:
            for flag in debtor.flags:
                third.append(f" {FLAG_LABELS.get(flag, flag.upper())} ", style="bold white on red")
                third.append(" ")
        else:
            third.append("No flags ", style="green")
        count = len(account.invoices)
        third.append(
            f" Balance {format_money(account.balance, debtor.currency)} "
            f"in {count} open invoice{'s' if count != 1 else ''}",
            style="bold",
        )
        if account.settlements:
            status = account.settlements[0].status.replace("_", " ")
            third.append(f"  settlement {status}", style="yellow")
        words, wary = freshness_text(account, now)
        fourth = Text(words, style="bold yellow" if wary else "dim")
        joined = Text("\n").join([first, second, third, fourth])
        joined.no_wrap = True
        joined.overflow = "ellipsis"
        self.update(joined, layout=False)  # four lines whatever they say: no layout pass
