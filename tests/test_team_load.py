"""The team load bench runs end to end, and its turn-taking lets agents in fairly."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))  # the module takes it off again once imported

import team_load  # noqa: E402


def _take_turns(slots: int, callers: int) -> tuple[list[int], list[int], int]:
    """Callers asking one after another for ``_Turns(slots)`` and holding it until all
    have asked: who got in before that, who got in overall (in order), the most inside."""
    turns = team_load._Turns(slots)
    inside = most = 0
    entered: list[int] = []
    lock = threading.Lock()
    release = threading.Event()

    def work(number: int) -> None:
        nonlocal inside, most
        with turns:
            with lock:
                inside += 1
                most = max(most, inside)
                entered.append(number)
            release.wait()
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(callers)]
    for thread in threads:  # one at a time, so the order they asked in is known
        thread.start()
        time.sleep(0.02)
    before = list(entered)
    release.set()
    for thread in threads:
        thread.join(timeout=5)
    return before, entered, most


def test_turns_let_in_at_most_n_at_once() -> None:
    before, entered, most = _take_turns(slots=2, callers=6)
    assert before == [0, 1]  # the others wait for a free turn
    assert sorted(entered) == list(range(6))
    assert most == 2


def test_turns_go_in_the_order_they_were_asked_for() -> None:
    before, entered, most = _take_turns(slots=1, callers=6)
    assert before == [0]
    assert entered == [0, 1, 2, 3, 4, 5]
    assert most == 1


def test_a_caller_coming_straight_back_queues_behind_the_waiting() -> None:
    """An agent that saves and claims again at once does not overtake the others."""
    turns = team_load._Turns(1)
    order: list[str] = []
    inside = threading.Event()

    def first() -> None:
        with turns:
            order.append("first")
            inside.set()
            time.sleep(0.1)  # the others ask meanwhile
        with turns:
            order.append("first again")

    def other(name: str) -> None:
        with turns:
            order.append(name)

    threads = [threading.Thread(target=first)]
    threads[0].start()
    inside.wait(timeout=5)
    for name in ("second", "third"):
        threads.append(threading.Thread(target=other, args=(name,)))
        threads[-1].start()
        time.sleep(0.02)
    for thread in threads:
        thread.join(timeout=5)
    assert order == ["first", "second", "third", "first again"]


@pytest.mark.postgres
def test_team_load_runs_agents_in_turn_and_loses_nothing(pg_server: object) -> None:
    """The bench as its users run it, small: it seeds, works, checks and prints JSON."""
    url = pg_server.create_database("team_load_smoke")  # type: ignore[attr-defined]
    command = [
        sys.executable, str(BENCH / "team_load.py"), "--db", url, "--agents", "4",
        "--processes", "1", "--debtors", "300", "--seconds", "1", "--warmup", "0",
        "--no-sync", "--in-flight", "1", "--json",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)
    figures = json.loads(done.stdout[done.stdout.index("{") :])
    assert figures["saves"] > 0
    assert figures["in_flight_per_process"] == 1
    assert figures["double_claims"] == 0
    assert figures["lost_writes"] == 0
    assert figures["unexpected_writes"] == 0
    assert figures["errors"] == 0, figures["error_kinds"]
