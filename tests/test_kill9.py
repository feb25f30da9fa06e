"""``kill -9`` in the middle of a real `geo load` and of a real boundary commit (`geo boundary
set`): the store stays at the last committed version, intact.

The child is the real CLI (``geo.cli.main`` with its argv) with one store method slowed down so
that the kill lands inside the write transaction, after pages reached the WAL.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from geo.backup import backup
from geo.settings import SAMPLE_DIR

ROOT = Path(__file__).resolve().parent.parent
TORCH = "东至信诚路、南至南环路、西至东信大道、北至江南大道沿联庄路至汇智地界北"
NORTH = "东至信诚路、南至南环路、西至东信大道、北至江南大道"

CHILD = textwrap.dedent(
    """
    import sys, time
    from geo.store.sqlite import SQLiteStore

    target = sys.argv[1]
    if target == "load":  # slow down the enterprises rows, inside replace_all's transaction
        original = SQLiteStore._insert_rows

        def slow_rows(rows):
            for i, row in enumerate(rows):
                if i == 5_000:
                    print("writing", flush=True)
                    time.sleep(60)
                yield row

        def insert(cur, name, spec, rows):
            return original(cur, name, spec, slow_rows(rows) if name == "enterprises" else rows)

        SQLiteStore._insert_rows = staticmethod(insert)
    else:  # the boundary commit: stop after the new boundary and version rows are written
        original = SQLiteStore._insert_history

        def history(cur, rows):
            original(cur, rows)
            print("writing", flush=True)
            time.sleep(60)

        SQLiteStore._insert_history = staticmethod(history)
    from geo.cli import main

    sys.argv = ["geo", *sys.argv[2:]]
    main()
    print("committed", flush=True)
    """
)


def _state(db: Path) -> tuple[int, dict, int]:
    from geo.store import open_store

    store = open_store(db)
    try:
        snap = store.snapshot()
        comm = snap.tables["communities"]
        boundaries = {r.id: (r.four_to, r.geometry.wkb) for r in comm.itertuples()}
        return snap.version, boundaries, len(snap.tables["enterprises"])
    finally:
        store.close()


def _kill_mid_write(db: Path, *argv: str, spilled: bool = True) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while "writing" not in lines:
            line = proc.stdout.readline()
            if not line or time.monotonic() > deadline:
                pytest.fail(f"child exited before the write: {lines} {proc.stderr.read()}")
            lines.append(line.strip())
        time.sleep(0.2)
        if spilled:  # a big write: uncommitted pages already reached the WAL file
            assert Path(f"{db}-wal").stat().st_size > 0
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def _intact(db: Path) -> None:
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()


@pytest.fixture()
def store_copy(sample_db: str, tmp_path: Path) -> Path:
    db = tmp_path / "store.gpkg"
    backup(sample_db, db)
    return db


def test_kill_9_during_geo_load(store_copy: Path, tmp_path: Path) -> None:
    before = _state(store_copy)
    _kill_mid_write(store_copy, "load", "load", str(SAMPLE_DIR), "--db", str(store_copy))
    assert _state(store_copy) == before
    _intact(store_copy)
    # and the store takes the next write normally
    from geo.cli import load_into

    assert load_into(str(store_copy), SAMPLE_DIR) == before[0] + 1


def test_kill_9_during_boundary_commit(store_copy: Path) -> None:
    from geo.store import open_store

    before = _state(store_copy)
    with open_store(store_copy) as s:
        c01 = s.community_version("C01")
        history = len(s.community_history("C01"))
    assert before[1]["C01"][0] == TORCH
    _kill_mid_write(
        store_copy, "edit", "boundary", "set", "C01", "--four-to", NORTH,
        "--reason", "killed", "--db", str(store_copy), spilled=False,
    )  # fmt: skip
    assert _state(store_copy) == before
    _intact(store_copy)
    with open_store(store_copy) as s:
        assert s.community_version("C01") == c01
        assert len(s.community_history("C01")) == history
        assert "killed" not in [h.reason for h in s.history()]
