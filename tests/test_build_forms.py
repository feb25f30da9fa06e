"""Four-to texts as written, built: provisos applied, 以南 forms, rivers, 与…交界, three sides
closed by ``within``, suffix variants — on a purpose-made network and on the real Binjiang
OpenStreetMap extract."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from shapely.geometry import LineString, box

from geo.boundaries.build import BuildError, BuildResult, build_boundary
from geo.boundaries.fourto import FourToError
from geo.boundaries.roads import RoadNetwork
from geo.crs import METRIC_CRS, from_wgs84, to_lonlat, to_metric

X0, Y0 = (float(v[0]) for v in from_wgs84(120.15, 30.18, METRIC_CRS))
ROOT = Path(__file__).resolve().parents[1]
OSM = ROOT / "data" / "osm" / "binjiang.osm.pbf"  # the real extract (ODbL), in the repository


def local(geom):
    """Local metres (origin at 120.15 E, 30.18 N) → EPSG:4549."""
    return shapely.transform(geom, lambda xy: xy + np.array([X0, Y0]))


def wgs84(geom):
    return to_lonlat(local(geom))


# a box 1000 × 800 m: 信诚路 east, 南环路 south, 东信大道 west (a dual carriageway, strands
# 24 m apart), 江南大道 north; 北塘河 (a river) 400 m north of 江南大道; 东信路 far off
ROADS: list[tuple[str, str, list]] = [
    ("信诚路", "arterial", [(1000, -100), (1000, 1300)]),
    ("南环路", "arterial", [(-100, 0), (1500, 0)]),
    ("东信大道", "arterial", [(-12, -100), (-12, 1300)]),
    ("东信大道", "arterial", [(12, 1300), (12, -100)]),
    ("江南大道", "arterial", [(-100, 800), (1500, 800)]),
    ("北塘河", "river", [(-100, 1200), (1500, 1200)]),
    ("东信路", "branch", [(3000, 2000), (3000, 2500)]),
]
AREAS = [
    ("白马湖地块", box(200, -300, 600, 0)),  # just south of 南环路
    ("海创园", box(100, 100, 300, 300)),  # inside the box
    ("白马湖", box(-300, -200, 300, 1000)),  # a lake, drawn as an area
]
STREETS = [("长河街道", box(1300, -500, 3000, 1500)), ("浦沿街道", box(-500, -500, 1300, 1500))]


def frame(rows) -> gpd.GeoDataFrame:
    gdf = gpd.GeoDataFrame(
        {"name": [r[0] for r in rows], "class": [r[1] for r in rows]},
        geometry=[local(LineString(r[2])) for r in rows],
        crs=METRIC_CRS,
    )
    return gdf.to_crs("EPSG:4326")


def polygons(rows) -> gpd.GeoDataFrame:
    gdf = gpd.GeoDataFrame(
        {"name": [n for n, _ in rows]}, geometry=[local(p) for _, p in rows], crs=METRIC_CRS
    )
    return gdf.to_crs("EPSG:4326")


@pytest.fixture(scope="module")
def network() -> RoadNetwork:
    return RoadNetwork.from_frame(frame(ROADS))


@pytest.fixture(scope="module")
def areas() -> gpd.GeoDataFrame:
    """Areas and streets concatenated, as a caller passes them."""
    return pd.concat([polygons(AREAS), polygons(STREETS)], ignore_index=True)


def iou(result: BuildResult, expected) -> float:
    got, want = to_metric(result.polygon), local(expected)
    return got.intersection(want).area / got.union(want).area


BOX = box(0, 0, 1000, 800)

BUILT = [
    (
        "火炬产业社区位于滨江区核心区，东至信诚路，南至南环路，西至东信大道，北至江南大道，"
        "以数字安防产业为核心打造产业集群。",
        BOX,
    ),
    ("江南大道以南、信诚路以西、南环路以北、东信大道以东围合区域", BOX),
    ("东至信诚路西侧，南至南环路北侧，西至东信大道沿线，北以江南大道为界", BOX),
    ("东至信诚路，南至江南大道，西至东信大道，北以北塘河为界", box(0, 800, 1000, 1200)),
    ("北塘河以南、江南大道以北、信诚路以西、东信大道以东", box(0, 800, 1000, 1200)),
    ("东与长河街道交界，南至南环路，西至东信大道，北至江南大道", box(0, 0, 1300, 800)),
    ("东至信诚路，南至南环路，西至白马湖，北至江南大道", box(300, 0, 1000, 800)),
    ("东至信诚路，南至南环路，西与白马湖相邻，北至江南大道", box(300, 0, 1000, 800)),
    ("东至信诚，南至南环，西至东信大道，北至江南大道", BOX),
    ("东至信诚路，南至南环路，西至东信大道，北至江南路", BOX),
    ("东至信诚路、南至南环路(单号)、西至东信大道、北至江南大道（含沿街商铺）", BOX),
]


@pytest.mark.parametrize(("text", "expected"), BUILT)
def test_forms_build(network, areas, text: str, expected) -> None:
    res = build_boundary(text, network, areas)
    assert iou(res, expected) > 0.999
    assert res.area_m2 == pytest.approx(expected.area, rel=1e-3)


def test_lead_in_and_trailing_text_are_reported_not_applied(network, areas) -> None:
    res = build_boundary(BUILT[0][0], network, areas)
    assert res.notes == ("火炬产业社区位于滨江区核心区", "以数字安防产业为核心打造产业集群")
    props = res.to_feature()["properties"]
    assert props["notes"] == list(res.notes)
    assert "exceptions" not in props and "within" not in props


def test_unknown_provisos_are_returned_unapplied(network, areas) -> None:
    res = build_boundary(BUILT[-1][0], network, areas)
    assert [(e.text, e.kind, e.side, e.applied) for e in res.exceptions] == [
        ("单号", "remark", "south", False),
        ("含沿街商铺", "include", "north", False),
    ]
    assert "沿街商铺 is not a known area" in res.exceptions[1].reason
    feat = res.to_feature()["properties"]["exceptions"]
    assert feat[1] == {
        "text": "含沿街商铺",
        "kind": "include",
        "side": "north",
        "applied": False,
        "reason": res.exceptions[1].reason,
    }


def test_inclusion_adds_the_named_area(network, areas) -> None:
    res = build_boundary(
        "东至信诚路，南至南环路（另含白马湖地块），西至东信大道，北至江南大道", network, areas
    )
    assert res.area_m2 == pytest.approx(800_000 + 120_000, rel=1e-3)
    assert iou(res, BOX.union(box(200, -300, 600, 0))) > 0.999
    (report,) = res.exceptions
    assert report.applied and report.kind == "include" and "+0.120 km²" in report.reason
    assert res.polygon.geom_type == "Polygon" and res.polygon.exterior.is_ccw


def test_exclusion_takes_out_the_named_area(network, areas) -> None:
    text = "东至信诚路，南至南环路，西至东信大道，北至江南大道，不含海创园"
    res = build_boundary(text, network, areas)
    assert res.area_m2 == pytest.approx(800_000 - 40_000, rel=1e-3)
    assert iou(res, BOX.difference(box(100, 100, 300, 300))) > 0.999
    assert res.exceptions[0].applied and "-0.040 km²" in res.exceptions[0].reason


def test_three_sides_closed_by_within(network, areas) -> None:
    text = "该社区南至南环路，西至东信大道，北至江南大道，东侧以街道边界为准"
    res = build_boundary(text, network, areas, within=wgs84(box(-500, -500, 1300, 1500)))
    assert iou(res, box(0, 0, 1300, 800)) > 0.999
    assert res.within == ("east",)
    assert res.sides["east"].roads == ["within"]
    assert res.sides["east"].length_m == pytest.approx(800, abs=1)
    assert res.to_feature()["properties"]["within"] == ["east"]


def test_two_sides_closed_by_within(network, areas) -> None:
    res = build_boundary(
        "南至南环路，西至东信大道", network, areas, within=wgs84(box(-500, -500, 1300, 1100))
    )
    assert iou(res, box(0, 0, 1300, 1100)) > 0.999
    assert res.within == ("east", "north")


def test_open_side_without_within_says_how_to_close_it(network, areas) -> None:
    with pytest.raises(BuildError, match=r"side 东 is open.*东至<road>.*--within STREET_ID"):
        build_boundary("南至南环路，西至东信大道，北至江南大道", network, areas)
    with pytest.raises(BuildError, match="side 东、北 is open"):
        build_boundary("南至南环路，西至东信大道", network, areas)


def test_within_must_be_a_polygon(network, areas) -> None:
    with pytest.raises(BuildError, match="within must be a"):
        build_boundary(
            "南至南环路，西至东信大道", network, areas, within=LineString([(0, 0), (1, 1)])
        )


def test_names_resolve_exact_first_then_by_suffix(network, areas) -> None:
    res = build_boundary("东至信诚，南至南环，西至东信大道，北至江南路", network, areas)
    assert res.resolved == {"信诚": "信诚路", "南环": "南环路", "江南路": "江南大道"}
    assert res.sides["east"].roads == ["信诚路"]
    assert build_boundary(RECT_TEXT, network, areas).resolved == {}


RECT_TEXT = "东至信诚路，南至南环路，西至东信大道，北至江南大道"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("东至信诚路，南至南环路，西至东信，北至江南大道", "may be any of 东信大道, 东信路"),
        ("东至信城，南至南环路，西至东信大道，北至江南大道", 'unknown name "信城" (side 东)'),
        ("东至信成路，南至南环路，西至东信大道，北至江南大道", 'unknown road "信成路"'),
        ("东与滨江街道交界，南至南环路，西至东信大道，北至江南大道", 'unknown area "滨江街道"'),
    ],
)
def test_unresolved_names_say_what_to_write(network, areas, text: str, message: str) -> None:
    with pytest.raises(BuildError, match=re.escape(message)):
        build_boundary(text, network, areas)


def test_a_side_given_twice_is_refused(network, areas) -> None:
    with pytest.raises(FourToError, match="side 东 is given twice"):
        build_boundary("东至信诚路，东至江陵路，南至南环路，西至东信大道，北至江南大道", network)


# --------------------------------------------------------------------------------------------
# The real Binjiang (OpenStreetMap)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def osm() -> tuple[RoadNetwork, gpd.GeoDataFrame]:
    """Named roads and waterways as the roads; the 街道 (admin_level 8) as the areas."""
    lines = pyogrio.read_dataframe(OSM, layer="lines", columns=["name", "highway", "waterway"])
    named = lines[lines["name"].notna() & (lines["highway"].notna() | lines["waterway"].notna())]
    polys = pyogrio.read_dataframe(OSM, layer="multipolygons", columns=["name", "admin_level"])
    streets = polys[(polys["admin_level"] == "8") & polys["name"].notna()]
    return RoadNetwork.from_frame(named), streets[["name", "geometry"]].reset_index(drop=True)


def test_osm_torch(osm) -> None:
    network, streets = osm
    res = build_boundary("东至信诚路、南至南环路、西至东信大道、北至江南大道", network, streets)
    assert res.area_m2 / 1e6 == pytest.approx(1.61, abs=0.02)
    assert res.sides["north"].roads == ["江南大道"]


def test_osm_three_sides_closed_by_the_street(osm) -> None:
    """信诚路 divides 浦沿 from 长河: 浦沿, which Torch lies in, closes its east side."""
    network, streets = osm
    torch = build_boundary("东至信诚路、南至南环路、西至东信大道、北至江南大道", network, streets)
    puyan = streets.set_index("name").geometry["浦沿街道"]  # the street Torch lies in
    text = "火炬产业社区南至南环路，西至东信大道，北至江南大道。"
    res = build_boundary(text, network, streets, within=puyan)
    assert res.within == ("east",)
    assert iou_wgs84(res.polygon, torch.polygon) > 0.99
    adjoining = build_boundary(
        "东与浦沿街道交界，南至南环路，西至东信大道，北至江南大道", network, streets
    )
    assert iou_wgs84(adjoining.polygon, torch.polygon) > 0.99


def test_osm_river_side(osm) -> None:
    """北塘河 (a canal in OSM) as the south side, between 江陵路 and 江晖路."""
    network, streets = osm
    res = build_boundary("东至江陵路，南至北塘河，西至江晖路，北至滨盛路", network, streets)
    assert res.area_m2 / 1e6 == pytest.approx(1.64, abs=0.02)
    assert res.sides["south"].roads == ["北塘河"] and res.sides["south"].length_m > 500
    lying = build_boundary("北塘河以北、江陵路以西、江晖路以东、滨盛路以南", network, streets)
    assert iou_wgs84(lying.polygon, res.polygon) > 0.999


def iou_wgs84(a, b) -> float:
    ma, mb = to_metric(a), to_metric(b)
    return ma.intersection(mb).area / ma.union(mb).area
