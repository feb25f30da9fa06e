"""Coverage figures, checked against an independent recount from the layers (geopandas sjoin
and plain pandas, not geo.grids.coverage), plus overlaps/gaps on a doctored district."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.affinity import translate

from geo.atlas import Atlas
from geo.grids import coverage as cov
from geo.model import TEAM_ROLES
from geo.store.base import Snapshot

METRIC = "EPSG:4549"


# -- the independent recount -----------------------------------------------------------------
def owner_by_sjoin(points: gpd.GeoDataFrame, polygons: gpd.GeoDataFrame) -> pd.Series:
    """Polygon id owning each point: interior or boundary, smallest id on ties (the rule)."""
    hits = gpd.sjoin(points[["id", "geometry"]], polygons[["id", "geometry"]].rename(
        columns={"id": "owner"}), predicate="intersects", how="inner")  # fmt: skip
    first = hits.sort_values("owner").drop_duplicates("id")
    return first.set_index("id")["owner"].reindex(points["id"])


@pytest.fixture(scope="module")
def layers(atlas):
    t = atlas.tables
    ent = t["enterprises"]
    b = t["buildings"]
    loose = b[b["park_id"].fillna("") == ""]
    micro = pd.concat([t["parks"][["id", "geometry"]], loose[["id", "geometry"]]])
    micro = gpd.GeoDataFrame(micro, crs=ent.crs)
    comm = owner_by_sjoin(ent, t["communities"])
    grid_of_comm = t["grids"].set_index("id")["community_id"]
    grid = owner_by_sjoin(ent, t["grids"])
    # a grid counts only inside the community that owns the point (the atlas' constraint)
    grid = grid.where(grid.map(grid_of_comm).to_numpy() == comm.to_numpy())
    return {"comm": comm, "grid": grid, "micro": owner_by_sjoin(ent, micro), "t": t}


def team_recount(t) -> pd.DataFrame:
    """Per building outside parks: the roles held, by plain pandas."""
    o = t["officers"].assign(b=t["officers"]["building_ids"].str.split(";")).explode("b")
    o = o[o["b"].fillna("") != ""]
    held = o.groupby("b")["role"].agg(set)
    b = t["buildings"]
    b = b[b["park_id"].fillna("") == ""].set_index("id")
    need = b["kind"].map(lambda k: set(TEAM_ROLES[k]))
    have = held.reindex(b.index).apply(lambda v: v if isinstance(v, set) else set())
    return pd.DataFrame(
        {"grid_id": b["grid_id"], "complete": [n <= h for n, h in zip(need, have, strict=True)]}
    )


# -- agreement with the recount ----------------------------------------------------------------
def test_district_enterprises_agree_with_sjoin(atlas, layers) -> None:
    r = cov.coverage(atlas, "district")
    ent = r["enterprises"]
    assert ent["total"] == len(layers["t"]["enterprises"]) == 12_004
    assert ent["outside_communities"]["total"] == int(layers["comm"].isna().sum()) == 358
    assert ent["outside_communities"]["outside"] == 358  # every sample row has coordinates
    assert ent["outside_communities"]["no_coordinates"] == 0
    assert ent["outside_communities"]["invalid"] == 0
    assert ent["assigned_microgrid"] == int(layers["micro"].notna().sum())
    in_grid_only = layers["grid"].notna() & layers["micro"].isna()
    assert ent["in_grid_outside_microgrids"] == int(in_grid_only.sum())
    invalid = int((~layers["t"]["enterprises"]["credit_code_valid"].astype(bool)).sum())
    assert ent["credit_code_invalid"] == invalid  # counted, but not as a location reason


def test_community_per_grid_breakdown_agrees(atlas, layers) -> None:
    r = cov.coverage(atlas, "community", "C01")
    assert r["enterprises"]["total"] == int((layers["comm"] == "C01").sum()) == 1858
    counts = layers["grid"][layers["comm"] == "C01"].value_counts()
    got = {row["id"]: row["enterprises"] for row in r["breakdown"]}
    assert got == {g: int(counts.get(g, 0)) for g in got}
    assert [row["id"] for row in r["breakdown"]] == sorted(
        layers["t"]["grids"].query("community_id == 'C01'")["id"]
    )


def test_every_community_total_agrees(atlas, layers) -> None:
    for cid in layers["t"]["communities"]["id"]:
        r = cov.coverage(atlas, "community", cid)
        assert r["enterprises"]["total"] == int((layers["comm"] == cid).sum()), cid


def test_areas_agree_with_geopandas(atlas) -> None:
    t = atlas.tables
    comm = t["communities"].to_crs(METRIC).set_index("id")
    grids = t["grids"].to_crs(METRIC)
    r = cov.coverage(atlas, "community", "C01")
    assert r["area_m2"] == pytest.approx(comm.loc["C01"].geometry.area, rel=1e-6)
    mine = grids[grids["community_id"] == "C01"]
    assert r["children"]["area_m2"] == pytest.approx(mine.area.sum(), rel=1e-6)
    assert r["coverage_ratio"] == pytest.approx(1.0, abs=1e-4)  # grids tile their community
    assert r["overlaps"]["count"] == 0 and r["gaps"]["count"] == 0
    district = cov.coverage(atlas, "district")
    assert district["area_m2"] == pytest.approx(t["streets"].to_crs(METRIC).area.sum(), rel=1e-6)
    assert district["area_m2"] / 1e6 == pytest.approx(72.25, abs=0.1)  # the README's figure


def test_buildings_and_officers_agree_with_pandas(atlas) -> None:
    t = atlas.tables
    teams = team_recount(t)
    grids = t["grids"].set_index("id")["community_id"]
    r = cov.coverage(atlas, "district")
    assert r["buildings"]["total"] == len(teams) == 791
    assert r["buildings"]["complete_team"] == int(teams["complete"].sum())
    assert r["buildings"]["incomplete_team"] == len(r["buildings"]["missing"])
    assert r["officers"]["total"] == 453
    assert r["officers"]["party_members"] == 79
    assert r["officers"]["party_ratio"] == pytest.approx(0.174, abs=1e-3)  # 17.4 %

    c01 = cov.coverage(atlas, "community", "C01")
    in_c01 = teams[teams["grid_id"].map(grids) == "C01"]
    assert c01["buildings"]["total"] == len(in_c01)
    assert c01["buildings"]["complete_team"] == int(in_c01["complete"].sum())
    o = t["officers"].assign(b=t["officers"]["building_ids"].str.split(";")).explode("b")
    bgrid = t["buildings"].set_index("id")["grid_id"]
    serving = o[o["b"].map(bgrid).map(grids) == "C01"].drop_duplicates("id")
    assert c01["officers"]["total"] == len(serving)
    assert c01["officers"]["party_members"] == int(serving["party_member"].sum())


def test_missing_roles_name_building_and_role(atlas) -> None:
    r = cov.coverage(atlas, "district")
    missing = r["buildings"]["missing"]
    assert missing, "the sample leaves about 3 % of role slots unfilled"
    b = atlas.tables["buildings"].set_index("id")
    for item in missing:
        assert item["roles"]
        assert set(item["roles"]) <= set(TEAM_ROLES[b.loc[item["building_id"], "kind"]])


def test_grid_children_are_microgrids(atlas, layers) -> None:
    r = cov.coverage(atlas, "grid", "C01-G01")
    assert r["child_level"] == "microgrid"
    kinds = {row["kind"] for row in r["breakdown"]}
    assert kinds == {"park", "building"}
    counts = layers["micro"][layers["grid"] == "C01-G01"].value_counts()
    assert {row["id"]: row["enterprises"] for row in r["breakdown"]} == {
        row["id"]: int(counts.get(row["id"], 0)) for row in r["breakdown"]
    }
    assert 0 < r["coverage_ratio"] < 1  # roads and open space belong to the grid only
    assert r["gaps"]["count"] >= 1


def test_street_lists_its_communities_and_the_rest_as_gap(atlas) -> None:
    r = cov.coverage(atlas, "street", "S03")
    assert {row["id"] for row in r["breakdown"]} == {"C01", "C05"}
    assert r["gaps"]["area_m2"] == pytest.approx(r["area_m2"] - r["children"]["covered_m2"], 1e-6)
    gap = r["gaps"]["items"][0]
    assert 120.1 < gap["lon"] < 120.25 and 30.1 < gap["lat"] < 30.25


def test_codes_work_as_ids(atlas) -> None:
    code = atlas.tables["grids"].set_index("id").loc["C01-G01", "code"]
    assert cov.coverage(atlas, "grid", code)["id"] == "C01-G01"
    assert cov.find_any(atlas, "C01") == ("community", "C01")
    assert cov.find_any(atlas, None) == ("district", None)


def test_unknown_area_and_level(atlas) -> None:
    with pytest.raises(cov.UnknownAreaError, match="no grid"):
        cov.coverage(atlas, "grid", "nope")
    with pytest.raises(ValueError, match="unknown level"):
        cov.coverage(atlas, "county", "x")
    with pytest.raises(cov.UnknownAreaError):
        cov.find_any(atlas, "nope")


# -- overlaps and gaps on a doctored district -------------------------------------------------
def test_overlap_and_gap_are_found_and_located(atlas) -> None:
    tables = dict(atlas.tables)
    grids = tables["grids"].copy()
    i = int(np.flatnonzero(grids["id"] == "C01-G02")[0])
    moved = translate(grids.geometry.iloc[i], xoff=0.0005)  # ~48 m east
    grids.loc[grids.index[i], "geometry"] = moved
    tables["grids"] = grids
    doctored = Atlas(Snapshot(version=99, tables=tables))
    r = cov.coverage(doctored, "community", "C01", geometry=True)
    assert r["overlaps"]["count"] >= 1 and r["gaps"]["count"] >= 1
    ids = {tuple(item["ids"]) for item in r["overlaps"]["items"]}
    assert any("C01-G02" in pair for pair in ids)
    # the recount: overlap of the moved grid with its neighbours, in metres
    g = gpd.GeoSeries(grids.geometry.to_numpy(), crs=4326).to_crs(METRIC)
    mine = grids["community_id"].to_numpy() == "C01"
    others = g[mine & (grids["id"] != "C01-G02").to_numpy()]
    expected = sum(shapely.intersection(g.iloc[i], o).area for o in others)
    assert r["overlaps"]["area_m2"] == pytest.approx(expected, rel=1e-3)
    assert r["coverage_ratio"] < 1
    item = r["overlaps"]["items"][0]
    assert item["geometry"]["type"] in ("Polygon", "MultiPolygon")
    point = shapely.Point(item["lon"], item["lat"])
    assert shapely.intersects(grids.geometry.iloc[i].buffer(1e-6), point)


def test_micro_grids_that_straddle_a_grid_edge_are_reported(atlas) -> None:
    from geo.atlas import Atlas
    from geo.grids.coverage import coverage
    from geo.store.base import Snapshot

    assert coverage(atlas, "community", "C01")["straddling"] == []
    tables = dict(atlas.tables)
    grids = atlas.tables["grids"]
    parks = atlas.tables["parks"].copy()
    c01 = grids[grids["community_id"] == "C01"]
    first, second = c01.geometry.iloc[0], c01.geometry.iloc[1]
    # a park drawn across the shared edge of two grids of C01
    edge = first.intersection(second)
    assert not edge.is_empty
    park = edge.buffer(0.0003).intersection(first.union(second))
    parks.loc[parks.index[0], ["geometry", "grid_id"]] = [park, c01["id"].iloc[0]]
    tables["parks"] = parks
    report = coverage(Atlas(Snapshot(atlas.version + 1, tables)), "community", "C01")
    hit = [s for s in report["straddling"] if s["id"] == parks["id"].iloc[0]]
    assert hit and set(hit[0]["grids"]) >= {c01["id"].iloc[0], c01["id"].iloc[1]}
