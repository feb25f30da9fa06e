"""Grid and micro-grid codes: reading order, stability across re-splits, validation on load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import shapely
from shapely import box

from geo import io as geo_io
from geo.grids import codes

PREFIX = "330108003001"


def test_make_and_parse() -> None:
    assert codes.community_prefix("003", "001") == PREFIX
    assert codes.make_code(PREFIX, 7) == "330108003001007"
    assert codes.sequence("330108003001007", PREFIX) == 7
    assert codes.sequence("330108003002007", PREFIX) is None
    assert codes.sequence("33010800300107", PREFIX) is None
    with pytest.raises(codes.CodeError):
        codes.make_code(PREFIX, 1000)
    with pytest.raises(codes.CodeError):
        codes.community_prefix("3", "001")
    assert codes.parse_retired(" a ; b;") == ["a", "b"]
    assert codes.parse_retired(None) == []
    assert codes.format_retired(["b", "a", "b"]) == "a;b"
    assert codes.format_retired([]) is None


def test_reading_order_rows_north_to_south_west_to_east() -> None:
    # a 3 x 2 lattice given in scrambled order; row 0 is the northern one
    cells = {
        (c, r): box(c * 100, -r * 100, c * 100 + 90, -r * 100 + 90)
        for c in range(3)
        for r in range(2)
    }
    keys = [(2, 1), (0, 0), (1, 1), (2, 0), (0, 1), (1, 0)]
    order = codes.reading_order([cells[k] for k in keys])
    assert [keys[i] for i in order] == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]


def _strip(x0: float, x1: float):
    return box(x0, 0, x1, 100)


def test_first_numbering_in_reading_order() -> None:
    new = [_strip(200, 300), _strip(0, 100), _strip(100, 200)]
    got = codes.assign_grid_codes([], [], new, PREFIX)
    assert got.codes == [f"{PREFIX}003", f"{PREFIX}001", f"{PREFIX}002"]
    assert got.kept == [None, None, None]
    assert got.highest == 3


def test_a_grid_keeping_most_of_its_area_keeps_its_code() -> None:
    old = [_strip(0, 100), _strip(100, 200), _strip(200, 300)]
    old_codes = [f"{PREFIX}001", f"{PREFIX}002", f"{PREFIX}003"]
    # one block (x 180-200) moves from grid 2 to grid 3
    new = [_strip(0, 100), _strip(100, 180), _strip(180, 300)]
    got = codes.assign_grid_codes(old_codes, old, new, PREFIX)
    assert got.codes == old_codes
    assert got.kept == [0, 1, 2]
    assert got.retired == []


def test_new_grids_take_new_numbers_and_retired_codes_are_never_reused() -> None:
    old = [_strip(0, 100), _strip(100, 200), _strip(200, 300)]
    old_codes = [f"{PREFIX}001", f"{PREFIX}002", f"{PREFIX}003"]
    # grid 2 is split in halves: neither half holds > 50 % of it
    new = [_strip(0, 100), _strip(100, 150), _strip(150, 200), _strip(200, 300)]
    got = codes.assign_grid_codes(old_codes, old, new, PREFIX, retired=[f"{PREFIX}004"])
    assert got.codes[0] == f"{PREFIX}001" and got.codes[3] == f"{PREFIX}003"
    # 002 retired; the previously retired 004 is not reused: 005, 006 in reading order
    assert got.codes[1:3] == [f"{PREFIX}005", f"{PREFIX}006"]
    assert got.retired == [f"{PREFIX}002", f"{PREFIX}004"]
    assert got.highest == 6
    # merging back: equal overlaps, the first old grid wins (one-to-one), the others retire
    again = codes.assign_grid_codes(got.codes, new, [_strip(0, 300)], PREFIX, got.retired)
    assert again.codes == [f"{PREFIX}001"]
    assert {f"{PREFIX}003", f"{PREFIX}006"} <= set(again.retired)


def test_one_to_one_largest_overlap_first() -> None:
    old = [_strip(0, 100), _strip(100, 200)]
    old_codes = [f"{PREFIX}001", f"{PREFIX}002"]
    new = [_strip(0, 200)]  # holds all of both: only one may keep its code
    got = codes.assign_grid_codes(old_codes, old, new, PREFIX)
    assert len(set(got.codes)) == 1 and got.kept[0] in (0, 1)
    assert len(got.retired) == 1


# ---------------------------------------------------------------------------------- validation


def test_sample_codes_are_valid(sample_dir: Path) -> None:
    tables = geo_io.read_directory(sample_dir).tables
    assert codes.validate_codes(tables) == []


def _edit(path: Path, fid: str, **props) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    for f in doc["features"]:
        if f["properties"]["id"] == fid:
            f["properties"].update(props)
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


def test_load_reports_bad_and_duplicate_codes(sample_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    _edit(data / "grids.geojson", "C01-G02", code="330108003001001")  # duplicate of G01
    _edit(data / "grids.geojson", "C01-G03", code="330108001001003")  # wrong street
    _edit(data / "grids.geojson", "C01-G04", code="33010800300104")  # 14 digits
    _edit(data / "parks.geojson", "P1120923155", code="330108003001999001")  # not its grid's prefix
    result = geo_io.read_directory(data)
    found = {(w.table, w.id): w.reason for w in result.warnings if w.table != "enterprises"}
    assert "already used" in found[("grids", "C01-G02")]
    assert "does not start with 330108003001" in found[("grids", "C01-G03")]
    assert "15 digits" in found[("grids", "C01-G04")]
    assert "does not start with the code" in found[("parks", "P1120923155")]
    rows = {(w.table, w.id): w.row for w in result.warnings}
    assert rows[("grids", "C01-G02")] > 0
    assert len(result.tables["grids"]) == 27  # warnings, not rejections


def test_micro_grid_duplicates_and_park_building_codes() -> None:
    import geopandas as gpd

    g = [shapely.box(0, 0, 1, 1)]
    tables = {
        "streets": gpd.GeoDataFrame({"id": ["S"], "code": ["003"]}, geometry=g),
        "communities": gpd.GeoDataFrame(
            {"id": ["C"], "street_id": ["S"], "code": ["001"]}, geometry=g
        ),
        "grids": gpd.GeoDataFrame(
            {"id": ["G"], "community_id": ["C"], "code": [f"{PREFIX}001"]}, geometry=g
        ),
        "parks": gpd.GeoDataFrame(
            {"id": ["P"], "grid_id": ["G"], "code": [f"{PREFIX}001001"]}, geometry=g
        ),
        "buildings": gpd.GeoDataFrame(
            {
                "id": ["B1", "B2", "B3"],
                "grid_id": ["G", "G", "G"],
                "park_id": [None, "P", None],
                "code": [f"{PREFIX}001001", f"{PREFIX}001002", None],
            },
            geometry=g * 3,
        ),
    }
    found = {p.id: p.reason for p in codes.validate_codes(tables)}
    assert "already used by parks 'P'" in found["B1"]
    assert "belongs to the park's micro-grid" in found["B2"]
    assert "18 digits" in found["B3"]
    assert "P" not in found
