"""`geo restore` of hostile files, and restores as running servers and writers see them.

Each hostile GeoPackage is a real backup changed with SQLite the way an attacker (or a careless
hand) would: a trigger, a view, a changed store trigger, a foreign table or index, a dropped
column, a corrupt or NULL geometry, ``schema_version='abc'``. Each is refused in one line with
exit code 2 and the live store is left as it was. The served data follows every restore (real
`geo serve` processes), and backups carry no serving state (a restored store never waits for a
server of another store).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from shapely.geometry import box
from support import geo_serve
from typer.testing import CliRunner

from geo.cli import app as cli
from geo.service.backup import BackupError, backup, restore
from geo.store import open_store, serving

runner = CliRunner()
WEST = "东至信诚路、南至南环路、西至伟业路、北至江南大道"  # C01's western edge on 伟业路


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, copy_sample) -> Path:
    return Path(copy_sample(tmp_path_factory.mktemp("pristine") / "store.gpkg"))


@pytest.fixture()
def live(pristine: Path, tmp_path: Path) -> Path:
    db = tmp_path / "live.gpkg"
    backup(pristine, db)
    return db


def _fingerprint(db: Path) -> tuple:
    con = sqlite3.connect(db)
    try:
        return (
            con.execute("SELECT MAX(version) FROM geo_versions").fetchone()[0],
            con.execute("SELECT COUNT(*) FROM enterprises").fetchone()[0],
            con.execute("SELECT group_concat(sql) FROM sqlite_master").fetchone()[0],
        )
    finally:
        con.close()


def _crafted(pristine: Path, tmp_path: Path, *sql: str) -> Path:
    """A backup of the sample store, then ``sql`` run on it with plain SQLite (switching the
    write guard off around it, as a hostile author may: `geo.store.gpkg_guard`)."""
    path = tmp_path / "hostile.gpkg"
    backup(pristine, path)
    con = sqlite3.connect(path)
    guard_off, guard_on = "UPDATE geo_writer SET writing = 1", "UPDATE geo_writer SET writing = 0"
    con.executescript(";\n".join((guard_off, *sql, guard_on)))
    con.commit()
    con.close()
    return path


FIRST = "(SELECT MIN(fid) FROM {})".format
CORRUPT_BLOB = "X'4750000100000000DEADBEEFDEADBEEFDEAD'"  # a GeoPackage header, then no WKB
HOSTILE = {
    "trigger": (
        ["CREATE TRIGGER wipe AFTER INSERT ON geo_versions BEGIN DELETE FROM enterprises; END"],
        "trigger 'wipe'",
    ),
    "trigger-on-layer": (
        ["CREATE TRIGGER t2 BEFORE UPDATE ON communities BEGIN SELECT 1; END"],
        "trigger 't2'",
    ),
    "view": (["CREATE VIEW everything AS SELECT * FROM enterprises"], "view 'everything'"),
    "changed-store-trigger": (
        [
            "DROP TRIGGER geo_audit_no_delete",
            "CREATE TRIGGER geo_audit_no_delete BEFORE DELETE ON geo_audit "
            "BEGIN DELETE FROM communities; END",
        ],
        "trigger 'geo_audit_no_delete' is not the one geo creates",
    ),
    "foreign-table": (["CREATE TABLE loot (x)"], "table 'loot'"),
    "foreign-index": (["CREATE INDEX by_name ON enterprises (name)"], "index 'by_name'"),
    "missing-column": (["ALTER TABLE enterprises DROP COLUMN chain"], "missing column(s) chain"),
    "unknown-column": (["ALTER TABLE parks ADD COLUMN owner TEXT"], "unknown column(s) owner"),
    "corrupt-geometry": (
        [f"UPDATE communities SET geom = {CORRUPT_BLOB} WHERE fid = {FIRST('communities')}"],
        "'communities'",
    ),
    "null-geometry": (
        ["UPDATE buildings SET geom = NULL WHERE fid = (SELECT MIN(fid) FROM buildings)"],
        "no geometry",
    ),
    "null-required-value": (
        ["UPDATE communities SET name = NULL WHERE fid = (SELECT MIN(fid) FROM communities)"],
        "'communities'",
    ),
    "schema-version-abc": (
        ["UPDATE geo_meta SET value = 'abc' WHERE key = 'schema_version'"],
        "schema_version is 'abc', not a whole number",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_restore_refuses_a_hostile_geopackage_in_one_line(
    case: str, pristine: Path, live: Path, tmp_path: Path
) -> None:
    sql, message = HOSTILE[case]
    hostile = _crafted(pristine, tmp_path, *sql)
    before = _fingerprint(live)
    r = runner.invoke(cli, ["restore", str(hostile), "--db", str(live)])
    assert r.exit_code == 2, (r.output, r.exception)
    lines = r.output.strip().splitlines()
    assert lines[0].startswith("error: ") and message in r.output.replace("\n", " "), r.output
    assert "Traceback" not in r.output
    assert _fingerprint(live) == before  # the live store is untouched
    assert not list(tmp_path.glob(".*.part"))
    with pytest.raises(BackupError):
        restore(hostile, tmp_path / "new.gpkg")  # nor is a new store created from it
    assert not (tmp_path / "new.gpkg").exists()


def test_a_refused_trigger_really_was_dangerous(pristine: Path, tmp_path: Path) -> None:
    """What the check prevents: the trigger, once in a store, wipes enterprises on a write."""
    hostile = _crafted(pristine, tmp_path, *HOSTILE["trigger"][0])
    with open_store(hostile) as store:
        assert len(store.snapshot().tables["enterprises"]) > 0
        store.edit_community(
            "C01", box(120.16, 30.18, 120.17, 30.19), author="t", reason="x",
            expected_version=None,
        )  # fmt: skip
        assert len(store.snapshot().tables["enterprises"]) == 0


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from geo.cli import main; main()", *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})},
    )  # fmt: skip


def _c01(base: str) -> str:
    return httpx.get(f"{base}/communities/C01").json()["properties"]["four_to"]


def test_a_running_server_serves_a_restore_whose_version_equals_the_live_one(
    pristine: Path, live: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.gpkg"  # another store at the same version number, other data
    backup(pristine, other)
    done = _cli("boundary", "set", "C01", "--four-to", WEST, "--db", str(other))
    assert done.returncode == 0, done.stderr
    with open_store(live) as store:  # the live store moves on differently, to the same number
        store.edit_community(
            "C01", box(120.16, 30.18, 120.17, 30.19), author="t", reason="elsewhere",
            expected_version=None,
        )  # fmt: skip
        live_version = store.version()
    with open_store(other) as store:
        assert store.version() == live_version
    saved = tmp_path / "other-backup.gpkg"
    backup(other, saved)
    with geo_serve(live, "--no-access-log") as base:
        before = _c01(base)
        assert before != WEST
        done = _cli("restore", str(saved), "--db", str(live))
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 15
        while _c01(base) != WEST and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _c01(base) == WEST  # the server follows the restore
        assert f"as version {live_version + 1}" in done.stdout
        with open_store(live) as store:
            latest = store.history(1)[0]
        assert latest.version == live_version + 1 and latest.author == "restore"
        assert "other-backup.gpkg" in latest.reason


WAIT = 120  # the publish timeout of the timed writes: far above a write's own time


def _timed_write(db: Path) -> float:
    """A CLI write on ``db``; its time, far below `WAIT` unless it waits for a server."""
    with open_store(db) as store:
        assert serving.servers(store) == []  # no server runs on this store
    start = time.monotonic()
    done = _cli(
        "boundary", "set", "C01", "--four-to", WEST, "--db", str(db),
        env={"GEO_PUBLISH_TIMEOUT_SECONDS": str(WAIT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "older version" not in done.stdout + done.stderr
    return time.monotonic() - start


def test_backups_carry_no_serving_state_and_restores_never_wait_for_foreign_servers(
    live: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "b.gpkg"
    with geo_serve(live, "--no-access-log"):  # the source server runs on this host throughout
        done = _cli("backup", str(saved), "--db", str(live))
        assert done.returncode == 0, done.stderr
        con = sqlite3.connect(saved)
        assert con.execute("SELECT COUNT(*) FROM geo_serving").fetchone()[0] == 0
        con.close()
        restored = tmp_path / "restored.gpkg"
        done = _cli("restore", str(saved), "--db", str(restored))
        assert done.returncode == 0, done.stderr
        assert _timed_write(restored) < WAIT / 2  # never waits for the publish timeout

        # a backup written before this rule, carrying the live server's row: cleared on restore
        with open_store(live) as store:
            rows = [(s.worker, s.pid, s.version, s.seen) for s in serving.servers(store)]
        assert rows and all(os.path.exists(f"/proc/{r[1]}") for r in rows)
        con = sqlite3.connect(saved)
        con.executemany(
            "INSERT INTO geo_serving (worker, pid, version, seen) VALUES (?, ?, ?, ?)", rows
        )
        con.commit()
        con.close()
        again = tmp_path / "again.gpkg"
        backup(restored, again)  # an existing store (no server on it) restored in place
        done = _cli("restore", str(saved), "--db", str(again))
        assert done.returncode == 0, done.stderr
        assert _timed_write(again) < WAIT / 2
        fresh = tmp_path / "fresh.gpkg"
        done = _cli("restore", str(saved), "--db", str(fresh))
        assert done.returncode == 0, done.stderr
        assert _timed_write(fresh) < WAIT / 2


def test_a_restore_keeps_the_live_servers_registered(live: Path, tmp_path: Path) -> None:
    """The live store's own servers stay in its registry: writers still wait for them."""
    saved = tmp_path / "b.gpkg"
    backup(live, saved)
    with geo_serve(live, "--no-access-log"):
        with open_store(live) as store:
            workers = {s.worker for s in serving.servers(store)}
        done = _cli("restore", str(saved), "--db", str(live))
        assert done.returncode == 0, done.stderr
        with open_store(live) as store:
            assert workers <= {s.worker for s in serving.servers(store)}
