"""Priority weights are stored in the database and used by every rescore, full or incremental."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from collect_tui.cli import main
from collect_tui.domain.priority import DEFAULT_WEIGHTS, PriorityWeights
from collect_tui.services.database import Database
from collect_tui.services.scoring import (
    WeightsFileError,
    current_weights,
    read_weights_file,
    set_weights,
)
from collect_tui.services.seed import seed_portfolio
from collect_tui.storage.models import Debtor
from collect_tui.storage.scoring import rescore

AS_OF = date(2026, 11, 2)
NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


def _scores(db: Database) -> dict[int, float]:
    with db.session() as session:
        return dict(session.execute(select(Debtor.id, Debtor.priority_score)).all())


def test_new_weights_are_stored_and_rescore_everything(db: Database) -> None:
    seed_portfolio(db.engine, debtors=120, agents=2, seed=4, as_of=AS_OF)
    assert current_weights(db) == DEFAULT_WEIGHTS
    before = _scores(db)
    heavier = PriorityWeights(balance=90.0, no_contact=0.0)
    assert set_weights(db, heavier, now=NOW) == 120
    assert current_weights(db) == heavier
    after = _scores(db)
    assert after != before
    # An incremental rescore (an event on one account) uses the stored weights too.
    some_id = next(iter(after))
    with db.session() as session:
        session.execute(
            Debtor.__table__.update().where(Debtor.id == some_id).values(priority_score=0.0)
        )
        rescore(session.connection(), today=AS_OF, now=NOW, debtor_ids=[some_id])
    assert _scores(db)[some_id] == pytest.approx(after[some_id])


def test_weights_file_keeps_defaults_for_keys_not_given(tmp_path: Path) -> None:
    path = tmp_path / "weights.toml"
    path.write_text(
        "[priority]\nbalance = 60\nno_contact_cap = 10\n[priority.fx_to_base]\nEUR = 1.2\n"
    )
    weights = read_weights_file(path)
    assert weights.balance == 60.0
    assert weights.no_contact_cap == 10
    assert weights.promise_due_today == DEFAULT_WEIGHTS.promise_due_today
    assert weights.rate("EUR") == 1.2
    assert weights.rate("GBP") == DEFAULT_WEIGHTS.rate("GBP")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[priority]\nbalanse = 60\n", "balanse"),
        ("[priority]\nbalance = -1\n", "balance"),
        ("[priority\n", "weights.toml"),
    ],
)
def test_a_bad_weights_file_names_the_file_and_key(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "weights.toml"
    path.write_text(text)
    with pytest.raises(WeightsFileError, match=words):
        read_weights_file(path)


def test_cli_refuses_a_bad_weights_file_without_touching_the_scores(
    sqlite_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_portfolio(sqlite_db.engine, debtors=50, agents=2, seed=4, as_of=AS_OF)
    before = _scores(sqlite_db)
    path = tmp_path / "weights.toml"
    path.write_text("[priority]\nbalance = 'lots'\n")
    url = sqlite_db.engine.url.render_as_string(hide_password=False)
    assert main(["rescore", "--db", url, "--weights", str(path)]) == 2
    err = capsys.readouterr().err
    assert "weights.toml" in err and "balance" in err and "Traceback" not in err
    assert _scores(sqlite_db) == before
    path.write_text("[priority]\nbalance = 80\n")
    assert main(["rescore", "--db", url, "--weights", str(path)]) == 0
    assert main(["rescore", "--db", url, "--show-weights"]) == 0
    assert "balance = 80.0" in capsys.readouterr().out


def test_cli_rescore_trusts_the_kept_facts_unless_asked_to_recompute_them(
    sqlite_db: Database,
) -> None:
    """`rescore` is the daily pass (scores from the facts every write keeps current);
    `rescore --facts` aggregates every fact afresh, repairing one written behind its back."""
    seed_portfolio(sqlite_db.engine, debtors=30, agents=1, seed=9, as_of=AS_OF)
    with sqlite_db.session() as session:
        debtor = session.scalars(select(Debtor).where(Debtor.open_balance > 0)).first()
        assert debtor is not None
        debtor_id, balance = debtor.id, debtor.open_balance
        debtor.open_balance = balance + 1000  # as another program might leave it
    url = sqlite_db.engine.url.render_as_string(hide_password=False)

    def stored() -> object:
        with sqlite_db.session() as session:
            return session.get(Debtor, debtor_id).open_balance  # type: ignore[union-attr]

    assert main(["rescore", "--db", url]) == 0
    assert stored() == balance + 1000
    assert main(["rescore", "--db", url, "--facts"]) == 0
    assert stored() == balance
