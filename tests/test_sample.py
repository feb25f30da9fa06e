"""Invariants of the sample district (geo.sample): the real Binjiang from the OSM extract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from geo import crs
from geo.boundaries.build import build_boundary
from geo.creditcode import valid_mask
from geo.model import BUILDINGS, COMMUNITIES, GRIDS, OFFICERS, PARKS, ROADS, STREETS, TEAM_ROLES
from geo.sample import ENTERPRISE_COLUMNS, load_spec, make_district, write_district
from geo.settings import SAMPLE_DIR

SPECS = {
    "roads": ROADS,
    "streets": STREETS,
    "communities": COMMUNITIES,
    "grids": GRIDS,
    "parks": PARKS,
    "buildings": BUILDINGS,
}


@pytest.fixture(scope="module")
def d() -> dict[str, pd.DataFrame]:
    return make_district(1)


@pytest.fixture(scope="module")
def metric(d) -> dict[str, np.ndarray]:
    """Polygon layers in EPSG:4549, as arrays of geometries."""
    return {
        k: d[k].to_crs(crs.METRIC_CRS).geometry.to_numpy()
        for k in ("streets", "communities", "grids", "parks", "buildings", "areas")
    }


@pytest.fixture(scope="module")
def points(d) -> np.ndarray:
    """Enterprise points in WGS84 (GCJ-02 rows converted back)."""
    e = d["enterprises"]
    lon, lat = e["lon"].to_numpy().copy(), e["lat"].to_numpy().copy()
    g = (e["crs"] == "gcj02").to_numpy()
    lon[g], lat[g] = crs.to_wgs84(lon[g], lat[g], "gcj02")
    return shapely.points(lon, lat)


def by_id(df: pd.DataFrame) -> dict[str, int]:
    return {k: i for i, k in enumerate(df["id"])}


def test_schema(d):
    for layer, spec in SPECS.items():
        assert list(d[layer].columns) == [*spec.field_names, "geometry"], layer
        assert d[layer].crs.to_epsg() == 4326
        assert d[layer]["id"].is_unique
    assert list(d["enterprises"].columns) == list(ENTERPRISE_COLUMNS)
    assert list(d["officers"].columns) == list(OFFICERS.field_names)
    assert list(d["areas"].columns) == ["id", "name", "geometry"]
    assert list(d["areas"]["name"]) == ["汇智地", "白马湖"]


def test_geometries_valid(d):
    for layer in (*SPECS, "areas"):
        assert shapely.is_valid(d[layer].geometry.to_numpy()).all(), layer


def test_roads_as_data_comes(d):
    """OSM's named ways: every road in several pieces, 江南大道 as two carriageways."""
    roads = d["roads"]
    names = set(roads["name"])
    assert roads["id"].str.fullmatch(r"W\d+").all()
    for name in (
        "江南大道",
        "信诚路",
        "南环路",
        "东信大道",
        "伟业路",
        "火炬大道",
        "诚业路",
        "建业路",
        "时代大道",
        "长河路",
        "滨安路",
        "阡陌路",
        "滨盛路",
        "江陵路",
    ):
        assert name in names
        assert (roads["name"] == name).sum() >= 2, name
    assert "联庄路" not in names  # the government's text names it; OSM does not (yet)
    assert "" not in names
    classes = {"expressway", "arterial", "secondary", "branch", "river", "canal"}
    assert set(roads["class"]) == classes
    assert {"钱塘江", "北塘河"} <= set(roads.loc[roads["class"].isin(["river", "canal"]), "name"])
    jn = d["roads"][d["roads"]["name"] == "江南大道"].to_crs(crs.METRIC_CRS).geometry
    probe = shapely.Point(jn.iloc[0].interpolate(0.5, normalized=True))
    dists = sorted(jn.distance(probe))
    assert dists[0] < 1e-6 and 15 < dists[1] < 30  # two carriageways ~20 m apart


def test_streets_tile_district(metric):
    streets = metric["streets"]
    district = shapely.union_all(streets)
    assert district.geom_type == "Polygon"
    assert sum(shapely.area(streets)) == pytest.approx(district.area, abs=1.0)
    assert 72.0e6 < district.area < 72.5e6  # the real 街道 of Binjiang: 72.25 km²


def test_communities_inside_their_street(d, metric):
    streets = by_id(d["streets"])
    for geom, sid in zip(metric["communities"], d["communities"]["street_id"], strict=True):
        assert shapely.difference(geom, metric["streets"][streets[sid]]).area < 1.0
    assert set(d["communities"]["type"]) == {"科技创新型", "文化创意型", "智能制造型", "商务楼宇型"}
    torch = d["communities"].set_index("name").loc["火炬产业社区"]
    assert torch["four_to"] == "东至信诚路、南至南环路、西至东信大道、北至江南大道"
    assert torch["mode"] == "street"
    assert d["communities"].set_index("name").loc["物联网产业社区", "mode"] == "platform"


def test_areas(d, metric):
    names = d["communities"]["name"].tolist()
    torch = metric["communities"][names.index("火炬产业社区")]
    iot = metric["communities"][names.index("物联网产业社区")]
    assert 1.55e6 < torch.area < 1.65e6  # the report: ~1.5 km²
    assert 1.6e6 < iot.area < 1.85e6  # the report: core area 1.78 km²
    assert shapely.contains(iot, gpd_to_metric(shapely.points([[120.2159, 30.2132]]))[0])
    huizhi = metric["areas"][d["areas"]["name"].tolist().index("汇智地")]
    assert shapely.intersection(torch, huizhi).area > 0.9 * huizhi.area  # a site inside Torch


def test_communities_rebuild_from_their_four_to(d):
    """Every community is what its four-to text builds over the road layer (trimmed to its
    street where the real street border cuts a corner off)."""
    streets = d["streets"].set_index("id").geometry
    for row in d["communities"].itertuples():
        built = build_boundary(row.four_to, d["roads"]).polygon
        built = gpd_to_metric(np.array([built.intersection(streets[row.street_id])]))[0]
        mine = gpd_to_metric(np.array([row.geometry]))[0]
        iou = shapely.intersection(built, mine).area / shapely.union(built, mine).area
        assert iou > 0.9999, row.id


def test_communities_share_an_edge(metric):
    c = metric["communities"]
    shared = [
        shapely.intersection(c[i], c[j]).length for i in range(len(c)) for j in range(i + 1, len(c))
    ]
    assert max(shared) > 500
    assert sum(shapely.area(c)) == pytest.approx(shapely.union_all(c).area, abs=1.0)


def test_grids_tile_communities(d, metric):
    grids = d["grids"]
    for k, cid in enumerate(d["communities"]["id"]):
        mine = metric["grids"][(grids["community_id"] == cid).to_numpy()]
        want = next(c["grids"] for c in load_spec()["communities"] if c["id"] == cid)
        assert len(mine) == want or (cid == "C04" and len(mine) == 1)  # C04: one street block
        union = shapely.union_all(mine)
        assert shapely.symmetric_difference(union, metric["communities"][k]).area < 1.0
        assert sum(shapely.area(mine)) - union.area < 1.0  # no overlaps
        ids = grids.loc[grids["community_id"] == cid, "id"].tolist()
        assert ids == [f"{cid}-G{i:02d}" for i in range(1, len(ids) + 1)]


def test_codes(d):
    comms = d["communities"].set_index("id")
    street_code = d["streets"].set_index("id")["code"]
    for g in d["grids"].itertuples():
        c = comms.loc[g.community_id]
        assert g.code[:6] == "330108" and len(g.code) == 15
        assert g.code[6:12] == street_code[c.street_id] + c.code
    micro = pd.concat([d["parks"]["code"], d["buildings"]["code"][d["buildings"]["code"] != ""]])
    assert micro.str.fullmatch(r"\d{18}").all() and micro.is_unique
    assert d["grids"]["code"].is_unique
    grid_code = d["grids"].set_index("id")["code"]
    assert (d["parks"]["code"].str[:15] == d["parks"]["grid_id"].map(grid_code)).all()
    in_park = d["buildings"]["park_id"] != ""
    assert (d["buildings"].loc[in_park, "code"] == "").all()
    for cid, sub in d["communities"].groupby("street_id"):
        assert sub["code"].is_unique, cid


def test_parks_and_buildings(d, metric):
    grids, parks, bldgs = metric["grids"], metric["parks"], metric["buildings"]
    gidx, pidx = by_id(d["grids"]), by_id(d["parks"])
    tree = shapely.STRtree(grids)
    for i, gid in enumerate(d["parks"]["grid_id"]):
        hits = tree.query(parks[i], predicate="intersects")
        assert [gidx[gid]] == [h for h in hits if shapely.intersection(grids[h], parks[i]).area > 0]
        assert shapely.contains(grids[gidx[gid]], parks[i])
    ptree = shapely.STRtree(parks)
    for i, row in enumerate(d["buildings"].itertuples()):
        assert shapely.contains(grids[gidx[row.grid_id]], bldgs[i])
        hits = ptree.query(bldgs[i], predicate="intersects")  # real footprints may abut a site
        hits = [h for h in hits if shapely.intersection(parks[h], bldgs[i]).area > 0.01]
        if row.park_id:
            assert list(hits) == [pidx[row.park_id]]
            assert shapely.contains(parks[pidx[row.park_id]], bldgs[i])
        else:
            assert len(hits) == 0
    assert set(d["buildings"]["kind"]) == {"enterprise", "mixed-use"}
    share = (d["buildings"]["kind"] == "enterprise").mean()
    assert 0.38 < share < 0.48  # OSM tags many as apartments/residential: mixed-use


def test_torch_and_iot_counts(d, metric, points):
    names = d["communities"]["name"].tolist()
    torch = metric["communities"][names.index("火炬产业社区")]
    iot = metric["communities"][names.index("物联网产业社区")]
    grid_comm = d["grids"]["community_id"]
    torch_grids = set(d["grids"]["id"][grid_comm == "C01"])
    assert d["parks"]["grid_id"].isin(torch_grids).sum() == 23  # the extract's named sites
    pts = gpd_to_metric(points)
    assert shapely.contains(torch, pts).sum() == 1858
    assert shapely.covers(torch, pts).sum() == 1858
    assert 4200 <= shapely.contains(iot, pts).sum() < 4300


def gpd_to_metric(geoms: np.ndarray) -> np.ndarray:
    import geopandas as gpd

    return gpd.GeoSeries(geoms, crs=4326).to_crs(crs.METRIC_CRS).to_numpy()


def test_enterprises(d, points):
    e = d["enterprises"]
    assert 11_500 < len(e) < 12_500 and e["id"].is_unique and e["credit_code"].is_unique
    valid = valid_mask(e["credit_code"]).mean()
    assert 0.99 < valid < 1.0
    assert e["credit_code"].str[2:8].eq("330108").all()
    assert e["name"].str.startswith("杭州海康").sum() >= 5
    assert (e["employees"] >= 1).all() and e["employees"].median() < e["employees"].mean()
    communities = d["communities"].geometry.to_numpy()
    inside = shapely.covers(communities[:, None], points[None, :]).any(axis=0)
    assert 0.02 < 1 - inside.mean() < 0.04
    district = shapely.union_all(d["streets"].geometry.to_numpy())
    assert shapely.covers(district, points).all()


def test_on_edge_enterprises(d):
    e = d["enterprises"]
    edge = e[e["crs"] == "wgs84"]
    assert 8 <= len(edge) <= 12
    pts = shapely.points(edge["lon"].to_numpy(), edge["lat"].to_numpy())
    grids = d["grids"].geometry.to_numpy()
    comms = d["communities"].geometry.to_numpy()
    on_grid = shapely.touches(grids[:, None], pts[None, :]).sum(axis=0)
    assert (on_grid == 2).all()
    on_comm = shapely.touches(comms[:, None], pts[None, :]).sum(axis=0)
    assert (on_comm == 2).sum() == 4 and (on_comm == 0).sum() == 6
    assert not shapely.covers(comms[0], pts).any()  # none on Torch


def test_officers(d):
    o = d["officers"]
    assert len(o) == 453 and o["party_member"].sum() == 79 and o["id"].is_unique
    assert o["phone"].str.fullmatch(r"1\d{10}").all() and o["phone"].is_unique
    b = d["buildings"].set_index("id")
    for row in o.itertuples():
        for bid in row.building_ids.split(";"):
            assert b.loc[bid, "park_id"] == ""
            assert row.role in TEAM_ROLES[b.loc[bid, "kind"]]


def test_deterministic(d, tmp_path):
    again = make_district(1)
    for k in d:
        pd.testing.assert_frame_equal(pd.DataFrame(d[k]), pd.DataFrame(again[k]))
    a = write_district(tmp_path / "a", d)
    b = write_district(tmp_path / "b", again)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_scale_1_is_the_committed_sample(d, tmp_path):
    """``python -m geo.sample -o DIR`` writes geo/data/sample byte for byte."""
    for path in write_district(tmp_path, d):
        assert path.read_bytes() == (SAMPLE_DIR / path.name).read_bytes(), path.name
