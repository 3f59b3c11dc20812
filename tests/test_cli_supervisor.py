"""``collect-tui rebalance``, ``kpis`` and the KPIs in ``report``: supervisors only, one-line
errors with exit status 2, the plan printed before anything moves."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from collect_tui import cli
from collect_tui.cli import main
from collect_tui.services.database import open_database
from collect_tui.services.seed import seed_portfolio
from collect_tui.storage.models import Assignment, AuditEntry, Debtor

TODAY = datetime.now(UTC).date()


@pytest.fixture
def url(db_url: str) -> str:
    """A seeded portfolio: alice, bruno, chen, supervisor, admin; 240 accounts."""
    db = open_database(db_url)
    try:
        seed_portfolio(db.engine, debtors=240, agents=3, seed=3, as_of=TODAY)
    finally:
        db.close()
    return db_url


def _owners(url: str) -> dict[int, int | None]:
    db = open_database(url)
    try:
        with db.session() as session:
            return dict(session.execute(select(Debtor.id, Debtor.assigned_agent_id)).all())
    finally:
        db.close()


def _count(url: str, model: object) -> int:
    db = open_database(url)
    try:
        with db.session() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0  # type: ignore[arg-type]
    finally:
        db.close()


def _one_line_error(capsys: pytest.CaptureFixture[str], needle: str) -> str:
    err = capsys.readouterr().err
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    return err


def test_help_lists_the_supervisor_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "rebalance" in out
    assert "kpis" in out


@pytest.mark.parametrize("command", [["rebalance"], ["rebalance", "--apply"], ["kpis"]])
def test_an_agent_is_refused_and_nothing_moves(
    url: str, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    before = _owners(url)
    assert main([*command, "--db", url, "--as", "alice"]) == 2
    assert "alice signed in as agent" in _one_line_error(capsys, "Only supervisors can")
    assert _owners(url) == before


def test_the_caller_defaults_to_the_os_user(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_default_agent", lambda: "bruno")
    assert main(["rebalance", "--db", url]) == 2
    _one_line_error(capsys, "bruno signed in as agent")
    monkeypatch.setattr(cli, "_default_agent", lambda: "nobody")
    assert main(["kpis", "--db", url]) == 2
    _one_line_error(capsys, "no agent named 'nobody'")
    monkeypatch.setattr(cli, "_default_agent", lambda: "supervisor")
    assert main(["rebalance", "--db", url]) == 0
    assert "Preview only" in capsys.readouterr().out


def test_preview_prints_the_plan_and_moves_nothing(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _owners(url)
    assert main(["rebalance", "--db", url, "--as", "supervisor", "--by", "balance"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Rebalance by balance (USD):")
    for name in ("alice", "bruno", "chen"):
        assert name in out
    assert "Preview only, nothing moved" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert _owners(url) == before
    assert _count(url, Assignment) == 0


def test_apply_moves_exactly_the_printed_plan(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = _owners(url)
    assert main(["rebalance", "--db", url, "--as", "supervisor", "--json"]) == 0
    preview = json.loads(capsys.readouterr().out)
    assert preview["applied"] is False and preview["measure"] == "count"
    assert main(["rebalance", "--db", url, "--as", "admin", "--json", "--apply"]) == 0
    applied = json.loads(capsys.readouterr().out)
    assert applied["applied"] is True
    assert applied["moves"] == preview["moves"]
    after = _owners(url)
    moved = {m["debtor_id"]: m["to_agent_id"] for m in applied["moves"]}
    assert {d for d in after if after[d] != before[d]} == set(moved)
    assert all(after[d] == to for d, to in moved.items())
    assert _count(url, Assignment) == len(moved)
    counts = [a["after"]["count"] for a in applied["agents"]]
    assert max(counts) - min(counts) <= 1
    # Applying again finds nothing to move.
    assert main(["rebalance", "--db", url, "--as", "supervisor", "--apply"]) == 0
    assert "Applied: 0 account(s) moved." in capsys.readouterr().out
    db = open_database(url)
    try:
        with db.session() as session:
            actions = session.scalars(select(AuditEntry.action)).all()
    finally:
        db.close()
    assert actions.count("rebalance") == 1


def test_agents_absent_and_pool_options(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["rebalance", "--db", url, "--as", "supervisor", "--json"]
    assert main([*args, "--agents", "alice,bruno"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert {a["agent"] for a in plan["agents"]} == {"alice", "bruno"}
    assert main([*args, "--absent", "chen", "--pool"]) == 0
    plan = json.loads(capsys.readouterr().out)
    chen = next(a for a in plan["agents"] if a["agent"] == "chen")
    assert chen["present"] is False and chen["moved_in"] == 0
    assert plan["pool"] is not None
    assert main([*args, "--agents", "alice,zed"]) == 2
    _one_line_error(capsys, "--agents: no active agent named 'zed'")
    assert main([*args, "--agents", ","]) == 2
    _one_line_error(capsys, "give at least one agent name")


def test_kpis_command_and_the_report_carry_the_same_numbers(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    day = TODAY.isoformat()
    assert main(["kpis", "--db", url, "--as", "supervisor", "--as-of", day]) == 0
    text = capsys.readouterr().out
    for needle in ("Aging (open invoices, USD)", "DSO and CEI by month", "Per agent", "(team)"):
        assert needle in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert main(["kpis", "--db", url, "--as", "supervisor", "--as-of", day, "--json"]) == 0
    kpis = json.loads(capsys.readouterr().out)
    assert main(["report", "--db", url, "--as-of", day, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("aging", "collected_total", "months", "agents", "team", "contacts_by_hour"):
        assert report["kpis"][key] == kpis[key]
    assert main(["report", "--db", url, "--as-of", day]) == 0
    out = capsys.readouterr().out
    assert "DSO and CEI by month" in out
    assert f"Collected in {kpis['window_days']} days  USD" in out
