"""Roads that stop short of the junction a four-to text names: ``extend_m`` runs a loose road
end on along its last direction to the side it must meet, and the answer lists every extension.

Synthetic networks are drawn in EPSG:4549 metres around (120.15 E, 30.18 N) and handed to the
builder in WGS84; the real case is 江晖路 in the OpenStreetMap extract of Binjiang, which ends
about 180 m north of 南环路 (the last stretch is mapped as 江晖路公铁立交).
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, box
from shapely.ops import substring

from geo.boundaries.build import BuildError, build_boundary
from geo.boundaries.roads import Extension, RoadNetwork, end_ray, extend_end, loose_ends
from geo.crs import METRIC_CRS, from_wgs84, to_metric

X0, Y0 = (float(v[0]) for v in from_wgs84(120.15, 30.18, METRIC_CRS))
RECT = "东至信诚路、南至南环路、西至东信大道、北至江南大道"
BOX = box(0, 0, 1000, 800)
REPO = Path(__file__).resolve().parents[1]
OSM = REPO / "data" / "osm" / "binjiang.osm.pbf"  # the real extract (ODbL), in the repository


def local(geom):
    """Local metres (origin at 120.15 E, 30.18 N) → EPSG:4549."""
    return shapely.transform(geom, lambda xy: xy + np.array([X0, Y0]))


def frame(rows: list[tuple[str, object]]) -> gpd.GeoDataFrame:
    """(name, local LineString or coordinate list) rows → a WGS84 road frame."""
    geoms = [local(g if not isinstance(g, list) else LineString(g)) for _, g in rows]
    gdf = gpd.GeoDataFrame({"name": [n for n, _ in rows]}, geometry=geoms, crs=METRIC_CRS)
    return gdf.to_crs("EPSG:4326")


def pieces(line: LineString, n: int, gap: float) -> list[LineString]:
    """``line`` cut into ``n`` pieces with ``gap`` metres missing at each cut."""
    cuts = np.linspace(0, line.length, n + 1)
    pairs = list(itertools.pairwise(cuts))
    return [substring(line, a, b - (gap if i < n - 1 else 0.0)) for i, (a, b) in enumerate(pairs)]


def metric_area(result) -> float:
    return to_metric(result.polygon).area


def tilted_rect(angle: float, short: float = 0.0) -> list[tuple[str, LineString]]:
    """A quadrilateral whose east side, 信诚路, leans ``angle`` degrees from north and runs from
    100 m past 江南大道 down to ``short`` metres (along itself) before 南环路."""
    t = math.radians(angle)
    direction = np.array([math.sin(t), -math.cos(t)])  # southwards along 信诚路
    top = np.array([1000.0, 800.0]) - direction * 100
    to_south = (100 + 800 / math.cos(t)) - short  # 南环路 is y = 0
    return [
        ("信诚路", LineString([top, top + direction * to_south])),
        ("南环路", LineString([(-100, 0), (2000, 0)])),
        ("东信大道", LineString([(0, -100), (0, 900)])),
        ("江南大道", LineString([(-100, 800), (1200, 800)])),
    ]


# --------------------------------------------------------------------------------------------
# The geometry: extend_end
# --------------------------------------------------------------------------------------------


def test_extend_end_stops_at_the_first_line_it_meets():
    line = LineString([(0, 0), (100, 0)])
    near, far = LineString([(150, -50), (150, 50)]), LineString([(300, -50), (300, 50)])
    out, ext = extend_end(line, False, 500, [("far", far), ("near", near)], road="r")
    assert ext == Extension("r", pytest.approx(50.0), ext.lon, ext.lat, "near")
    assert shapely.get_coordinates(out)[-1] == pytest.approx([150, 0])
    # from the start the ray heads west and meets nothing
    assert extend_end(line, True, 500, [("far", far)]) == (line, None)
    # out of reach
    assert extend_end(line, False, 49.9, [("near", near)])[1] is None


def test_direction_is_robust_to_a_tiny_kinked_final_segment():
    # a road heading east whose last node sits 0.3 m off to the side, 0.2 m on
    line = LineString([(0, 0), (200, 0), (200.2, 0.3)])
    _, direction = end_ray(line, at_start=False)
    assert abs(math.degrees(math.atan2(direction[1], direction[0]))) < 1.0
    target = LineString([(500, -100), (500, 100)])
    _, ext = extend_end(line, False, 400, [("t", target)])
    assert ext.length_m == pytest.approx(299.8, abs=0.5)


def test_loose_ends_touch_nothing():
    road = shapely.MultiLineString(
        [[(0, 0), (100, 0)], [(100, 0), (100, 50)], [(300, 0), (400, 0)]]
    )
    cross = LineString([(400, -10), (400, 10)])
    got = [
        (shapely.get_coordinates(line)[0 if s else -1].tolist())
        for line, s in loose_ends(road, cross)
    ]
    assert sorted(got) == [[0.0, 0.0], [100.0, 50.0], [300.0, 0.0]]


# --------------------------------------------------------------------------------------------
# Building with extend_m
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gap", [50.0, 150.0, 300.0])
@pytest.mark.parametrize("angle", [0.0, 20.0, -35.0])
def test_a_side_that_stops_short_is_extended_to_the_next(gap: float, angle: float):
    full = build_boundary(RECT, frame(tilted_rect(angle)))
    rows = tilted_rect(angle, short=gap)
    res = build_boundary(RECT, frame(rows), extend_m=gap + 5)
    (ext,) = res.extensions
    assert (ext.road, ext.reached) == ("信诚路", "南环路")
    assert ext.length_m == pytest.approx(gap, abs=0.01)
    assert res.area_m2 == pytest.approx(full.area_m2, rel=1e-5)
    assert metric_area(res) == pytest.approx(metric_area(full), rel=1e-5)
    # the new end is on 南环路, reported in WGS84
    end = to_metric(shapely.Point(ext.lon, ext.lat))
    assert shapely.distance(end, local(rows[1][1])) < 0.2


def test_without_extend_m_the_error_suggests_it():
    rows = tilted_rect(20.0, short=150.0)
    with pytest.raises(BuildError) as err:
        build_boundary(RECT, frame(rows))
    msg = str(err.value)
    assert "sides 东 (信诚路) and 南 (南环路) do not meet: the gap is" in msg
    assert "pass --extend-m 150 (any N ≥ 150.0) to extend 信诚路's end along its direction" in msg
    # the straight-line gap is shorter than the way along the road (the road leans 20°)
    gap = float(re.search(r"the gap is ([\d.]+) m", msg).group(1))
    assert gap == pytest.approx(150 * math.cos(math.radians(20)), abs=0.1)
    res = build_boundary(RECT, frame(rows), extend_m=150)
    assert res.extensions[0].length_m == pytest.approx(150, abs=0.01)


def test_a_limit_too_small_says_what_would_do():
    rows = tilted_rect(0.0, short=300.0)
    with pytest.raises(BuildError, match=r"--extend-m 200 is not enough; pass --extend-m 300 "):
        build_boundary(RECT, frame(rows), extend_m=200)
    with pytest.raises(BuildError, match="extend_m must be a number of metres ≥ 0"):
        build_boundary(RECT, frame(rows), extend_m=-1)
    with pytest.raises(BuildError, match="extend_m must be"):
        build_boundary(RECT, frame(rows), extend_m=float("nan"))


def test_road_in_pieces_with_a_kinked_last_node():
    rows = [r for r in tilted_rect(0.0) if r[0] != "信诚路"]
    east = LineString([(1000, 900), (1000, 150.3), (1000.3, 150)])  # last node 0.3 m askew
    rows += [("信诚路", p) for p in pieces(east, 4, 0.4)]
    res = build_boundary(RECT, frame(rows), extend_m=200)
    (ext,) = res.extensions
    assert ext.length_m == pytest.approx(150, abs=0.5)
    assert res.area_m2 == pytest.approx(800_000, rel=2e-4)


def test_a_dual_carriageway_that_stops_short():
    rows = [r for r in tilted_rect(0.0) if r[0] != "江南大道"]
    for dy in (12.0, -12.0):  # 江南大道 in two carriageways, stopping 150 m short of 信诚路
        rows += [
            ("江南大道", p) for p in pieces(LineString([(-100, 800 + dy), (850, 800 + dy)]), 2, 0.3)
        ]
    assert len(RoadNetwork.from_frame(frame(rows)).carriageways["江南大道"]) == 2
    res = build_boundary(RECT, frame(rows), extend_m=200)
    (ext,) = res.extensions
    assert (ext.road, ext.reached) == ("江南大道", "信诚路")
    assert ext.length_m == pytest.approx(150, abs=3)  # the midline ends a sample short
    assert res.area_m2 == pytest.approx(800_000, rel=1e-3)


def test_a_road_that_stops_short_of_a_dual_carriageway_meets_its_near_side():
    rows = [r for r in tilted_rect(0.0, short=150.0) if r[0] != "南环路"]
    for dy in (15.0, -15.0):
        rows.append(("南环路", LineString([(-100, dy), (1200, dy)])))
    res = build_boundary(RECT, frame(rows), extend_m=200)
    (ext,) = res.extensions
    assert ext.reached == "南环路"
    assert ext.length_m == pytest.approx(135, abs=0.01)  # to the northern carriageway …
    assert res.area_m2 == pytest.approx(800_000, rel=1e-4)  # … and on to the midline


def test_two_roads_that_both_stop_short_of_their_corner_run_on_until_they_meet():
    rows = [
        ("信诚路", [(1000, -100), (1000, 700)]),  # 100 m short of the corner
        ("南环路", [(-100, 0), (1100, 0)]),
        ("东信大道", [(0, -100), (0, 900)]),
        ("江南大道", [(-100, 800), (940, 800)]),  # 60 m short of it
    ]
    with pytest.raises(BuildError, match=r"pass --extend-m 100 .* 江南大道's end and 信诚路's end"):
        build_boundary(RECT, frame(rows), extend_m=80)
    res = build_boundary(RECT, frame(rows), extend_m=100)
    got = sorted((e.road, e.reached, round(e.length_m, 1)) for e in res.extensions)
    assert got == [("信诚路", "江南大道", 100.0), ("江南大道", "信诚路", 60.0)]
    assert res.area_m2 == pytest.approx(800_000, rel=1e-5)


def test_an_extension_reaching_an_area_boundary():
    rows = [r for r in tilted_rect(0.0) if r[0] != "江南大道"]
    rows = [("信诚路", [(1000, -100), (1000, 700)]) if n == "信诚路" else (n, g) for n, g in rows]
    areas = gpd.GeoDataFrame(
        {"name": ["汇智"]}, geometry=[local(box(-100, 800, 1200, 1100))], crs=METRIC_CRS
    ).to_crs("EPSG:4326")
    text = "东至信诚路、南至南环路、西至东信大道、北至汇智地界"
    res = build_boundary(text, frame(rows), areas, extend_m=150)
    (ext,) = res.extensions
    assert (ext.road, ext.reached, round(ext.length_m)) == ("信诚路", "汇智地界", 100)
    assert res.area_m2 == pytest.approx(800_000, rel=1e-4)


def test_an_extension_stops_at_the_first_side_it_meets():
    """北至江南大道沿联庄路至汇智地界北: 江南大道 stops 200 m short of 联庄路; run on, it meets
    联庄路 and stops there rather than passing on to 汇智 and 东信大道 beyond."""
    rows = [
        ("信诚路", [(1000, -100), (1000, 900)]),
        ("南环路", [(-100, 0), (1100, 0)]),
        ("东信大道", [(0, -100), (0, 950)]),
        ("江南大道", [(700, 800), (1100, 800)]),
        ("联庄路", [(500, 900), (500, -100)]),
    ]
    areas = gpd.GeoDataFrame(
        {"name": ["汇智"]}, geometry=[local(box(-100, 600, 500, 900))], crs=METRIC_CRS
    ).to_crs("EPSG:4326")
    text = "东至信诚路、南至南环路、西至东信大道、北至江南大道沿联庄路至汇智地界北"
    res = build_boundary(text, frame(rows), areas, extend_m=1000)
    (ext,) = res.extensions
    assert (ext.road, ext.reached) == ("江南大道", "联庄路")
    assert ext.length_m == pytest.approx(200, abs=0.01)
    assert res.area_m2 == pytest.approx(1000 * 600 + 500 * 200, rel=1e-4)


def test_an_end_that_meets_another_side_first_is_not_extended_through_it():
    # 信诚路 stops 300 m short of 南环路, and 东信大道 cuts across its way first
    rows = [
        ("信诚路", [(1000, 900), (1000, 300)]),
        ("南环路", [(-100, 0), (1200, 0)]),
        ("东信大道", [(0, -100), (0, 700), (1100, 150)]),
        ("江南大道", [(-100, 800), (1200, 800)]),
    ]
    with pytest.raises(BuildError, match="would meet 东信大道 first") as err:
        build_boundary(RECT, frame(rows), extend_m=1000)
    assert "extensions" not in str(err.value)


def test_an_error_after_extending_says_what_was_extended():
    swapped = "东至东信大道、南至南环路、西至信诚路、北至江南大道"
    with pytest.raises(
        BuildError, match=r"wrong compass side.*\(after extending 信诚路 by 150.0 m"
    ):
        build_boundary(swapped, frame(tilted_rect(0.0, short=150.0)), extend_m=150)


def test_to_feature_lists_the_extensions():
    res = build_boundary(RECT, frame(tilted_rect(0.0, short=50.0)), extend_m=60)
    (ext,) = res.to_feature()["properties"]["extensions"]
    assert ext["road"] == "信诚路" and ext["reached"] == "南环路" and ext["length_m"] == 50.0
    assert 120.1 < ext["lon"] < 120.2 and 30.1 < ext["lat"] < 30.2
    full = build_boundary(RECT, frame(tilted_rect(0.0)), extend_m=60)
    assert full.extensions == [] and "extensions" not in full.to_feature()["properties"]


@settings(max_examples=25, deadline=None)
@given(
    gap=st.floats(2.0, 400.0),  # (a gap within gap_tolerance_m gets a connector instead)
    slack=st.floats(0.5, 300.0),
    angle=st.floats(-40.0, 40.0),
    n=st.integers(1, 4),
)
def test_any_gap_within_reach_builds_the_full_road_area(gap, slack, angle, n):
    full = build_boundary(RECT, frame(tilted_rect(angle)))
    rows = tilted_rect(angle, short=gap)
    rows = [(name, p) for name, g in rows for p in (pieces(g, n, 0.3) if name == "信诚路" else [g])]
    res = build_boundary(RECT, frame(rows), extend_m=gap + slack)
    (ext,) = res.extensions
    assert ext.length_m == pytest.approx(gap, abs=1.0)
    assert res.area_m2 == pytest.approx(full.area_m2, rel=1e-5)


# --------------------------------------------------------------------------------------------
# Real data: 江晖路 ends short of 南环路 in the OpenStreetMap extract of Binjiang
# --------------------------------------------------------------------------------------------

JIANGHUI = "东至江晖路、南至南环路、西至江淑路、北至聚园路"
JUGONG = "东至聚工路、南至南环路、西至江晖路、北至聚园路"


def _named(lines: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return lines[lines["name"].notna() & (lines["highway"].notna() | lines["waterway"].notna())]


@pytest.fixture(scope="module")
def osm_lines() -> gpd.GeoDataFrame:
    return _named(pyogrio.read_dataframe(OSM, layer="lines"))


@pytest.fixture(scope="module")
def binjiang(osm_lines: gpd.GeoDataFrame) -> RoadNetwork:
    return RoadNetwork.from_frame(osm_lines)


def test_real_road_that_stops_short(binjiang: RoadNetwork, osm_lines: gpd.GeoDataFrame):
    with pytest.raises(BuildError) as err:
        build_boundary(JIANGHUI, binjiang)
    msg = str(err.value)
    assert "sides 东 (江晖路) and 南 (南环路) do not meet: the gap is 186.4 m" in msg
    assert "pass --extend-m 180 (any N ≥ 179.4) to extend 江晖路's end" in msg
    res = build_boundary(JIANGHUI, binjiang, extend_m=180)
    (ext,) = res.extensions
    assert (ext.road, ext.reached) == ("江晖路", "南环路")
    assert ext.length_m == pytest.approx(179.4, abs=0.1)
    assert (ext.lon, ext.lat) == pytest.approx((120.206854, 30.178886), abs=2e-6)
    assert res.area_m2 == pytest.approx(112_377, rel=1e-3)
    # the block on the other side of 江晖路 uses the same extension
    west = build_boundary(JUGONG, binjiang, extend_m=180)
    assert [(e.road, round(e.length_m, 1)) for e in west.extensions] == [("江晖路", 179.4)]
    assert west.area_m2 == pytest.approx(72_945, rel=1e-3)
    assert to_metric(res.polygon.intersection(west.polygon)).area < 1.0
    # OSM maps the missing stretch as the bridge 江晖路公铁立交; named 江晖路, the road reaches
    # 南环路 6 m from where the extension does, and the blocks agree
    bridged = osm_lines.assign(name=osm_lines["name"].replace("江晖路公铁立交", "江晖路"))
    for text, extended in ((JIANGHUI, res), (JUGONG, west)):
        whole = to_metric(build_boundary(text, bridged).polygon)
        got = to_metric(extended.polygon)
        assert got.intersection(whole).area / got.union(whole).area > 0.99


@pytest.mark.parametrize(
    ("text", "road", "reached", "length_m"),
    [
        ("东至西兴路、南至滨康路、西至西陵路、北至善庆庄横河", "善庆庄横河", "西兴路", 196.4),
        ("东至明星路、南至北塘路、西至博奥路、北至建设一路", "北塘路", "明星路", 301.5),
        ("东至江南大道、南至中兴立交桥、西至时代大道、北至平乐街", "平乐街", "江南大道", 173.9),
    ],
)
def test_more_real_sides_that_stop_short(binjiang, text, road, reached, length_m):
    with pytest.raises(BuildError, match=f"pass --extend-m {math.ceil(length_m)} "):
        build_boundary(text, binjiang)
    (ext,) = build_boundary(text, binjiang, extend_m=math.ceil(length_m)).extensions
    assert (ext.road, ext.reached) == (road, reached)
    assert ext.length_m == pytest.approx(length_m, abs=0.1)
