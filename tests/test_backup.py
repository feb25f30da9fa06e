"""`geo backup` / `geo restore`: consistent copies while serving, atomic checked restores."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geo.cli import app as cli
from geo.service.backup import BackupError, backup, restore, validate
from geo.settings import Settings

TORCH = "东至信诚路、南至南环路、西至东信大道、北至江南大道"
WEST = "东至信诚路、南至南环路、西至伟业路、北至江南大道"  # an edit: the western edge on 伟业路


def _state(db: Path) -> tuple[int, dict[str, tuple]]:
    from geo.store import open_store

    with open_store(db) as store:
        snap = store.snapshot()
        comm = snap.tables["communities"]
        return snap.version, {r.id: (r.four_to, r.geometry.wkb) for r in comm.itertuples()}


def _consistent(db: Path) -> int:
    """The copy is one committed version: C01 as its last history row says, versions agree."""
    from geo.store import open_store

    with open_store(db) as store:
        snap = store.snapshot()
        last = store.community_history("C01")[0]
        c01 = snap.tables["communities"].set_index("id").loc["C01"]
        assert c01.four_to == last.four_to
        assert c01.geometry.equals(last.geometry)
        assert last.store_version <= snap.version
        return snap.version


@pytest.fixture()
def store_copy(sample_db: str, tmp_path: Path) -> Path:
    db = tmp_path / "store.gpkg"
    backup(sample_db, db)
    return db


def test_backup_is_one_consistent_version_while_edits_commit(store_copy: Path, tmp_path) -> None:
    from fastapi.testclient import TestClient

    from geo.api.app import create_app
    from geo.store import open_store, users

    store = open_store(store_copy)
    token = users.add_user(store, "backup-planner", "planner")
    app = create_app(store, Settings(db=str(store_copy)))
    stop = threading.Event()
    commits: list[int] = []
    errors: list[str] = []

    def edit() -> None:
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
            i = 0
            while not stop.is_set():
                etag = c.get("/communities/C01").headers["etag"]
                body = {"four_to": WEST if i % 2 == 0 else TORCH, "reason": f"toggle {i}"}
                r = c.put("/communities/C01/boundary", json=body, headers={"If-Match": etag})
                if r.status_code != 200:
                    errors.append(r.text)
                    return
                commits.append(r.json()["store_version"])
                i += 1

    writer = threading.Thread(target=edit)
    writer.start()
    versions = set()
    try:
        for k in range(6):
            seen = len(commits)
            deadline = time.monotonic() + 10
            while len(commits) == seen and not errors and time.monotonic() < deadline:
                time.sleep(0.01)  # let an edit commit between two backups
            out = tmp_path / f"b{k}.gpkg"
            result = backup(store_copy, out)
            assert not Path(f"{out}-wal").exists()  # one self-contained file
            assert validate(out).version == result.version
            versions.add(_consistent(out))
    finally:
        stop.set()
        writer.join(timeout=60)
        store.close()
    assert not errors, errors
    assert len(commits) >= 2 and len(versions) >= 2  # the backups really ran during edits


def test_cli_backup_and_restore_round_trip(store_copy: Path, tmp_path: Path) -> None:
    from geo.api.state import AtlasHolder
    from geo.store import open_store

    runner = CliRunner()
    out = tmp_path / "backup.gpkg"
    r = runner.invoke(cli, ["backup", str(out), "--db", str(store_copy)])
    assert r.exit_code == 0, r.output
    saved = _state(out)
    assert saved == _state(store_copy)

    serving = open_store(store_copy)  # a "server" holding the store open across the restore
    holder = AtlasHolder(serving, refresh_seconds=0)
    r = runner.invoke(cli, ["boundary", "set", "C01", "--four-to", WEST, "--db", str(store_copy)])
    assert r.exit_code == 0, r.output
    edited = _state(store_copy)
    assert edited[0] == saved[0] + 1 and edited[1]["C01"][0] == WEST
    assert holder.current().version == edited[0]

    r = runner.invoke(cli, ["restore", str(out), "--db", str(store_copy)])
    assert r.exit_code == 0, r.output
    restored = _state(store_copy)  # the backup's data as a new version above the live one
    assert restored == (edited[0] + 1, saved[1])
    assert f"as version {edited[0] + 1}" in r.output
    assert holder.current().version == restored[0]  # the open store sees the restored file
    assert holder.current().tables["communities"].set_index("id").loc["C01"].four_to == TORCH
    serving.close()
    con = sqlite3.connect(store_copy)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()

    fresh = tmp_path / "new.gpkg"  # restore creates a missing store
    assert runner.invoke(cli, ["restore", str(out), "--db", str(fresh)]).exit_code == 0
    assert _state(fresh) == (saved[0] + 1, saved[1])


def _plain_sqlite(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    return path


def _bare_gpkg(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.execute("PRAGMA application_id = 0x47504B47")
    con.execute("CREATE TABLE gpkg_contents (table_name TEXT)")
    con.commit()
    con.close()
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"not a database at all" * 100) and p, "not an SQLite"),
        (
            lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200) and p,
            "geo store|damaged",
        ),
        (_plain_sqlite, "not a GeoPackage"),
        (_bare_gpkg, "not a geo store"),
        (lambda p: p.parent / "missing.gpkg", "is not a file"),
    ],
)
def test_restore_refuses_what_is_not_a_geo_geopackage(
    store_copy: Path, tmp_path: Path, make, message: str
) -> None:
    import re

    bad = make(tmp_path / "bad.gpkg")
    before = _state(store_copy)
    with pytest.raises(BackupError, match=message):
        restore(bad, store_copy)
    r = CliRunner().invoke(cli, ["restore", str(bad), "--db", str(store_copy)])
    assert r.exit_code == 2 and re.search(message, " ".join(r.output.split())), r.output
    assert _state(store_copy) == before


def test_restore_refuses_a_newer_schema(store_copy: Path, tmp_path: Path) -> None:
    newer = tmp_path / "newer.gpkg"
    backup(store_copy, newer)
    con = sqlite3.connect(newer)
    con.execute("UPDATE geo_meta SET value='999' WHERE key='schema_version'")
    con.commit()
    con.close()
    with pytest.raises(BackupError, match="schema version 999"):
        restore(newer, store_copy)


def test_backup_refuses_its_own_store_and_missing_stores(store_copy: Path, tmp_path) -> None:
    with pytest.raises(BackupError, match="another file"):
        backup(store_copy, store_copy)
    with pytest.raises(BackupError, match="no store"):
        backup(tmp_path / "nope.gpkg", tmp_path / "out.gpkg")
