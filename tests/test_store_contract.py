"""One contract, every store: the GeoPackage file and PostGIS answer the `Store` protocol alike.

Each test runs against `SQLiteStore` (a file in tmp) and `PostGISStore` (a fresh database
cloned from a template, see `pg_support`); without PostGIS the PostGIS half skips with the
reason, and fails when ``CI=true``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import shapely
from pg_support import fresh_database
from shapely.geometry import box
from test_store import X0, Y0, assert_table_equal, sample_tables

from geo.model import TABLES
from geo.store import (
    CommunityExists,
    InvalidRecord,
    SQLiteStore,
    StaleCommunityError,
    StaleVersionError,
    UnknownCommunity,
    open_store,
    serving,
    users,
)
from geo.store.base import NoSuchUser, Store, UserExists

KINDS = ["sqlite", "postgis"]


@pytest.fixture(params=KINDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a new, empty store of each kind lives."""
    if request.param == "sqlite":
        yield str(tmp_path / "contract.gpkg")
    else:
        with fresh_database() as url:
            yield url


@pytest.fixture
def store(location: str) -> Iterator[Store]:
    s = open_store(location)
    yield s
    s.close()


def _raw(store: Store, sql: str) -> None:
    """Run SQL past the store's methods (what a careless admin or script could do)."""
    if isinstance(store, SQLiteStore):
        conn = sqlite3.connect(store.path)
        try:
            conn.execute(sql)
            conn.commit()
        finally:
            conn.close()
    else:
        import psycopg

        with psycopg.connect(store.url, autocommit=True) as conn:
            conn.execute(sql)


def _raw_error(store: Store) -> type[Exception]:
    if isinstance(store, SQLiteStore):
        return sqlite3.DatabaseError
    import psycopg

    return psycopg.Error


def test_open_store_picks_the_implementation(location: str) -> None:
    store = open_store(location)
    try:
        kind = "sqlite" if isinstance(store, SQLiteStore) else "postgis"
        assert location.startswith("postgresql://") == (kind == "postgis")
        assert type(store).__name__ == ("SQLiteStore" if kind == "sqlite" else "PostGISStore")
        assert "geo:geo" not in repr(store)  # never the password
    finally:
        store.close()


def test_empty_store(store: Store) -> None:
    assert store.version() == 0 and store.history() == []
    snap = store.snapshot()
    assert snap.version == 0 and list(snap.tables) == list(TABLES)
    for name, spec in TABLES.items():
        df = snap.tables[name]
        assert len(df) == 0
        assert list(df.columns) == [*spec.field_names, *(["geometry"] if spec.geometry else [])]
    assert snap.tables["enterprises"]["credit_code_valid"].dtype == bool
    assert snap.tables["buildings"]["floors"].dtype == "Int64"


def test_round_trip_and_dtypes_equal_across_stores(store: Store, tmp_path: Path) -> None:
    tables = sample_tables()
    assert store.replace_all(tables, author="tester", reason="first load") == 1
    snap = store.snapshot()
    with SQLiteStore(tmp_path / "reference.gpkg") as reference:
        reference.replace_all(tables, author="tester", reason="first load")
        want = reference.snapshot()
    for name in TABLES:
        assert_table_equal(snap.tables[name], tables[name], name)
        got, ref = snap.tables[name], want.tables[name]
        assert list(got.dtypes.astype(str)) == list(ref.dtypes.astype(str)), name
        if "geometry" in got:
            assert bool(shapely.equals_exact(got.geometry.values, ref.geometry.values, 0).all())
            pd.testing.assert_frame_equal(
                got.drop(columns="geometry"), ref.drop(columns="geometry")
            )
        else:
            pd.testing.assert_frame_equal(got, ref)
    holed = snap.tables["communities"].geometry[0]
    assert len(holed.interiors) == 1
    assert [v.version for v in store.history()] == [1]


def test_stale_and_invalid_writes_change_nothing(store: Store) -> None:
    store.replace_all(sample_tables(), author="a", reason="one")
    with pytest.raises(StaleVersionError):
        store.replace_all(sample_tables("v2"), author="a", reason="two", expected_version=0)
    bad = sample_tables("v2")
    bad["buildings"]["floors"] = ["twelve", None, "thirty"]
    with pytest.raises(InvalidRecord):
        store.replace_all(bad, author="a", reason="bad")
    dup = sample_tables("v2")
    dup["streets"] = pd.concat([dup["streets"], dup["streets"]])
    with pytest.raises(InvalidRecord, match="duplicate"):
        store.replace_all(dup, author="a", reason="dup")
    assert store.version() == 1
    assert store.snapshot().tables["streets"]["name"].tolist() == ["西兴街道v1"]
    total, _ = store.audit_rows()
    assert total == 1  # the failed writes left no audit row either


def test_snapshot_reuses_unchanged_tables(store: Store) -> None:
    store.replace_all(sample_tables(), author="a", reason="one")
    first = store.snapshot()
    again = store.snapshot(reuse=first)
    assert all(again.tables[n] is first.tables[n] for n in TABLES)
    store.edit_community("c1", box(X0, Y0, X0 + 0.01, Y0 + 0.01), author="a", reason="e",
                         expected_version=None)  # fmt: skip
    after = store.snapshot(reuse=again)
    assert after.version == 2
    assert after.tables["communities"] is not again.tables["communities"]
    assert after.tables["roads"] is again.tables["roads"]


def test_replace_tables_writes_only_the_tables_named(store: Store) -> None:
    store.replace_all(sample_tables(), author="a", reason="one", record_history=True)
    before = store.snapshot()
    v2 = sample_tables("v2")
    version = store.replace_tables(
        {"streets": v2["streets"]}, author="b", reason="rename a street", expected_version=1,
        audit={"target": "s1"},
    )  # fmt: skip
    assert version == 2 and store.version() == 2
    after = store.snapshot(reuse=before)
    assert after.tables["streets"]["name"].tolist() == ["西兴街道v2"]
    stamps_before = before.stamps
    assert after.stamps["streets"] != stamps_before["streets"]
    for name in TABLES:  # every other table: its stamp, and so the frame a reader shares
        if name != "streets":
            assert after.stamps[name] == stamps_before[name], name
            assert after.tables[name] is before.tables[name], name
    assert store.community_version("c1") == 1  # no history version for communities not written
    assert [v.reason for v in store.history()][:1] == ["rename a street"]
    assert store.audit_rows()[0] == 2


def test_replace_tables_refuses_as_replace_all_does(store: Store) -> None:
    store.replace_all(sample_tables(), author="a", reason="one")
    with pytest.raises(StaleVersionError):
        store.replace_tables(sample_tables("v2"), author="a", reason="two", expected_version=0)
    with pytest.raises(InvalidRecord, match="unknown tables"):
        store.replace_tables({"street": sample_tables()["streets"]}, author="a", reason="typo")
    bad = sample_tables("v2")["buildings"]
    bad["floors"] = ["twelve", None, "thirty"]
    with pytest.raises(InvalidRecord):
        store.replace_tables({"buildings": bad}, author="a", reason="bad")
    assert store.version() == 1
    assert store.snapshot().tables["streets"]["name"].tolist() == ["西兴街道v1"]
    assert store.audit_rows()[0] == 1


def test_community_history_and_if_match(store: Store) -> None:
    store.replace_all(sample_tables(), author="a", reason="load", record_history=True)
    assert store.community_version("c1") == 1
    new = box(X0, Y0, X0 + 0.02, Y0 + 0.02)
    version, store_version = store.edit_community(
        "c1", new, author="bob", reason="move", expected_version=1, fields={"four_to": "东至X"}
    )
    assert (version, store_version) == (2, 2)
    with pytest.raises(StaleCommunityError) as stale:
        store.edit_community("c1", new, author="eve", reason="late", expected_version=1)
    assert stale.value.current == 2
    with pytest.raises(UnknownCommunity):
        store.edit_community("nope", new, author="a", reason="r", expected_version=None)
    with pytest.raises(CommunityExists):
        store.edit_community("c1", new, author="a", reason="r", expected_version=None, create=True)
    assert store.edit_community(
        "c9", new, author="a", reason="new", expected_version=0, create=True,
        fields={"name": "新社区", "street_id": "s1", "type": "科技创新型", "mode": "street",
                "code": "009", "four_to": "东至Y"},
    ) == (1, 3)  # fmt: skip
    hist = store.community_history("c1")
    assert [(h.version, h.action, h.author) for h in hist] == [(2, "edit", "bob"), (1, "load", "a")]
    assert hist[0].four_to == "东至X" and shapely.equals(hist[0].geometry, new)
    row = store.snapshot().tables["communities"].set_index("id").loc["c1"]
    assert row["four_to"] == "东至X" and shapely.equals(row["geometry"], new)
    assert store.community_history("nope") == []


def test_a_first_edit_records_a_baseline(store: Store) -> None:
    store.replace_all(sample_tables(), author="a", reason="load")  # no history recorded
    assert store.community_version("c2") == 0
    assert store.edit_community("c2", box(X0, Y0, X0 + 0.01, Y0 + 0.01), author="a",
                                reason="r", expected_version=0) == (2, 2)  # fmt: skip
    assert [h.action for h in store.community_history("c2")] == ["edit", "baseline"]


def test_users_tokens_and_the_audit_log(store: Store) -> None:
    token = users.add_user(store, "ann", "planner")
    with pytest.raises(UserExists):
        users.add_user(store, "ann", "admin")
    token_id, secret = users.split_token(token)
    name, role, salt, digest = store.token_record(token_id)
    assert (name, role) == ("ann", "planner") and users.hash_secret(secret, salt) == digest
    second = users.issue_token(store, "ann")
    assert [u["active_tokens"] for u in users.list_users(store)] == [2]
    users.revoke_user(store, "ann")
    assert store.token_record(users.split_token(second)[0]) is None
    with pytest.raises(NoSuchUser):
        users.issue_token(store, "ann")
    users.add_user(store, "ann", "officer")  # a revoked name comes back
    total, rows = users.audit_rows(store, limit=2)
    assert total == 4 and [r["path"] for r in rows] == ["users add", "users revoke"]
    assert rows[0]["seq"] > rows[1]["seq"]


def test_the_database_refuses_to_change_the_audit_log(store: Store) -> None:
    users.add_user(store, "ann", "planner")
    for sql in ("UPDATE geo_audit SET actor = 'x'", "DELETE FROM geo_audit"):
        with pytest.raises(_raw_error(store), match="append-only"):
            _raw(store, sql)
    assert users.audit_rows(store)[0] == 1


def test_the_database_refuses_writes_that_bypass_geo(location: str) -> None:
    """The write guard (gpkg_guard, postgis_schema): another program's write is refused with
    the README's sentence; geo's own writes go through; a dropped guard is back on open."""
    store = open_store(location)
    try:
        store.replace_all(sample_tables(), author="a", reason="one")
        users.add_user(store, "ann", "planner")
        for sql in (
            "UPDATE communities SET name = 'outside'",
            "DELETE FROM enterprises",
            "INSERT INTO geo_versions (version, author, time, reason) VALUES (9, 'x', 't', 'r')",
            "DELETE FROM geo_users",
            "INSERT INTO geo_audit (time, actor, method, path) VALUES ('t', 'x', 'cli', 'forged')",
        ):
            with pytest.raises(_raw_error(store), match="managed by geo") as caught:
                _raw(store, sql)
            assert 'README "Editing in QGIS"' in str(caught.value)
        assert store.version() == 1 and users.audit_rows(store)[0] == 2
        store.edit_community("c1", box(X0, Y0, X0 + 0.01, Y0 + 0.01), author="a", reason="r",
                             expected_version=None)  # fmt: skip
        assert store.version() == 2
        drop = (
            "DROP TRIGGER geo_guard_communities_update"
            if isinstance(store, SQLiteStore)
            else "DROP TRIGGER geo_guard ON communities"
        )
        _raw(store, drop)  # someone drops the guard: their writes pass (a deliberate bypass)
        _raw(store, "UPDATE communities SET name = 'outside'")
        users.add_user(store, "bob", "officer")  # the next geo write notices, and restores it
        _, rows = users.audit_rows(store, limit=2)
        assert [r["path"] for r in rows] == ["users add", "guard restored"]
        assert rows[1]["actor"] == "geo" and "communities" in rows[1]["detail"]
        with pytest.raises(_raw_error(store), match="managed by geo"):
            _raw(store, "UPDATE communities SET name = 'again'")
        _raw(store, drop)
    finally:
        store.close()
    with open_store(location) as again:  # opening notices too
        assert users.audit_rows(again, limit=1)[1][0]["path"] == "guard restored"
        with pytest.raises(_raw_error(again), match="managed by geo"):
            _raw(again, "UPDATE communities SET name = 'again'")


def test_the_serving_registry(store: Store) -> None:
    serving.mark(store, "w1", 0)
    serving.mark(store, "w1", 3)
    serving.mark(store, "w2", 3)
    rows = {s.worker: s for s in serving.servers(store)}
    assert set(rows) == {"w1", "w2"} and rows["w1"].version == 3
    assert all(s.age < 5 and s.host for s in rows.values())
    assert serving.lagging(store, 4, ttl=60) == sorted(rows.values(), key=lambda s: s.worker) or (
        {s.worker for s in serving.lagging(store, 4, ttl=60)} == {"w1", "w2"}
    )
    assert serving.wait_published(store, 3, 0.1, ttl=60).behind == []
    waited = serving.wait_published(store, 4, 0.05, ttl=0.0)  # silent: not waited for
    assert waited.behind == [] and {s.worker for s in waited.stale} == {"w1", "w2"}
    serving.unregister(store, "w1")
    assert [s.worker for s in serving.servers(store)] == ["w2"]


def test_concurrent_writers_serialize(location: str) -> None:
    """Two store objects (two replicas) edit at once: every edit lands, versions never clash."""
    setup = open_store(location)
    setup.replace_all(sample_tables(), author="a", reason="load")
    setup.close()
    errors: list[BaseException] = []

    def writer(tag: str) -> None:
        store = open_store(location)
        try:
            for i in range(5):
                shape = box(X0, Y0, X0 + 0.001 * (i + 1), Y0 + 0.01)
                store.edit_community(
                    "c1", shape, author=tag, reason=f"{tag}{i}", expected_version=None
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(t,)) for t in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = open_store(location)
    try:
        assert store.version() == 11
        assert [v.version for v in store.history()] == list(range(11, 0, -1))
        assert [h.version for h in store.community_history("c1")] == list(range(11, 0, -1))
    finally:
        store.close()


def test_if_match_races_have_one_winner(location: str) -> None:
    setup = open_store(location)
    setup.replace_all(sample_tables(), author="a", reason="load", record_history=True)
    setup.close()
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def writer(i: int) -> None:
        store = open_store(location)
        try:
            barrier.wait()
            store.edit_community("c1", box(X0, Y0, X0 + 0.001 * (i + 1), Y0 + 0.01),
                                 author=str(i), reason="race", expected_version=1)  # fmt: skip
            outcomes.append("ok")
        except StaleCommunityError:
            outcomes.append("stale")
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "stale", "stale", "stale"]


def test_export_and_import_copy_everything(store: Store, tmp_path: Path) -> None:
    store.replace_all(sample_tables(), author="a", reason="load", record_history=True)
    store.edit_community("c1", box(X0, Y0, X0 + 0.01, Y0 + 0.01), author="b", reason="e",
                         expected_version=1)  # fmt: skip
    token = users.add_user(store, "ann", "admin")
    dump = store.export()
    with SQLiteStore(tmp_path / "copy.gpkg") as copy:
        assert copy.import_dump(dump, copy=True, author="backup", reason="copy") == 2
        assert copy.version() == 2 and [v.version for v in copy.history()] == [2, 1]
        assert copy.token_record(users.split_token(token)[0])[0] == "ann"
        assert users.audit_rows(copy)[0] == users.audit_rows(store)[0] == 3
        assert [h.version for h in copy.community_history("c1")] == [2, 1]
        for name in TABLES:
            assert_table_equal(copy.snapshot().tables[name], store.snapshot().tables[name], name)
        restored = store.import_dump(copy.export(), copy=False, author="restore", reason="r")
    assert restored == 3
    assert store.history()[0].author == "restore"
    assert users.audit_rows(store)[0] == 4  # the store's own log kept, one row added


# ------------------------------------------------------------- the CLI and backups, any store


def _cli(*args: str):
    from typer.testing import CliRunner

    from geo.cli import app

    return CliRunner().invoke(app, list(args))


def test_the_cli_runs_on_either_store(location: str) -> None:
    """`geo load`, `geo users`, `geo boundary`-free writes and `geo audit` with ``--db`` either
    a .gpkg path or a postgresql:// URL."""
    from geo.settings import SAMPLE_DIR

    done = _cli("load", str(SAMPLE_DIR), "--db", location)
    assert done.exit_code == 0, done.output
    done = _cli("users", "add", "cli-admin", "--role", "admin", "--db", location)
    assert done.exit_code == 0, done.output
    done = _cli("users", "list", "--db", location)
    assert "cli-admin\tadmin" in done.output
    done = _cli("audit", "--db", location)
    assert done.exit_code == 0 and "users add cli-admin" in done.output
    done = _cli("locate", "120.14966", "30.18376", "--db", location)
    assert done.exit_code == 0 and '"community"' in done.output
    assert "geo:geo@" not in done.output


def test_backup_and_restore_through_the_protocol(location: str, tmp_path: Path) -> None:
    """A backup of either store is a GeoPackage at the same version; restoring it writes the
    backup's data as one new version above the live one."""
    from geo.service.backup import backup, restore, validate

    store = open_store(location)
    try:
        store.replace_all(sample_tables(), author="a", reason="load", record_history=True)
        token = users.add_user(store, "ann", "admin")
        saved = tmp_path / "saved.gpkg"
        done = backup(location, saved)
        assert done.version == 1 and validate(saved, strict=True).version == 1
        assert not list(tmp_path.glob(".*part*"))  # nothing left aside
        store.edit_community("c1", box(X0, Y0, X0 + 0.01, Y0 + 0.01), author="b", reason="e",
                             expected_version=1)  # fmt: skip
        users.revoke_user(store, "ann")
        back = restore(saved, location)
        assert back.version == store.version() == 3 and back.source_version == 1
        assert store.history(1)[0].author == "restore"
        assert [h.version for h in store.community_history("c1")] == [1]
        assert store.token_record(users.split_token(token)[0]) is not None  # ann is back
        want = sample_tables()
        for name in TABLES:
            assert_table_equal(store.snapshot().tables[name], want[name], name)
    finally:
        store.close()


def test_wait_for_change_wakes_on_a_commit(location: str) -> None:
    """A replica's watcher: PostGIS wakes it by NOTIFY at the commit, long before the poll
    timeout; a file store polls (returns after the timeout)."""
    import time

    setup = open_store(location)
    setup.replace_all(sample_tables(), author="a", reason="load")
    setup.close()
    watcher = open_store(location)
    notifies = not isinstance(watcher, SQLiteStore)
    try:
        watcher.wait_for_change(0.0)  # subscribes (PostGIS: LISTEN)

        def commit() -> None:
            time.sleep(0.5)
            with open_store(location) as writer:
                writer.edit_community("c1", box(X0, Y0, X0 + 0.01, Y0 + 0.01), author="w",
                                      reason="wake", expected_version=None)  # fmt: skip

        thread = threading.Thread(target=commit)
        started = time.monotonic()
        thread.start()
        watcher.wait_for_change(60.0 if notifies else 0.05)
        took = time.monotonic() - started
        thread.join()
        assert took < 20, took  # far below the 60 s poll: the NOTIFY woke it
    finally:
        watcher.close()


def test_a_postgis_store_holds_a_bounded_pool_of_connections() -> None:
    """However many request threads a replica runs, it opens at most ``pool_size`` connections
    (PostgreSQL's max_connections is shared by every replica)."""
    import psycopg
    from pg_support import admin_url

    with fresh_database() as url:
        store = open_store(url)
        try:
            users.add_user(store, "ann", "admin")
            dbname = url.rsplit("/", 1)[1]
            seen: list[int] = []

            def read() -> None:
                for _ in range(5):
                    store.token_record("nope")
                    store.version()

            threads = [threading.Thread(target=read) for _ in range(30)]
            for t in threads:
                t.start()
            with psycopg.connect(admin_url(), autocommit=True) as conn:
                for _ in range(20):
                    (n,) = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (dbname,)
                    ).fetchone()
                    seen.append(int(n))
            for t in threads:
                t.join()
            assert max(seen) <= 8, seen
        finally:
            store.close()
