"""The rules file: defaults, a full example, one clear error per bad file, and its use."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from collect_tui import cli
from collect_tui.services import compliance_config
from collect_tui.services.compliance_config import (
    ConfigError,
    active,
    default_config,
    install,
    load_config,
    parse_config,
)
from collect_tui.services.database import Database
from collect_tui.services.seed import seed_portfolio

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.delenv(compliance_config.ENV_RULES, raising=False)
    monkeypatch.setattr(compliance_config, "default_rules_path", lambda: tmp_path / "none.toml")
    compliance_config.reset()
    yield
    compliance_config.reset()


def _readme_example() -> str:
    text = README.read_text()
    section = text[text.index("## Compliance rules and cadence") :]
    return re.search(r"```toml\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_no_file_means_the_builtin_rules() -> None:
    config = load_config()
    assert config.source is None
    assert config.rules_for("US").call_frequency.max_attempts == 7
    assert config.rules_for("US", "MA").call_frequency.max_attempts == 2
    assert [s.key for s in config.cadences["standard"].steps][0] == "d-5-email"
    assert config.smtp is None and config.sms.provider == "file"


def test_the_readme_example_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(_readme_example())
    config = load_config(path, today=date(2026, 6, 1))
    assert config.source == path
    ca = config.rules_for("US", "CA")
    assert 6 in ca.weekend_days
    assert ca.day_windows[5].start == time(9)
    assert date(2026, 12, 25) in ca.holidays and date(2026, 12, 24) in ca.holidays
    assert date(2026, 3, 31) in ca.holidays  # Cesar Chavez Day, California only
    assert date(2026, 3, 31) not in config.rules_for("US").holidays
    ma = config.rules_for("US", "MA")
    assert ma.call_frequency.max_attempts == 2 and ma.call_frequency.counts_text_messages
    br = config.rules_for("BR")
    assert br.window.end == time(20) and 6 in br.weekend_days
    assert date(2026, 7, 9) in br.holidays  # Sao Paulo state: Revolucao Constitucionalista
    assert [s.key for s in config.cadences["commercial"].steps] == [
        "b-d-7-email",
        "b-d+10-call",
        "b-d+45-escalate",
    ]
    escalate = config.cadences["standard"].step("d+60-escalate")
    assert escalate is not None and escalate.suspend_on == frozenset({"promise"})
    assert config.smtp is not None and config.smtp.sender.startswith("Acme Collections")
    assert config.creditor.tax_id == "EIN 12-3456789"


def test_a_region_keeps_the_builtin_rules_it_does_not_name() -> None:
    config = parse_config('[rules.BR]\nwindow = { start = "09:00", end = "18:00" }\n', "r.toml")
    br = config.rules_for("BR")
    assert (br.window.start, br.window.end) == (time(9), time(18))
    assert 6 in br.weekend_days  # still no Sundays


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ('[rules.US]\nwindow = { start = "25:00", end = "21:00" }\n', 2,
         "rules.US.window.start", "not a time of day"),
        ('[rules.US]\n\nwindow = { start = "21:00", end = "08:00" }\n', 3,
         "rules.US.window", "must be before end"),
        ("[rules.US]\nno_contact_days = [\"Caturday\"]\n", 2,
         "rules.US.no_contact_days", "not a weekday"),
        ("[rules.US.call_frequency]\nmax_attempts = -1\n", 1,
         "rules.US.call_frequency", "must be >= 0"),
        ("[rules.US.call_frequency]\nmax_atempts = 3\n", 2,
         "rules.US.call_frequency.max_atempts", "unknown key"),
        ("[rules.Texas]\nwindow = { start = \"08:00\", end = \"20:00\" }\n", 1,
         "rules", "jurisdiction"),
        ('[creditor]\nname = "A"\n\n[smtp]\nhost = "smtp.example"\nport = 99999\nfrom = "a@b"\n', 6,
         "smtp.port", "less than or equal to 65535"),
        ('[smtp]\nhost = "smtp.example"\n', 1, "smtp.from", "required key is missing"),
        ("[cadence.standard]\nsteps = [\n  { key = \"a\", offset_days = 5, action = \"call\" },\n"
         "  { key = \"b\", offset_days = 1, action = \"fax\" },\n]\n", 4,
         "cadence.standard.steps[1].action", "'email', 'sms', 'call', 'letter' or 'escalate'"),
        ("[cadence.standard]\nsteps = [\n  { key = \"a\", offset_days = 5, action = \"call\" },\n"
         "  { key = \"b\", offset_days = 1, action = \"call\" },\n]\n", 2,
         "cadence.standard.steps", "in order of offset_days"),
        ("[[cadence.vip.steps]]\nkey = \"a\"\noffset_days = 1\naction = \"call\"\n\n"
         "[[cadence.vip.steps]]\nkey = \"b\"\noffset_days = 2\naction = \"email\"\n", 6,
         "cadence.vip.steps[1]", "needs a template"),
        ("[rules.US]\nholiday_calendar = { country = \"XX\" }\n", 2,
         "rules.US.holiday_calendar", "no calendar"),
        ("[rules.US\nwindow = 1\n", 1, "", "not valid TOML"),
        ('[sms]\nprovider = "http"\nurl = "ftp://x"\n', 3, "sms.url", "https://"),
        ("colour = 'blue'\n", 1, "colour", "unknown key"),
        ('[sms]\nprovider = "http"\n', 1, "sms", "needs a url"),
        ('[delivery]\ntemplates_dir = "/no/such/dir"\n', 2, "delivery.templates_dir",
         "no such folder"),
    ],
)  # fmt: skip
def test_a_bad_file_gets_one_error_with_file_line_and_key(
    text: str, line: int, key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "/etc/rules.toml", today=date(2026, 1, 1))
    error = caught.value
    message = str(error)
    assert message.startswith("/etc/rules.toml")
    assert error.line == line, message
    assert f", line {line}" in message
    if key:
        assert error.key == key, message
        assert f"key '{key}'" in message
    assert words in message
    assert "\n" not in message


def test_an_explicit_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.toml")


def test_the_environment_variable_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "env.toml"
    path.write_text('[creditor]\nname = "From Env"\n')
    monkeypatch.setenv(compliance_config.ENV_RULES, str(path))
    assert load_config().creditor.name == "From Env"


def test_a_bad_file_stops_the_cli_with_exit_2_and_nothing_installed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        '[creditor]\nname = "Half"\n\n[rules.US]\nwindow = { start = "8", end = "21:00" }\n'
    )
    db = f"sqlite:///{tmp_path / 'x.db'}"
    assert cli.main(["cadence", "--db", db, "--rules", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"collect-tui: error: {path}, line 5, key 'rules.US.window.start'")
    assert active().creditor.name == default_config().creditor.name  # nothing half-read
    assert not (tmp_path / "x.db").exists()
    assert cli.main(["--rules", str(path), "report", "--db", db]) == 2


def test_the_cli_installs_a_good_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[creditor]\nname = "Installed Ltd"\n')
    db = f"sqlite:///{tmp_path / 'x.db'}"
    assert cli.main(["cadence", "--db", db, "--rules", str(path), "--dry-run"]) == 0
    assert active().creditor.name == "Installed Ltd"
    assert "dry run" in capsys.readouterr().out


def test_contactable_now_uses_the_installed_rules(sqlite_db: object) -> None:
    from collect_tui.services.contactability import forget_jurisdictions, open_jurisdictions
    from collect_tui.storage.models import Debtor

    db: Database = sqlite_db  # type: ignore[assignment]
    with db.session() as s:
        s.add(Debtor(name="A", country="US", region="NY", time_zone="America/New_York"))
    ten_am_ny = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    forget_jurisdictions(db)
    assert open_jurisdictions(db, ten_am_ny) == (("US", "NY", "America/New_York"),)
    install(parse_config('[rules.US]\nwindow = { start = "11:00", end = "17:00" }\n', "r.toml"))
    assert open_jurisdictions(db, ten_am_ny) == ()
    install(parse_config('[rules.US-NY]\nno_contact_days = ["Monday"]\n', "r.toml"))
    assert open_jurisdictions(db, ten_am_ny) == ()  # 2 March 2026 is a Monday


def test_an_expired_jurisdiction_list_is_read_again_in_the_background(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key press waits for the walk over every debtor once the list has expired: the
    old list is answered while a thread reads the new one."""
    import threading

    from collect_tui.services import contactability

    seed_portfolio(sqlite_db.engine, debtors=30, agents=1, seed=2)
    contactability.forget_jurisdictions(sqlite_db)
    first = contactability.jurisdictions_in_use(sqlite_db)
    started = threading.Event()
    release = threading.Event()
    real = contactability._refresh

    def slow(db: Database, key: int) -> list[tuple[str, str | None, str]]:
        started.set()
        release.wait(5)
        return real(db, key)

    monkeypatch.setattr(contactability, "_refresh", slow)
    monkeypatch.setattr(contactability, "_CACHE_SECONDS", 0.0)
    key = id(sqlite_db.engine)
    contactability._cache[key] = (0.0, first)  # expired
    assert contactability.jurisdictions_in_use(sqlite_db) is first, "answered at once"
    assert started.wait(5), "read again in a thread"
    assert contactability.jurisdictions_in_use(sqlite_db) is first, "one reader at a time"
    release.set()
    for _ in range(100):
        if key not in contactability._refreshing:
            break
        threading.Event().wait(0.02)
    assert contactability._cache[key][1] == first and contactability._cache[key][1] is not first


def test_the_first_list_read_early_is_waited_for_not_read_twice(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app starts reading the list as soon as the database is open; the queue's
    first read then takes that list instead of walking the debtors a second time."""
    import threading

    from collect_tui.services import contactability

    seed_portfolio(sqlite_db.engine, debtors=30, agents=1, seed=2)
    contactability.forget_jurisdictions(sqlite_db)
    reads: list[int] = []
    release = threading.Event()
    real = contactability._refresh

    def slow(db: Database, key: int) -> list[tuple[str, str | None, str]]:
        reads.append(key)
        release.wait(5)
        return real(db, key)

    monkeypatch.setattr(contactability, "_refresh", slow)
    contactability.read_jurisdictions_soon(sqlite_db)
    contactability.read_jurisdictions_soon(sqlite_db)  # one early read, however often asked
    threading.Timer(0.1, release.set).start()
    found = contactability.jurisdictions_in_use(sqlite_db)
    assert len(reads) == 1
    assert found and found == real(sqlite_db, id(sqlite_db.engine))
