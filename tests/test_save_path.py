"""The hot path of a team at work, on both engines: what ``n`` (claim_next) and a save
(log_contact) send to the database, and that the few statements still do everything."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import test_workspace as workspace_tests
from sqlalchemy import event, func, select
from sqlalchemy.dialects import postgresql

from collect_tui import clock
from collect_tui.domain.priority import DEFAULT_WEIGHTS
from collect_tui.services import claims
from collect_tui.services.agents import get_agent
from collect_tui.services.claims import claim_next, new_session_id
from collect_tui.services.compliance import ComplianceBlocked
from collect_tui.services.database import Database
from collect_tui.services.workspace import PromiseInput, StaleEdit, log_contact
from collect_tui.storage.models import AuditEntry, Contact, Debtor, Invoice, OutboxMessage
from collect_tui.storage.scoring import rescore, store_weights

# The workspace tests' day, clock inside contact hours, portfolio and clean account.
TODAY = workspace_tests.TODAY
_inside_contact_hours = workspace_tests._inside_contact_hours
portfolio = workspace_tests.portfolio
_account = workspace_tests._account


@contextmanager
def _statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements the app sends meanwhile (not the driver's own BEGIN/COMMIT)."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(args[2])

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def _debtor(db: Database, debtor_id: int) -> Any:
    with db.session() as session:
        return session.execute(
            select(
                Debtor.version,
                Debtor.contact_blocked_until,
                Debtor.contact_block_reason,
                Debtor.priority_score,
                Debtor.last_contact_at,
            ).where(Debtor.id == debtor_id)
        ).one()


def test_a_plain_save_sends_four_or_eight_statements_and_writes_all(portfolio: Database) -> None:
    alice = get_agent(portfolio, "alice")
    debtor_id = _account(portfolio, alice)
    before = _debtor(portfolio, debtor_id)
    with _statements(portfolio) as sent:
        contact_id = log_contact(
            portfolio, alice, debtor_id, before.version, channel="call",
            disposition="no_answer", notes="hot path",
        )  # fmt: skip
    # access, the one read of the rest, then on PostgreSQL one statement for the version
    # bump, contact, audit and history note, and one for the rescore; on SQLite four
    # statements for those writes and two (facts, score) for the rescore
    expected = 4 if portfolio.engine.dialect.name == "postgresql" else 8
    assert len(sent) == expected, sent
    after = _debtor(portfolio, debtor_id)
    assert after.version == before.version + 1
    assert after.last_contact_at is not None
    with portfolio.session() as session:
        audited = session.scalars(
            select(AuditEntry.action).where(AuditEntry.entity_id == str(contact_id))
        ).all()
        assert audited == ["contact.logged"]
        oldest = session.execute(
            select(Invoice.external_id)
            .where(Invoice.debtor_id == debtor_id, Invoice.status == "open")
            .order_by(Invoice.due_date, Invoice.id)
            .limit(1)
        ).scalar_one()
        note = session.execute(
            select(OutboxMessage.invoice_external_id, OutboxMessage.payload).where(
                OutboxMessage.debtor_id == debtor_id, OutboxMessage.kind == "history_note"
            )
        ).one()
    assert note[0] == oldest  # the oldest open invoice, as before
    assert "hot path" in note[1]["details"]


def _counts(db: Database, debtor_id: int) -> tuple[int, int, int]:
    with db.session() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).where(column == debtor_id))
            for column in (Contact.debtor_id, AuditEntry.debtor_id, OutboxMessage.debtor_id)
        )


def test_a_save_that_loses_the_race_after_its_checks_writes_nothing(portfolio: Database) -> None:
    if portfolio.engine.dialect.name != "postgresql":
        pytest.skip("the save's writes are one statement on PostgreSQL only")
    alice = get_agent(portfolio, "alice")
    debtor_id = _account(portfolio, alice)
    before = _debtor(portfolio, debtor_id)
    counts = _counts(portfolio, debtor_id)

    def another_save_commits_first(*args: Any) -> None:
        if "INSERT INTO contacts" in args[2] and not raced:
            raced.append(True)
            with portfolio.engine.begin() as other:  # another session, committed now
                other.execute(
                    Debtor.__table__.update()
                    .where(Debtor.id == debtor_id)
                    .values(version=Debtor.version + 1)
                )

    raced: list[bool] = []
    event.listen(portfolio.engine, "before_cursor_execute", another_save_commits_first)
    try:
        with pytest.raises(StaleEdit):
            log_contact(
                portfolio, alice, debtor_id, before.version, channel="call",
                disposition="left_message", notes="lost the race",
            )  # fmt: skip
    finally:
        event.remove(portfolio.engine, "before_cursor_execute", another_save_commits_first)
    assert raced
    assert _counts(portfolio, debtor_id) == counts  # no contact, audit or outbox row
    assert _debtor(portfolio, debtor_id).version == before.version + 1  # the other's bump


def test_the_call_block_joins_the_version_bump_and_then_refuses(portfolio: Database) -> None:
    alice = get_agent(portfolio, "alice")
    debtor_id = _account(portfolio, alice)
    for _ in range(12):
        before = _debtor(portfolio, debtor_id)
        log_contact(
            portfolio, alice, debtor_id, before.version, channel="call",
            disposition="left_message",
        )  # fmt: skip
        after = _debtor(portfolio, debtor_id)
        assert after.version == before.version + 1  # one bump, block or not
        if after.contact_blocked_until is not None:
            break
    else:
        pytest.fail("the call cap never blocked the account")
    assert after.contact_block_reason
    with portfolio.session() as session:
        contacts = session.scalar(select(func.count()).where(Contact.debtor_id == debtor_id))
    with pytest.raises(ComplianceBlocked):
        log_contact(
            portfolio, alice, debtor_id, after.version, channel="call", disposition="no_answer"
        )
    with portfolio.session() as session:
        assert session.scalar(select(func.count()).where(Contact.debtor_id == debtor_id)) == (
            contacts
        )
    assert _debtor(portfolio, debtor_id).version == after.version  # nothing written


def test_the_save_scores_with_the_stored_weights(portfolio: Database) -> None:
    alice = get_agent(portfolio, "alice")
    debtor_id = _account(portfolio, alice)
    weights = DEFAULT_WEIGHTS.model_copy(update={"balance": 90.0, "no_contact": 0.0})
    with portfolio.session() as session:
        store_weights(session.connection(), weights)
    version = _debtor(portfolio, debtor_id).version
    log_contact(
        portfolio, alice, debtor_id, version, channel="call", disposition="promise",
        promise=PromiseInput(amount=Decimal("50.00"), due_date=TODAY + timedelta(days=5)),
    )  # fmt: skip
    saved = _debtor(portfolio, debtor_id).priority_score
    with portfolio.session() as session:  # the same rescore, reading the weights itself
        now = clock.now()
        rescore(session.connection(), today=now.date(), now=now, debtor_ids=[debtor_id])
    assert _debtor(portfolio, debtor_id).priority_score == pytest.approx(saved)
    with portfolio.session() as session:  # and not what the default weights give
        now = clock.now()
        rescore(
            session.connection(), today=now.date(), now=now, debtor_ids=[debtor_id],
            weights=DEFAULT_WEIGHTS,
        )  # fmt: skip
    assert _debtor(portfolio, debtor_id).priority_score != pytest.approx(saved)


def test_the_candidate_read_is_one_text_whatever_the_open_jurisdictions() -> None:
    windows = [("US", "NY", "America/New_York"), ("DE", None, "Europe/Berlin")]
    assert claims._window_param("postgresql", windows) == [
        "US\x1fNY\x1fAmerica/New_York",
        "DE\x1f\x1fEurope/Berlin",
    ]
    assert claims._window_param("sqlite", windows) == [
        ("US", "NY", "America/New_York"),
        ("DE", "", "Europe/Berlin"),
    ]
    # A jurisdiction without a country or zone never matched (NULL) and still does not.
    assert claims._window_param("postgresql", [(None, None, "UTC")]) == []  # type: ignore[list-item]
    assert claims._candidates_for("postgresql", True) is claims._candidates_for("postgresql", True)
    # psycopg converts a statement's placeholders once only for texts under 4096 bytes
    # and with at most 50 parameters; others are parsed again at every claim.
    compiled = claims._candidates_for("postgresql", True).compile(dialect=postgresql.dialect())
    assert len(str(compiled).encode()) < 4096
    assert len(compiled.params) <= 50


def test_claims_send_the_same_statements_each_time(portfolio: Database) -> None:
    alice = get_agent(portfolio, "alice")
    session_id = new_session_id()
    texts: list[list[str]] = []
    held: list[int] = []
    for _ in range(4):  # the first one also reads the jurisdictions in use (cached)
        with _statements(portfolio) as sent:
            claimed = claim_next(portfolio, alice, session_id=session_id, now=clock.now())
        assert claimed is not None
        held.append(claimed.row.debtor_id)
        texts.append(sent)
        log_contact(
            portfolio, alice, claimed.row.debtor_id, claimed.version, channel="call",
            disposition="no_answer",
        )  # fmt: skip
    for sent in texts[1:]:
        if portfolio.engine.dialect.name == "postgresql":
            # plan mode, candidates, and one write: release, (pool: take, history, audit,)
            assert len(sent) == 3, sent  # claim
        else:  # release, expired, candidates, (pool: take, history, audit,) claim
            assert len(sent) <= 7, sent
    candidate_reads = {text for sent in texts[1:] for text in sent if "branch" in text}
    assert len(candidate_reads) == 1  # one text (prepared once), one round trip
    assert len(set(held)) == 4  # a saved account moves down the queue; nothing repeats
