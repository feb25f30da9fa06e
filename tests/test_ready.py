"""The ready atlas (`geo.ready`): answers exactly as a fresh build, follows every write, and
never trusts its file: a corrupt, truncated or foreign file is rebuilt, an unwritable folder
is skipped. Both stores where it applies (PostGIS via `pg_support`)."""

from __future__ import annotations

import json
import os
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pg_support import fresh_database
from test_store import X0, Y0, sample_tables
from typer.testing import CliRunner

from geo import ready
from geo.atlas import LEVELS, POLYGON_TABLES, Atlas, Locator
from geo.cli import app
from geo.store import open_store
from geo.store.base import Store

KINDS = ["sqlite", "postgis"]


@pytest.fixture(params=KINDS)
def place(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch) -> Iterator[str]:
    """A store of each kind holding the small test district; ready files in tmp for PostGIS."""
    monkeypatch.delenv("GEO_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if request.param == "sqlite":
        location = str(tmp_path / "small.gpkg")
        _fill(location)
        yield location
    else:
        with fresh_database() as url:
            _fill(url)
            yield url


def _fill(location: str) -> None:
    store = open_store(location)
    try:
        store.replace_all(sample_tables(), author="test", reason="setup")
    finally:
        store.close()


def _open(location: str) -> Store:
    return open_store(location)


def _files(location: str) -> list[Path]:
    folder = ready.folder_for(location)
    found = folder.glob("*" + ready.SUFFIX) if folder.is_dir() else []
    return sorted(p for p in found if not p.name.startswith("."))


def _fresh(store: Store) -> Locator:
    return Locator.build(store.snapshot())


def _probe(located: Locator) -> tuple[np.ndarray, np.ndarray]:
    """Points over the district: a lattice, every polygon vertex, and midpoints of edges."""
    minx, miny, maxx, maxy = (X0 - 0.005, Y0 - 0.005, X0 + 0.055, Y0 + 0.055)
    gx, gy = np.meshgrid(np.linspace(minx, maxx, 97), np.linspace(miny, maxy, 89))
    xs, ys = [gx.ravel()], [gy.ravel()]
    for level in located.levels.values():
        coords = shapely.get_coordinates(shapely.boundary(level.index.geoms))
        xs += [coords[:, 0], (coords[:-1, 0] + coords[1:, 0]) / 2]
        ys += [coords[:, 1], (coords[:-1, 1] + coords[1:, 1]) / 2]
    return np.concatenate(xs), np.concatenate(ys)


def assert_same(a: Locator, b: Locator, x: np.ndarray, y: np.ndarray) -> None:
    """Both answer every point alike, vectorised and one at a time."""
    one, two = a.locate_indices(x, y), b.locate_indices(x, y)
    for level in LEVELS:
        np.testing.assert_array_equal(one[level], two[level], err_msg=level)
        np.testing.assert_array_equal(a.ids_of(level, one[level]), b.ids_of(level, two[level]))
    for px, py in list(zip(x.tolist(), y.tolist(), strict=True))[:: max(1, len(x) // 300)]:
        assert a.describe_one(px, py) == b.describe_one(px, py)
    assert a.bounds == b.bounds or np.allclose(a.bounds, b.bounds, equal_nan=True)


# -- exactness --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_ready(sample_db: str, tmp_path_factory) -> tuple[Locator, Locator]:
    """The sample district's locator written to a ready file and read back, and the atlas
    built afresh."""
    store = open_store(sample_db)
    try:
        snapshot = store.snapshot()
    finally:
        store.close()
    fresh = Atlas(snapshot)
    key = ready.key_of(snapshot.stamps)
    path = tmp_path_factory.mktemp("ready") / f"sample{ready.SUFFIX}"
    assert ready.save(fresh, path, key)
    loaded = ready.load(path, key, snapshot.version)
    assert loaded is not None
    return fresh, loaded


def test_loaded_index_answers_as_a_fresh_build_on_the_sample(sample_ready) -> None:
    fresh, loaded = sample_ready
    x, y = _probe_sample(fresh)
    assert_same(fresh, loaded, x, y)
    assert_same(loaded, fresh, x, y)


def _probe_sample(atlas: Locator) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = atlas.bounds
    xs = [rng.uniform(minx - 0.01, maxx + 0.01, 200_000)]
    ys = [rng.uniform(miny - 0.01, maxy + 0.01, 200_000)]
    for level in atlas.levels.values():
        coords = shapely.get_coordinates(shapely.boundary(level.index.geoms))
        xs += [coords[:, 0], (coords[:-1, 0] + coords[1:, 0]) / 2]
        ys += [coords[:, 1], (coords[:-1, 1] + coords[1:, 1]) / 2]
    return np.concatenate(xs), np.concatenate(ys)


@st.composite
def _points(draw, atlas: Locator) -> tuple[list[float], list[float]]:
    """Random points: anywhere around the district, on a polygon's vertex, or on its edge."""
    xs, ys = [], []
    minx, miny, maxx, maxy = atlas.bounds
    levels = list(atlas.levels.values())
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["anywhere", "vertex", "edge"]))
        if kind == "anywhere":
            xs.append(draw(st.floats(minx - 0.01, maxx + 0.01)))
            ys.append(draw(st.floats(miny - 0.01, maxy + 0.01)))
            continue
        level = draw(st.sampled_from(levels))
        geom = level.index.geoms[draw(st.integers(0, len(level.index.geoms) - 1))]
        ring = shapely.get_coordinates(shapely.boundary(geom))
        i = draw(st.integers(0, len(ring) - 2))
        t = 0.0 if kind == "vertex" else draw(st.floats(0, 1))
        xs.append(float(ring[i, 0] + t * (ring[i + 1, 0] - ring[i, 0])))
        ys.append(float(ring[i, 1] + t * (ring[i + 1, 1] - ring[i, 1])))
    return xs, ys


@hsettings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hypothesis_points_on_edges_and_vertices_answer_alike(sample_ready, data) -> None:
    fresh, loaded = sample_ready
    xs, ys = data.draw(_points(fresh))
    x, y = np.array(xs), np.array(ys)
    assert_same(fresh, loaded, x, y)
    assert_same(loaded, fresh, x, y)


def test_server_atlas_from_the_ready_file_equals_a_fresh_one(sample_db, tmp_path, monkeypatch):
    monkeypatch.setenv("GEO_CACHE_DIR", str(tmp_path / "cache"))
    store = open_store(sample_db)
    try:
        snapshot = store.snapshot()
    finally:
        store.close()
    built = ready.atlas(snapshot, sample_db)  # no file yet: built, and its index written
    assert len(_files(sample_db)) == 1
    again = ready.atlas(snapshot, sample_db)  # from the file
    assert again.hierarchy is not built.hierarchy
    assert len(again.enterprises) == len(built.enterprises)
    assert again.enterprises.equals(built.enterprises)
    for level in LEVELS:
        assert again.levels[level].table.equals(built.levels[level].table)
        assert again.levels[level].descriptions == built.levels[level].descriptions
    x, y = _probe_sample(built)
    assert_same(built, again, x[:50_000], y[:50_000])


# -- keys: every write of a polygon table is another index --------------------------------------


def test_locator_writes_then_reads_its_file(place: str) -> None:
    store = _open(place)
    try:
        first = ready.locator(store, place)
        files = _files(place)
        assert len(files) == 1
        mtime = files[0].stat().st_mtime_ns
        second = ready.locator(store, place)
        assert _files(place) == files and files[0].stat().st_mtime_ns >= mtime
        x, y = _probe(first)
        assert_same(first, second, x, y)
        assert_same(_fresh(store), second, x, y)
    finally:
        store.close()


def test_boundary_edit_import_and_restore_each_invalidate(place: str, tmp_path: Path) -> None:
    from geo.service.backup import backup, restore
    from geo.service.imports import import_layer

    backup(place, tmp_path / "before.gpkg")
    store = _open(place)
    try:
        before = ready.locator(store, place)
        keys = {_only_key(place)}
        # a boundary edit: c1 shrinks
        store.edit_community(
            "c1", shapely.box(X0, Y0, X0 + 0.02, Y0 + 0.05), author="t", reason="edit",
            expected_version=None,
        )  # fmt: skip
        edited = _check_fresh(store, place, keys)
        assert not np.array_equal(
            edited.locate_indices(*_probe(before))["community"],
            before.locate_indices(*_probe(before))["community"],
        )
        # an import of the grids layer
        grids = store.snapshot().tables["grids"].copy()
        grids["geometry"] = [shapely.box(X0, Y0, X0 + 0.012, Y0 + 0.01), grids.geometry.iloc[1]]
        grids.to_file(tmp_path / "grids.geojson", driver="GeoJSON")
        import_layer(store, "grids", tmp_path / "grids.geojson")
        _check_fresh(store, place, keys)
    finally:
        store.close()
    restore(tmp_path / "before.gpkg", place)  # the old polygons, under new stamps
    store = _open(place)
    try:
        restored = _check_fresh(store, place, keys)
        assert_same(before, restored, *_probe(before))
        assert len(_files(place)) <= ready.KEEP
    finally:
        store.close()


def _only_key(location: str) -> str:
    newest = max(_files(location), key=lambda p: p.stat().st_mtime_ns)
    return newest.name


def _check_fresh(store: Store, location: str, keys: set[str]) -> Locator:
    """The locator after a write: a new file (never a known one), answering as a fresh build."""
    got = ready.locator(store, location)
    key = _only_key(location)
    assert key not in keys
    keys.add(key)
    assert_same(_fresh(store), got, *_probe(got))
    return got


def test_stamps_is_the_snapshots_version_and_stamps(place: str) -> None:
    store = _open(place)
    try:
        version, stamps = store.stamps()
        snapshot = store.snapshot(only=POLYGON_TABLES)
        assert (version, stamps) == (snapshot.version, snapshot.stamps)
        assert set(snapshot.tables) == set(POLYGON_TABLES)
    finally:
        store.close()


# -- the file is not trusted ------------------------------------------------------------------


@pytest.fixture()
def written(tmp_path: Path, monkeypatch) -> tuple[str, Path]:
    """A GeoPackage store of the small district and its one ready file."""
    monkeypatch.delenv("GEO_CACHE_DIR", raising=False)
    location = str(tmp_path / "small.gpkg")
    _fill(location)
    store = _open(location)
    try:
        ready.locator(store, location)
    finally:
        store.close()
    (path,) = _files(location)
    return location, path


def _rebuilt(location: str, path: Path) -> None:
    """The damaged file is ignored: the locator answers as a fresh build, a sound file again."""
    store = _open(location)
    try:
        version, stamps = store.stamps()
        assert ready.load(path, ready.key_of(stamps), version) is None
        got = ready.locator(store, location)
        assert_same(_fresh(store), got, *_probe(got))
        assert ready.load(path, ready.key_of(stamps), version) is not None
    finally:
        store.close()


@pytest.mark.parametrize("keep", [0, 7, 12, 100, 0.5, 0.9, 0.999])
def test_truncated_file_is_rebuilt(written, keep) -> None:
    location, path = written
    data = path.read_bytes()
    path.write_bytes(data[: int(keep * len(data)) if isinstance(keep, float) else keep])
    _rebuilt(location, path)


@hsettings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spots=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=4), bits=st.data())
def test_flipped_bytes_anywhere_are_rebuilt(written, spots, bits) -> None:
    location, path = written
    data = bytearray(path.read_bytes())
    for where in {int(spot * len(data)) for spot in spots}:  # each byte once: a real change
        data[where] ^= bits.draw(st.integers(1, 255))
    path.write_bytes(bytes(data))
    _rebuilt(location, path)


def _split(data: bytes) -> tuple[dict, int]:
    """A ready file's header and where its arrays start."""
    (length,) = struct.unpack_from("<I", data, 8)
    return json.loads(data[16 : 16 + length]), (16 + length + 63) // 64 * 64


def _rewrite_header(path: Path, change) -> None:
    """Edit the JSON header, its checksum made right again (the arrays kept): only the checks
    of what the header says can find what is wrong."""
    import zlib

    data = path.read_bytes()
    header, start = _split(data)
    change(header)
    text = json.dumps(header).encode()
    pad = b"\0" * ((16 + len(text) + 63) // 64 * 64 - 16 - len(text))
    prefix = b"GEOREADY" + struct.pack("<II", len(text), zlib.crc32(text))
    path.write_bytes(prefix + text + pad + data[start:])


@pytest.mark.parametrize(
    "change",
    [
        lambda h: h["frame"].__setitem__(4, 10**9),  # a frame too large to allocate
        lambda h: h["frame"].__setitem__(2, -1.0),  # a negative cell size
        lambda h: h["arrays"]["combo"].__setitem__("dtype", "<f8"),
        lambda h: h["arrays"]["combo"].__setitem__("offset", 1),  # misaligned
        lambda h: h["arrays"]["0.cells"].__setitem__("shape", [3]),
        lambda h: h["arrays"].pop("table"),
        lambda h: h["levels"][2]["cells"].append({"id": "x", "name": None, "code": None}),
        lambda h: h["levels"][3]["cells"][0].__setitem__("kind", "<script>"),
        lambda h: h.__setitem__("levels", "nope"),
        lambda h: h.__setitem__("bounds", [1]),
        lambda h: h.__setitem__("format", 99),
    ],
)
def test_inconsistent_header_is_rebuilt(written, change) -> None:
    location, path = written
    _rewrite_header(path, change)
    _rebuilt(location, path)


def test_out_of_range_cells_are_refused_even_with_a_right_checksum(written) -> None:
    import zlib

    location, path = written
    data = bytearray(path.read_bytes())
    header, start = _split(bytes(data))
    place = header["arrays"]["1.cells"]
    cells = np.frombuffer(data, np.int32, int(np.prod(place["shape"])), start + place["offset"])
    cells = cells.copy()
    cells[len(cells) // 2] = 10**6  # a community that does not exist
    data[start + place["offset"] : start + place["offset"] + cells.nbytes] = cells.tobytes()
    path.write_bytes(bytes(data))
    _rewrite_header(path, lambda h: h.__setitem__("crc32", zlib.crc32(bytes(data[start:]))))
    _rebuilt(location, path)


def test_foreign_file_is_not_used(written, tmp_path: Path) -> None:
    """Another store's file under this store's name (a copy, a shared disk): its key differs."""
    location, path = written
    other = str(tmp_path / "other.gpkg")
    _fill(other)
    store = _open(other)
    try:
        tables = store.snapshot().tables
        tables["grids"] = tables["grids"].iloc[:1]
        store.replace_all(tables, author="t", reason="other")
        ready.locator(store, other)
    finally:
        store.close()
    (theirs,) = _files(other)
    theirs.replace(path)
    _rebuilt(location, path)


def test_garbage_and_a_directory_in_its_place_are_rebuilt(written) -> None:
    location, path = written
    path.write_bytes(os.urandom(5000))
    _rebuilt(location, path)
    path.unlink()
    path.mkdir()  # not even a file: read fails, the write fails too: built in memory
    store = _open(location)
    try:
        got = ready.locator(store, location)
        assert_same(_fresh(store), got, *_probe(got))
    finally:
        store.close()


def test_unwritable_cache_folder_is_skipped(tmp_path: Path, monkeypatch) -> None:
    location = str(tmp_path / "small.gpkg")
    _fill(location)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GEO_CACHE_DIR", str(blocker / "cache"))  # cannot be created
    store = _open(location)
    try:
        got = ready.locator(store, location)
        assert_same(_fresh(store), got, *_probe(got))
    finally:
        store.close()
    assert blocker.read_text() == "not a folder"
    r = CliRunner().invoke(app, ["locate", str(X0 + 0.005), str(Y0 + 0.005), "--db", location])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["grid"]["id"] == "g1"


def test_pruning_keeps_a_few_per_store(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("GEO_CACHE_DIR", raising=False)
    location = str(tmp_path / "small.gpkg")
    _fill(location)
    folder = ready.folder_for(location)
    folder.mkdir()
    left = folder / f".tmp-crashed{ready.SUFFIX}"  # an interrupted writer's, two hours old
    left.write_bytes(b"GEOREADY")
    os.utime(left, (left.stat().st_atime - 7200, left.stat().st_mtime - 7200))
    fresh_tmp = folder / f".tmp-writing{ready.SUFFIX}"  # another writer's, being written now
    fresh_tmp.write_bytes(b"GEOREADY")
    store = _open(location)
    try:
        for i in range(ready.KEEP + 3):
            tables = store.snapshot().tables
            grids = tables["grids"].copy()
            grids.loc[grids.index[0], "geometry"] = shapely.box(
                X0, Y0, X0 + 0.01 + 0.0001 * (i + 1), Y0 + 0.01
            )
            store.replace_all({**tables, "grids": grids}, author="t", reason=f"edit {i}")
            ready.locator(store, location)
    finally:
        store.close()
    assert len(_files(location)) == ready.KEEP
    assert list(folder.glob(".tmp-*")) == [fresh_tmp]


# -- the commands -----------------------------------------------------------------------------


def test_locate_and_assign_use_and_write_the_ready_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("GEO_CACHE_DIR", raising=False)
    location = str(tmp_path / "small.gpkg")
    _fill(location)
    runner = CliRunner()
    r = runner.invoke(app, ["locate", str(X0 + 0.015), str(Y0 + 0.005), "--db", location])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["grid"]["id"] == "g2"
    (path,) = _files(location)  # written by the first command
    src = tmp_path / "in.csv"
    src.write_text(f"id,lon,lat\n1,{X0 + 0.005},{Y0 + 0.005}\n2,{X0 + 0.015},{Y0 + 0.005}\n")
    r = runner.invoke(app, ["assign", str(src), "-o", str(tmp_path / "out.csv"), "--db", location])
    assert r.exit_code == 0, r.output
    out = (tmp_path / "out.csv").read_text(encoding="utf-8-sig").splitlines()
    assert [line.split(",")[5] for line in out[1:]] == ["g1", "g2"]
    assert _files(location) == [path]


def test_store_location_reads_geo_db_as_the_settings_do(monkeypatch) -> None:
    from geo.cli.common import DEFAULT_DB, settings_for, store_location
    from geo.settings import Settings

    assert Settings.model_fields["db"].default == DEFAULT_DB
    monkeypatch.delenv("GEO_DB", raising=False)
    assert store_location(None) == settings_for(None).db == DEFAULT_DB
    monkeypatch.setenv("geo_db", "/x/lower.gpkg")
    assert store_location(None) == settings_for(None).db == "/x/lower.gpkg"
    assert store_location("/y.gpkg") == settings_for("/y.gpkg").db == "/y.gpkg"


def test_locate_and_assign_import_no_heavy_stack() -> None:
    """`geo locate` and `geo assign` load neither geopandas, pyproj, scipy, FastAPI, folium nor
    pydantic-settings (each costs tenths of a second at every start)."""
    import subprocess
    import sys

    code = (
        "import sys; from geo.cli import app; import geo.cli.common as c; "
        "import geo.service.assign, geo.service.locate, geo.ready; "
        "heavy = ['geopandas', 'pyproj', 'scipy', 'fastapi', 'folium', 'pydantic_settings']; "
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_shared_folder_keeps_a_few_stores(tmp_path: Path, monkeypatch) -> None:
    """PostGIS stores (and GEO_CACHE_DIR) share one folder: other stores' files are capped."""
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv("GEO_CACHE_DIR", str(shared))
    count = ready.KEEP_STORES * ready.KEEP + 5
    for i in range(count):  # other stores' files, oldest first
        old = shared / f"{i:016x}-{'0' * 32}{ready.SUFFIX}"
        old.write_bytes(b"GEOREADY")
        os.utime(old, (1_000_000 + i, 1_000_000 + i))
    location = str(tmp_path / "small.gpkg")
    _fill(location)
    store = _open(location)
    try:
        ready.locator(store, location)
    finally:
        store.close()
    left = sorted(p.name for p in shared.iterdir())
    assert len(left) == ready.KEEP_STORES * ready.KEEP + 1  # theirs, newest, and this store's
    assert f"{count - 1:016x}-{'0' * 32}{ready.SUFFIX}" in left
    assert f"{0:016x}-{'0' * 32}{ready.SUFFIX}" not in left


def test_a_byte_copy_uses_the_originals_file(written, tmp_path: Path) -> None:
    """A copy of a store (same stamps: the same tables) finds the original's file in its folder
    under the original's name and answers from it; its first write gives it a file of its own."""
    location, path = written
    copy = tmp_path / "copy.gpkg"
    shutil.copyfile(location, copy)
    folder = Path(str(copy) + ready.SUFFIX)
    folder.mkdir()
    shutil.copyfile(path, folder / path.name)  # under the original's name
    store = _open(str(copy))
    try:
        assert ready.found_for(str(copy), ready.key_of(store.stamps()[1])) == folder / path.name
        got = ready.locator(store, str(copy))
        assert _files(str(copy)) == [folder / path.name]  # read, nothing built or written
        point = shapely.get_coordinates(got.levels["grid"].index.geoms[0].representative_point())
        assert got.locate_indices(point[:, 0], point[:, 1])["grid"][0] == 0
    finally:
        store.close()
