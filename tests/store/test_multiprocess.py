"""Many processes on one store: writers on their own sessions and 2 on one shared session, one of them
SIGKILLed mid-run, on a SQLite file (4 + 2 processes) and on PostgreSQL (6 + 2). No acknowledged turn is
lost, each writer's turns keep their order, no raw database error reaches a writer, and the reopened
memories are whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from optical_memory.memory import OpticalMemory

ROOT = Path(__file__).resolve().parents[2]
TURNS = 30
WRITER = textwrap.dedent(
    """
    import sys
    from optical_memory.memory import OpticalMemory

    db, session, name, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    memory = OpticalMemory.open(db, session=session, config={"recent_turns": 3, "keep_text": True})
    for i in range(n):
        words = " ".join(f"{name}-{i}-word{j}" for j in range(40 + 7 * (i % 5)))
        memory.add(f"{name} turn {i}: {words}", role="user" if i % 2 == 0 else "assistant")
        print(f"{name} {i}", flush=True)  # acknowledged: add() returned
    memory.close()
    """
)


def _start(db: str, cwd: Path, session: str, name: str, n: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, db, session, name, str(n)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _index(memory: OpticalMemory, turn: int) -> tuple[str, int]:
    """Which writer added a turn, and its number there (from the text ``name turn i: ...``)."""
    content = memory._w.turns[turn].content
    assert content is not None
    name, _, number = content.split()[:3]
    return name, int(number.rstrip(":"))


@pytest.mark.slow
def test_sqlite_six_writers_one_killed_lose_no_acknowledged_turn(tmp_path: Path) -> None:
    _load_test(str(tmp_path / "shared.db"), tmp_path, own_sessions=4)


@pytest.mark.slow
def test_postgres_eight_writers_one_killed_lose_no_acknowledged_turn(
    tmp_path: Path, postgres_url: str
) -> None:
    _load_test(postgres_url, tmp_path, own_sessions=6)


def _load_test(db: str, cwd: Path, *, own_sessions: int) -> None:
    OpticalMemory.open(db, session="shared", config={"recent_turns": 3, "keep_text": True}).close()
    plan = [(f"s{k}", f"w{k}", TURNS) for k in range(own_sessions)]
    plan += [("shared", "a", TURNS), ("shared", "b", 10 * TURNS)]
    procs = {name: _start(db, cwd, session, name, n) for session, name, n in plan}
    acked: dict[str, list[int]] = {name: [] for name in procs}
    victim = procs["b"]

    def read(name: str) -> None:
        assert procs[name].stdout is not None
        for line in procs[name].stdout:
            acked[name].append(int(line.split()[1]))
            if name == "b" and len(acked["b"]) == TURNS // 2:
                victim.send_signal(signal.SIGKILL)  # mid-run: between or during adds

    readers = [threading.Thread(target=read, args=(name,)) for name in procs]
    for t in readers:
        t.start()
    for name, proc in procs.items():
        proc.wait(timeout=600)
        if name != "b":
            assert proc.returncode == 0, name
    for t in readers:
        t.join()
    assert victim.returncode == -signal.SIGKILL
    for proc in procs.values():
        assert proc.stdout is not None and proc.stderr is not None
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        assert "Traceback" not in err and "UNIQUE" not in err, err

    for session, _, n in plan[:own_sessions]:
        with OpticalMemory.open(db, session=session) as memory:
            assert [_index(memory, t)[1] for t in range(len(memory))] == list(range(n))
    with OpticalMemory.open(db, session="shared") as memory:
        order: dict[str, list[int]] = {"a": [], "b": []}
        for t in range(len(memory)):
            who, i = _index(memory, t)
            order[who].append(i)
        assert order["a"] == list(range(TURNS))
        assert order["b"][: len(acked["b"])] == acked["b"]  # every acknowledged turn, in order
        assert order["b"] == list(range(len(order["b"])))  # at most one unacknowledged turn committed after
        assert memory.context(budget=None).usage.context_tokens > 0
        pages = memory.pages()
        assert [p.page_id for p in pages] == list(range(len(pages)))
