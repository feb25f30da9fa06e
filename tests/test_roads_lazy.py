"""The road network makes a road's centerline when it is first asked for, not all at start:
a city's network is ready at once and an edit pays only for the roads its text names."""

from __future__ import annotations

import geopandas as gpd
import shapely
from shapely.geometry import LineString

from geo.boundaries.roads import RoadNetwork


def _frame() -> gpd.GeoDataFrame:
    # 甲路 in two pieces 0.5 m apart (joined), 乙路 drawn twice 20 m apart (a dual carriageway),
    # 丙路 plain, one unnamed road (dropped)
    m = 1e-5  # about a metre in degrees here
    lines = {
        "甲路": [
            LineString([(120.0, 30.0), (120.0 + 100 * m, 30.0)]),
            LineString([(120.0 + 100.5 * m, 30.0), (120.0 + 200 * m, 30.0)]),
        ],
        "乙路": [
            LineString([(120.0, 30.001), (120.0 + 300 * m, 30.001)]),
            LineString([(120.0, 30.001 + 20 * m), (120.0 + 300 * m, 30.001 + 20 * m)]),
        ],
        "丙路": [LineString([(120.0, 30.002), (120.0 + 50 * m, 30.002)])],
        "": [LineString([(120.0, 30.003), (120.0 + 50 * m, 30.003)])],
    }
    names = [n for n, parts in lines.items() for _ in parts]
    geoms = [g for parts in lines.values() for g in parts]
    return gpd.GeoDataFrame({"name": names}, geometry=geoms, crs=4326)


def test_centerlines_are_made_on_first_use() -> None:
    net = RoadNetwork.from_frame(_frame())
    assert net.names() == sorted(["甲路", "乙路", "丙路"])
    assert "甲路" in net and "丁路" not in net and net.get("丁路") is None
    assert net.lines.made == 0  # nothing merged yet
    line = net.get("甲路")
    assert net.lines.made == 1
    assert line.geom_type == "LineString"  # the 0.5 m gap bridged
    assert abs(line.length - 200 * 0.96) < 15  # about 200 m (1e-5° of longitude ≈ 0.96 m)
    assert net.get("甲路") is line  # made once, kept


def test_carriageways_come_with_their_road() -> None:
    net = RoadNetwork.from_frame(_frame())
    assert net.carriageways.get("丙路", []) == []
    strands = net.carriageways["乙路"]  # made on this first use
    assert len(strands) == 2
    mid = net.lines["乙路"]
    assert shapely.get_num_geometries(mid) == 1  # collapsed to its midline
    assert set(net.carriageways) == {"乙路"}
    assert net.lines.made == 3  # listing the dual roads made every road
