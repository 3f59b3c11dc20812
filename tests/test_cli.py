"""The command line as a user meets it: clear one-line errors, working commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from collect_tui.cli import main


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collect_tui.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_help_lists_every_command(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("demo", "seed", "report", "db", "agent"):
        assert command in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["report", "--db", "nonsense"], "not a database URL"),
        (["report", "--db", "postgresql+psycopg://u:hunter2@127.0.0.1:1/x"], "cannot reach"),
        (["report", "--db", "sqlite:////no/such/dir/x.db"], "does not exist"),
        (["seed", "--db", "oracle://x/y"], "unsupported database"),
    ],
)
def test_bad_database_gives_one_line_and_nonzero_exit(args: list[str], needle: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_seed_report_and_agents_end_to_end(tmp_path, capsys) -> None:
    url = f"sqlite:///{tmp_path}/p.db"
    assert main(["seed", "--db", url, "--debtors", "150", "--agents", "2", "--seed", "4"]) == 0
    assert "seeded" in capsys.readouterr().out
    assert main(["report", "--db", url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["debtors"] == 150
    assert main(["report", "--db", url]) == 0
    assert "Open balance" in capsys.readouterr().out
    assert main(["agent", "add", "zed", "--role", "supervisor", "--db", url]) == 0
    assert main(["agent", "add", "zed", "--db", url]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["agent", "list", "--db", url]) == 0
    assert "zed" in capsys.readouterr().out
    assert main(["db", "upgrade", "--db", url]) == 0
    assert "already at schema" in capsys.readouterr().out


def test_newer_schema_is_refused_from_the_cli(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/n.db"
    assert main(["db", "upgrade", "--db", url]) == 0
    import sqlite3

    conn = sqlite3.connect(f"{tmp_path}/n.db")
    conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.commit()
    conn.close()
    result = run_cli("report", "--db", url)
    assert result.returncode == 2
    assert "newer than this collect-tui" in result.stderr


def test_unknown_agent_gets_instructions_not_a_traceback(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    assert main(["seed", "--db", url, "--debtors", "10", "--agents", "1"]) == 0
    result = run_cli("--db", url, "--agent", "nobody")
    assert result.returncode == 2
    assert "no agent named 'nobody'" in result.stderr
    assert "collect-tui agent add nobody" in result.stderr
    assert "alice" in result.stderr
    assert "Traceback" not in result.stderr


def test_read_only_database_is_reported_clearly(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/ro.db"
    assert main(["seed", "--db", url, "--debtors", "5", "--agents", "1"]) == 0
    result = run_cli("seed", "--db", f"sqlite:///file:{tmp_path}/ro.db?mode=ro&uri=true")
    assert result.returncode == 2
    assert "read-only" in result.stderr
    assert "Traceback" not in result.stderr
