"""Four-to spec + roads → polygon: purpose-made networks for each awkward case, and the sample.

Networks are drawn in EPSG:4549 metres around (120.15 E, 30.18 N) and handed to the builder
in WGS84, as road data comes.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Polygon, box
from shapely.ops import substring

from geo.boundaries.build import BuildError, BuildResult, build_boundary
from geo.boundaries.fourto import Ref, parse_four_to
from geo.boundaries.roads import RoadNetwork
from geo.crs import METRIC_CRS, from_wgs84, to_metric
from geo.settings import SAMPLE_DIR as SAMPLE

X0, Y0 = (float(v[0]) for v in from_wgs84(120.15, 30.18, METRIC_CRS))
RECT = "东至信诚路、南至南环路、西至东信大道、北至江南大道"
BOX = box(0, 0, 1000, 800)


def local(geom):
    """Local metres (origin at 120.15 E, 30.18 N) → EPSG:4549."""
    return shapely.transform(geom, lambda xy: xy + np.array([X0, Y0]))


def frame(rows: list[tuple[str | None, object]], cls: str = "arterial") -> gpd.GeoDataFrame:
    """(name, local LineString) rows → a WGS84 road frame."""
    geoms = [local(g if not isinstance(g, list) else LineString(g)) for _, g in rows]
    gdf = gpd.GeoDataFrame(
        {"name": [n for n, _ in rows], "class": cls}, geometry=geoms, crs=METRIC_CRS
    )
    return gdf.to_crs("EPSG:4326")


def area_frame(rows: list[tuple[str, Polygon]]) -> gpd.GeoDataFrame:
    gdf = gpd.GeoDataFrame(
        {"name": [n for n, _ in rows]}, geometry=[local(p) for _, p in rows], crs=METRIC_CRS
    )
    return gdf.to_crs("EPSG:4326")


def pieces(line: LineString, n: int, gap: float) -> list[LineString]:
    """``line`` cut into ``n`` pieces with ``gap`` metres missing at each cut."""
    cuts = np.linspace(0, line.length, n + 1)
    pairs = list(itertools.pairwise(cuts))
    return [substring(line, a, b - (gap if i < n - 1 else 0.0)) for i, (a, b) in enumerate(pairs)]


def iou(result: BuildResult, expected_local) -> float:
    got = to_metric(result.polygon)
    want = local(expected_local)
    return got.intersection(want).area / got.union(want).area


def rect_roads(over: float = 0.0) -> list[tuple[str, list]]:
    """The four sides of BOX, each running ``over`` metres past both corners."""
    return [
        ("信诚路", [(1000, -over), (1000, 800 + over)]),
        ("南环路", [(-over, 0), (1000 + over, 0)]),
        ("东信大道", [(0, -over), (0, 800 + over)]),
        ("江南大道", [(-over, 800), (1000 + over, 800)]),
    ]


# --------------------------------------------------------------------------------------------
# Geometry cases
# --------------------------------------------------------------------------------------------


def test_clean_rectangle():
    res = build_boundary(RECT, frame(rect_roads()))
    assert iou(res, BOX) > 0.9999
    assert res.polygon.geom_type == "Polygon"
    assert res.area_m2 == pytest.approx(800_000, rel=1e-4)
    assert res.sides["east"].roads == ["信诚路"]
    assert res.sides["east"].length_m == pytest.approx(800, abs=1)
    assert res.sides["north"].length_m == pytest.approx(1000, abs=1)
    lon, lat = res.polygon.exterior.coords[0]
    assert 120.1 < lon < 120.2 and 30.1 < lat < 30.3  # WGS84 out


def test_feature_is_geojson():
    res = build_boundary(parse_four_to(RECT), frame(rect_roads(40)))
    feat = json.loads(json.dumps(res.to_feature()))
    assert feat["type"] == "Feature" and feat["geometry"]["type"] == "Polygon"
    assert feat["properties"]["area_m2"] == pytest.approx(800_000, rel=1e-4)
    assert set(feat["properties"]["sides"]) == {"east", "south", "west", "north"}
    assert feat["properties"]["sides"]["west"] == {"roads": ["东信大道"], "length_m": 800.0}
    ring = shapely.geometry.shape(feat["geometry"]).exterior
    assert ring.is_ccw  # RFC 7946 shells are counter-clockwise


def test_roads_in_pieces_with_gaps():
    rows = []
    for name, coords in rect_roads(60):
        rows += [(name, p) for p in pieces(LineString(coords), 4, 0.5)]
    # and a junction gap: 南环路 stops 0.5 m short of 信诚路 instead of crossing it
    rows = [r for r in rows if r[0] != "南环路"]
    rows += [("南环路", p) for p in pieces(LineString([(-60, 0), (999.5, 0)]), 3, 0.5)]
    net = RoadNetwork.from_frame(frame(rows))
    assert net.get("信诚路").geom_type == "LineString"
    assert net.get("信诚路").length == pytest.approx(920, abs=0.1)
    res = build_boundary(RECT, frame(rows))
    assert iou(res, BOX) > 0.9999
    with pytest.raises(BuildError, match="do not meet"):
        build_boundary(RECT, frame(rows), gap_tolerance_m=0.2)


@pytest.mark.parametrize("t_junction", [False, True])
def test_dual_carriageway_north(t_junction: bool):
    rows = [r for r in rect_roads(100) if r[0] != "江南大道"]
    if t_junction:  # east and west roads stop at the near (southern) carriageway
        rows = [
            ("信诚路", [(1000, -100), (1000, 788)]),
            rows[1],
            ("东信大道", [(0, -100), (0, 788)]),
        ]
    for dy in (12.0, -12.0):
        line = LineString([(-150, 800 + dy), (1150, 800 + dy)])
        rows += [("江南大道", p) for p in pieces(line, 3, 0.3)]
    net = RoadNetwork.from_frame(frame(rows))
    mid = net.get("江南大道")
    assert mid.geom_type == "LineString"
    ys = shapely.get_coordinates(mid)[:, 1] - Y0
    assert np.allclose(ys, 800, atol=0.3)
    assert len(net.carriageways["江南大道"]) == 2
    res = build_boundary(RECT, frame(rows))
    assert iou(res, BOX) >= 0.99
    assert res.sides["north"].length_m == pytest.approx(1000, abs=2)


def test_overshooting_roads():
    rows = [
        ("信诚路", [(1000, -200), (1000, 850)]),
        ("南环路", [(-50, 0), (1180, 0)]),
        ("东信大道", [(0, -120), (0, 990)]),
        ("江南大道", [(-75, 800), (1050, 800)]),
    ]
    res = build_boundary(RECT, frame(rows))
    assert iou(res, BOX) > 0.9999


def test_interior_roads_do_not_cut():
    rows = [
        *rect_roads(80),
        (None, [(100, 100), (900, 700)]),  # unnamed, inside
        ("", [(-200, 400), (1200, 450)]),  # unnamed, right through
        ("伟业路", [(500, -300), (520, 1100)]),  # another named road, right through
        ("滨康路", [(200, 300), (700, 300)]),  # named, inside only
    ]
    res = build_boundary(RECT, frame(rows))
    assert iou(res, BOX) > 0.9999
    assert res.polygon.geom_type == "Polygon" and len(res.polygon.interiors) == 0


TORCH_TEXT = "东至信诚路、南至南环路、西至东信大道、北至江南大道沿联庄路至汇智地界北"


def test_chained_north_side_with_area():
    rows = [
        ("信诚路", [(1000, -100), (1000, 900)]),
        ("南环路", [(-100, 0), (1100, 0)]),
        ("东信大道", [(0, -100), (0, 950)]),
        ("江南大道", [(400, 800), (1100, 800)]),
        ("联庄路", [(500, 900), (500, -100)]),  # runs on through the area to 南环路 and past
    ]
    huizhi = box(-100, 600, 500, 900)  # north of the boundary, east edge on 联庄路
    areas = area_frame([("汇智", huizhi)])
    res = build_boundary(TORCH_TEXT, frame(rows), areas)
    want = Polygon([(0, 0), (1000, 0), (1000, 800), (500, 800), (500, 600), (0, 600)])
    assert iou(res, want) > 0.9999
    assert res.sides["north"].roads == ["江南大道", "联庄路", "汇智地界"]
    assert res.sides["north"].length_m == pytest.approx(500 + 200 + 500, abs=1)
    # a qualifier on the inner side puts the area inside the boundary
    inside = build_boundary(TORCH_TEXT.replace("地界北", "地界南"), frame(rows), areas)
    want_inside = Polygon([(0, 0), (1000, 0), (1000, 800), (500, 800), (500, 900), (0, 900)])
    assert iou(inside, want_inside) > 0.9999


def _faces_holding(lines, seeds) -> Polygon:
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(shapely.union_all(lines))))
    hit = [f for f in faces if any(f.contains(shapely.Point(s)) for s in seeds)]
    return shapely.union_all(hit)


def test_torch_like_irregular_quadrilateral():
    lines = {
        "信诚路": LineString([(2000, -300), (2060, 1500)]),
        "南环路": LineString([(-300, -60), (900, 0), (2200, 40)]),
        "东信大道": LineString([(-200, -300), (700, 1300)]),  # the diagonal west side
        "江南大道": LineString([(300, 1050), (1200, 1150), (2300, 1260)]),
        "联庄路": LineString([(1200, 1300), (1150, 400), (1100, -200)]),
    }
    edge = LineString([(300, 780), (1250, 780)])  # 汇智's southern boundary line
    huizhi = _faces_holding([*lines.values(), edge], [(700, 950)])
    want = _faces_holding([*lines.values(), edge], [(1500, 500), (500, 400)])
    rows = []
    for name, line in lines.items():
        rows += [(name, p) for p in pieces(line, 3, 0.4)]
    res = build_boundary(TORCH_TEXT, frame(rows), area_frame([("汇智", huizhi)]))
    assert iou(res, want) > 0.999
    assert res.area_m2 == pytest.approx(want.area, rel=1e-3)
    assert res.sides["west"].roads == ["东信大道"]
    assert sum(s.length_m for s in res.sides.values()) == pytest.approx(
        want.exterior.length, rel=1e-3
    )


@settings(max_examples=20, deadline=None)
@given(
    w=st.floats(300, 2500),
    h=st.floats(300, 2500),
    over=st.floats(0, 200),
    gap=st.floats(0.1, 0.8),
    n=st.integers(1, 5),
)
def test_rectangles_any_size_pieces_and_overshoot(w, h, over, gap, n):
    coords = {
        "信诚路": [(w, -over), (w, h + over)],
        "南环路": [(-over, 0), (w + over, 0)],
        "东信大道": [(0, -over), (0, h + over)],
        "江南大道": [(-over, h), (w + over, h)],
    }
    rows = [(k, p) for k, c in coords.items() for p in pieces(LineString(c), n, gap)]
    res = build_boundary(RECT, frame(rows))
    assert iou(res, box(0, 0, w, h)) > 0.999


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_suggestions_are_pinyin_aware():
    net = RoadNetwork.from_frame(frame([*rect_roads(), ("诚业路", [(300, 0), (300, 800)])]))
    assert net.suggest("jiangnan")[0] == "江南大道"
    assert net.suggest("xincheng lu")[0] == "信诚路"
    assert net.suggest("信成路")[0] == "信诚路"
    assert net.suggest("Dongxin Dadao")[0] == "东信大道"
    assert set(net.names()) == {"信诚路", "南环路", "东信大道", "江南大道", "诚业路"}


def test_unknown_road_names_suggestions():
    spec = parse_four_to(RECT)
    north = dataclasses.replace(spec.sides["north"], chain=(Ref("jiangnan", "road"),))
    spec = dataclasses.replace(spec, sides={**spec.sides, "north": north})
    with pytest.raises(BuildError, match=r'unknown road "jiangnan" \(side 北\).*江南大道'):
        build_boundary(spec, frame(rect_roads()))
    with pytest.raises(BuildError, match=r'unknown road "信成路".*did you mean 信诚路'):
        build_boundary(RECT.replace("信诚路", "信成路"), frame(rect_roads()))


def test_unknown_area():
    rows = [*rect_roads(50), ("联庄路", [(500, 900), (500, -100)])]
    areas = area_frame([("汇智", box(-100, 600, 500, 900))])
    with pytest.raises(BuildError, match=r'unknown area "汇金".*known areas: 汇智'):
        build_boundary(TORCH_TEXT.replace("汇智", "汇金"), frame(rows), areas)
    with pytest.raises(BuildError, match="unknown area"):
        build_boundary(TORCH_TEXT, frame(rows))


def test_sides_that_do_not_meet():
    rows = [r for r in rect_roads(50) if r[0] != "信诚路"]
    rows.append(("信诚路", [(1000, 30), (1000, 850)]))  # stops 30 m short of 南环路
    with pytest.raises(BuildError) as err:
        build_boundary(RECT, frame(rows))
    msg = str(err.value)
    assert "sides 东 (信诚路) and 南 (南环路) do not meet" in msg
    assert "30.0 m" in msg
    lons = [float(v) for v in re.findall(r"\((120\.\d+), 30\.\d+\)", msg)]
    assert len(lons) == 2 and all(abs(lon - lons[0]) < 1e-4 for lon in lons)


def test_side_on_the_wrong_compass_side():
    swapped = "东至东信大道、南至南环路、西至信诚路、北至江南大道"
    with pytest.raises(BuildError, match=r"wrong compass side.*side 东 \(东信大道\) lies west"):
        build_boundary(swapped, frame(rect_roads(50)))
    with pytest.raises(BuildError, match="swapped"):
        build_boundary(swapped, frame(rect_roads(50)))


def test_ambiguous_enclosure():
    rows = [
        ("信诚路", [(1000, -100), (1000, 1600)]),
        ("东信大道", [(0, -100), (0, 1600)]),
        ("南环路", [(-100, 0), (1100, 0)]),
        ("江南大道", [(-100, 500), (1100, 500)]),
        ("南环路", [(-100, 1000), (1100, 1000)]),  # the same two names again, further north
        ("江南大道", [(-100, 1500), (1100, 1500)]),
    ]
    with pytest.raises(BuildError, match=r"ambiguous enclosure: 2 separate areas"):
        build_boundary(RECT, frame(rows))


# --------------------------------------------------------------------------------------------
# The sample district
# --------------------------------------------------------------------------------------------

_SAMPLE_FILES = [SAMPLE / f for f in ("communities.geojson", "roads.geojson", "areas.geojson")]


def test_every_sample_community_rebuilds_from_its_four_to():
    communities = gpd.read_file(_SAMPLE_FILES[0])
    net = RoadNetwork.from_frame(gpd.read_file(_SAMPLE_FILES[1]))
    areas = gpd.read_file(_SAMPLE_FILES[2])
    assert len(communities) > 0
    scores = {}
    for row in communities.itertuples():
        res = build_boundary(row.four_to, net, areas)
        got, want = to_metric(res.polygon), to_metric(row.geometry)
        scores[row.id] = got.intersection(want).area / got.union(want).area
    assert min(scores.values()) >= 0.99, scores
