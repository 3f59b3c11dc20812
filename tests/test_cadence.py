"""The collection rule over simulated months, on SQLite and PostgreSQL, and the outbound gate."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update
from test_cadence_helpers import NIGHT, Recorder, add_debtor, at, config

from collect_tui.domain.cadence import (
    DEFAULT_CADENCE,
    Cadence,
    CadenceStep,
    current_step,
    step_to_create,
)
from collect_tui.domain.priority import AccountFacts, score_account
from collect_tui.services.agents import create_agent
from collect_tui.services.cadence import run_cadence
from collect_tui.services.compliance import ComplianceBlocked
from collect_tui.services.database import Database
from collect_tui.services.workspace import ValidationFailed, log_contact
from collect_tui.storage.models import Contact, Debtor, Dispute, Email, Invoice, Promise, Task

DUE = date(2026, 3, 2)  # a Monday

# --- the pure rule ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (DUE - timedelta(days=6), None),
        (DUE - timedelta(days=5), "d-5-email"),
        (DUE - timedelta(days=1), "d-5-email"),
        (DUE, "d0-sms"),
        (DUE + timedelta(days=2), "d0-sms"),
        (DUE + timedelta(days=3), "d+3-call"),
        (DUE + timedelta(days=14), "d+3-call"),
        (DUE + timedelta(days=15), "d+15-call"),
        (DUE + timedelta(days=30), "d+30-letter"),
        (DUE + timedelta(days=59), "d+30-letter"),
        (DUE + timedelta(days=60), "d+60-escalate"),
        (DUE + timedelta(days=400), "d+60-escalate"),
    ],
)
def test_current_step_by_day(today: date, expected: str | None) -> None:
    step = current_step(DEFAULT_CADENCE, DUE, today)
    assert (step.key if step else None) == expected


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "d+3-call"),
        ({"done_keys": {"d+3-call"}}, None),
        ({"done_keys": {"d0-sms"}}, "d+3-call"),
        ({"promise": True}, None),
        ({"dispute": True}, None),
        ({"contact_blocked": True}, None),
    ],
)
def test_step_to_create(kwargs: dict[str, object], expected: str | None) -> None:
    step = step_to_create(DEFAULT_CADENCE, DUE, DUE + timedelta(days=4), **kwargs)  # type: ignore[arg-type]
    assert (step.key if step else None) == expected


def test_escalation_goes_ahead_for_a_dispute_and_for_flagged_accounts() -> None:
    today = DUE + timedelta(days=61)
    assert step_to_create(DEFAULT_CADENCE, DUE, today, dispute=True) is not None
    assert step_to_create(DEFAULT_CADENCE, DUE, today, contact_blocked=True) is not None
    assert step_to_create(DEFAULT_CADENCE, DUE, today, promise=True) is None


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "at least one step"),
        ([{"key": "a", "offset_days": 3, "action": "call"}] * 2, "unique"),
        (
            [
                {"key": "a", "offset_days": 3, "action": "call"},
                {"key": "b", "offset_days": 1, "action": "call"},
            ],
            "in order",
        ),
        ([{"key": "a", "offset_days": 3, "action": "email"}], "needs a template"),
        ([{"key": "Bad Key", "offset_days": 3, "action": "call"}], "step key"),
    ],
)
def test_cadence_validation(steps: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Cadence(steps=tuple(CadenceStep(**s) for s in steps))  # type: ignore[arg-type]


def test_step_labels() -> None:
    assert [s.label for s in DEFAULT_CADENCE.steps] == [
        "D-5 email",
        "D0 sms",
        "D+3 call",
        "D+15 call",
        "D+30 letter",
        "D+60 escalate",
    ]


# --- helpers over the database -----------------------------------------------------------------


def _tasks(db: Database, debtor_id: int) -> list[tuple[str, str]]:
    with db.session() as s:
        rows = s.execute(
            select(Task.step_key, Task.status)
            .where(Task.debtor_id == debtor_id, Task.kind == "cadence")
            .order_by(Task.due_at, Task.id)
        ).all()
    return [(key, status) for key, status in rows]


def _contacts(db: Database, debtor_id: int) -> list[tuple[str, str, str]]:
    with db.session() as s:
        rows = s.execute(
            select(Contact.channel, Contact.direction, Contact.disposition)
            .where(Contact.debtor_id == debtor_id)
            .order_by(Contact.started_at, Contact.id)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _simulate(
    db: Database,
    first: date,
    last: date,
    *,
    cfg: object,
    mail: Recorder,
    sms: Recorder,
    daily_for: int = 400,
) -> None:
    """Run the cadence at 10:00 New York time every day from ``first`` to ``last``
    (after ``daily_for`` days, every fifth day: months stay quick to simulate)."""
    day = first
    while day <= last:
        run_cadence(db, now=at(day), config=cfg, email_sender=mail, sms_provider=sms)  # type: ignore[arg-type]
        day += timedelta(days=1 if (day - first).days < daily_for else 5)


# --- simulated months -----------------------------------------------------------------------


def test_three_months_of_daily_runs_walk_the_steps_once(db: Database, tmp_path: object) -> None:
    cfg = config()
    mail, sms = Recorder(), Recorder()
    debtor_id, (invoice_id,) = add_debtor(db, due_dates=[DUE])
    _simulate(
        db,
        DUE - timedelta(days=10),
        DUE + timedelta(days=90),
        cfg=cfg,
        mail=mail,
        sms=sms,
        daily_for=25,
    )
    assert _tasks(db, debtor_id) == [
        ("d-5-email", "done"),
        ("d0-sms", "done"),
        ("d+3-call", "cancelled"),  # not worked before the next call step: superseded
        ("d+15-call", "cancelled"),
        ("d+30-letter", "cancelled"),
        ("d+60-escalate", "open"),
    ]
    assert [m.step_key for m in mail.sent] == ["d-5-email"]
    assert [m.step_key for m in sms.sent] == ["d0-sms"]
    email = mail.sent[0]
    assert email.to == "jane@example.com"
    assert "INV-" in email.subject and "2026-03-02" in email.subject
    for text in ("Acme Supplies Ltd", "1 Main Street, Springfield", "EIN 12-3456789"):
        assert text in email.body
        assert text in sms.sent[0].body
    assert _contacts(db, debtor_id) == [
        ("email", "outbound", "message_sent"),
        ("sms", "outbound", "message_sent"),
    ]
    with db.session() as s:
        escalation = s.scalar(select(Task).where(Task.step_key == "d+60-escalate"))
        assert escalation is not None and escalation.agent_id is None
        assert escalation.invoice_id == invoice_id
        assert "supervisor" in (escalation.note or "")


def test_a_logged_call_completes_the_call_step(db: Database) -> None:
    cfg = config()
    mail, sms = Recorder(), Recorder()
    debtor_id, _ = add_debtor(db, due_dates=[DUE])
    _simulate(db, DUE + timedelta(days=3), DUE + timedelta(days=3), cfg=cfg, mail=mail, sms=sms)
    assert _tasks(db, debtor_id) == [("d+3-call", "open")]
    with db.session() as s:
        s.add(
            Contact(
                debtor_id=debtor_id,
                channel="call",
                direction="outbound",
                started_at=at(DUE + timedelta(days=4)),
                disposition="no_answer",
            )
        )
    _simulate(db, DUE + timedelta(days=5), DUE + timedelta(days=5), cfg=cfg, mail=mail, sms=sms)
    assert _tasks(db, debtor_id) == [("d+3-call", "done")]


def test_a_promise_suspends_and_a_broken_promise_resumes(db: Database) -> None:
    cfg = config()
    mail, sms = Recorder(), Recorder()
    debtor_id, (invoice_id,) = add_debtor(db, due_dates=[DUE])
    _simulate(db, DUE - timedelta(days=1), DUE - timedelta(days=1), cfg=cfg, mail=mail, sms=sms)
    with db.session() as s:
        s.add(
            Promise(
                debtor_id=debtor_id,
                amount=invoice_amount(s, invoice_id),
                currency="USD",
                due_date=DUE + timedelta(days=7),
            )
        )
    _simulate(db, DUE, DUE + timedelta(days=8), cfg=cfg, mail=mail, sms=sms)
    assert _tasks(db, debtor_id) == [("d-5-email", "done")]
    assert [m.step_key for m in sms.sent] == []
    with db.session() as s:
        s.execute(update(Promise).where(Promise.debtor_id == debtor_id).values(status="broken"))
    _simulate(db, DUE + timedelta(days=9), DUE + timedelta(days=9), cfg=cfg, mail=mail, sms=sms)
    # The current step goes ahead; the SMS the promise held back is passed over for good.
    assert _tasks(db, debtor_id) == [("d-5-email", "done"), ("d+3-call", "open")]
    assert sms.sent == []


def invoice_amount(s: object, invoice_id: int) -> object:
    return s.get(Invoice, invoice_id).amount_due  # type: ignore[attr-defined]


def test_an_open_task_is_suspended_by_a_promise_and_resumed(db: Database) -> None:
    cfg = config()
    mail, sms = Recorder(), Recorder()
    debtor_id, (invoice_id,) = add_debtor(db, due_dates=[DUE])
    day = DUE + timedelta(days=3)
    _simulate(db, day, day, cfg=cfg, mail=mail, sms=sms)
    with db.session() as s:
        s.add(Promise(debtor_id=debtor_id, amount=1, currency="USD", due_date=day))
    _simulate(db, day, day, cfg=cfg, mail=mail, sms=sms)
    assert _tasks(db, debtor_id) == [("d+3-call", "suspended")]
    with db.session() as s:
        assert s.get(Debtor, debtor_id).cadence_due_at is None  # type: ignore[union-attr]
        s.execute(update(Promise).where(Promise.debtor_id == debtor_id).values(status="kept"))
    _simulate(db, day, day, cfg=cfg, mail=mail, sms=sms)
    assert _tasks(db, debtor_id) == [("d+3-call", "open")]


def test_a_dispute_suspends_every_contact_step_but_not_escalation(db: Database) -> None:
    cfg = config()
    mail, sms = Recorder(), Recorder()
    debtor_id, (invoice_id,) = add_debtor(db, due_dates=[DUE])
    with db.session() as s:
        s.add(Dispute(debtor_id=debtor_id, invoice_id=invoice_id, reason="wrong amount",
                      received_on=DUE - timedelta(days=20)))  # fmt: skip
    _simulate(
        db,
        DUE - timedelta(days=6),
        DUE + timedelta(days=64),
        cfg=cfg,
        mail=mail,
        sms=sms,
        daily_for=10,
    )
    assert _tasks(db, debtor_id) == [("d+60-escalate", "open")]
    assert mail.sent == [] and sms.sent == []
    assert _contacts(db, debtor_id) == []


def test_a_paid_invoice_gets_no_message_and_its_steps_close(db: Database) -> None:
    cfg = config()
    mail, sms = Recorder(), Recorder()
    debtor_id, (paid, unpaid) = add_debtor(db, due_dates=[DUE, DUE + timedelta(days=1)])
    _simulate(db, DUE - timedelta(days=3), DUE - timedelta(days=3), cfg=cfg, mail=mail, sms=sms)
    assert len(mail.sent) == 2
    with db.session() as s:
        s.execute(update(Invoice).where(Invoice.id == paid).values(status="paid", amount_due=0))
    _simulate(db, DUE, DUE + timedelta(days=1), cfg=cfg, mail=mail, sms=sms)
    assert [m.invoice_id for m in sms.sent] == [unpaid]
    with db.session() as s:
        statuses = dict(
            s.execute(select(Task.step_key, Task.status).where(Task.invoice_id == paid)).all()
        )
    assert statuses == {"d-5-email": "done"}


def test_paid_between_task_and_delivery_is_not_sent(db: Database) -> None:
    cfg = config()
    mail, sms = Recorder(), Recorder()
    debtor_id, (invoice_id,) = add_debtor(db, due_dates=[DUE])
    run_cadence(db, now=at(DUE - timedelta(days=5)), config=cfg, deliver=False)
    with db.session() as s:
        s.execute(update(Invoice).where(Invoice.id == invoice_id).values(status="paid"))
    from collect_tui.services.cadence import CadenceReport, deliver_due

    report = CadenceReport(now=at(DUE - timedelta(days=5)), dry_run=False)
    deliver_due(db, cfg, report.now, report, email_sender=mail, sms_provider=sms)
    assert mail.sent == []
    assert [m.outcome for m in report.messages] == ["cancelled"]
    assert "no longer open" in report.messages[0].reason


@pytest.mark.parametrize("flag", ["cease_communication", "bankruptcy", "deceased"], ids=lambda f: f)
def test_flagged_accounts_get_no_contact_steps(db: Database, flag: str) -> None:
    cfg = config()
    mail, sms = Recorder(), Recorder()
    debtor_id, _ = add_debtor(db, due_dates=[DUE], **{flag: True})
    _simulate(db, DUE - timedelta(days=5), DUE + timedelta(days=3), cfg=cfg, mail=mail, sms=sms)
    assert _tasks(db, debtor_id) == []
    assert mail.sent == [] and sms.sent == []


def test_outside_the_window_the_message_waits_and_goes_once(db: Database) -> None:
    cfg = config()
    mail, sms = Recorder(), Recorder()
    debtor_id, _ = add_debtor(db, due_dates=[DUE])
    day = DUE - timedelta(days=5)
    night = run_cadence(db, now=at(day, NIGHT), config=cfg, email_sender=mail, sms_provider=sms)
    assert [m.outcome for m in night.messages] == ["waiting"]
    assert "outside contact hours" in night.messages[0].reason
    assert mail.sent == []
    for _ in range(3):
        run_cadence(db, now=at(day), config=cfg, email_sender=mail, sms_provider=sms)
    assert len(mail.sent) == 1
    assert _tasks(db, debtor_id) == [("d-5-email", "done")]


def test_do_not_email_and_no_sms_consent_cancel_the_step(db: Database) -> None:
    cfg = config()
    mail, sms = Recorder(), Recorder()
    debtor_id, _ = add_debtor(db, due_dates=[DUE], sms_consent=False)
    with db.session() as s:
        s.execute(update(Email).where(Email.debtor_id == debtor_id).values(do_not_email=True))
    _simulate(db, DUE - timedelta(days=5), DUE, cfg=cfg, mail=mail, sms=sms)
    assert mail.sent == [] and sms.sent == []
    assert _tasks(db, debtor_id) == [("d-5-email", "cancelled"), ("d0-sms", "cancelled")]


def test_dry_run_saves_and_sends_nothing(db: Database) -> None:
    cfg = config()
    mail, sms = Recorder(), Recorder()
    add_debtor(db, due_dates=[DUE])
    report = run_cadence(
        db,
        now=at(DUE - timedelta(days=5)),
        config=cfg,
        dry_run=True,
        email_sender=mail,
        sms_provider=sms,
    )
    assert report.created_total == 1
    assert [m.outcome for m in report.messages] == ["would_send"]
    assert "Acme Supplies Ltd" in report.messages[0].body
    assert mail.sent == []
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Task)) == 0
        assert s.scalar(select(func.count()).select_from(Contact)) == 0


def test_due_step_feeds_the_queue_reason(db: Database) -> None:
    cfg = config()
    debtor_id, _ = add_debtor(db, due_dates=[DUE])
    now = at(DUE + timedelta(days=3))
    run_cadence(db, now=now, config=cfg, deliver=False)
    with db.session() as s:
        debtor = s.get(Debtor, debtor_id)
        assert debtor is not None
        assert debtor.cadence_due_at == at(DUE + timedelta(days=3), NIGHT.replace(hour=0))
        facts = AccountFacts(
            balance=debtor.open_balance,
            currency=debtor.currency,
            oldest_due_date=debtor.oldest_due_date,
            cadence_due_at=debtor.cadence_due_at,
        )
    assert "cadence step due" in score_account(facts, today=now.date(), now=now).reasons


def test_segments_have_their_own_cadence(db: Database) -> None:
    cfg = config(
        """
[cadence.commercial]
steps = [
  { key = "c-d+1-call", offset_days = 1, action = "call" },
  { key = "c-d+10-escalate", offset_days = 10, action = "escalate" },
]
"""
    )
    consumer, _ = add_debtor(db, due_dates=[DUE])
    company, _ = add_debtor(db, due_dates=[DUE], name="Granite LLC", segment="commercial")
    run_cadence(db, now=at(DUE + timedelta(days=3)), config=cfg, deliver=False)
    assert _tasks(db, consumer) == [("d+3-call", "open")]
    assert _tasks(db, company) == [("c-d+1-call", "open")]


def test_a_step_is_never_repeated_even_after_a_new_due_date(db: Database) -> None:
    cfg = config()
    mail, sms = Recorder(), Recorder()
    debtor_id, (invoice_id,) = add_debtor(db, due_dates=[DUE])
    _simulate(db, DUE - timedelta(days=5), DUE - timedelta(days=5), cfg=cfg, mail=mail, sms=sms)
    with db.session() as s:
        s.execute(
            update(Invoice)
            .where(Invoice.id == invoice_id)
            .values(due_date=DUE + timedelta(days=30))
        )
    _simulate(db, DUE + timedelta(days=25), DUE + timedelta(days=26), cfg=cfg, mail=mail, sms=sms)
    assert len(mail.sent) == 1


# --- the outbound gate in log_contact -------------------------------------------------------


def _agent_and_debtor(db: Database, **flags: object) -> tuple[object, int, int]:
    agent = create_agent(db, "ann", role="agent")
    debtor_id, _ = add_debtor(db, due_dates=[DUE], **flags)
    with db.session() as s:
        s.execute(update(Debtor).where(Debtor.id == debtor_id).values(assigned_agent_id=agent.id))
        version = s.get(Debtor, debtor_id).version  # type: ignore[union-attr]
    return agent, debtor_id, version


def _version(db: Database, debtor_id: int) -> int:
    with db.session() as s:
        return s.get(Debtor, debtor_id).version  # type: ignore[union-attr]


def test_outbound_call_at_night_is_refused_inbound_is_logged(db: Database) -> None:
    agent, debtor_id, version = _agent_and_debtor(db)
    night = at(DUE, NIGHT)
    with pytest.raises(ComplianceBlocked) as caught:
        log_contact(db, agent, debtor_id, version, channel="call", address="+1 617 555 0100",
                    disposition="no_answer", now=night)  # fmt: skip
    assert isinstance(caught.value, ValidationFailed)
    assert "outside contact hours" in str(caught.value)
    assert caught.value.decision.next_allowed_at is not None
    log_contact(db, agent, debtor_id, version, channel="call", direction="inbound",
                disposition="right_party", now=night)  # fmt: skip
    assert _contacts(db, debtor_id) == [("call", "inbound", "right_party")]


def test_cease_communication_blocks_outbound_with_the_reason(db: Database) -> None:
    agent, debtor_id, version = _agent_and_debtor(db, cease_communication=True)
    with pytest.raises(ComplianceBlocked, match="cease communication"):
        log_contact(db, agent, debtor_id, version, channel="email", address="jane@example.com",
                    disposition="no_answer", now=at(DUE))  # fmt: skip
    assert _contacts(db, debtor_id) == []


def test_the_eighth_call_in_seven_days_is_refused_and_cached(db: Database) -> None:
    agent, debtor_id, _ = _agent_and_debtor(db)
    for day in range(7):
        log_contact(db, agent, debtor_id, _version(db, debtor_id), channel="call",
                    address="+1 617 555 0100", disposition="no_answer",
                    now=at(DUE + timedelta(days=day // 2)))  # fmt: skip
    with db.session() as s:
        debtor = s.get(Debtor, debtor_id)
        assert debtor is not None and debtor.contact_blocked_until is not None
        assert "limit 7" in (debtor.contact_block_reason or "")
    with pytest.raises(ComplianceBlocked, match="limit 7"):
        log_contact(db, agent, debtor_id, _version(db, debtor_id), channel="call",
                    address="+1 617 555 0100", disposition="no_answer",
                    now=at(DUE + timedelta(days=4)))  # fmt: skip
    # Seven days after the first date of the window, calls are allowed again.
    log_contact(db, agent, debtor_id, _version(db, debtor_id), channel="call",
                address="+1 617 555 0100", disposition="no_answer",
                now=at(DUE + timedelta(days=7)))  # fmt: skip


def test_do_not_call_number_is_refused(db: Database) -> None:
    from collect_tui.storage.models import Phone

    agent, debtor_id, version = _agent_and_debtor(db)
    with db.session() as s:
        s.execute(update(Phone).where(Phone.debtor_id == debtor_id).values(do_not_call=True))
    with pytest.raises(ComplianceBlocked, match="do-not-contact"):
        log_contact(db, agent, debtor_id, version, channel="call", address="(617) 555-0100",
                    disposition="no_answer", now=at(DUE))  # fmt: skip
