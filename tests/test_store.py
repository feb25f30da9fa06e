"""The embedded store: a GeoPackage on SQLite, with history, atomic writes and GDAL conformance."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Point, Polygon, box

from geo.model import LAYERS, TABLES
from geo.store import SQLiteStore, StaleVersionError, StoreSchemaError, open_store
from geo.store import tables as store_tables
from geo.store.gpkg_blobs import decode_geometries, encode_geometries
from geo.store.schema import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[1]
X0, Y0 = 120.20, 30.20  # Binjiang


def _sq(i: int, d: float = 0.01) -> Polygon:
    return box(X0 + i * d, Y0, X0 + (i + 1) * d, Y0 + d)


def sample_tables(tag: str = "v1") -> dict[str, pd.DataFrame]:
    """A few features per layer (rows deliberately not sorted by id), plus officers."""
    crs = "EPSG:4326"
    roads = gpd.GeoDataFrame(
        {
            "id": ["r2", "r1", "r3"],
            "name": [f"江南大道{tag}", "信诚路", "联庄路"],
            "class": ["arterial", "secondary", "branch"],
        },
        geometry=[
            LineString([(X0, Y0), (X0 + 0.05, Y0)]),
            LineString([(X0, Y0), (X0, Y0 + 0.05), (X0 + 0.01, Y0 + 0.06)]),
            LineString([(X0 + 0.02, Y0), (X0 + 0.02, Y0 + 0.05)]),
        ],
        crs=crs,
    )
    streets = gpd.GeoDataFrame(
        {"id": ["s1"], "name": [f"西兴街道{tag}"], "code": ["001"]},
        geometry=[box(X0, Y0, X0 + 0.05, Y0 + 0.05)],
        crs=crs,
    )
    communities = gpd.GeoDataFrame(
        {
            "id": ["c2", "c1"],
            "name": [f"物联网社区{tag}", "互联网社区"],
            "street_id": ["s1", "s1"],
            "code": ["001", "002"],
            "type": ["科技创新型", "智能制造型"],
            "mode": ["platform", "street"],
            "four_to": ["东至信诚路、南至南环路、西至东信大道、北至江南大道", "东至…"],
            "founded": [None, "2021-06"],
        },
        geometry=[
            box(X0 + 0.025, Y0, X0 + 0.05, Y0 + 0.05),
            Polygon(
                [(X0, Y0), (X0 + 0.025, Y0), (X0 + 0.025, Y0 + 0.05), (X0, Y0 + 0.05)],
                holes=[[(X0 + 0.01, Y0 + 0.01), (X0 + 0.011, Y0 + 0.01), (X0 + 0.01, Y0 + 0.011)]],
            ),
        ],
        crs=crs,
    )
    grids = gpd.GeoDataFrame(
        {
            "id": ["g1", "g2"],
            "name": ["一网格", "二网格"],
            "community_id": ["c1", "c1"],
            "code": ["001", "002"],
        },
        geometry=[_sq(0), _sq(1)],
        crs=crs,
    )
    parks = gpd.GeoDataFrame(
        {
            "id": ["p1"],
            "name": ["海创园"],
            "grid_id": ["g1"],
            "code": ["001"],
            "address": [None],
        },
        geometry=[box(X0 + 0.001, Y0 + 0.001, X0 + 0.004, Y0 + 0.004)],
        crs=crs,
    )
    buildings = gpd.GeoDataFrame(
        {
            "id": ["b3", "b1", "b2"],
            "name": ["A座", "B座", "C座"],
            "address": ["网商路1号", "网商路2号", "网商路3号"],
            "kind": ["enterprise", "mixed-use", "enterprise"],
            "grid_id": ["g1", "g1", "g2"],
            "park_id": ["p1", None, None],
            "code": [None, "001", "002"],
            "floors": pd.array([12, None, 30], dtype="Int64"),
            "not_in_spec": ["dropped", "dropped", "dropped"],
        },
        geometry=[
            box(X0 + 0.002, Y0 + 0.002, X0 + 0.0025, Y0 + 0.0025),
            box(X0 + 0.005, Y0 + 0.002, X0 + 0.0055, Y0 + 0.0025),
            box(X0 + 0.015, Y0 + 0.002, X0 + 0.0155, Y0 + 0.0025),
        ],
        crs=crs,
    )
    enterprises = gpd.GeoDataFrame(
        {
            "id": ["e2", "e1", "e3"],
            "name": ["甲公司", "乙公司", "丙公司"],
            "credit_code": ["91330108MA27Y0001X", "91330108MA27Y0002X", "91330108MA27Y0003X"],
            "credit_code_valid": [True, False, True],
            "address": ["a", "b", "c"],
            "chain": ["数字安防", None, "集成电路"],
            "employees": pd.array([120, None, 8], dtype="Int64"),
            "source_crs": ["wgs84", "gcj02", "bd09"],
        },
        geometry=[
            Point(X0 + 0.0022, Y0 + 0.0022),
            Point(X0 + 0.0052, Y0 + 0.0022),
            Point(X0 + 0.03, Y0 + 0.03),
        ],
        crs=crs,
    )
    officers = pd.DataFrame(
        {
            "id": ["o2", "o1"],
            "name": ["张三", "李四"],
            "role": ["楼宇管理长", "助企联络员"],
            "phone": ["13800000000", "13900000000"],
            "party_member": [False, True],
            "building_ids": ["b1;b2", "b3"],
        }
    )
    areas = gpd.GeoDataFrame(
        {"id": ["a1"], "name": ["汇智"]},
        geometry=[box(X0, Y0 + 0.05, X0 + 0.02, Y0 + 0.06)],
        crs=crs,
    )
    return {
        "roads": roads,
        "streets": streets,
        "communities": communities,
        "grids": grids,
        "parks": parks,
        "buildings": buildings,
        "enterprises": enterprises,
        "areas": areas,
        "officers": officers,
    }


def assert_table_equal(got: pd.DataFrame, want: pd.DataFrame, name: str) -> None:
    """`got` (from a snapshot) holds the rows of `want` (an input frame), sorted by id."""
    spec = TABLES[name]
    want = want.sort_values("id").reset_index(drop=True)
    assert list(got["id"]) == list(want["id"]), name
    for f in spec.fields:
        g = got[f.name].tolist()
        w = [None if pd.isna(v) else v for v in want[f.name]] if f.name in want else [None] * len(g)
        g = [None if v is pd.NA else v for v in g]
        assert g == w, (name, f.name)
    if spec.geometry:
        assert bool(shapely.equals_exact(got.geometry.values, want.geometry.values, 0).all())


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "geo.gpkg"


@pytest.fixture
def store(path: Path):
    s = SQLiteStore(path)
    yield s
    s.close()


# --------------------------------------------------------------------------- round trip


def test_empty_store(store: SQLiteStore) -> None:
    assert store.version() == 0
    assert store.history() == []
    snap = store.snapshot()
    assert snap.version == 0
    assert list(snap.tables) == list(TABLES)
    for name, spec in TABLES.items():
        df = snap.tables[name]
        assert len(df) == 0
        extra = ["geometry"] if spec.geometry else []
        assert list(df.columns) == [*spec.field_names, *extra]
        if spec.geometry:
            assert isinstance(df, gpd.GeoDataFrame)
            assert df.crs.to_epsg() == 4326
    assert snap.tables["enterprises"]["credit_code_valid"].dtype == bool
    assert snap.tables["buildings"]["floors"].dtype == "Int64"


def test_round_trip_every_table(store: SQLiteStore) -> None:
    tables = sample_tables()
    assert store.replace_all(tables, author="tester", reason="first load") == 1
    snap = store.snapshot()
    assert snap.version == 1
    for name, spec in TABLES.items():
        got = snap.tables[name]
        extra = ["geometry"] if spec.geometry else []
        assert list(got.columns) == [*spec.field_names, *extra], name
        assert isinstance(got.index, pd.RangeIndex)
        assert got["id"].is_monotonic_increasing
        if spec.geometry:
            assert isinstance(got, gpd.GeoDataFrame)
            assert got.crs.to_epsg() == 4326
        else:
            assert not isinstance(got, gpd.GeoDataFrame)
        assert_table_equal(got, tables[name], name)

    ent = snap.tables["enterprises"]
    assert ent["credit_code_valid"].dtype == bool
    assert ent["credit_code_valid"].tolist() == [False, True, True]  # e1, e2, e3
    assert ent["employees"].dtype == "Int64"
    assert ent["employees"].isna().tolist() == [True, False, False]
    assert ent["chain"].dtype == object and ent["chain"][0] is None  # missing str is None
    assert snap.tables["officers"]["party_member"].dtype == bool
    assert snap.tables["buildings"]["floors"].tolist()[0] is pd.NA
    assert "not_in_spec" not in snap.tables["buildings"].columns
    holed = snap.tables["communities"].geometry[0]
    assert len(holed.interiors) == 1


def test_geometry_blobs_vectorised_round_trip() -> None:
    geoms = np.array(
        [
            Point(1, 2),
            Point(1, 2, 3),  # Z dropped: the store is 2D lon/lat
            LineString([(0, 0), (1, 1)]),
            MultiPolygon([_sq(0), _sq(2)]),
            Polygon(),
            LineString(),
        ],
        dtype=object,
    )
    blobs, bounds = encode_geometries(geoms)
    assert all(b[:2] == b"GP" and b[2] == 0 for b in blobs)
    assert blobs[0][3] == 0b011  # little-endian, envelope [minx, maxx, miny, maxy]
    assert int.from_bytes(blobs[0][4:8], "little") == 4326
    assert np.frombuffer(blobs[3][8:40], "<f8").tolist() == [
        X0,
        X0 + 0.03,
        Y0,
        Y0 + 0.01,
    ]
    assert blobs[4][3] & 0x10 and len(blobs[4]) == 8 + len(shapely.to_wkb(Polygon()))
    back = decode_geometries(blobs)
    assert back[1].equals(Point(1, 2)) and not back[1].has_z
    assert shapely.equals_exact(back[[0, 2, 3]], geoms[[0, 2, 3]], 0).all()
    assert back[4].is_empty and back[4].geom_type == "Polygon"
    assert back[5].is_empty and back[5].geom_type == "LineString"
    assert np.isnan(bounds[4]).all()
    assert decode_geometries([None])[0] is None


def test_mixed_and_empty_geometries_round_trip(store: SQLiteStore) -> None:
    tables = sample_tables()
    roads = tables["roads"].copy()
    roads.loc[1, "geometry"] = MultiLineString([[(X0, Y0), (X0, Y0 + 0.01)], [(X0, 1), (X0, 2)]])
    roads.loc[2, "geometry"] = LineString()
    tables["roads"] = roads
    store.replace_all(tables, author="t", reason="mixed")
    got = store.snapshot().tables["roads"]
    assert_table_equal(got, roads, "roads")
    assert got.geometry.is_empty.tolist() == [False, False, True]


def test_crs_of_input_is_respected(store: SQLiteStore) -> None:
    tables = sample_tables()
    tables["enterprises"] = tables["enterprises"].to_crs(3857)
    store.replace_all(tables, author="t", reason="projected input")
    got = store.snapshot().tables["enterprises"]
    want = sample_tables()["enterprises"].sort_values("id")
    assert np.allclose(
        shapely.get_coordinates(got.geometry), shapely.get_coordinates(want.geometry)
    )


# --------------------------------------------------------------------------- versions


def test_versions_and_history(store: SQLiteStore) -> None:
    for i in range(1, 4):
        v = store.replace_all(sample_tables(f"v{i}"), author=f"author{i}", reason=f"reason {i}")
        assert v == i
        assert store.version() == i
        assert store.snapshot().tables["roads"].set_index("id").loc["r2", "name"] == f"江南大道v{i}"
    hist = store.history()
    assert [h.version for h in hist] == [3, 2, 1]
    assert [h.author for h in hist] == ["author3", "author2", "author1"]
    assert hist[0].reason == "reason 3"
    t = datetime.fromisoformat(hist[0].time)
    assert t.utcoffset().total_seconds() == 0
    assert [h.version for h in store.history(limit=2)] == [3, 2]


def test_absent_tables_are_emptied(store: SQLiteStore) -> None:
    store.replace_all(sample_tables(), author="t", reason="all")
    tables = sample_tables()
    store.replace_all({"roads": tables["roads"]}, author="t", reason="only roads")
    snap = store.snapshot()
    assert len(snap.tables["roads"]) == 3
    assert all(len(snap.tables[n]) == 0 for n in TABLES if n != "roads")


def test_expected_version(store: SQLiteStore) -> None:
    store.replace_all(sample_tables(), author="t", reason="1")
    assert store.replace_all(sample_tables(), author="t", reason="2", expected_version=1) == 2
    with pytest.raises(StaleVersionError, match="version 2, not 1"):
        store.replace_all(sample_tables(), author="t", reason="stale", expected_version=1)
    assert store.version() == 2


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda t: t["communities"].drop(columns=["name", "mode"]),
            r"'communities'.*\['name', 'mode'\]",
        ),
        (lambda t: t["communities"].assign(type="不存在型"), r"'communities'.*'type'.*不存在型"),
        (lambda t: t["communities"].assign(id=["c1", "c1"]), r"'communities': duplicate ids"),
        (lambda t: t["communities"].assign(name=[None, "x"]), r"'communities'.*'name'.*'c2'"),
        (
            lambda t: t["communities"].assign(geometry=[Point(0, 0), _sq(0)]),
            r"'communities'.*POINT",
        ),
        (lambda t: t["communities"].assign(geometry=[None, _sq(0)]), r"'c2' have no geometry"),
        (
            lambda t: pd.DataFrame(t["communities"]).assign(geometry=["POINT (0 0)", None]),
            "shapely",
        ),
        (lambda t: pd.DataFrame(t["communities"].drop(columns="geometry")), "no geometry column"),
    ],
    ids=[
        "missing-columns",
        "bad-choice",
        "duplicate-id",
        "missing-value",
        "wrong-kind",
        "null-geometry",
        "not-a-geometry",
        "no-geometry-column",
    ],
)
def test_invalid_input_is_refused_and_nothing_changes(store, change, message) -> None:
    store.replace_all(sample_tables(), author="t", reason="good")
    tables = sample_tables("bad")
    tables["communities"] = change(tables)
    with pytest.raises(ValueError, match=message):
        store.replace_all(tables, author="t", reason="bad")
    assert store.version() == 1
    assert_table_equal(
        store.snapshot().tables["communities"], sample_tables()["communities"], "communities"
    )


def test_value_types_are_checked(store: SQLiteStore) -> None:
    tables = sample_tables()
    tables["buildings"] = tables["buildings"].assign(floors=[1.5, 2, 3])
    with pytest.raises(ValueError, match=r"'buildings'.*'floors'.*whole numbers"):
        store.replace_all(tables, author="t", reason="bad")
    tables = sample_tables()
    tables["officers"] = tables["officers"].assign(party_member=["yes", "no"])
    with pytest.raises(ValueError, match=r"'officers'.*'party_member'.*true/false"):
        store.replace_all(tables, author="t", reason="bad")
    with pytest.raises(ValueError, match="unknown tables"):
        store.replace_all({"rivers": tables["roads"]}, author="t", reason="bad")
    # friendly coercions: float-with-NaN ints, 0/1 bools, int codes as text
    tables = sample_tables()
    tables["buildings"] = tables["buildings"].assign(floors=[1.0, np.nan, 3.0])
    tables["officers"] = tables["officers"].assign(party_member=[0, 1])
    tables["streets"] = tables["streets"].assign(code=[1])
    store.replace_all(tables, author="t", reason="coerced")
    snap = store.snapshot()
    assert snap.tables["buildings"]["floors"].tolist()[1:] == [3, 1]  # b1, b2, b3
    assert snap.tables["officers"]["party_member"].tolist() == [True, False]
    assert snap.tables["streets"]["code"].tolist() == ["1"]


# --------------------------------------------------------------------------- atomicity


def test_failure_mid_transaction_leaves_previous_version(store, path, monkeypatch) -> None:
    first = sample_tables()
    store.replace_all(first, author="t", reason="good")
    original = store_tables._insert_rows
    seen = []

    def failing(cur, name, spec, rows):
        seen.append(name)
        if name == "buildings":  # roads … parks already deleted and re-inserted
            raise RuntimeError("disk on fire")
        return original(cur, name, spec, rows)

    monkeypatch.setattr(store_tables, "_insert_rows", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.replace_all(sample_tables("v2"), author="t", reason="fails")
    assert seen[:2] == ["roads", "streets"]
    monkeypatch.undo()

    with SQLiteStore(path) as fresh:
        for s in (store, fresh):  # this connection and a fresh one
            assert s.version() == 1
            assert [h.version for h in s.history()] == [1]
            snap = s.snapshot()
            for name in TABLES:
                assert_table_equal(snap.tables[name], first[name], name)
    assert store.replace_all(sample_tables("v2"), author="t", reason="works again") == 2


def test_snapshots_are_never_torn(store: SQLiteStore) -> None:
    """Readers in other threads always see every table at one and the same version."""
    store.replace_all(sample_tables("v1"), author="t", reason="1")
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                snap = store.snapshot()
                tag = f"v{snap.version}"
                assert snap.tables["roads"].set_index("id").loc["r2", "name"] == f"江南大道{tag}"
                assert snap.tables["streets"]["name"][0] == f"西兴街道{tag}"
                assert (
                    snap.tables["communities"].set_index("id").loc["c2", "name"]
                    == f"物联网社区{tag}"
                )
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(2, 12):
        store.replace_all(sample_tables(f"v{i}"), author="t", reason=str(i))
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors
    assert store.version() == 11


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    import geopandas as gpd, numpy as np, shapely
    from geo.store import tables as store_tables
    from geo.store.sqlite import SQLiteStore

    store = SQLiteStore(sys.argv[1])
    original = store_tables._insert_rows

    def slow_rows(rows):
        for i, row in enumerate(rows):
            if i == 150_000:  # well inside executemany, inside the transaction
                print("writing", flush=True)
                time.sleep(60)
            yield row

    def insert(cur, name, spec, rows):
        return original(cur, name, spec, slow_rows(rows) if name == "enterprises" else rows)

    store_tables._insert_rows = insert
    n = 200_000
    rng = np.random.default_rng(1)
    ents = gpd.GeoDataFrame(
        {
            "id": [f"e{i:07d}" for i in range(n)],
            "name": "企业", "credit_code": "91330108MA27Y0001X", "credit_code_valid": True,
            "address": "网商路", "source_crs": "wgs84",
        },
        geometry=shapely.points(120.2 + rng.random(n) * 0.1, 30.2 + rng.random(n) * 0.1),
        crs=4326,
    )
    print("start", flush=True)
    store.replace_all({"enterprises": ents}, author="child", reason="never committed")
    print("committed", flush=True)
    """
)


@pytest.mark.slow  # kill -9 of a real writer process
def test_kill_9_mid_write_keeps_last_committed_version(path: Path) -> None:
    first = sample_tables()
    with SQLiteStore(path) as s:
        s.replace_all(first, author="t", reason="committed")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = []
        while "writing" not in lines:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"writer exited early: {lines} {proc.stderr.read()}")
            lines.append(line.strip())
        time.sleep(0.2)
        wal = Path(f"{path}-wal")
        assert wal.stat().st_size > 1_000_000  # uncommitted pages really reached the disk
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    with SQLiteStore(path) as s:
        assert s.version() == 1
        assert [h.reason for h in s.history()] == ["committed"]
        snap = s.snapshot()
        for name in TABLES:
            assert_table_equal(snap.tables[name], first[name], name)
        assert s.replace_all(first, author="t", reason="after crash") == 2
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


# --------------------------------------------------------------------------- GeoPackage / GDAL


def test_geopackage_header_tables_and_pragmas(store: SQLiteStore, path: Path) -> None:
    store.replace_all(sample_tables(), author="t", reason="load")
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
    assert con.execute("PRAGMA user_version").fetchone()[0] == 10300
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    srs = dict(con.execute("SELECT srs_id, organization FROM gpkg_spatial_ref_sys"))
    assert srs == {-1: "NONE", 0: "NONE", 4326: "EPSG"}
    contents = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT table_name, data_type, identifier, min_x, min_y, max_x, max_y, srs_id, "
            "last_change FROM gpkg_contents"
        )
    }
    assert set(contents) == set(TABLES)
    assert contents["officers"][0] == "attributes"
    assert all(contents[n][0] == "features" and contents[n][6] == 4326 for n in LAYERS)
    assert contents["streets"][2:6] == pytest.approx((X0, Y0, X0 + 0.05, Y0 + 0.05))
    assert contents["streets"][7].endswith("Z")
    geom_types = dict(
        con.execute("SELECT table_name, geometry_type_name FROM gpkg_geometry_columns")
    )
    assert geom_types == {
        "roads": "LINESTRING",
        "streets": "POLYGON",
        "communities": "POLYGON",
        "grids": "POLYGON",
        "parks": "POLYGON",
        "buildings": "POLYGON",
        "enterprises": "POINT",
        "areas": "POLYGON",
    }
    columns = {r[1]: r[2] for r in con.execute("PRAGMA table_info(enterprises)")}
    assert columns["fid"] == "INTEGER" and columns["geom"] == "POINT"
    assert columns["credit_code_valid"] == "BOOLEAN" and columns["employees"] == "INTEGER"
    idx = con.execute("PRAGMA index_list(communities)").fetchall()
    assert any(
        r[2] == 1 and con.execute(f"PRAGMA index_info('{r[1]}')").fetchone()[2] == "id" for r in idx
    )
    assert con.execute("SELECT value FROM geo_meta WHERE key='schema_version'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    con.close()


GDAL_PRELUDE = """
import json, sys, warnings
import pyogrio, shapely
warnings.simplefilter("error")
path = sys.argv[1]
out = {}
"""


def gdal(path: Path, body: str) -> dict:
    """Run `body` with pyogrio in another process (as QGIS would), return its ``out`` dict.

    A separate process is required while a SQLiteStore is open: GDAL links its own SQLite and
    two SQLite copies in one process break each other's locks. Any GDAL warning fails the run.
    """
    script = GDAL_PRELUDE + textwrap.dedent(body) + "\nprint(json.dumps(out))\n"
    r = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert not r.stderr.strip(), r.stderr  # e.g. "bad application_id", inconsistent types
    return json.loads(r.stdout)


def test_gdal_reads_the_store_while_it_is_open(store: SQLiteStore, path: Path) -> None:
    tables = sample_tables()
    store.replace_all(tables, author="t", reason="load")
    assert Path(f"{path}-wal").stat().st_size > 0  # the data is still in the WAL
    out = gdal(
        path,
        """
        out["layers"] = dict(pyogrio.list_layers(path).tolist())
        out["info"] = {}
        for name in out["layers"]:
            i = pyogrio.read_info(path, layer=name)
            out["info"][name] = [i["features"], i["crs"], i["geometry_name"], i["fid_column"]]
        df = pyogrio.read_dataframe(path, layer="communities").sort_values("id")
        out["crs"] = df.crs.to_epsg()
        out["names"] = df["name"].tolist()
        out["wkb"] = [shapely.to_wkb(g, hex=True) for g in df.geometry]
        ent = pyogrio.read_dataframe(path, layer="enterprises").sort_values("id")
        out["valid"] = [str(ent["credit_code_valid"].dtype), ent["credit_code_valid"].tolist()]
        off = pyogrio.read_dataframe(path, layer="officers", read_geometry=False)
        out["officers"] = sorted(off["id"])
        """,
    )
    layers = out["layers"]
    assert set(TABLES) <= set(layers)
    assert layers["roads"] == "LineString"
    assert layers["communities"] == "Polygon"
    assert layers["buildings"] == "Polygon"
    assert layers["enterprises"] == "Point"
    assert layers["officers"] is None
    for name in TABLES:
        features, crs, geom_name, fid = out["info"][name]
        assert features == len(tables[name]), name
        assert fid == "fid"
        if name in LAYERS:
            assert (crs, geom_name) == ("EPSG:4326", "geom")
    assert out["crs"] == 4326
    want = tables["communities"].sort_values("id")
    assert out["names"] == want["name"].tolist()
    got = shapely.from_wkb(out["wkb"])
    assert bool(shapely.equals_exact(got, want.geometry.values, 0).all())
    assert out["valid"] == ["bool", [False, True, True]]  # GPKG BOOLEAN is understood
    assert out["officers"] == ["o1", "o2"]


def test_geometry_type_name_follows_the_data(store: SQLiteStore, path: Path) -> None:
    tables = sample_tables()
    roads = tables["roads"].copy()
    roads.loc[0, "geometry"] = MultiLineString([[(X0, Y0), (X0, Y0 + 0.01)]])
    tables["roads"] = roads
    tables["communities"] = tables["communities"].assign(
        geometry=[MultiPolygon([g]) for g in tables["communities"].geometry]
    )
    store.replace_all(tables, author="t", reason="multi")
    body = """
        out["layers"] = dict(pyogrio.list_layers(path).tolist())
        out["roads"] = pyogrio.read_info(path, layer="roads")["features"]
        out["types"] = pyogrio.read_dataframe(path, layer="communities").geom_type.tolist()
        """
    out = gdal(path, body)
    assert out["layers"]["roads"] == "Unknown"  # GEOMETRY: lines and multilines mixed
    assert out["layers"]["communities"] == "MultiPolygon"
    assert out["roads"] == 3
    assert out["types"] == ["MultiPolygon", "MultiPolygon"]
    assert_table_equal(store.snapshot().tables["roads"], roads, "roads")
    # back to simple types; an emptied table keeps its last type
    store.replace_all({"roads": sample_tables()["roads"]}, author="t", reason="simple")
    out = gdal(path, body)
    assert out["layers"]["roads"] == "LineString"
    assert out["layers"]["communities"] == "MultiPolygon"
    con = sqlite3.connect(path)
    declared = dict(con.execute("SELECT name, sql FROM sqlite_master WHERE name = 'roads'"))
    con.close()
    assert (
        '"roads" (fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, geom LINESTRING'
        in declared["roads"]
    )


def test_foreign_rtree_index_stays_correct(store: SQLiteStore, path: Path) -> None:
    """If QGIS/GDAL adds a spatial index, its triggers call ST_* functions we provide."""
    store.replace_all(sample_tables(), author="t", reason="load")
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE VIRTUAL TABLE rtree_grids_geom USING rtree(id, minx, maxx, miny, maxy);
        CREATE TRIGGER rtree_grids_geom_insert AFTER INSERT ON grids
          WHEN (new.geom NOT NULL AND NOT ST_IsEmpty(NEW.geom))
          BEGIN INSERT OR REPLACE INTO rtree_grids_geom VALUES (NEW.fid,
            ST_MinX(NEW.geom), ST_MaxX(NEW.geom), ST_MinY(NEW.geom), ST_MaxY(NEW.geom)); END;
        CREATE TRIGGER rtree_grids_geom_delete AFTER DELETE ON grids WHEN old.geom NOT NULL
          BEGIN DELETE FROM rtree_grids_geom WHERE id = OLD.fid; END;
        """
    )
    con.close()
    store.replace_all(sample_tables(), author="t", reason="again")
    con = sqlite3.connect(path)
    rows = con.execute(
        "SELECT g.id, r.minx, r.maxx, r.miny, r.maxy FROM grids g JOIN rtree_grids_geom r "
        "ON r.id = g.fid ORDER BY g.id"
    ).fetchall()
    con.close()
    assert [r[0] for r in rows] == ["g1", "g2"]
    # the R-tree stores float32, rounded outwards
    assert rows[1][1:] == pytest.approx((X0 + 0.01, X0 + 0.02, Y0, Y0 + 0.01), abs=1e-4)


# --------------------------------------------------------------------------- opening


def test_newer_schema_is_refused(path: Path) -> None:
    SQLiteStore(path).close()
    con = sqlite3.connect(path)
    newer = SCHEMA_VERSION + 1
    con.execute("UPDATE geo_meta SET value=? WHERE key='schema_version'", (str(newer),))
    con.commit()
    con.close()
    with pytest.raises(StoreSchemaError, match=rf"schema version {newer}.*upgrade geo"):
        SQLiteStore(path)


def test_reopen_keeps_data(path: Path) -> None:
    with SQLiteStore(path) as s:
        s.replace_all(sample_tables(), author="t", reason="load")
    with SQLiteStore(path) as s:
        assert s.version() == 1
        assert len(s.snapshot().tables["buildings"]) == 3


def test_not_a_geopackage_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gpkg"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreSchemaError, match="not a GeoPackage"):
        SQLiteStore(junk)
    other = tmp_path / "other.gpkg"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(StoreSchemaError, match="not a GeoPackage"):
        SQLiteStore(other)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SQLiteStore(tmp_path / "missing" / "geo.gpkg")


def test_open_store_dispatch(tmp_path: Path) -> None:
    s = open_store(tmp_path / "a.gpkg")  # PathLike
    assert isinstance(s, SQLiteStore)
    s.close()
    s = open_store(str(tmp_path / "b.GPKG"))
    assert isinstance(s, SQLiteStore)
    s.close()
    from geo.errors import Unavailable

    # a postgresql:// URL is the PostGIS store: an unreachable server is a clear 503-kind error
    # naming host, port and database, never the password
    with pytest.raises(
        Unavailable, match=r"cannot reach the PostGIS store at 127\.0\.0\.1:1/geo"
    ) as e:
        open_store("postgresql://user:secret@127.0.0.1:1/geo")
    assert "secret" not in str(e.value)
    with pytest.raises(ValueError, match=r"\.gpkg"):
        open_store(tmp_path / "geo.sqlite")
    with pytest.raises(ValueError, match=r"\.gpkg"):
        open_store("mysql://x")


def test_close_closes_every_thread_connection(path: Path) -> None:
    s = SQLiteStore(path)
    t = threading.Thread(target=s.snapshot)
    t.start()
    t.join()
    assert len(s._connections) == 2
    conns = list(s._connections)
    s.close()
    for c in conns:
        with pytest.raises(sqlite3.ProgrammingError):
            c.execute("SELECT 1")
    with pytest.raises(RuntimeError, match="closed"):
        s.version()


# --------------------------------------------------------------------------- speed


def test_snapshot_of_100k_features_round_trips(store: SQLiteStore) -> None:
    n = 100_000
    rng = np.random.default_rng(0)
    ents = gpd.GeoDataFrame(
        {
            "id": [f"e{i:06d}" for i in rng.permutation(n)],
            "name": "企业",
            "credit_code": "91330108MA27Y0001X",
            "credit_code_valid": rng.random(n) > 0.5,
            "address": "网商路",
            "employees": pd.array(np.where(rng.random(n) > 0.5, 10, None), dtype="Int64"),
            "source_crs": "wgs84",
        },
        geometry=shapely.points(X0 + rng.random(n) * 0.1, Y0 + rng.random(n) * 0.1),
        crs=4326,
    )
    store.replace_all({"enterprises": ents}, author="t", reason="bulk")
    snap = store.snapshot()
    got = snap.tables["enterprises"]
    assert len(got) == n and got["id"].is_monotonic_increasing
    want = ents.sort_values("id")
    assert bool(shapely.equals_exact(got.geometry.values, want.geometry.values, 0).all())


def test_snapshot_rereads_only_the_tables_written_since(store: SQLiteStore) -> None:
    store.replace_all(sample_tables("v1"), author="t", reason="first")
    first = store.snapshot()
    assert set(first.stamps) == set(TABLES)
    same = store.snapshot(reuse=first)
    assert all(same.tables[n] is first.tables[n] for n in TABLES)  # nothing written: all shared

    c = first.tables["communities"]
    store.edit_community(c["id"].iloc[0], _sq(40), author="t", reason="edit", expected_version=None)
    edited = store.snapshot(reuse=first)
    assert edited.version == first.version + 1
    for name in TABLES:
        fresh = store.snapshot().tables[name]
        if name == "communities":
            assert edited.tables[name] is not first.tables[name]
            assert_table_equal(edited.tables[name], fresh, name)
        else:
            assert edited.tables[name] is first.tables[name], name

    store.replace_all(sample_tables("v1"), author="t", reason="again")  # rewrites every table
    again = store.snapshot(reuse=edited)
    assert not any(again.tables[n] is edited.tables[n] for n in TABLES)
