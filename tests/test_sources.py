"""Any file in: real-shaped sources built here (GBK Shapefiles in Gauss-Kruger, GeoPackages with
OSM classes, Excel and CSV lists with Chinese headers, GeoParquet), read by `geo.sources`,
conformed by `geo.columns` and validated by `geo.io.read_layer_source`."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st
from pyproj import CRS

from geo import crs as geo_crs
from geo.columns import ROAD_CLASSES_MAPPED, find_coordinates, match_columns, road_class
from geo.io import InputError, read_directory, read_layer_file, read_layer_source
from geo.model import ENTERPRISES, ROADS
from geo.settings import SAMPLE_DIR
from geo.sources import SourceError, read_source

OSM0 = 9_000_000_000  # the fixture GeoPackage's first osm_id
_CN_CLASS = {"expressway": "快速路", "arterial": "主干路", "secondary": "次干路", "branch": "支路"}


@functools.cache
def _sample_roads() -> gpd.GeoDataFrame:
    roads = gpd.read_file(SAMPLE_DIR / "roads.geojson")
    return roads[roads["class"].isin(list(_CN_CLASS))].reset_index(drop=True)


def sample_roads() -> gpd.GeoDataFrame:
    """The sample's roads (its rivers and canals left out: a city's road file has none); read
    once per run, each caller gets its own copy."""
    return _sample_roads().copy()


def gbk_shapefile(folder: Path, *, cpg: bool) -> Path:
    """The sample roads as a district office ships them: EPSG:4549, GBK, Chinese fields, no ids."""
    roads = sample_roads().to_crs(4549)
    roads = pd.DataFrame({"道路名称": roads["name"], "等级": roads["class"].map(_CN_CLASS)}).pipe(
        gpd.GeoDataFrame, geometry=roads.geometry, crs=roads.crs
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "roads.shp"
    roads.to_file(path, encoding="gbk")
    if not cpg:
        path.with_suffix(".cpg").unlink()
    return path


def osm_geopackage(path: Path) -> Path:
    """Two layers, English field names and OSM highway values (incl. a link and an odd one)."""
    roads = sample_roads()
    osm = {"arterial": "primary", "secondary": "tertiary", "branch": "residential"}
    highway = roads["class"].map(osm).fillna("trunk").to_numpy(dtype=object)
    highway[:3] = ["trunk_link", "busway", "primary_link"]
    lines = gpd.GeoDataFrame(
        {"osm_id": np.arange(OSM0, OSM0 + len(roads)), "name": roads["name"], "highway": highway},
        geometry=roads.geometry,
        crs=4326,
    )
    lines.to_file(path, layer="lines", driver="GPKG")
    points = gpd.GeoDataFrame({"name": ["x"]}, geometry=[shapely.Point(120.2, 30.2)], crs=4326)
    points.to_file(path, layer="points", driver="GPKG")
    return path


@functools.cache
def _sample_tables() -> dict[str, gpd.GeoDataFrame]:
    return read_directory(SAMPLE_DIR).tables


def enterprise_truth() -> gpd.GeoDataFrame:
    """The sample's enterprises as loaded (WGS84) and their source rows (GCJ-02 lon/lat); the
    sample folder is read once per run, each caller gets its own copy."""
    return _sample_tables()["enterprises"].copy()


def gcj_table(n: int = 40) -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    """An enterprise list with Chinese headers in GCJ-02, and the WGS84 truth."""
    truth = enterprise_truth().iloc[:n].reset_index(drop=True)
    gx, gy = geo_crs.from_wgs84(truth.geometry.x, truth.geometry.y, "gcj02")
    table = pd.DataFrame(
        {
            "企业名称": truth["name"],
            "统一社会信用代码": truth["credit_code"],
            "注册地址": truth["address"],
            "经度": gx,
            "纬度": gy,
        }
    )
    return table, truth


def close(a: gpd.GeoSeries, b: gpd.GeoSeries, tol: float = 1e-7) -> bool:
    return bool(np.all(shapely.equals_exact(a.to_numpy(), b.to_numpy(), tolerance=tol)))


# ---------------------------------------------------------------------------- (a) GBK Shapefile


@pytest.mark.parametrize("cpg", [True, False])
def test_gbk_shapefile_in_gauss_kruger(tmp_path: Path, cpg: bool) -> None:
    path = gbk_shapefile(tmp_path, cpg=cpg)
    source = read_source(path)
    assert source.crs == "EPSG:4549"
    assert source.frame.crs.to_epsg() == 4326
    assert "江南大道" in set(source.frame["道路名称"])
    expected = "(from .cpg)" if cpg else "(no .cpg; not UTF-8)"
    assert any(expected in note for note in source.notes), source.notes
    assert any("reprojected from EPSG:4549 (CGCS2000 / 3-degree Gauss-Kruger CM 120E)" in n
               for n in source.notes)  # fmt: skip
    assert close(source.frame.geometry, sample_roads().geometry)

    frame, issues, notes = read_layer_source(path, "roads")
    assert issues == []
    assert any("name ← 道路名称, class ← 等级" in n for n in notes), notes
    assert sorted(frame["class"]) == sorted(sample_roads()["class"])  # 主干路 → arterial …
    assert frame["id"].str.fullmatch(r"R[0-9a-f]{12}").all()
    assert frame["id"].is_unique


def test_prj_without_epsg_code_is_identified(tmp_path: Path) -> None:
    path = gbk_shapefile(tmp_path, cpg=True)
    wkt = CRS.from_epsg(4549).to_wkt("WKT1_ESRI")
    assert "EPSG" not in wkt
    path.with_suffix(".prj").write_text(wkt)
    assert read_source(path).crs == "EPSG:4549"


@pytest.mark.parametrize("epsg", [4490, 4527, 4549, 3857, 4326])
def test_the_usual_crs_come_back_in_wgs84(tmp_path: Path, epsg: int) -> None:
    roads = sample_roads().iloc[:20]
    path = tmp_path / "roads.gpkg"
    roads.to_crs(epsg).to_file(path, driver="GPKG")
    source = read_source(path)
    assert source.crs == f"EPSG:{epsg}"
    assert close(source.frame.geometry, roads.geometry)


def test_no_crs_and_projected_coordinates_is_an_error(tmp_path: Path) -> None:
    path = gbk_shapefile(tmp_path, cpg=True)
    path.with_suffix(".prj").unlink()
    with pytest.raises(SourceError, match=r"no CRS .* look projected .*--crs EPSG:4549"):
        read_source(path)
    assert read_source(path, crs="EPSG:4549").crs == "EPSG:4549"


def test_no_crs_and_degrees_is_wgs84(tmp_path: Path) -> None:
    roads = sample_roads().iloc[:5]
    path = tmp_path / "roads.shp"
    roads.to_file(path)
    path.with_suffix(".prj").unlink()
    source = read_source(path)
    assert any("look like degrees" in n for n in source.notes)
    assert close(source.frame.geometry, roads.geometry)


def test_declared_gcj02_is_converted(tmp_path: Path) -> None:
    roads = sample_roads().iloc[:10]
    shifted = shapely.transform(
        roads.geometry.to_numpy(),
        lambda xy: np.column_stack(geo_crs.from_wgs84(xy[:, 0], xy[:, 1], "gcj02")),
    )
    path = tmp_path / "gcj.geojson"
    gpd.GeoDataFrame(roads.drop(columns="geometry"), geometry=shifted, crs=4326).to_file(path)
    source = read_source(path, crs="gcj02")
    assert source.crs == "gcj02"
    assert close(source.frame.geometry, roads.geometry, 1e-8)


# ------------------------------------------------------------------ (b) GeoPackage, OSM classes


def test_geopackage_layers_and_osm_classes(tmp_path: Path) -> None:
    path = osm_geopackage(tmp_path / "city.gpkg")
    with pytest.raises(SourceError, match=r"2 layers \((lines, points|points, lines)\).*--layer"):
        read_source(path)
    with pytest.raises(SourceError, match=r"no layer 'roads'; the layers are"):
        read_source(path, layer="roads")
    by_option = read_layer_source(path, "roads", source_layer="lines")[0]
    by_path = read_layer_source(f"{path}:lines", "roads")[0]
    assert by_option.equals(by_path)
    classes = dict(zip(by_option["id"], by_option["class"], strict=True))
    assert classes[f"R{OSM0}"] == "expressway"  # trunk_link, like trunk
    assert classes[f"R{OSM0 + 1}"] == "busway"  # kept as written, never a reason to reject
    assert classes[f"R{OSM0 + 2}"] == "arterial"  # primary_link
    assert {"arterial", "secondary", "branch"} <= set(classes.values())
    assert len(by_option) == len(sample_roads())


def test_road_classes() -> None:
    cases = {
        "motorway": "expressway", "trunk": "expressway", "primary": "arterial",
        "secondary": "secondary", "tertiary_link": "secondary", "residential": "branch",
        "unclassified": "branch", "service": "branch", "living_street": "branch",
        "快速路": "expressway", "主干路": "arterial", "次干路": "secondary", "支路": "branch",
        "river": "river", "canal": "canal", "stream": "stream", "河流": "river", "水系": "river",
        "busway": "busway", " 步行街 ": "步行街",
    }  # fmt: skip
    assert {k: road_class(k) for k in cases} == cases
    assert road_class(None) is None and road_class("  ") is None and road_class(np.nan) is None


@given(st.text(min_size=1).filter(lambda s: s.strip()))
def test_any_road_class_is_kept_or_mapped(value: str) -> None:
    out = road_class(value)
    assert out is not None
    assert out in ROAD_CLASSES_MAPPED or out == out.strip()


def sample_four_to() -> str:
    """The first sample community's four-to text (Torch's, 火炬)."""
    return gpd.read_file(SAMPLE_DIR / "communities.geojson").sort_values("id")["four_to"].iloc[0]


def test_waterways_load_as_roads_that_four_to_text_can_name(tmp_path: Path) -> None:
    """OSM-shaped lines (name, highway, waterway): the road of the first community's south
    side, drawn as the river 浦沿港, bounds the same area under the river's name."""
    from geo.boundaries.build import build_boundary
    from geo.boundaries.fourto import parse_four_to

    text = sample_four_to()
    south = parse_four_to(text).sides["south"].chain[0].name
    roads = sample_roads()
    river = (roads["name"] == south).to_numpy()
    lines = gpd.GeoDataFrame(
        {
            "osm_id": [str(i) for i in range(1, len(roads) + 1)],
            "name": roads["name"].where(~river, "浦沿港"),
            "highway": np.where(river, None, "primary"),
            "waterway": np.where(river, "river", None),
        },
        geometry=roads.geometry,
        crs=4326,
    )
    path = tmp_path / "lines.geojson"
    lines.to_file(path)
    frame, issues, notes = read_layer_source(path, "roads")
    assert issues == []
    assert set(frame.loc[frame["name"] == "浦沿港", "class"]) == {"river"}
    assert any("class of the other rows ← waterway" in n for n in notes)
    areas = _sample_tables()["areas"].copy()
    by_river = build_boundary(text.replace(south, "浦沿港", 1), frame, areas).to_feature()
    by_road = build_boundary(text, sample_roads(), areas).to_feature()
    assert by_river["properties"]["area_m2"] == pytest.approx(by_road["properties"]["area_m2"])


# ------------------------------------------------------------------------ column matching


@given(
    st.sampled_from(["道路名称", "NAME", "name", "名称", " Name "]),
    st.sampled_from(["highway", "等级", "FCLASS", "道路 等级"]),
)
def test_columns_found_case_and_space_insensitively(name: str, cls: str) -> None:
    used = match_columns([cls, "OBJECTID", name], ROADS).used
    assert used == {"id": "OBJECTID", "name": name, "class": cls}


def test_field_overrides_win_and_name_missing_columns() -> None:
    columns = ["名称", "路名", "fclass"]
    assert match_columns(columns, ROADS, {"name": "路名"}).used["name"] == "路名"
    with pytest.raises(InputError, match=r"no column '道路'; its columns are 名称, 路名, fclass"):
        match_columns(columns, ROADS, {"name": "道路"})
    with pytest.raises(InputError, match=r"roads has no field 'colour'"):
        match_columns(columns, ROADS, {"colour": "名称"})


def test_enterprise_columns_and_describe() -> None:
    table, _ = gcj_table(1)
    match = match_columns(list(table.columns), ENTERPRISES, extra=("lon", "lat"))
    assert match.used == {
        "name": "企业名称", "credit_code": "统一社会信用代码", "address": "注册地址",
        "lon": "经度", "lat": "纬度",
    }  # fmt: skip
    assert match.describe().startswith("name ← 企业名称, credit_code ← 统一社会信用代码")
    assert find_coordinates(["POINT_X", "POINT_Y"]) == ("POINT_X", "POINT_Y")
    assert find_coordinates(["lng", "LAT"]) == ("lng", "LAT")


# ---------------------------------------------------------------- (c, d, e) tables and Parquet


def test_xlsx_enterprises_in_gcj02_land_on_the_truth(tmp_path: Path) -> None:
    table, truth = gcj_table()
    path = tmp_path / "企业名单.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"说明": ["封面"]}).to_excel(writer, sheet_name="封面", index=False)
        table.to_excel(writer, sheet_name="企业", index=False)
    frame, issues, _ = read_layer_source(path, "enterprises", source_layer="企业", crs="gcj02")
    assert [i for i in issues if "credit_code" not in i.reason] == []
    assert len(frame) == len(truth)
    assert set(frame["source_crs"]) == {"gcj02"}
    merged = frame.set_index("credit_code").loc[truth["credit_code"]]
    assert close(gpd.GeoSeries(merged.geometry.to_numpy()), truth.geometry, 1e-8)
    with pytest.raises(SourceError, match=r"no sheet 'x'; the sheets are 封面, 企业"):
        read_source(path, layer="x")


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8", "utf-8-sig"])
def test_csv_in_any_usual_encoding(tmp_path: Path, encoding: str) -> None:
    table, truth = gcj_table(10)
    table["坐标系"] = "gcj02"
    path = tmp_path / "list.csv"
    table.to_csv(path, index=False, encoding=encoding)
    source = read_source(path)
    assert list(source.frame.columns)[:2] == ["企业名称", "统一社会信用代码"]
    assert source.encoding == {"gbk": "GB18030", "gb18030": "GB18030", "utf-8": "UTF-8",
                               "utf-8-sig": "UTF-8 with BOM"}[encoding]  # fmt: skip
    frame, issues, _ = read_layer_source(path, "enterprises")
    assert issues == [] or all("credit_code" in i.reason for i in issues)
    assert len(frame) == 10
    assert set(frame["source_crs"]) == {"gcj02"}  # the per-row crs column (坐标系)
    merged = frame.set_index("credit_code").loc[truth["credit_code"]]
    assert close(gpd.GeoSeries(merged.geometry.to_numpy()), truth.geometry, 1e-8)


def test_geoparquet_and_parquet(tmp_path: Path) -> None:
    roads = sample_roads().iloc[:30].to_crs(4549)
    roads.to_parquet(tmp_path / "roads.parquet")
    source = read_source(tmp_path / "roads.parquet")
    assert source.driver == "GeoParquet" and source.crs == "EPSG:4549"
    frame, issues, _ = read_layer_source(tmp_path / "roads.parquet", "roads")
    assert issues == [] and frame["id"].tolist() == sorted(roads["id"])
    table, _ = gcj_table(5)
    table.to_parquet(tmp_path / "list.parquet")
    plain = read_source(tmp_path / "list.parquet")
    assert plain.driver == "Parquet" and not plain.is_vector


# --------------------------------------------------------------------------- (f) stable ids


def test_reimport_gives_identical_ids(tmp_path: Path) -> None:
    first = read_layer_source(gbk_shapefile(tmp_path / "a", cpg=False), "roads")[0]
    again = read_layer_source(gbk_shapefile(tmp_path / "b", cpg=False), "roads")[0]
    assert first["id"].tolist() == again["id"].tolist()
    table, _ = gcj_table(20)
    table = pd.concat([table, table.iloc[:2]], ignore_index=True)  # two rows repeated
    for name in ("x.xlsx", "y.xlsx"):
        table.to_excel(tmp_path / name, index=False)
    ids = [
        read_layer_source(tmp_path / n, "enterprises")[0]["id"].tolist()
        for n in ("x.xlsx", "y.xlsx")
    ]
    assert ids[0] == ids[1] and len(set(ids[0])) == 22
    assert sum(i.endswith("-2") for i in ids[0]) == 2


# ----------------------------------------------------------------------- data folders, errors


def test_data_folder_in_other_formats(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE_DIR, data)
    (data / "roads.geojson").unlink()
    gbk_shapefile(data, cpg=False)
    (data / "enterprises.csv").unlink()
    table, _ = gcj_table(len(enterprise_truth()))
    table.to_excel(data / "enterprises.xlsx", index=False)
    result = read_directory(data, crs="gcj02")
    assert len(result.tables["roads"]) == len(sample_roads())
    assert len(result.tables["enterprises"]) == len(table)
    assert [i for i in result.rejected if i.table in ("roads", "enterprises")] == []
    gbk_shapefile(tmp_path / "other", cpg=True)
    shutil.copy(SAMPLE_DIR / "roads.geojson", data / "roads.geojson")
    with pytest.raises(InputError, match=r"2 files for the roads layer"):
        read_directory(data)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("roads.gpkg", b"not a geopackage" * 10, "unreadable or corrupt"),
        ("roads.shp", b"\x00" * 50, "unreadable or corrupt"),
        ("roads.dwg", b"x", "unknown format '.dwg'; give one of .shp, .gpkg"),
        ("roads.xlsx", b"PK not a zip", "not a readable .xlsx workbook"),
        ("list.csv", b"\xff\xfe\x00\x81\xff" * 5, "neither UTF-8 nor GBK/GB18030"),
        ("list.parquet", b"PAR1 broken", "not a readable Parquet file"),
    ],
)
def test_unreadable_files_name_the_file_and_the_fix(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceError, match=message) as info:
        read_source(path)
    assert str(path) in str(info.value)
    with pytest.raises(SourceError):
        read_source(tmp_path / "missing.shp")


def test_table_for_a_polygon_layer_is_an_error(tmp_path: Path) -> None:
    table, _ = gcj_table(3)
    table.to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(InputError, match="a table without geometry cannot be the buildings layer"):
        read_layer_source(tmp_path / "b.csv", "buildings")


def test_read_layer_file_takes_any_format(tmp_path: Path) -> None:
    frame, issues = read_layer_file(gbk_shapefile(tmp_path, cpg=True), "roads")
    assert issues == [] and len(frame) == len(sample_roads())


@pytest.mark.parametrize(("name", "driver"), [("roads.kml", "KML"), ("roads.gdb", "OpenFileGDB")])
def test_kml_and_filegdb(tmp_path: Path, name: str, driver: str) -> None:
    roads = sample_roads().iloc[:30].rename(columns={"name": "NAME"}).drop(columns="id")
    path = tmp_path / name
    roads.to_crs(4326 if driver == "KML" else 4549).to_file(path, driver=driver, layer="道路")
    frame, issues, notes = read_layer_source(path, "roads")
    assert issues == [] and len(frame) == 30
    assert sorted(frame["name"]) == sorted(roads["NAME"])
    assert any("道路" in n for n in notes)


@given(st.permutations(range(6)))
def test_derived_ids_follow_the_row_not_its_position(order: list[int]) -> None:
    roads = sample_roads().iloc[:6].drop(columns="id").reset_index(drop=True)
    from geo.columns import conform

    ids = conform(roads, ROADS)[0]["id"].tolist()
    shuffled = conform(roads.iloc[order].reset_index(drop=True), ROADS)[0]["id"].tolist()
    assert shuffled == [ids[k] for k in order]


def test_dates_become_iso_text(tmp_path: Path) -> None:
    communities = gpd.read_file(SAMPLE_DIR / "communities.geojson")
    communities["founded"] = pd.Timestamp("2024-01-05")
    path = tmp_path / "communities.gpkg"
    communities.to_file(path)
    frame, issues, _ = read_layer_source(path, "communities")
    assert issues == [] and set(frame["founded"]) == {"2024-01-05"}


def test_enterprises_from_a_point_layer(tmp_path: Path) -> None:
    truth = enterprise_truth().iloc[:10].reset_index(drop=True)
    points = gpd.GeoDataFrame(
        {"企业名称": truth["name"], "信用代码": truth["credit_code"], "地址": truth["address"]},
        geometry=[*truth.geometry.to_numpy()[:9], shapely.box(120.1, 30.1, 120.2, 30.2)],
        crs=4326,
    ).to_crs(4549)
    path = tmp_path / "enterprises.gpkg"
    points.to_file(path)
    frame, issues, _ = read_layer_source(path, "enterprises")
    assert len(frame) == 9 and set(frame["source_crs"]) == {"EPSG:4549"}
    (bad,) = [i for i in issues if "point" in i.reason]
    assert bad.row == 10 and "this row has a Polygon" in bad.reason
    got = frame.set_index("credit_code").loc[truth["credit_code"].iloc[:9]]
    assert close(gpd.GeoSeries(got.geometry.to_numpy()), truth.geometry.iloc[:9], 1e-8)


def test_our_file_names_without_ids_are_read_as_sources(tmp_path: Path) -> None:
    """A folder's roads.geojson as OSM exports it (name, highway, no ids) loads like roads.shp."""
    data = tmp_path / "data"
    shutil.copytree(SAMPLE_DIR, data)
    roads = sample_roads()
    osm = roads.drop(columns=["id", "class"]).assign(highway="primary")
    (data / "roads.geojson").unlink()
    osm.to_file(data / "roads.geojson")
    result = read_directory(data)
    assert len(result.tables["roads"]) == len(roads)
    assert set(result.tables["roads"]["class"]) == {"arterial"}
    assert any(n.startswith("roads.geojson: roads: class ← highway") for n in result.notes)
