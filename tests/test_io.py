"""geo.io: every reader validates and explains; writers are RFC 7946 / Excel-safe and atomic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.creditcode import make_credit_code
from geo.crs import from_wgs84
from geo.io import InputError, Issue, LoadResult, read_directory, write_csv, write_geojson
from geo.io import write as geo_io_write
from geo.model import LAYERS, OFFICERS, TABLES
from geo.settings import SAMPLE_DIR as SAMPLE

CODE_OK = make_credit_code("330108", "MA2B3C4D")
CODE_BAD = CODE_OK[:17] + ("0" if CODE_OK[17] != "0" else "1")


def box(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    """A counter-clockwise GeoJSON Polygon."""
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def feature(fid: Any, geometry: Any, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "id": fid, "properties": props, "geometry": geometry}


def base_layers() -> dict[str, list[dict[str, Any]]]:
    """A tiny valid district: one of each, two buildings (one in the park)."""
    return {
        "roads": [
            feature(
                "R1",
                {"type": "LineString", "coordinates": [[120.1, 30.1], [120.2, 30.2]]},
                name="江南大道",
                **{"class": "arterial"},
            )
        ],
        "streets": [feature("S1", box(120.1, 30.1, 120.3, 30.3), name="西兴街道", code="001")],
        "communities": [
            feature(
                "C1",
                box(120.1, 30.1, 120.2, 30.2),
                name="物联网产业社区",
                street_id="S1",
                code="001",
                type="科技创新型",
                mode="platform",
                four_to="东至信诚路、南至南环路",
            )
        ],
        "grids": [
            feature(
                "G1",
                box(120.1, 30.1, 120.15, 30.15),
                name="一网格",
                community_id="C1",
                code="330108001001001",
            )
        ],
        "parks": [
            feature(
                "P1",
                box(120.11, 30.11, 120.12, 30.12),
                name="物联网产业园",
                grid_id="G1",
                code="330108001001001001",
            )
        ],
        "buildings": [
            feature(
                "B1",
                box(120.111, 30.111, 120.112, 30.112),
                name="一号楼",
                address="网商路1号",
                kind="enterprise",
                grid_id="G1",
                park_id="P1",
                floors=12,
            ),
            feature(
                "B2",
                box(120.13, 30.13, 120.131, 30.131),
                name="二号楼",
                address="网商路2号",
                kind="mixed-use",
                grid_id="G1",
                code="330108001001001002",
            ),
        ],
    }


ENTERPRISES_CSV = (
    "id,name,credit_code,address,lon,lat,crs,chain,employees\n"
    f"E1,海康威视,{CODE_OK},阡陌路555号,120.2159,30.2132,wgs84,物联网,100\n"
)
OFFICERS_CSV = (
    "id,name,role,phone,party_member,building_ids\nO1,张三,楼宇管理长,13800000000,是,B1;B2\n"
)


def write_dir(
    path: Path,
    layers: dict[str, Any] | None = None,
    enterprises: str | bytes = ENTERPRISES_CSV,
    officers: str | bytes = OFFICERS_CSV,
) -> Path:
    """Write a data folder: base layers with ``layers`` replacing some (features or a document)."""
    docs = {**base_layers(), **(layers or {})}
    for name, content in docs.items():
        if isinstance(content, list):
            content = {"type": "FeatureCollection", "features": content}
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        (path / f"{name}.geojson").write_text(text, encoding="utf-8")
    for name, content in (("enterprises", enterprises), ("officers", officers)):
        data = content.encode("utf-8") if isinstance(content, str) else content
        (path / f"{name}.csv").write_bytes(data)
    return path


def only_issue(issues: list[Issue], table: str | None = None) -> Issue:
    found = [i for i in issues if table is None or i.table == table]
    assert len(found) == 1, found
    return found[0]


# ----------------------------------------------------------------------------- a valid folder


def test_valid_folder_loads_with_spec_columns_sorted_and_in_wgs84(tmp_path: Path) -> None:
    layers = base_layers()
    layers["buildings"].reverse()
    result = read_directory(write_dir(tmp_path, layers))
    assert isinstance(result, LoadResult)
    assert result.rejected == [] and result.warnings == []
    assert set(result.tables) == set(TABLES)
    for name, spec in LAYERS.items():
        frame = result.tables[name]
        assert isinstance(frame, gpd.GeoDataFrame)
        assert list(frame.columns) == [*spec.field_names, "geometry"]
        assert frame.crs.to_epsg() == 4326
    assert list(result.tables["officers"].columns) == list(OFFICERS.field_names)
    buildings = result.tables["buildings"]
    assert buildings["id"].tolist() == ["B1", "B2"]
    assert buildings["floors"].dtype == "Int64" and pd.isna(buildings["floors"].iloc[1])
    assert buildings["park_id"].iloc[1] is None
    ent = result.tables["enterprises"].iloc[0]
    assert ent["credit_code_valid"] and ent["source_crs"] == "wgs84" and ent["employees"] == 100
    assert (ent.geometry.x, ent.geometry.y) == (120.2159, 30.2132)
    officer = result.tables["officers"].iloc[0]
    assert bool(officer["party_member"]) is True
    assert officer["phone"] == "13800000000"


def test_other_files_are_ignored(tmp_path: Path) -> None:
    folder = write_dir(tmp_path)
    (folder / "notes.geojson").write_text("not even json", encoding="utf-8")
    assert read_directory(folder).rejected == []


def test_named_areas_are_optional_and_validated(tmp_path: Path) -> None:
    folder = write_dir(tmp_path)
    assert len(read_directory(folder).tables["areas"]) == 0
    (folder / "areas.geojson").write_text("not even json", encoding="utf-8")
    with pytest.raises(InputError, match=r"areas\.geojson"):
        read_directory(folder)


# ----------------------------------------------------------------------------- file-level errors


def test_missing_files_are_listed(tmp_path: Path) -> None:
    folder = write_dir(tmp_path)
    (folder / "grids.geojson").unlink()
    (folder / "officers.csv").unlink()
    with pytest.raises(InputError, match=r"missing grids\.geojson, officers\.csv"):
        read_directory(folder)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"type": "FeatureCollection", "features": [', "not valid JSON"),
        (
            '{"type": "Feature", "geometry": null, "properties": {}}',
            "expected a GeoJSON FeatureCollection",
        ),
        ("[1, 2]", "expected a GeoJSON FeatureCollection"),
        ('{"type": "FeatureCollection"}', "no 'features' list"),
    ],
)
def test_file_that_is_not_a_feature_collection(tmp_path: Path, content: str, message: str) -> None:
    folder = write_dir(tmp_path, {"parks": content})
    with pytest.raises(InputError, match=message) as info:
        read_directory(folder)
    assert "parks.geojson" in str(info.value)


def test_csv_without_required_columns(tmp_path: Path) -> None:
    folder = write_dir(tmp_path, enterprises="id,name,credit_code,address\nE1,a,b,c\n")
    with pytest.raises(InputError, match=r"enterprises\.csv: missing column\(s\) lon, lat"):
        read_directory(folder)


# ----------------------------------------------------------------------------- geometry rejections

BAD_GEOMETRIES = {
    "wrong kind": (
        {"type": "Point", "coordinates": [120.1, 30.1]},
        "must be Polygon or MultiPolygon",
    ),
    "missing": (None, "has no geometry"),
    "not an object": (
        "POINT (1 2)",
        "geometry must be a GeoJSON geometry object, got 'POINT (1 2)'",
    ),
    "empty": ({"type": "Polygon", "coordinates": []}, "geometry is empty"),
    "string coordinate": (
        {
            "type": "Polygon",
            "coordinates": [[["120.1", 30.1], [120.2, 30.1], [120.2, 30.2], ["120.1", 30.1]]],
        },
        "coordinate '120.1' is not a number",
    ),
    "NaN": (
        {
            "type": "Polygon",
            "coordinates": [[[float("nan"), 30.1], [120.2, 30.1], [120.2, 30.2], [120.1, 30.1]]],
        },
        "coordinate nan is not a finite number",
    ),
    "Infinity": (
        {
            "type": "Polygon",
            "coordinates": [[[float("inf"), 30.1], [120.2, 30.1], [120.2, 30.2], [120.1, 30.1]]],
        },
        "coordinate inf is not a finite number",
    ),
    "longitude out of range": (box(200.1, 30.1, 200.2, 30.2), "longitude 200.1..200.2 is outside"),
    "latitude out of range, no swap": (
        box(120.1, 95.0, 120.2, 96.0),
        "latitude 95..96 is outside [-90, 90]; projected",
    ),
    "lon/lat swapped": (box(30.1, 120.1, 30.2, 120.2), "lon/lat swapped?"),
    "self-intersection": (
        {
            "type": "Polygon",
            "coordinates": [
                [[120.1, 30.1], [120.2, 30.2], [120.2, 30.1], [120.1, 30.2], [120.1, 30.1]]
            ],
        },
        "geometry is invalid: Self-intersection at (120.15, 30.15); fix the ring",
    ),
    "unclosed ring": (
        {"type": "Polygon", "coordinates": [[[120.1, 30.1], [120.2, 30.1], [120.2, 30.2]]]},
        "repeat the first position",
    ),
    "too few points": (
        {"type": "Polygon", "coordinates": [[[120.1, 30.1], [120.2, 30.1], [120.1, 30.1]]]},
        "Too few points",
    ),
    "geometry collection": (
        {"type": "GeometryCollection", "geometries": [box(120.1, 30.1, 120.2, 30.2)]},
        "GeometryCollection is not supported",
    ),
    "unknown type": ({"type": "Blob", "coordinates": [1, 2]}, "Unknown geometry type"),
    "no coordinates": ({"type": "Polygon"}, "has no 'coordinates'"),
    "one-number position": ({"type": "Point", "coordinates": [120.1]}, "needs two numbers"),
}


@pytest.mark.parametrize("case", list(BAD_GEOMETRIES))
def test_bad_geometry_is_rejected_with_reason(tmp_path: Path, case: str) -> None:
    geometry, reason = BAD_GEOMETRIES[case]
    parks = [
        *base_layers()["parks"],
        feature("P2", geometry, name="坏园区", grid_id="G1", code="002"),
    ]
    result = read_directory(write_dir(tmp_path, {"parks": parks}))
    issue = only_issue(result.rejected)
    assert (issue.table, issue.row, issue.id) == ("parks", 2, "P2")
    assert reason in issue.reason
    assert result.tables["parks"]["id"].tolist() == ["P1"]


def test_wrong_kind_for_a_line_layer(tmp_path: Path) -> None:
    roads = [feature("R1", box(120.1, 30.1, 120.2, 30.2), name="x", **{"class": "branch"})]
    issue = only_issue(read_directory(write_dir(tmp_path, {"roads": roads})).rejected)
    assert "must be LineString or MultiLineString for roads, got Polygon" in issue.reason


def test_clockwise_rings_are_accepted_and_reoriented(tmp_path: Path) -> None:
    cw = {
        "type": "Polygon",
        "coordinates": [
            [[120.11, 30.11], [120.11, 30.12], [120.12, 30.12], [120.12, 30.11], [120.11, 30.11]]
        ],
    }
    parks = [feature("P1", cw, name="园", grid_id="G1", code="001")]
    result = read_directory(write_dir(tmp_path, {"parks": parks}))
    assert result.rejected == []
    assert shapely.is_ccw(result.tables["parks"].geometry.iloc[0].exterior)


def test_multipolygon_and_z_coordinates_are_accepted_in_2d(tmp_path: Path) -> None:
    multi = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[120.11, 30.11, 5], [120.12, 30.11, 5], [120.12, 30.12, 5], [120.11, 30.11, 5]]],
            [[[120.13, 30.13, 5], [120.14, 30.13, 5], [120.14, 30.14, 5], [120.13, 30.13, 5]]],
        ],
    }
    parks = [feature("P1", multi, name="园", grid_id="G1", code="001")]
    result = read_directory(write_dir(tmp_path, {"parks": parks}))
    geom = result.tables["parks"].geometry.iloc[0]
    assert result.rejected == [] and geom.geom_type == "MultiPolygon" and not geom.has_z


# ----------------------------------------------------------------------------- fields


@pytest.mark.parametrize(
    ("props", "reason"),
    [
        ({"kind": "office"}, "field 'kind' must be one of enterprise, mixed-use, got 'office'"),
        ({"floors": "abc"}, "field 'floors' must be a whole number, got 'abc'"),
        ({"floors": 2.5}, "field 'floors' must be a whole number, got 2.5"),
        ({"floors": True}, "field 'floors' must be a whole number, got True"),
        ({"kind": ""}, "field 'kind' is required; fill it in"),
        ({"kind": "   "}, "field 'kind' is required"),
        ({"kind": None}, "field 'kind' is required"),
        ({"name": ["a"]}, "field 'name' must be text"),
    ],
)
def test_bad_field_is_rejected(tmp_path: Path, props: dict[str, Any], reason: str) -> None:
    layers = base_layers()
    layers["buildings"][1]["properties"].update(props)
    result = read_directory(write_dir(tmp_path, layers))
    issue = only_issue(result.rejected, "buildings")
    assert (issue.row, issue.id) == (2, "B2")
    assert reason in issue.reason


def test_missing_field_and_all_problems_of_a_row_are_reported(tmp_path: Path) -> None:
    layers = base_layers()
    del layers["buildings"][1]["properties"]["kind"]
    layers["buildings"][1]["properties"]["floors"] = "abc"
    layers["buildings"][1]["geometry"] = None
    issue = only_issue(read_directory(write_dir(tmp_path, layers)).rejected, "buildings")
    for part in ("field 'kind' is required", "field 'floors'", "has no geometry"):
        assert part in issue.reason


def test_parks_and_buildings_before_any_grid_load_without_warnings(tmp_path: Path) -> None:
    """An imported map (OpenStreetMap): no grid or code yet, footprints without name/address."""
    layers = base_layers()
    for f in layers["parks"] + layers["buildings"]:
        for key in ("grid_id", "code"):
            f["properties"].pop(key, None)
    for key in ("name", "address"):
        del layers["buildings"][1]["properties"][key]
    result = read_directory(write_dir(tmp_path, layers))
    assert result.rejected == []
    assert [w for w in result.warnings if w.table in ("parks", "buildings")] == []
    b = result.tables["buildings"]
    assert b["grid_id"].isna().all() and pd.isna(b["name"].iloc[1])


def test_fields_are_coerced_to_the_spec_type(tmp_path: Path) -> None:
    layers = base_layers()
    layers["buildings"][0]["properties"]["floors"] = "12"
    layers["buildings"][1]["properties"]["floors"] = 7.0
    layers["streets"][0]["properties"]["code"] = 1  # a str field given a number
    result = read_directory(write_dir(tmp_path, layers))
    assert result.rejected == []
    assert result.tables["buildings"]["floors"].tolist() == [12, 7]
    assert result.tables["streets"]["code"].iloc[0] == "1"


def test_id_from_properties_or_number(tmp_path: Path) -> None:
    layers = base_layers()
    del layers["roads"][0]["id"]
    layers["roads"][0]["properties"]["id"] = "R9"
    layers["roads"].append(
        feature(7, layers["roads"][0]["geometry"], name="y", **{"class": "branch"})
    )
    result = read_directory(write_dir(tmp_path, layers))
    assert result.tables["roads"]["id"].tolist() == ["7", "R9"]


def test_missing_id_and_non_feature_rows(tmp_path: Path) -> None:
    roads = [
        *base_layers()["roads"],
        {"type": "Foo"},
        feature(
            None,
            {"type": "LineString", "coordinates": [[120, 30], [120.1, 30]]},
            name="z",
            **{"class": "branch"},
        ),
    ]
    result = read_directory(write_dir(tmp_path, {"roads": roads}))
    by_row = {i.row: i for i in result.rejected}
    assert "is not a GeoJSON Feature" in by_row[2].reason
    assert "field 'id' is required" in by_row[3].reason and by_row[3].id is None


def test_duplicate_ids_keep_the_first(tmp_path: Path) -> None:
    parks = [
        *base_layers()["parks"],
        feature("P1", box(120.13, 30.13, 120.14, 30.14), name="重复", grid_id="G1", code="9"),
    ]
    result = read_directory(write_dir(tmp_path, {"parks": parks}))
    issue = only_issue(result.rejected)
    assert (issue.row, issue.id) == (2, "P1")
    assert "already used by row 1" in issue.reason
    assert result.tables["parks"]["name"].tolist() == ["物联网产业园"]


# ----------------------------------------------------------------------------- crs member


def collection(features: list[dict[str, Any]], crs_name: Any) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": crs_name}},
        "features": features,
    }


@pytest.mark.parametrize(
    "name",
    [
        "urn:ogc:def:crs:OGC:1.3:CRS84",
        "EPSG:4326",
        "urn:ogc:def:crs:EPSG::4490",
        "urn:ogc:def:crs:EPSG:6.6:4326",
        "EPSG:4490",
    ],
)
def test_crs_member_wgs84_and_cgcs2000_are_accepted(tmp_path: Path, name: str) -> None:
    result = read_directory(
        write_dir(tmp_path, {"streets": collection(base_layers()["streets"], name)})
    )
    assert result.rejected == [] and result.warnings == []
    assert result.tables["streets"].total_bounds.tolist() == [120.1, 30.1, 120.3, 30.3]


def test_crs_member_with_other_epsg_is_converted_with_a_warning(tmp_path: Path) -> None:
    x, y = from_wgs84(
        [120.1, 120.3, 120.3, 120.1, 120.1], [30.1, 30.1, 30.3, 30.3, 30.1], "EPSG:4549"
    )
    projected = {"type": "Polygon", "coordinates": [np.column_stack([x, y]).tolist()]}
    streets = [feature("S1", projected, name="西兴街道", code="001")]
    result = read_directory(write_dir(tmp_path, {"streets": collection(streets, "EPSG:4549")}))
    warning = only_issue(result.warnings)
    assert (warning.table, warning.row) == ("streets", 0)
    assert "converted from EPSG:4549" in warning.reason
    bounds = result.tables["streets"].total_bounds
    np.testing.assert_allclose(bounds, [120.1, 30.1, 120.3, 30.3], atol=1e-8)


def test_crs_member_of_type_epsg_with_a_code(tmp_path: Path) -> None:
    doc = {
        **collection(base_layers()["streets"], None),
        "crs": {"type": "EPSG", "properties": {"code": 4490}},
    }
    result = read_directory(write_dir(tmp_path, {"streets": doc}))
    assert result.rejected == [] and result.warnings == []


def test_empty_layer_loads_as_an_empty_table(tmp_path: Path) -> None:
    layers = {"parks": [], "buildings": []}
    result = read_directory(
        write_dir(tmp_path, layers, officers=OFFICERS_CSV.splitlines()[0] + "\n")
    )
    assert result.rejected == []
    for name in ("parks", "buildings", "officers"):
        frame = result.tables[name]
        assert frame.empty and list(frame.columns)[: len(TABLES[name].fields)] == list(
            TABLES[name].field_names
        )
    assert result.tables["buildings"].crs.to_epsg() == 4326


def test_coordinates_outside_the_projection_are_rejected(tmp_path: Path) -> None:
    far = {
        "type": "Polygon",
        "coordinates": [[[1e8, 3.3e6], [1e8 + 1, 3.3e6], [1e8, 3.3e6 + 1], [1e8, 3.3e6]]],
    }
    streets = [feature("S1", far, name="远", code="001")]
    result = read_directory(write_dir(tmp_path, {"streets": collection(streets, "EPSG:4549")}))
    issue = only_issue(result.rejected, "streets")
    assert "not finite after conversion to WGS84; check the CRS" in issue.reason


def test_crs_member_unknown_is_an_input_error(tmp_path: Path) -> None:
    doc = collection(base_layers()["streets"], "urn:ogc:def:crs:FOO::bar")
    with pytest.raises(InputError, match=r"streets\.geojson: crs member .*not understood"):
        read_directory(write_dir(tmp_path, {"streets": doc}))


def test_crs_member_without_a_name_is_an_input_error(tmp_path: Path) -> None:
    doc = {**collection(base_layers()["streets"], None), "crs": {"type": "link", "properties": {}}}
    with pytest.raises(InputError, match="cannot read the crs member"):
        read_directory(write_dir(tmp_path, {"streets": doc}))


# ----------------------------------------------------------------------------- references


def test_dangling_reference_is_rejected(tmp_path: Path) -> None:
    layers = base_layers()
    layers["buildings"][1]["properties"]["grid_id"] = "C09-G01"
    result = read_directory(write_dir(tmp_path, layers))
    issue = only_issue(result.rejected, "buildings")
    assert (issue.row, issue.id) == (2, "B2")
    assert "grid_id 'C09-G01' refers to no grid" in issue.reason
    officer = only_issue(result.rejected, "officers")
    assert (
        "building_ids 'B2' refers to a building that was rejected (buildings row 2)"
        in officer.reason
    )


def test_rejected_parent_cascades_to_children_until_stable(tmp_path: Path) -> None:
    layers = base_layers()
    layers["communities"][0]["properties"]["street_id"] = "S404"
    result = read_directory(write_dir(tmp_path, layers))
    reasons = {(i.table, i.id): i.reason for i in result.rejected}
    assert "street_id 'S404' refers to no street" in reasons[("communities", "C1")]
    assert "refers to a community that was rejected (communities row 1)" in reasons[("grids", "G1")]
    assert "refers to a grid that was rejected (grids row 1)" in reasons[("parks", "P1")]
    assert "refers to a grid that was rejected" in reasons[("buildings", "B1")]
    assert "refers to a building that was rejected" in reasons[("officers", "O1")]
    for name in ("communities", "grids", "parks", "buildings", "officers"):
        assert result.tables[name].empty, name
    assert len(result.tables["streets"]) == 1 and len(result.tables["enterprises"]) == 1


def test_park_id_must_exist(tmp_path: Path) -> None:
    layers = base_layers()
    layers["buildings"][0]["properties"]["park_id"] = "P404"
    issue = only_issue(read_directory(write_dir(tmp_path, layers)).rejected, "buildings")
    assert "park_id 'P404' refers to no park" in issue.reason


# ----------------------------------------------------------------------------- enterprises.csv

HEADER = "id,name,credit_code,address,lon,lat,crs,chain,employees"


def enterprises(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def test_bad_credit_code_is_a_warning_and_the_row_is_kept(tmp_path: Path) -> None:
    csv_text = enterprises(f"E1,甲,{CODE_BAD},地址,120.2,30.2,,,")
    result = read_directory(write_dir(tmp_path, enterprises=csv_text))
    assert result.rejected == []
    warning = only_issue(result.warnings)
    assert (warning.table, warning.row, warning.id) == ("enterprises", 2, "E1")
    assert f"the last character should be {CODE_OK[17]!r}" in warning.reason
    assert not result.tables["enterprises"]["credit_code_valid"].iloc[0]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("91330108MA2B3C4", "has 15 characters, not 18"),
        ("91330108MA2B3C4DOI", "contains I, O"),
        (CODE_OK + "X", "has 19 characters, not 18"),
    ],
)
def test_malformed_credit_codes_are_warnings(tmp_path: Path, code: str, reason: str) -> None:
    result = read_directory(
        write_dir(tmp_path, enterprises=enterprises(f"E1,甲,{code},地址,120.2,30.2"))
    )
    assert reason in only_issue(result.warnings).reason and result.rejected == []


def test_lower_case_credit_code_is_valid_and_upper_cased(tmp_path: Path) -> None:
    result = read_directory(
        write_dir(tmp_path, enterprises=enterprises(f"E1,甲,{CODE_OK.lower()},地址,120.2,30.2"))
    )
    row = result.tables["enterprises"].iloc[0]
    assert row["credit_code"] == CODE_OK and row["credit_code_valid"]


def test_repeated_credit_code_is_a_warning(tmp_path: Path) -> None:
    result = read_directory(
        write_dir(
            tmp_path,
            enterprises=enterprises(
                f"E1,甲,{CODE_OK},地址,120.2,30.2", f"E2,乙,{CODE_OK},地址,120.2,30.2"
            ),
        )
    )
    warning = only_issue(result.warnings)
    assert (warning.row, warning.id) == (3, "E2") and "also used by line 2" in warning.reason
    assert len(result.tables["enterprises"]) == 2


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("120.2,abc,,,", "field 'lat' must be a finite number, got 'abc'"),
        (",30.2,,,", "field 'lon' is required"),
        ("nan,30.2,,,", "field 'lon' must be a finite number, got 'nan'"),
        ("inf,30.2,,,", "field 'lon' must be a finite number"),
        ("30.2,120.2,,,", "latitude 120.2 is outside [-90, 90]; lon/lat swapped?"),
        ("190.2,30.2,,,", "longitude 190.2 is outside [-180, 180]"),
        ("120.2,30.2,mars2000,,", "field 'crs': unknown CRS 'mars2000'"),
        ("120.2,30.2,,,many", "field 'employees' must be a whole number, got 'many'"),
        ("120.2,30.2,,,1,extra", "has 10 cells but the header has 9 columns"),
    ],
)
def test_bad_enterprise_row_is_rejected(tmp_path: Path, row: str, reason: str) -> None:
    csv_text = enterprises(f"E0,好,{CODE_OK},地址,120.2,30.2", f"E1,甲,{CODE_OK},地址,{row}")
    result = read_directory(write_dir(tmp_path, enterprises=csv_text))
    issue = only_issue(result.rejected)
    assert (issue.table, issue.row, issue.id) == ("enterprises", 3, "E1")
    assert reason in issue.reason
    assert result.tables["enterprises"]["id"].tolist() == ["E0"]


def test_enterprise_coordinates_are_converted_per_crs(tmp_path: Path) -> None:
    lon, lat = 120.2159, 30.2132
    gx, gy = from_wgs84(lon, lat, "gcj02")
    bx, by = from_wgs84(lon, lat, "bd09")
    px, py = from_wgs84(lon, lat, "EPSG:4549")
    csv_text = enterprises(
        f"E1,a,{CODE_OK},x,{lon},{lat},,,",
        f"E2,b,{CODE_OK},x,{float(gx[0])!r},{float(gy[0])!r},GCJ-02,,",
        f"E3,c,{CODE_OK},x,{float(bx[0])!r},{float(by[0])!r},bd09,,",
        f"E4,d,{CODE_OK},x,{float(px[0])!r},{float(py[0])!r},EPSG:4549,,",
        f"E5,e,{CODE_OK},x,{lon},{lat},cgcs2000,,",
    )
    frame = read_directory(write_dir(tmp_path, enterprises=csv_text)).tables["enterprises"]
    assert frame["source_crs"].tolist() == ["wgs84", "gcj02", "bd09", "EPSG:4549", "cgcs2000"]
    np.testing.assert_allclose(frame.geometry.x, lon, atol=1e-8)
    np.testing.assert_allclose(frame.geometry.y, lat, atol=1e-8)


def test_optional_columns_may_be_absent(tmp_path: Path) -> None:
    csv_text = enterprises(
        f"E1,甲,{CODE_OK},地址,120.2,30.2", header="id,name,credit_code,address,lon,lat"
    )
    frame = read_directory(write_dir(tmp_path, enterprises=csv_text)).tables["enterprises"]
    assert frame["source_crs"].iloc[0] == "wgs84" and frame["chain"].iloc[0] is None


def test_gbk_encoded_csv(tmp_path: Path) -> None:
    data = enterprises(
        f"E1,杭州海康威视数字技术股份有限公司,{CODE_OK},滨江区阡陌路555号,120.2,30.2"
    )
    result = read_directory(write_dir(tmp_path, enterprises=data.encode("gbk")))
    assert result.tables["enterprises"]["name"].iloc[0] == "杭州海康威视数字技术股份有限公司"
    assert result.tables["enterprises"]["address"].iloc[0] == "滨江区阡陌路555号"


def test_utf8_bom_csv(tmp_path: Path) -> None:
    data = OFFICERS_CSV.encode("utf-8-sig")
    result = read_directory(write_dir(tmp_path, officers=data))
    assert result.rejected == [] and result.tables["officers"]["id"].tolist() == ["O1"]


def test_mixed_line_endings_and_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    data = (
        f"{HEADER}\r\nE1,甲,{CODE_OK},a,120.2,30.2,,,\n\r\n"
        f"E2,乙,{CODE_OK},b,120.2,30.2,,,\rE3,丙,{CODE_OK},c,xx,30.2,,,\r\n"
    )
    result = read_directory(write_dir(tmp_path, enterprises=data))
    issue = only_issue(result.rejected)
    assert (issue.row, issue.id) == (5, "E3")
    assert result.tables["enterprises"]["id"].tolist() == ["E1", "E2"]


def test_quoted_multiline_cell_reports_its_first_line(tmp_path: Path) -> None:
    data = enterprises(f'E1,甲,{CODE_OK},"两行\n地址",120.2,30.2', f"E2,乙,{CODE_OK},b,x,30.2")
    result = read_directory(write_dir(tmp_path, enterprises=data))
    assert only_issue(result.rejected).row == 4
    assert result.tables["enterprises"]["address"].iloc[0] == "两行\n地址"


# ----------------------------------------------------------------------------- officers.csv


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("true", True), ("FALSE", False), ("1", True), ("0", False), ("是", True), ("否", False)],
)
def test_party_member_spellings(tmp_path: Path, cell: str, expected: bool) -> None:
    data = f"id,name,role,phone,party_member,building_ids\nO1,张三,楼宇管理长,1,{cell},B1\n"
    frame = read_directory(write_dir(tmp_path, officers=data)).tables["officers"]
    assert frame["party_member"].dtype == bool and frame["party_member"].iloc[0] == expected


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("O1,张三,楼长,1,是,B1", "field 'role' must be one of"),
        ("O1,张三,楼宇管理长,1,maybe,B1", "field 'party_member' must be true/false"),
        ("O1,张三,楼宇管理长,,是,B1", "field 'phone' is required"),
        ("O1,张三,楼宇管理长,1,是,B1;B404", "building_ids 'B404' refers to no building"),
    ],
)
def test_bad_officer_is_rejected(tmp_path: Path, row: str, reason: str) -> None:
    data = f"id,name,role,phone,party_member,building_ids\n{row}\n"
    issue = only_issue(read_directory(write_dir(tmp_path, officers=data)).rejected)
    assert (issue.table, issue.row, issue.id) == ("officers", 2, "O1")
    assert reason in issue.reason


def test_building_ids_are_normalised(tmp_path: Path) -> None:
    data = "id,name,role,phone,party_member,building_ids\nO1,张三,协理服务员,0571,否, B1 ；B2;\n"
    frame = read_directory(write_dir(tmp_path, officers=data)).tables["officers"]
    assert frame["building_ids"].iloc[0] == "B1;B2" and frame["phone"].iloc[0] == "0571"


# ----------------------------------------------------------------------------- writers


def test_write_geojson_round_trip(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    loaded = read_directory(write_dir(tmp_path / "in"))
    out = tmp_path / "out"
    out.mkdir()
    for name in LAYERS:
        if name != "enterprises":
            write_geojson(loaded.tables[name], out / f"{name}.geojson")
    for name in ("enterprises", "officers"):
        write_csv(loaded.tables[name], out / f"{name}.csv")
    again = read_directory(out)
    assert again.rejected == [] and again.warnings == []
    for name in TABLES:
        pd.testing.assert_frame_equal(
            pd.DataFrame(again.tables[name]), pd.DataFrame(loaded.tables[name]), check_dtype=True
        )

    raw = (out / "buildings.geojson").read_bytes()
    assert "一号楼".encode() in raw and b"\\u" not in raw
    doc = json.loads(raw)
    assert doc["type"] == "FeatureCollection"
    first = doc["features"][0]
    assert first["id"] == "B1" and "id" not in first["properties"]
    assert first["properties"]["floors"] == 12 and first["properties"]["name"] == "一号楼"
    assert doc["features"][1]["properties"]["floors"] is None
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))


def test_write_geojson_reprojects_and_orients(tmp_path: Path) -> None:
    x, y = from_wgs84([120.1, 120.1, 120.2, 120.1], [30.1, 30.2, 30.1, 30.1], "EPSG:4549")
    cw = shapely.Polygon(np.column_stack([x, y]))
    frame = gpd.GeoDataFrame({"id": ["A"], "n": [np.int64(3)]}, geometry=[cw], crs="EPSG:4549")
    write_geojson(frame, tmp_path / "a.geojson")
    doc = json.loads((tmp_path / "a.geojson").read_text(encoding="utf-8"))
    ring = np.array(doc["features"][0]["geometry"]["coordinates"][0])
    assert shapely.is_ccw(shapely.LinearRing(ring))
    np.testing.assert_allclose(ring.min(axis=0), [120.1, 30.1], atol=1e-8)
    assert doc["features"][0]["properties"] == {"n": 3}
    assert frame.crs.to_epsg() == 4549  # the caller's frame is untouched


def test_write_csv_defuses_formulas_and_writes_bom(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e", "f", "g"],
            "text": ["=SUM(A1:A2)", "+8613800000000", "-cmd", "@foo", "\tx", "\rx", "普通"],
            "number": [-1.5, 2.0, -3.0, 0.0, 1.0, 1.0, 1.0],
            "flag": [True, False, None, True, True, True, True],
        }
    )
    write_csv(frame, tmp_path / "x.csv")
    raw = (tmp_path / "x.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(tmp_path / "x.csv", encoding="utf-8-sig", keep_default_na=False)
    assert back["text"].tolist() == [
        "'=SUM(A1:A2)",
        "'+8613800000000",
        "'-cmd",
        "'@foo",
        "'\tx",
        "'\rx",
        "普通",
    ]
    assert back["number"].tolist() == [-1.5, 2.0, -3.0, 0.0, 1.0, 1.0, 1.0]
    assert back["flag"].tolist() == ["true", "false", "", "true", "true", "true", "true"]


def test_write_csv_of_polygons_uses_wkt(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"id": ["A"]}, geometry=[shapely.box(0, 0, 1, 1)], crs="EPSG:4326")
    write_csv(frame, tmp_path / "p.csv")
    back = pd.read_csv(tmp_path / "p.csv", encoding="utf-8-sig")
    assert shapely.equals(shapely.from_wkt(back["geometry"].iloc[0]), shapely.box(0, 0, 1, 1))


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "a.geojson"
    target.write_text("old", encoding="utf-8")

    def boom(*args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(geo_io_write.os, "replace", boom)
    frame = gpd.GeoDataFrame({"id": ["A"]}, geometry=[shapely.Point(1, 2)], crs="EPSG:4326")
    with pytest.raises(OSError, match="disk full"):
        write_geojson(frame, target)
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.geojson"]


# ----------------------------------------------------------------------------- the sample district


def test_sample_district_loads() -> None:
    result = read_directory(SAMPLE)
    assert result.rejected == [], result.rejected[:5]
    assert all(len(result.tables[name]) for name in TABLES)
    minx, miny, maxx, maxy = result.tables["enterprises"].total_bounds
    assert 119.9 < minx < maxx < 120.4 and 30.0 < miny < maxy < 30.4  # Binjiang, in WGS84
