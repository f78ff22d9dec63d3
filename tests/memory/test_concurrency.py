"""Threads and SIGKILL: nothing acknowledged is lost, order holds, ids stay dense."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

from optical_memory.memory import OpticalMemory


def test_many_threads_adding(tmp_path):
    m = OpticalMemory.open(tmp_path / "t.db", config={"recent_turns": 4, "keep_text": True})
    ids: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            ids[k] = [
                m.add(f"thread {k} message {i} " + "word " * (i % 40), role="user").turn_id for i in range(50)
            ]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    all_ids = sorted(i for v in ids.values() for i in v)
    assert all_ids == list(range(400))  # unique and dense
    m.close()
    m = OpticalMemory.open(tmp_path / "t.db")
    rows = m._w.store.turns(m._w.sid)
    assert len(rows) == 400
    for k, mine in ids.items():
        assert mine == sorted(mine)  # each thread's order preserved
        for n, tid in enumerate(mine):
            assert rows[tid].content.startswith(f"thread {k} message {n} ")
    m.close()


CHILD = textwrap.dedent(
    """
    import sys
    from optical_memory.memory import OpticalMemory
    m = OpticalMemory.open(sys.argv[1], config={"recent_turns": 2})
    i = len(m)
    while True:
        r = m.add(f"turn {i} " + "lorem ipsum dolor " * (i % 60), role="user" if i % 2 else "assistant")
        print(r.turn_id, flush=True)
        i += 1
    """
)


def test_sigkill_loses_no_acknowledged_turn(tmp_path):
    path = tmp_path / "k.db"
    rng = random.Random(7)
    acknowledged = -1
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert proc.stdout is not None
        first = int(proc.stdout.readline())  # wait until it is adding
        assert first == acknowledged + 1
        time.sleep(rng.uniform(0.3, 1.2))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        lines = [first, *(int(x) for x in out.split())]
        acknowledged = lines[-1]
        with OpticalMemory.open(path) as m:
            assert len(m) >= acknowledged + 1  # every acknowledged turn (maybe one more) is there
            rows = m._w.store.turns(m._w.sid)
            assert [r.turn_id for r in rows] == list(range(len(m)))
            m.context()  # and the store is usable
            acknowledged = len(m) - 1
