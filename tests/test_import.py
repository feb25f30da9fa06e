"""`geo import LAYER SOURCE`: one layer of the store replaced or added to from any source, in one
transaction and one new version (`geo.service.imports`), and the other commands on any source."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from test_sources import (
    gbk_shapefile,
    gcj_table,
    osm_geopackage,
    sample_four_to,
    sample_roads,
)
from typer.testing import CliRunner

from geo.atlas import Atlas
from geo.cli import app
from geo.io import InputError
from geo.service.imports import ImportRefused, import_layer
from geo.settings import SAMPLE_DIR
from geo.store import open_store

runner = CliRunner()
TORCH = sample_four_to()  # the first sample community's four-to text


def run(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module")
def base_db(tmp_path_factory: pytest.TempPathFactory, copy_sample) -> Path:
    return Path(copy_sample(tmp_path_factory.mktemp("base") / "base.gpkg"))


@pytest.fixture()
def db(base_db: Path, tmp_path: Path) -> str:
    """A store of its own holding the sample district (a copy of one loaded store)."""
    path = tmp_path / "store.gpkg"
    shutil.copy(base_db, path)
    return str(path)


def snapshot(db: str):
    store = open_store(db)
    try:
        return store.snapshot()
    finally:
        store.close()


def test_replace_roads_from_a_gbk_shapefile_in_one_version(db: str, tmp_path: Path) -> None:
    before = snapshot(db)
    store = open_store(db)
    try:
        result = import_layer(store, "roads", gbk_shapefile(tmp_path, cpg=False))
    finally:
        store.close()
    after = snapshot(db)
    assert result.version == before.version + 1 == after.version
    (change,) = result.changes
    n, stored = len(sample_roads()), len(before.tables["roads"])  # rivers are not in the file
    assert (change.rows, change.added, change.removed) == (n, n, stored)
    assert any("GBK" in n for n in result.notes) and any("EPSG:4549" in n for n in result.notes)
    for name in ("communities", "buildings", "enterprises"):
        assert after.tables[name].equals(before.tables[name])
    build = run("boundary", "build", TORCH, "--db", db)
    direct = run("boundary", "build", TORCH, "--roads", str(tmp_path / "roads.shp"), "--db", db)
    reference = run(
        "boundary", "build", TORCH, "--roads", str(SAMPLE_DIR / "roads.geojson"), "--db", db
    )
    area = json.loads(build.stdout)["properties"]["area_m2"]
    assert area == pytest.approx(json.loads(reference.stdout)["properties"]["area_m2"])
    assert area == pytest.approx(json.loads(direct.stdout)["properties"]["area_m2"])


def test_add_mode_upserts_by_id_and_reimport_changes_nothing(db: str, tmp_path: Path) -> None:
    path = osm_geopackage(tmp_path / "city.gpkg")
    stored = len(snapshot(db).tables["roads"])
    store = open_store(db)
    try:
        first = import_layer(store, "roads", path, source_layer="lines", mode="add")
        again = import_layer(store, "roads", path, source_layer="lines", mode="add")
    finally:
        store.close()
    n = len(sample_roads())
    assert (first.changes[0].added, first.changes[0].removed, first.changes[0].rows) == (
        n,
        0,
        stored + n,
    )
    assert (again.changes[0].added, again.changes[0].updated) == (0, n)
    assert again.version == first.version + 1
    roads = snapshot(db).tables["roads"]
    assert set(roads.loc[roads["id"].str.startswith("R9"), "class"]) >= {"busway", "expressway"}


def test_streets_that_communities_need_cannot_vanish(db: str, tmp_path: Path) -> None:
    first = gpd.read_file(SAMPLE_DIR / "communities.geojson").sort_values("id").iloc[0]
    streets = gpd.read_file(SAMPLE_DIR / "streets.geojson")
    streets = streets[streets["id"] != first["street_id"]]
    path = tmp_path / "streets.gpkg"
    streets.rename(columns={"name": "街道名称", "id": "编号"}).to_file(path)
    version = snapshot(db).version
    store = open_store(db)
    try:
        message = f"communities {first['id']}: street_id '{first['street_id']}'"
        with pytest.raises(ImportRefused, match=message):
            import_layer(store, "streets", path)
    finally:
        store.close()
    assert snapshot(db).version == version
    r = run("import", "streets", str(path), "--db", db)
    assert r.exit_code == 2 and "nothing imported" in r.output and "Traceback" not in r.output


def test_orphans_in_the_imported_layer_are_rejected_and_strict_writes_nothing(
    db: str, tmp_path: Path
) -> None:
    communities = gpd.read_file(SAMPLE_DIR / "communities.geojson")
    gone = communities.loc[0, "id"]  # replaced by a new community of a street that is not there
    communities.loc[0, ["id", "street_id"]] = ["C-NEW", "S99"]
    path = tmp_path / "communities.geojson"
    communities.to_file(path)
    version = snapshot(db).version
    store = open_store(db)
    try:
        strict = import_layer(store, "communities", path, mode="add", strict=True)
        assert strict.version is None and snapshot(db).version == version
        done = import_layer(store, "communities", path, mode="add")
        with pytest.raises(ImportRefused, match=f"grids .*: community_id '{gone}'"):
            import_layer(store, "communities", path)  # replace: C01's grids lose their parent
    finally:
        store.close()
    assert [i.id for i in strict.rejected] == ["C-NEW"]
    assert "street_id 'S99' refers to no row" in strict.rejected[0].reason
    assert done.version == version + 1 and [i.id for i in done.rejected] == ["C-NEW"]
    assert "C-NEW" not in set(snapshot(db).tables["communities"]["id"])


def test_enterprises_from_xlsx_in_gcj02(db: str, tmp_path: Path) -> None:
    table, truth = gcj_table(50)
    path = tmp_path / "企业名单.xlsx"
    table.to_excel(path, index=False)
    r = run("import", "enterprises", str(path), "--crs", "gcj02", "--mode", "add", "--db", db)
    assert r.exit_code == 0, r.output
    assert "name ← 企业名称" in r.output and "imported enterprises" in r.output
    stored = snapshot(db).tables["enterprises"]
    new = stored[~stored["id"].str.fullmatch(r"E\d{6}")].set_index("credit_code")
    new = new.loc[truth["credit_code"]]
    assert (new["source_crs"] == "gcj02").all()
    got = new.geometry.reset_index(drop=True).to_crs(4549)
    moved = got.distance(truth.geometry.reset_index(drop=True).to_crs(4549))
    assert float(moved.max()) < 0.001  # m
    assert new.index.size == 50


def test_assign_xlsx_and_parquet(sample_db: str, tmp_path: Path, atlas: Atlas) -> None:
    table, truth = gcj_table(30)
    src = tmp_path / "list.xlsx"
    table.to_excel(src, index=False)
    expected = atlas.locate(truth.geometry.x.to_numpy(), truth.geometry.y.to_numpy())
    for out in (tmp_path / "o.xlsx", tmp_path / "o.parquet", tmp_path / "o.csv"):
        r = run("assign", str(src), "-o", str(out), "--crs", "gcj02", "--db", sample_db)
        assert r.exit_code == 0, r.output
        got = {
            ".xlsx": lambda p: pd.read_excel(p, dtype=object),
            ".parquet": pd.read_parquet,
            ".csv": lambda p: pd.read_csv(p, dtype=str, keep_default_na=False),
        }[out.suffix](out)
        assert got["企业名称"].tolist() == table["企业名称"].tolist()
        grids = [g if isinstance(g, str) and g else None for g in got["grid_id"]]
        assert grids == expected["grid_id"].tolist()
    parquet = tmp_path / "list.parquet"
    table.to_parquet(parquet)
    r = run(
        "assign", str(parquet), "-o", str(tmp_path / "p.csv"), "--crs", "gcj02", "--db", sample_db
    )
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.gpkg", b"not a geopackage" * 10, "unreadable or corrupt"),
        ("roads.dwg", b"x", "unknown format '.dwg'"),
        ("list.xlsx", b"PK not a zip", "not a readable .xlsx workbook"),
        (None, None, "no such file"),
    ],
)
def test_unreadable_files_exit_2_with_one_line(
    sample_db: str, tmp_path: Path, name: str | None, content: bytes | None, message: str
) -> None:
    path = tmp_path / (name or "missing.shp")
    if content is not None:
        path.write_bytes(content)
    commands = [
        ("import", "roads", str(path), "--db", str(tmp_path / "x.gpkg")),
        ("boundary", "build", TORCH, "--roads", str(path), "--db", sample_db),
    ]
    if name and name.endswith(".xlsx"):
        commands.append(("assign", str(path), "-o", str(tmp_path / "o.csv"), "--db", sample_db))
    for args in commands:
        r = run(*args)
        assert r.exit_code == 2, (args, r.output)
        assert r.output.count("error:") == 1 and message in " ".join(r.output.split()), r.output
        assert "Traceback" not in r.output


def test_projected_file_without_crs_exit_2(tmp_path: Path) -> None:
    path = gbk_shapefile(tmp_path, cpg=True)
    path.with_suffix(".prj").unlink()
    r = run("import", "roads", str(path), "--db", str(tmp_path / "x.gpkg"))
    assert r.exit_code == 2
    assert "pass --crs EPSG:4549" in " ".join(r.output.split())
    ok = run("import", "roads", str(path), "--crs", "EPSG:4549", "--db", str(tmp_path / "x.gpkg"))
    assert ok.exit_code == 0, ok.output


def test_load_a_folder_of_other_formats_with_fields(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE_DIR, data)
    (data / "roads.geojson").unlink()
    roads = gbk_shapefile(data, cpg=True)
    frame = gpd.read_file(roads, encoding="gbk").rename(columns={"道路名称": "路段"})
    frame.to_file(roads, encoding="gbk")
    (data / "enterprises.csv").unlink()
    table, truth = gcj_table(10**9)  # every enterprise of the sample, GCJ-02, Chinese headers
    table.to_excel(data / "enterprises.xlsx", index=False)
    db = str(tmp_path / "s.gpkg")
    r = run("load", str(data), "--db", db, "--field", "name=路段", "--crs", "gcj02")
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert "roads.shp: roads: name ← 路段, class ← 等级" in said  # the override
    assert "enterprises.xlsx: enterprises: name ← 企业名称" in said  # not for this file
    assert "roads.shp: --crs gcj02 not applied: the file has its own CRS" in said
    stored = snapshot(db).tables
    assert len(stored["roads"]) == len(sample_roads()) and len(stored["enterprises"]) == len(truth)
    bad = run("load", str(data), "--db", db, "--field", "name")
    assert bad.exit_code == 2 and "ours=theirs" in bad.output
    unused = run("load", str(data), "--db", db, "--field", "name=路名称")
    assert unused.exit_code == 2 and "--field name=路名称: no file" in unused.output


def test_unknown_layer_and_mode(db: str, tmp_path: Path) -> None:
    path = gbk_shapefile(tmp_path, cpg=True)
    store = open_store(db)
    try:
        with pytest.raises(InputError, match="unknown layer 'road'"):
            import_layer(store, "road", path)
        with pytest.raises(InputError, match="unknown mode 'merge'"):
            import_layer(store, "roads", path, mode="merge")  # type: ignore[arg-type]
    finally:
        store.close()
