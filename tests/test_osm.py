"""`geo.osm.read_osm` on the real Binjiang extract (data/osm) and on small OSM files written here.

The real extract's box also covers parts of 上城区, 西湖区 and 萧山区: inside 滨江区 it holds
282 road and river names (798 in the whole box), 233 named industrial/commercial sites and
4,026 building footprints (about 12,000 in the whole box).
"""

from __future__ import annotations

import time
from pathlib import Path
from xml.sax.saxutils import quoteattr

import geopandas as gpd
import mercantile
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from geo.atlas import Atlas
from geo.boundaries.build import build_boundary
from geo.crs import to_metric
from geo.grids.codes import validate_codes
from geo.grids.split import apply_split, propose_split
from geo.model import ROAD_CLASSES, TABLES
from geo.osm import ROAD_MARGIN_M, OSMError, read_osm, tags
from geo.settings import Settings
from geo.store import open_store

EXTRACT = Path(__file__).resolve().parents[1] / "data" / "osm" / "binjiang.osm.pbf"
TORCH = "东至信诚路、南至南环路、西至东信大道、北至江南大道"
LAYERS = ("roads", "streets", "areas", "parks", "buildings")


@pytest.fixture(scope="module")
def osm() -> dict[str, gpd.GeoDataFrame]:
    return read_osm(EXTRACT)


@pytest.fixture(scope="module")
def district(osm) -> shapely.Geometry:
    areas = osm["areas"]
    return areas.loc[areas["name"] == "滨江区", "geometry"].iloc[0]


@pytest.fixture(scope="module")
def torch(osm):
    """Torch (火炬) built from its four-to text over the roads read (about 3 s)."""
    return build_boundary(TORCH, osm["roads"], osm["areas"])


@pytest.fixture(scope="module")
def osm_db(osm, tmp_path_factory) -> str:
    db = str(tmp_path_factory.mktemp("osm") / "osm.gpkg")
    store = open_store(db)
    try:
        store.replace_all(osm, author="test", reason="OpenStreetMap import")
    finally:
        store.close()
    return db


# ------------------------------------------------------------------------------ the real extract


def test_counts(osm):
    roads = osm["roads"]
    assert roads["name"].nunique() >= 250  # names within 300 m of 滨江区 (282)
    assert len(osm["parks"]) >= 150
    assert len(osm["buildings"]) >= 3500  # inside 滨江区 (4,026)
    assert osm["parks"]["name"].str.contains("海康威视").any()
    rivers = set(roads.loc[roads["class"].isin(["river", "canal", "stream"]), "name"])
    assert {"钱塘江", "北塘河"} <= rivers
    assert set(roads["class"]) <= {*ROAD_CLASSES, "river", "canal", "stream"}


def test_every_road_of_the_extract_on_request():
    roads = read_osm(EXTRACT, road_margin_m=None)["roads"]
    assert roads["name"].nunique() >= 750  # the whole box: 798 (871 with footways and paths)
    assert {"钱塘江", "北塘河", "中河"} <= set(roads["name"])


def test_streets_tile_the_district(osm, district):
    streets = osm["streets"]
    assert list(streets["name"]) == ["西兴街道", "长河街道", "浦沿街道"]
    assert list(streets["code"]) == ["001", "002", "003"]  # as GB/T 2260 numbers them
    assert list(streets["id"]) == ["S001", "S002", "S003"]
    parts = to_metric(streets.geometry.to_numpy())
    whole = to_metric(district)
    assert shapely.area(shapely.union_all(parts).symmetric_difference(whole)) < 1e-3 * whole.area
    assert abs(shapely.area(parts).sum() - whole.area) < 1e-3 * whole.area  # no overlaps


def test_schema_ids_and_order(osm):
    prefixes = {"roads": "W", "streets": "S", "areas": "A", "parks": "P", "buildings": "B"}
    for name in LAYERS:
        frame = osm[name]
        assert list(frame.columns) == [*TABLES[name].field_names, "geometry"], name
        assert frame.crs.to_epsg() == 4326
        assert frame["id"].is_unique and frame["id"].is_monotonic_increasing, name
        assert frame["id"].str.startswith(prefixes[name]).all(), name
    for name in ("parks", "buildings"):
        assert osm[name]["grid_id"].isna().all() and osm[name]["code"].isna().all()


def test_ids_and_values_stable_across_reads_in_seconds(osm):
    t0 = time.perf_counter()
    again = read_osm(EXTRACT)
    assert time.perf_counter() - t0 < 15  # about 2 s on a laptop
    for name in LAYERS:
        pd.testing.assert_frame_equal(
            pd.DataFrame(osm[name].drop(columns="geometry")),
            pd.DataFrame(again[name].drop(columns="geometry")),
        )
        assert shapely.equals_exact(
            osm[name].geometry.to_numpy(), again[name].geometry.to_numpy()
        ).all()


def test_geometries_valid_and_in_the_district(osm, district):
    for name in LAYERS:
        geoms = osm[name].geometry.to_numpy()
        assert shapely.is_valid(geoms).all(), name
        assert not shapely.is_empty(geoms).any(), name
    for name in ("parks", "buildings"):
        points = shapely.point_on_surface(osm[name].geometry.to_numpy())
        assert shapely.contains(district, points).all(), name
    near = shapely.buffer(to_metric(district), ROAD_MARGIN_M + 1)
    assert shapely.intersects(near, to_metric(osm["roads"].geometry.to_numpy())).all()


def test_buildings_point_at_the_park_holding_them(osm):
    b = osm["buildings"]
    parks = osm["parks"].set_index("id")
    inside = b[b["park_id"].notna()]
    assert len(inside) > 100
    assert inside["park_id"].isin(parks.index).all()
    held = shapely.contains(
        parks.loc[inside["park_id"], "geometry"].to_numpy(),
        shapely.point_on_surface(inside.geometry.to_numpy()),
    )
    assert held.all()
    assert set(b["kind"]) == {"enterprise", "mixed-use"}
    assert (b["floors"].dropna() > 0).all()


def test_torch_builds_from_the_real_roads(torch):
    assert 1.5e6 < torch.area_m2 < 1.7e6
    assert {side.roads[0] for side in torch.sides.values()} == {
        "信诚路",
        "南环路",
        "东信大道",
        "江南大道",
    }


# ------------------------------------------------------------------------------ the system on it


def test_store_round_trip(osm, osm_db):
    store = open_store(osm_db)
    try:
        snap = store.snapshot()
    finally:
        store.close()
    for name in LAYERS:
        got = snap.tables[name]
        assert list(got["id"]) == list(osm[name]["id"]), name
        assert shapely.equals_exact(
            got.geometry.to_numpy(), osm[name].geometry.to_numpy(), tolerance=1e-9
        ).all(), name
    assert snap.tables["buildings"]["name"].isna().sum() == osm["buildings"]["name"].isna().sum()
    assert len(snap.tables["communities"]) == len(snap.tables["grids"]) == 0


def test_atlas_locates_the_street_only(osm, osm_db):
    store = open_store(osm_db)
    try:
        atlas = Atlas(store.snapshot())
    finally:
        store.close()
    park = osm["parks"].geometry.iloc[0].representative_point()
    got = atlas.describe_one(park.x, park.y)
    assert got["street"]["id"] in set(osm["streets"]["id"])
    assert got["community"] is None and got["grid"] is None and got["microgrid"] is None
    owners = atlas.locate([park.x, 121.0], [park.y, 30.2])
    assert owners["street_id"].iloc[0] == got["street"]["id"]
    assert owners.iloc[1].isna().all()


def test_api_serves_a_store_without_grids(osm, osm_db):
    with TestClient(open_app(osm_db)) as c:
        health = c.get("/health").json()
        assert health["counts"]["buildings"] == len(osm["buildings"])
        assert health["counts"]["grids"] == 0
        r = c.get("/locate", params={"lon": 120.2, "lat": 30.2}).json()
        assert r["street"]["name"] == "长河街道" and r["community"] is None
        assert c.get("/collections").status_code == 200
        items = c.get("/collections/buildings/items", params={"limit": 5}).json()
        assert items["numberMatched"] == len(osm["buildings"])
        assert c.get("/collections/grids/items").json()["numberReturned"] == 0
        t = mercantile.tile(120.2, 30.2, 13)
        tile = f"{t.z}/{t.x}/{t.y}"
        for layer in ("roads", "streets", "parks", "buildings"):
            assert c.get(f"/tiles/{layer}/{tile}.mvt").status_code == 200, layer
        assert c.get(f"/tiles/grids/{tile}.mvt").status_code == 204
        assert c.get("/maps/").status_code == 200
        assert c.get("/maps/search.json").status_code == 200
        missing = c.get("/maps/community/C01")
        assert missing.status_code == 404 and "none yet" in missing.json()["detail"]
        assert c.get("/coverage").status_code == 200
        assert c.get("/coverage", params={"level": "street", "id": "S001"}).status_code == 200


def open_app(db: str):
    from geo.api.app import create_app

    return create_app(open_store(db), Settings(db=db))


def test_codes_accept_unsplit_micro_grids(osm):
    assert validate_codes(osm) == []


def test_split_places_parks_and_buildings_in_grids(osm, torch, tmp_path):
    community = gpd.GeoDataFrame(
        {
            "id": ["C01"],
            "name": ["火炬产业社区"],
            "street_id": ["S003"],
            "code": ["001"],
            "type": ["科技创新型"],
            "mode": ["street"],
            "four_to": [TORCH],
            "founded": [None],
            "retired_grids": [None],
        },
        geometry=[torch.polygon],
        crs="EPSG:4326",
    )
    store = open_store(str(tmp_path / "split.gpkg"))
    try:
        store.replace_all({**osm, "communities": community}, author="test", reason="Torch")
        tables = store.snapshot().tables  # every table, as `geo grids split` reads them
        out = apply_split(tables, propose_split(tables, "C01", count=4, weight="floor_area"))
        store.replace_all(out, author="test", reason="split")
        atlas = Atlas(store.snapshot())
    finally:
        store.close()
    parks, buildings = out["parks"], out["buildings"]
    placed = parks[parks["grid_id"].notna()]
    assert len(placed) >= 10 and placed["code"].str.fullmatch(r"33010800300100\d{4}").all()
    loose = buildings[buildings["grid_id"].notna() & buildings["park_id"].isna()]
    assert len(loose) > 0 and loose["code"].str.len().eq(18).all()
    assert validate_codes(out) == []
    p = placed.geometry.iloc[0].representative_point()
    got = atlas.describe_one(p.x, p.y)
    assert got["community"]["id"] == "C01"
    assert got["microgrid"]["id"] == placed["id"].iloc[0]


# ------------------------------------------------------------------------------ small OSM files


_BOX = {  # name -> (lon0, lat0, lon1, lat1), degrees east/north of (120, 30)
    "district": (0.0, 0.0, 0.02, 0.02),
    "west": (0.0, 0.0, 0.01, 0.02),
    "east": (0.01, 0.0, 0.02, 0.02),
    "park": (0.002, 0.002, 0.006, 0.006),
    "shop": (0.012, 0.012, 0.014, 0.014),
    "in_park": (0.003, 0.003, 0.004, 0.004),
    "flat": (0.015, 0.003, 0.016, 0.004),
    "shed": (0.017, 0.017, 0.018, 0.018),
    "outside": (0.05, 0.05, 0.051, 0.051),
}


def _osm_xml(ways: list[tuple[int, str, dict[str, str]]], relations: list[tuple[int, int, dict]]):
    """An OSM XML document: closed ways around boxes, open ways as lines, relations over ways."""
    nodes: list[str] = []
    way_xml: list[str] = []
    nid = 0

    def node(lon: float, lat: float) -> int:
        nonlocal nid
        nid += 1
        nodes.append(f'<node id="{nid}" version="1" lat="{30 + lat:.7f}" lon="{120 + lon:.7f}"/>')
        return nid

    for wid, shape, tag in ways:
        if shape in _BOX:
            x0, y0, x1, y1 = _BOX[shape]
            ids = [node(x0, y0), node(x1, y0), node(x1, y1), node(x0, y1)]
            ids.append(ids[0])
        else:  # "x0,y0 x1,y1": a line
            ids = [node(*map(float, p.split(","))) for p in shape.split()]
        refs = "".join(f'<nd ref="{i}"/>' for i in ids)
        way_xml.append(f'<way id="{wid}" version="1">{refs}{_tags(tag)}</way>')
    rel_xml = [
        f'<relation id="{rid}" version="1"><member type="way" ref="{wid}" role="outer"/>'
        f"{_tags(tag)}</relation>"
        for rid, wid, tag in relations
    ]
    body = "\n".join([*nodes, *way_xml, *rel_xml])
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">\n{body}\n</osm>\n'


def _tags(tag: dict[str, str]) -> str:
    return "".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tag.items())


def _admin(level: str, name: str, **extra: str) -> dict[str, str]:
    return {
        "type": "boundary",
        "boundary": "administrative",
        "admin_level": level,
        "name": name,
        **extra,
    }


def _small(tmp_path: Path, street_tags: tuple[dict, dict] = ({}, {})) -> Path:
    ways = [
        (1, "district", {}),
        (2, "west", _admin("8", "西街道", **street_tags[0])),
        (3, "east", _admin("8", "东街道", **street_tags[1])),
        (10, "park", {"landuse": "industrial", "name": "甲园", "addr:street": "科技路",
                      "addr:housenumber": "8"}),
        (11, "shop", {"landuse": "commercial"}),  # no name: not a park
        (20, "in_park", {"building": "yes", "name": "一号楼", "building:levels": "5",
                         "addr:full": 'A"B\\C'}),
        (21, "flat", {"building": "apartments", "building:levels": "3;4"}),
        (22, "shed", {"building": "no"}),
        (23, "outside", {"building": "yes"}),
        (30, "0.001,0.001 0.019,0.001", {"highway": "primary_link", "name": "甲路"}),
        (31, "0.001,0.002 0.019,0.002", {"highway": "footway", "name": "步道"}),
        (32, "0.001,0.003 0.019,0.003", {"waterway": "ditch", "name": "乙渠"}),
        (33, "0.1,0.1 0.12,0.1", {"highway": "trunk", "name": "远路"}),
        (34, "0.001,0.004 0.019,0.004", {"highway": "residential"}),
        (35, "0.001,0.005 0.019,0.005", {"highway": "construction", "construction": "secondary",
                                          "name": "丁路"}),
        (36, "0.001,0.006 0.019,0.006", {"highway": "motorway", "name": " 戊路 "}),
    ]  # fmt: skip
    relations = [(100, 1, _admin("6", "测试区", division_code="330199"))]
    path = tmp_path / "small.osm"
    path.write_text(_osm_xml(ways, relations), encoding="utf-8")
    return path


def test_small_file_roads_classes_and_waterways(tmp_path):
    roads = read_osm(_small(tmp_path))["roads"]
    got = dict(zip(roads["id"], zip(roads["name"], roads["class"], strict=True), strict=True))
    assert got == {
        "W30": ("甲路", "arterial"),
        "W32": ("乙渠", "canal"),
        "W35": ("丁路", "secondary"),
        "W36": ("戊路", "expressway"),
    }


def test_small_file_sites(tmp_path):
    t = read_osm(_small(tmp_path))
    parks = t["parks"]
    assert list(parks["id"]) == ["P10"]
    assert parks["name"].iloc[0] == "甲园" and parks["address"].iloc[0] == "科技路8号"
    b = t["buildings"].set_index("id")
    assert list(b.index) == ["B20", "B21"]  # building=no and the one outside are left out
    assert b.loc["B20", "address"] == 'A"B\\C'  # escaped quote and backslash undone
    assert b.loc["B20", "park_id"] == "P10" and b.loc["B20", "floors"] == 5
    assert b.loc["B20", "kind"] == "enterprise"
    assert b.loc["B21", "kind"] == "mixed-use" and b.loc["B21", "floors"] == 3
    assert pd.isna(b.loc["B21", "park_id"]) and pd.isna(b.loc["B21", "name"])
    areas = t["areas"]
    assert list(areas["id"]) == ["A10", "AR100"] and list(areas["name"]) == ["甲园", "测试区"]


def test_small_file_street_codes(tmp_path):
    streets = read_osm(_small(tmp_path))["streets"]
    assert list(zip(streets["id"], streets["name"], strict=True)) == [
        ("S001", "西街道"),
        ("S002", "东街道"),
    ]
    official = ({"division_code": "330199005"}, {"ref": "330199004000"})
    streets = read_osm(_small(tmp_path, official))["streets"]
    assert list(zip(streets["id"], streets["name"], strict=True)) == [
        ("S004", "东街道"),
        ("S005", "西街道"),
    ]


def test_district_by_name(tmp_path):
    path = _small(tmp_path)
    assert read_osm(path, district="测试")["areas"]["name"].str.fullmatch("测试区").any()
    with pytest.raises(OSMError, match=r"no district named '滨江区'.*测试区"):
        read_osm(path, district="滨江区")


def test_a_cut_short_extract_says_so(tmp_path):
    path = tmp_path / "cut.osm.pbf"
    path.write_bytes(EXTRACT.read_bytes()[:1_000_000])
    with pytest.raises(OSMError, match="damaged or cut short"):
        read_osm(path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "no such file"),
        (
            '{"type": "FeatureCollection", "features": []}',
            "not an OpenStreetMap file|not OpenStreetMap",
        ),
        ("not a map at all", "cannot read|not an OpenStreetMap"),
        ('<?xml version="1.0"?><osm version="0.6"></osm>', "no district"),
    ],
)
def test_unreadable_files_say_why(tmp_path, content, match):
    path = tmp_path / ("x.geojson" if content and content.startswith("{") else "x.osm")
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(OSMError, match=match):
        read_osm(path)


# any text OSM can hold (XML has no NUL)
_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)


@given(st.dictionaries(_text.filter(bool), _text, min_size=1, max_size=6))
def test_hstore_round_trip(pairs):
    """GDAL writes ``"k"=>"v"`` with ``"`` and ``\\`` escaped by a backslash; any text returns."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace('"', '\\"')

    text = ",".join(f'"{esc(k)}"=>"{esc(v)}"' for k, v in pairs.items())
    keys = tuple(pairs)
    got = tags(pd.Series([text, None]), keys)
    assert got.iloc[0].to_dict() == pairs
    assert got.iloc[1].isna().all()
    assert np.array_equal(got.columns, keys)
