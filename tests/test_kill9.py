"""``kill -9`` in the middle of a real write: `geo load`, a boundary commit (`geo boundary set`
and ``PUT /communities/C01/boundary`` on a running `geo serve`), a grid commit (`geo grids split
--commit` and ``POST /communities/C01/grids/commit``). The store stays at the last committed
version, intact, and a new server starts on it.

The child is the real CLI (``geo.cli.main`` with its argv; `geo serve` runs uvicorn in that same
process with one worker) with one store step slowed down so that the kill lands inside the write
transaction: after the enterprises rows, after the history rows, or (``audit``) after the audit
row, the write's last statement before COMMIT.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import sqlite3
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support import free_port

from geo.service.backup import backup
from geo.settings import SAMPLE_DIR

ROOT = Path(__file__).resolve().parent.parent
TORCH = "东至信诚路、南至南环路、西至东信大道、北至江南大道"
WEST = "东至信诚路、南至南环路、西至伟业路、北至江南大道"  # an edit: the western edge on 伟业路

CHILD = textwrap.dedent(
    """
    import sys, time
    from geo.store import sqlite, tables

    target = sys.argv[1]
    if target == "audit-spill":  # a small write too: a tiny page cache spills it into the WAL
        import sqlite3

        connect = sqlite3.connect

        def small_cache(*args, **kwargs):
            conn = connect(*args, **kwargs)
            conn.execute("PRAGMA cache_size=10")
            return conn

        sqlite3.connect = small_cache
        target = "audit"
    if target == "load":  # slow down the enterprises rows, inside replace_all's transaction
        original = tables._insert_rows

        def slow_rows(rows):
            for i, row in enumerate(rows):
                if i == 5_000:
                    print("writing", flush=True)
                    time.sleep(60)
                yield row

        def insert(cur, name, spec, rows):
            return original(cur, name, spec, slow_rows(rows) if name == "enterprises" else rows)

        tables._insert_rows = insert
    elif target == "audit":  # any write: stop after its last statement, before the COMMIT
        from geo.store import sqlite_admin as users

        original = users.append_audit

        def audit(cur, *args, **kwargs):
            original(cur, *args, **kwargs)
            print("writing", flush=True)
            time.sleep(60)

        users.append_audit = audit
    else:  # the boundary commit: stop after the new boundary and version rows are written
        original = sqlite.insert_history

        def history(cur, rows):
            original(cur, rows)
            print("writing", flush=True)
            time.sleep(60)

        sqlite.insert_history = history
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


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }


def _kill_mid_write(db: Path, *argv: str, spilled: bool = True) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
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
    from geo.service.load import load_into

    assert load_into(str(store_copy), SAMPLE_DIR) == before[0] + 1


def test_kill_9_during_boundary_commit(store_copy: Path) -> None:
    from geo.store import open_store

    before = _state(store_copy)
    with open_store(store_copy) as s:
        c01 = s.community_version("C01")
        history = len(s.community_history("C01"))
    assert before[1]["C01"][0] == TORCH
    _kill_mid_write(
        store_copy, "edit", "boundary", "set", "C01", "--four-to", WEST,
        "--reason", "killed", "--db", str(store_copy), spilled=False,
    )  # fmt: skip
    assert _state(store_copy) == before
    _intact(store_copy)
    with open_store(store_copy) as s:
        assert s.community_version("C01") == c01
        assert len(s.community_history("C01")) == history
        assert "killed" not in [h.reason for h in s.history()]


# --------------------------------------------------------------- a running server, grid commits

# bookkeeping of the serving processes (which version each answers from), written outside edits
_NOT_VERSIONED = {"geo_serving"}


def _planner(db: Path) -> dict[str, str]:
    from geo.store import open_store
    from geo.store.users import add_user

    with open_store(db) as store:
        return {"Authorization": f"Bearer {add_user(store, 'kill9-planner', 'planner')}"}


def _dump(db: Path) -> dict[str, list[str]]:
    """Every row of every table (and the schema), opened with plain sqlite3: WAL recovery."""
    con = sqlite3.connect(db)
    try:
        names = [n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        out = {"sqlite_master": sorted(map(repr, con.execute("SELECT * FROM sqlite_master")))}
        for name in sorted(set(names) - _NOT_VERSIONED):
            out[name] = sorted(map(repr, con.execute(f'SELECT * FROM "{name}"')))
        return out
    finally:
        con.close()


def _uncommitted_frames(db: Path) -> int:
    """WAL frames after its last commit frame: pages a killed transaction wrote, never committed.

    Read before anyone reopens the store (WAL format: a 32-byte header with the page size and
    salts, then frames of a 24-byte header, whose commit field is 0 except on a commit frame,
    and a page; frames with other salts are left over from before the WAL was last reset).
    """
    wal = Path(f"{db}-wal")
    data = wal.read_bytes() if wal.exists() else b""
    if len(data) < 32:
        return 0
    (page_size,) = struct.unpack(">I", data[8:12])
    pending = 0
    for offset in range(32, len(data) - 24 - page_size + 1, 24 + page_size):
        header = data[offset : offset + 24]
        if header[8:16] != data[16:24]:
            break
        (commit,) = struct.unpack(">I", header[4:8])
        pending = 0 if commit else pending + 1
    return pending


def _c01(db: Path) -> dict[str, Any]:
    from geo.store import open_store
    from geo.store.users import audit_rows

    with open_store(db) as s:
        snap = s.snapshot()
        row = snap.tables["communities"].set_index("id").loc["C01"]
        return {
            "store": snap.version,
            "four_to": row["four_to"],
            "geometry": row.geometry.wkb,
            "version": s.community_version("C01"),
            "history": [(h.version, h.store_version, h.reason) for h in s.community_history("C01")],
            "versions": [(v.version, v.reason) for v in s.history()],
            "audit": audit_rows(s, limit=1)[0],
        }


def _grids(db: Path) -> dict[str, Any]:
    from geo.store import open_store
    from geo.store.users import audit_rows

    with open_store(db) as s:
        snap = s.snapshot()
        t = snap.tables
        grids = t["grids"]
        return {
            "store": snap.version,
            "grids": [(g.id, g.community_id, g.code, g.geometry.wkb) for g in grids.itertuples()],
            "retired": t["communities"].set_index("id").loc["C01", "retired_grids"],
            "parks": list(t["parks"][["id", "grid_id", "code"]].itertuples(index=False)),
            "buildings": list(t["buildings"][["id", "grid_id", "code"]].itertuples(index=False)),
            "versions": [(v.version, v.reason) for v in s.history()],
            "audit": audit_rows(s, limit=1)[0],
        }


class _Serve:
    """A real `geo serve` on ``db`` (one worker) in its own process group.

    ``hook`` runs it under CHILD with that store step slowed down. Its stdout lines (the hook's
    "writing", uvicorn's access log) arrive on ``lines``; stderr goes to ``log``.
    """

    def __init__(self, db: Path, log: Path, hook: str | None = None) -> None:
        self.port = free_port()
        code, target = (CHILD, [hook]) if hook else ("from geo.cli import main; main()", [])
        cmd = [sys.executable, "-c", code, *target, "serve", "--db", str(db),
               "--host", "127.0.0.1", "--port", str(self.port)]  # fmt: skip
        self.log = log
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=_env(),
                start_new_session=True,
            )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def __enter__(self) -> _Serve:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _, _ = self.request("GET", "/health")
                if status == 200:
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"geo serve did not start: {self.log.read_text()[-3000:]}")
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def kill(self) -> int:
        """SIGKILL to the whole process group; the exit status."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        code = self.proc.wait(timeout=30)
        self.reader.join(timeout=30)  # EOF: every process of the group is gone
        self.proc.stdout.close()
        return code

    def send(self, method: str, path: str, body: Any = None, headers: dict | None = None):
        """Send a request; the connection, whose answer is read (or not) by the caller."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, data, {**(headers or {}), "Content-Type": "application/json"})
        return conn

    def request(self, method: str, path: str, body: Any = None, headers: dict | None = None):
        """``(status, headers, JSON body)``."""
        conn = self.send(method, path, body, headers)
        try:
            r = conn.getresponse()
            raw = r.read()
            return r.status, r.headers, json.loads(raw) if raw else None
        finally:
            conn.close()

    def wait_for(self, wanted: str) -> None:
        deadline = time.monotonic() + 120
        seen: list[str] = []
        while wanted not in seen:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.kill()
                pytest.fail(f"no {wanted!r} from geo serve: {seen} {self.log.read_text()[-3000:]}")
            seen.append(line)


def _kill_mid_request(
    server: _Serve, db: Path, method: str, path: str, body: dict, headers: dict
) -> dict[str, list[str]]:
    """Send a write to a `geo serve` run with hook "audit" and kill -9 its process group inside
    the write's transaction (audit row written, no COMMIT); the store's rows before the write."""
    before = _dump(db)  # the server is up and idle: nothing else writes now
    conn = server.send(method, path, body, headers)
    try:
        server.wait_for("writing")
        assert server.kill() == -signal.SIGKILL
    finally:
        conn.close()
    return before


def test_kill_9_during_http_boundary_commit(store_copy: Path, tmp_path: Path) -> None:
    auth = _planner(store_copy)
    state = _c01(store_copy)
    assert state["four_to"] == TORCH
    body = {"four_to": WEST, "reason": "killed"}
    with _Serve(store_copy, tmp_path / "killed.log", hook="audit-spill") as server:
        status, headers, _ = server.request("GET", "/communities/C01", headers=auth)
        assert status == 200 and headers["ETag"] == f'"{state["version"]}"'
        before = _kill_mid_request(
            server, store_copy, "PUT", "/communities/C01/boundary", body,
            {**auth, "If-Match": headers["ETag"]},
        )  # fmt: skip
    assert _uncommitted_frames(store_copy) > 0  # the kill landed after pages reached the WAL
    assert _dump(store_copy) == before  # every table, version, history and audit row: as before
    _intact(store_copy)
    assert _c01(store_copy) == state
    # a new server starts on the store, serves the old boundary and takes the edit whole
    with _Serve(store_copy, tmp_path / "after.log") as server:
        status, headers, feature = server.request("GET", "/communities/C01", headers=auth)
        assert (status, headers["ETag"]) == (200, f'"{state["version"]}"')
        assert feature["properties"]["four_to"] == TORCH
        status, _, out = server.request(
            "PUT", "/communities/C01/boundary", {**body, "reason": "after the kill"},
            {**auth, "If-Match": headers["ETag"]},
        )  # fmt: skip
        assert status == 200, out
    after = _c01(store_copy)
    assert after["store"] == state["store"] + 1 and after["version"] == state["version"] + 1
    assert after["four_to"] == WEST and after["geometry"] != state["geometry"]
    assert after["history"][1:] == state["history"] and after["audit"] == state["audit"] + 1
    assert "killed" not in [r for _, r in after["versions"]] + [h[2] for h in after["history"]]
    _intact(store_copy)


def _grid_commit_killed(store_copy: Path, state: dict, before: dict) -> None:
    assert _uncommitted_frames(store_copy) > 0  # the kill landed after pages reached the WAL
    assert _dump(store_copy) == before  # grids, parks, buildings, codes, versions, audit
    _intact(store_copy)
    assert _grids(store_copy) == state


def _grid_commit_after(store_copy: Path, state: dict) -> None:
    after = _grids(store_copy)
    assert after["store"] == state["store"] + 1 and after["audit"] == state["audit"] + 1
    c01 = sorted(g[2] for g in after["grids"] if g[1] == "C01")
    assert len(c01) == 4 and after["grids"] != state["grids"]  # 5 grids → 4: a code retires
    assert after["retired"] and not set(after["retired"].split(";")) & set(c01)
    assert [g for g in after["grids"] if g[1] != "C01"] == [
        g for g in state["grids"] if g[1] != "C01"
    ]
    _intact(store_copy)


def test_kill_9_during_cli_grid_commit(store_copy: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from geo.cli import app as cli_app

    state = _grids(store_copy)
    before = _dump(store_copy)
    argv = ["grids", "split", "C01", "--count", "4", "--commit", "--db", str(store_copy)]
    # (a split rewrites four tables: a tiny page cache spills them into the WAL before COMMIT)
    _kill_mid_write(store_copy, "audit-spill", *argv, spilled=False)
    _grid_commit_killed(store_copy, state, before)
    with _Serve(store_copy, tmp_path / "after.log") as server:  # a new server starts on it
        status, _, health = server.request("GET", "/health")
    assert status == 200 and health["data_version"] == state["store"]
    assert health["counts"]["grids"] == len(state["grids"])
    r = CliRunner().invoke(cli_app, argv)  # and the split commits whole
    assert r.exit_code == 0, r.output
    _grid_commit_after(store_copy, state)


def test_kill_9_during_http_grid_commit(store_copy: Path, tmp_path: Path) -> None:
    auth = _planner(store_copy)
    state = _grids(store_copy)
    body = {"count": 4}
    headers = {**auth, "If-Match": f'"{state["store"]}"'}
    with _Serve(store_copy, tmp_path / "killed.log", hook="audit-spill") as server:
        before = _kill_mid_request(
            server, store_copy, "POST", "/communities/C01/grids/commit", body, headers
        )
    _grid_commit_killed(store_copy, state, before)
    with _Serve(store_copy, tmp_path / "after.log") as server:  # a new server starts on it
        status, _, health = server.request("GET", "/health")
        assert status == 200 and health["data_version"] == state["store"]
        status, _, out = server.request("POST", "/communities/C01/grids/commit", body, headers)
        assert status == 200 and out["committed"], out
    _grid_commit_after(store_copy, state)
