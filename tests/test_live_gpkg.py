"""The live GeoPackage refuses writes that do not come through geo (`geo.store.gpkg_guard`).

While `geo serve` runs, a planner's write into the store's file with GDAL (``ogrinfo -sql``, as
QGIS's own edits go through GDAL) or with SQLite is refused by the file itself with a sentence
saying what to do instead; the server keeps answering the same data, version, history and
audit log. Reading the file (``ogrinfo -ro``, GDAL in update mode as QGIS opens it, pyogrio)
keeps working, and geo's own writes (boundary edit, grid commit, users, import, restore) too.
A store made before the guard gets it when geo opens it; a guard someone dropped (or switched
off) is noticed and restored by the next geo write, the running server's heartbeat included.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from support import geo_serve

from geo.service.backup import BackupError, backup, restore, validate
from geo.settings import SAMPLE_DIR
from geo.store import open_store, users
from geo.store.gpkg_guard import GUARD_TABLE, MESSAGE, expected_triggers
from geo.store.schema import SCHEMA_VERSION

WEST = "东至信诚路、南至南环路、西至伟业路、北至江南大道"  # C01's western edge on 伟业路
REFUSED = "managed by geo"  # in every refusal (MESSAGE)
RENAME = "UPDATE communities SET name = 'QGIS 改名' WHERE id = 'C01'"
OUTSIDE_WRITES = (  # what a script, QGIS or a careless admin could run
    RENAME,
    "DELETE FROM communities WHERE id = 'C02'",
    "INSERT INTO enterprises (id, name) VALUES ('E-outside', 'x')",
    "INSERT INTO geo_versions (version, author, time, reason) VALUES (999, 'x', 't', 'r')",
    "DELETE FROM community_history",
    "INSERT INTO geo_users (name, role, created) VALUES ('mallory', 'admin', 't')",
    "UPDATE geo_table_stamps SET stamp = 'x'",
    "INSERT INTO geo_audit (time, actor, method, path) VALUES ('t', 'x', 'cli', 'forged')",
)


def ogrinfo_missing() -> str | None:
    """Why the GDAL command-line tools cannot be used here (None: they can)."""
    if shutil.which("ogrinfo") is None:
        return "no ogrinfo (GDAL's command-line tools): apt-get install -y gdal-bin"
    return None


def ogrinfo(*args: str) -> subprocess.CompletedProcess[str]:
    """Run GDAL's ogrinfo; skips on a laptop without it, FAILS when ``CI=true``."""
    reason = ogrinfo_missing()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the live-GeoPackage tests need GDAL on CI: {reason}")
        pytest.skip(reason)
    return subprocess.run(["ogrinfo", *args], capture_output=True, text=True, timeout=60)


def outside(db: Path, sql: str) -> None:
    """Run ``sql`` on the file with plain SQLite, as another program would, and commit."""
    con = sqlite3.connect(db, timeout=30)
    try:
        con.execute(sql)
        con.commit()
    finally:
        con.close()


def assert_refused(db: Path, sql: str = RENAME) -> None:
    """``sql`` from another program is refused with the README's sentence."""
    with pytest.raises(sqlite3.IntegrityError, match=REFUSED) as caught:
        outside(db, sql)
    assert 'README "Editing in QGIS"' in str(caught.value)


def marker(db: Path) -> int:
    """``geo_writer.writing`` as every other connection sees it (0 outside geo's writes)."""
    con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return con.execute(f"SELECT writing FROM {GUARD_TABLE}").fetchone()[0]
    finally:
        con.close()


def guard_triggers(db: Path) -> set[str]:
    """The guard triggers the file holds."""
    con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
        return {r[0] for r in rows if r[0].startswith("geo_guard_")}
    finally:
        con.close()


def all_expected(db: Path) -> set[str]:
    """Every guard trigger the file's tables must carry."""
    con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        con.close()
    return set(expected_triggers(tables))


def audit_paths(db: Path) -> list[str]:
    """The audit log's paths, oldest first."""
    with open_store(db) as store:
        _, rows = users.audit_rows(store, limit=1000)
    return [r["path"] for r in reversed(rows)]


def served(base: str, db: Path) -> dict:
    """What the server answers and the store holds: C01's name and version, the data version,
    C01's history, the audit log and the store's version list."""
    c01 = httpx.get(f"{base}/communities/C01").json()
    history = httpx.get(f"{base}/communities/C01/history").json()["versions"]
    with open_store(db) as store:
        total, _ = users.audit_rows(store, limit=1)
        versions = [v.version for v in store.history()]
    return {
        "name": c01["properties"]["name"],
        "community_version": c01["properties"]["version"],
        "data_version": httpx.get(f"{base}/health").json()["data_version"],
        "history": [(h["version"], h["action"]) for h in history],
        "audit": total,
        "versions": versions,
    }


def read_with_pyogrio(db: Path) -> list[str]:
    """The communities' names read by pyogrio (GDAL) in another process: GDAL links its own
    SQLite, which must not share a process with open store connections (geo.store.sqlite)."""
    code = (
        "import json, sys, pyogrio; "
        "df = pyogrio.read_dataframe(sys.argv[1], layer='communities'); "
        "print(json.dumps(sorted(df['name'])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(db)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def geo(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the `geo` command."""
    return subprocess.run(
        [sys.executable, "-c", "from geo.cli import main; main()", *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


# ------------------------------------------------------------------------ while geo serves


def test_outside_writes_into_the_served_geopackage_are_refused(tmp_path: Path, copy_sample) -> None:
    db = Path(copy_sample(tmp_path / "live.gpkg"))
    with open_store(db) as store:
        planner = {"Authorization": f"Bearer {users.add_user(store, 'planner-g', 'planner')}"}
        admin = {"Authorization": f"Bearer {users.add_user(store, 'admin-g', 'admin')}"}
    saved = tmp_path / "saved.gpkg"
    backup(db, saved)
    with geo_serve(db) as base:
        before = served(base, db)
        names = read_with_pyogrio(db)
        # GDAL, as QGIS or a planner with ogrinfo would write
        done = ogrinfo(str(db), "-sql", RENAME)
        assert REFUSED in done.stderr and 'README "Editing in QGIS"' in done.stderr, done
        # SQLite (what the sqlite3 shell or a script runs), every table geo keeps
        for sql in OUTSIDE_WRITES:
            assert_refused(db, sql)
        time.sleep(0.5)  # more than GEO_REFRESH_SECONDS: a change would be served by now
        assert served(base, db) == before
        # reading keeps working: read-only, update mode (as QGIS opens a layer), pyogrio
        done = ogrinfo("-ro", "-so", str(db), "communities")
        assert done.returncode == 0 and "Feature Count: 7" in done.stdout, done
        done = ogrinfo(str(db), "-sql", "SELECT count(*) AS n FROM communities")
        assert done.returncode == 0 and "n (Integer) = 7" in done.stdout, done
        assert read_with_pyogrio(db) == names and "QGIS 改名" not in names
        assert_geo_writes_still_work(base, db, saved, planner, admin, before)
    assert marker(db) == 0 and guard_triggers(db) == all_expected(db)
    assert_refused(db)


def assert_geo_writes_still_work(
    base: str, db: Path, saved: Path, planner: dict, admin: dict, before: dict
) -> None:
    """Import, boundary edit, grid commit, users and restore through geo, each followed by an
    outside write that is still refused (the marker is never seen set)."""
    done = geo(
        "import", "parks", str(SAMPLE_DIR / "parks.geojson"), "--mode", "add", "--db", str(db)
    )
    assert done.returncode == 0, done.stderr
    assert_refused(db, "DELETE FROM parks")
    v = before["community_version"]
    r = httpx.put(
        f"{base}/communities/C01/boundary",
        json={"four_to": WEST, "reason": "west edge on 伟业路"},
        headers={**planner, "If-Match": str(v)},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert served(base, db)["history"][0] == (v + 1, "edit")
    assert_refused(db)
    r = httpx.post(
        f"{base}/communities/C02/grids/commit",
        json={"count": 3},
        headers={**planner, "If-Match": str(httpx.get(f"{base}/health").json()["data_version"])},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert_refused(db, "DELETE FROM grids")
    r = httpx.post(f"{base}/users", json={"name": "officer-g", "role": "officer"}, headers=admin)
    assert r.status_code == 201, r.text
    assert_refused(db, "DELETE FROM geo_tokens")
    paths = audit_paths(db)
    assert len(paths) >= before["audit"] + 4 and "guard restored" not in paths, paths
    version = httpx.get(f"{base}/health").json()["data_version"]
    done = geo("restore", str(saved), "--db", str(db))
    assert done.returncode == 0, done.stderr
    after = served(base, db)
    assert after["data_version"] > version and after["name"] == before["name"]
    assert after["versions"][0] == after["data_version"]
    assert audit_paths(db)[-1] == "restore"
    assert_refused(db)


def test_a_dropped_guard_is_noticed_and_restored_by_the_running_server(
    tmp_path: Path, copy_sample
) -> None:
    db = Path(copy_sample(tmp_path / "live.gpkg"))
    env = {"GEO_HEARTBEAT_TTL_SECONDS": "1.5"}  # a heartbeat (a geo write) every 0.5 s
    with geo_serve(db, env=env) as base:
        version = httpx.get(f"{base}/health").json()["data_version"]
        outside(db, "DROP TRIGGER geo_guard_communities_update")
        outside(db, RENAME)  # someone who drops the guard can write (a deliberate bypass)
        deadline = time.monotonic() + 20
        while "guard restored" not in audit_paths(db) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert guard_triggers(db) == all_expected(db)
        assert_refused(db)
        with open_store(db) as store:
            _, rows = users.audit_rows(store, limit=5)
        row = next(r for r in rows if r["path"] == "guard restored")
        assert row["actor"] == "geo" and "geo_guard_communities_update" in row["detail"]
        assert row["version_before"] == row["version_after"] == version
        # someone switches the guard off: the next geo write switches it on again, and says so
        outside(db, f"UPDATE {GUARD_TABLE} SET writing = 1")
        deadline = time.monotonic() + 20
        while marker(db) != 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert marker(db) == 0
        assert_refused(db)
        with open_store(db) as store:
            _, rows = users.audit_rows(store, limit=5)
        assert any("switched the guard off" in (r["detail"] or "") for r in rows)


# ------------------------------------------------------------------------ opening, backups


def _unguard(db: Path, schema_version: int = 1) -> None:
    """Make ``db`` what a geo from before the guard wrote: no triggers, no marker table."""
    con = sqlite3.connect(db)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='trigger'")]
        for name in names:
            if name.startswith("geo_guard_"):
                con.execute(f'DROP TRIGGER "{name}"')
        con.execute(f"DROP TABLE {GUARD_TABLE}")
        con.execute(
            "UPDATE geo_meta SET value = ? WHERE key = 'schema_version'", (str(schema_version),)
        )
        con.commit()
    finally:
        con.close()


def test_a_store_made_before_the_guard_gets_it_when_geo_opens_it(
    tmp_path: Path, copy_sample, caplog: pytest.LogCaptureFixture
) -> None:
    db = Path(copy_sample(tmp_path / "old.gpkg"))
    _unguard(db)
    outside(db, RENAME)  # the old file takes any write: the problem this guard solves
    with caplog.at_level(logging.WARNING, logger="geo.store"), open_store(db) as store:
        version = store.version()
    assert not caplog.records  # a migration, not a repair: nothing to warn about
    assert guard_triggers(db) == all_expected(db) and marker(db) == 0
    assert "guard restored" not in audit_paths(db)
    con = sqlite3.connect(db)
    try:
        row = con.execute("SELECT value FROM geo_meta WHERE key='schema_version'").fetchone()
    finally:
        con.close()
    assert row == (str(SCHEMA_VERSION),)
    assert_refused(db)
    with open_store(db) as store:
        assert store.version() == version


def test_opening_a_store_whose_guard_was_dropped_says_so(
    tmp_path: Path, copy_sample, caplog: pytest.LogCaptureFixture
) -> None:
    db = Path(copy_sample(tmp_path / "live.gpkg"))
    outside(db, "DROP TRIGGER geo_guard_enterprises_insert")
    with caplog.at_level(logging.WARNING, logger="geo.store"), open_store(db):
        pass
    assert any("geo_guard_enterprises_insert" in r.getMessage() for r in caplog.records)
    assert audit_paths(db)[-1] == "guard restored"
    assert guard_triggers(db) == all_expected(db)
    assert_refused(db, OUTSIDE_WRITES[2])


def test_opening_a_store_whose_guard_was_weakened_says_so(
    tmp_path: Path, copy_sample, caplog: pytest.LogCaptureFixture
) -> None:
    db = Path(copy_sample(tmp_path / "live.gpkg"))
    con = sqlite3.connect(db)
    con.executescript(
        "DROP TRIGGER geo_guard_communities_update; "
        "CREATE TRIGGER geo_guard_communities_update BEFORE UPDATE ON communities "
        "WHEN 0 BEGIN SELECT RAISE(ABORT, 'never'); END"
    )
    con.close()
    outside(db, RENAME)  # the weakened guard lets it through
    with caplog.at_level(logging.WARNING, logger="geo.store"), open_store(db):
        pass
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "were changed: geo_guard_communities_update" in said
    assert audit_paths(db)[-1] == "guard restored"
    assert_refused(db)


def test_a_backup_carries_the_guard_and_restores_with_it(tmp_path: Path, copy_sample) -> None:
    live = Path(copy_sample(tmp_path / "live.gpkg"))
    saved = tmp_path / "saved.gpkg"
    backup(live, saved)
    assert guard_triggers(saved) == all_expected(saved) and marker(saved) == 0
    validate(saved, strict=True)  # the guard's objects are geo's own
    restore(saved, live)
    assert guard_triggers(live) == all_expected(live) and marker(live) == 0
    assert_refused(live)


def test_an_old_backup_restores_and_the_store_is_guarded(tmp_path: Path, copy_sample) -> None:
    live = Path(copy_sample(tmp_path / "live.gpkg"))
    old = Path(copy_sample(tmp_path / "old.gpkg"))
    _unguard(old)
    validate(old, strict=True)
    restore(old, live)
    assert guard_triggers(live) == all_expected(live) and marker(live) == 0
    assert_refused(live)


def test_a_backup_with_the_guard_switched_off_restores_guarded(tmp_path: Path, copy_sample) -> None:
    live = Path(copy_sample(tmp_path / "live.gpkg"))
    hostile = Path(copy_sample(tmp_path / "hostile.gpkg"))
    outside(hostile, f"UPDATE {GUARD_TABLE} SET writing = 1")
    restore(hostile, live)
    assert marker(live) == 0
    assert_refused(live)
    assert audit_paths(live)[-2:] == ["guard restored", "restore"]


def test_a_backup_with_a_weakened_guard_is_refused(tmp_path: Path, copy_sample) -> None:
    live = Path(copy_sample(tmp_path / "live.gpkg"))
    hostile = Path(copy_sample(tmp_path / "hostile.gpkg"))
    con = sqlite3.connect(hostile)
    con.executescript(
        "DROP TRIGGER geo_guard_communities_update; "
        "CREATE TRIGGER geo_guard_communities_update BEFORE UPDATE ON communities "
        "WHEN 0 BEGIN SELECT RAISE(ABORT, 'never'); END"
    )
    con.close()
    with pytest.raises(BackupError, match="geo_guard_communities_update"):
        restore(hostile, live)
    assert_refused(live)


def test_the_message_names_the_way_to_edit() -> None:
    assert "API" in MESSAGE and 'README "Editing in QGIS"' in MESSAGE
