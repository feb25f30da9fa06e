"""一长二员 teams: GET /officers, /grids, /microgrids, the owner's team, neighbours."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import shapely

from geo.api.people import officer_view
from geo.model import TEAM_ROLES


def no_phones(body, atlas) -> None:
    text = json.dumps(body, ensure_ascii=False)
    assert "phone" not in text
    assert not any(p in text for p in atlas.tables["officers"]["phone"].head(50))


def test_officer_view_hides_phone_from_anonymous_callers() -> None:
    row = {"id": "O1", "name": "郝梦", "role": "楼宇管理长", "phone": "13900000000",
           "party_member": True}  # fmt: skip
    assert "phone" not in officer_view(row)
    assert "phone" not in officer_view(row, "anonymous")
    for role in ("officer", "planner", "admin"):
        assert officer_view(row, role)["phone"] == "13900000000"


def test_officer_buildings_enterprises_and_grid(client, atlas) -> None:
    officers = atlas.tables["officers"]
    o = officers[officers["building_ids"].str.contains(";")].iloc[0]
    body = client.get(f"/officers/{o['id']}").json()
    no_phones(body, atlas)
    assert body["officer"] == {"id": o["id"], "name": o["name"], "role": o["role"],
                               "party_member": bool(o["party_member"])}  # fmt: skip
    assert [b["id"] for b in body["buildings"]] == o["building_ids"].split(";")
    b = atlas.tables["buildings"].set_index("id")
    ent = atlas.tables["enterprises"]
    for item in body["buildings"]:
        footprint = b.loc[item["id"]].geometry
        inside = ent[shapely.intersects(footprint, ent.geometry.to_numpy())]  # the recount
        assert item["enterprise_count"] == len(inside)
        assert {e["id"] for e in item["enterprises"]} == set(inside["id"])
        assert item["grid"]["id"] == b.loc[item["id"], "grid_id"]
        assert o["id"] in {m["id"] for m in item["team"]}
    assert {g["id"] for g in body["grids"]} == {x["grid"]["id"] for x in body["buildings"]}


def test_grid_contents(client, atlas) -> None:
    body = client.get("/grids/C01-G01").json()
    no_phones(body, atlas)
    assert body["grid"]["id"] == "C01-G01" and body["community"]["id"] == "C01"
    micro = atlas.levels["microgrid"].table
    assert [m["id"] for m in body["microgrids"]] == list(micro[micro["grid_id"] == "C01-G01"]["id"])
    for m in body["microgrids"]:
        if m["kind"] == "park":
            assert m["team"] == [] and m["team_note"]
        else:
            roles = {x["role"] for x in m["team"]}
            assert m["team_complete"] == (not m["missing_roles"])
            assert roles | set(m["missing_roles"]) >= set(TEAM_ROLES["enterprise"]) or roles | set(
                m["missing_roles"]
            ) >= set(TEAM_ROLES["mixed-use"])
    ent = atlas.enterprises
    grid_pos = int(np.flatnonzero(atlas.levels["grid"].table["id"] == "C01-G01")[0])
    assert body["enterprises"]["total"] == int((ent["_grid"] == grid_pos).sum())
    assert (
        sum(m["enterprise_count"] for m in body["microgrids"])
        == body["enterprises"]["in_microgrids"]
    )
    by_code = client.get(f"/grids/{body['grid']['code']}").json()
    assert by_code["grid"]["id"] == "C01-G01"


def test_park_microgrid_has_no_team_of_its_own(client, atlas) -> None:
    body = client.get("/microgrids/P1120923155").json()
    assert body["microgrid"]["kind"] == "park"
    assert body["team"] == [] and "park" in body["team_note"]
    b = atlas.tables["buildings"]
    assert {x["id"] for x in body["buildings"]} == set(b.loc[b["park_id"] == "P1120923155", "id"])


def test_building_microgrid_team(client, atlas) -> None:
    o = atlas.tables["officers"].iloc[0]
    bid = o["building_ids"].split(";")[0]
    body = client.get(f"/microgrids/{bid}").json()
    no_phones(body, atlas)
    assert body["microgrid"]["kind"] == "building"
    assert o["id"] in {m["id"] for m in body["team"]}
    assert body["team_note"] is None


def test_owner_has_grid_code_microgrid_and_team(client, atlas) -> None:
    ent = atlas.enterprises
    micro = atlas.levels["microgrid"].table
    kinds = np.append(micro["kind"].to_numpy(), None)[ent["_microgrid"].to_numpy()]
    in_building = ent[kinds == "building"].iloc[0]
    body = client.get(f"/enterprises/{in_building['id']}/owner").json()
    no_phones(body, atlas)
    assert body["grid_code"] == body["grid"]["code"] and len(body["grid_code"]) == 15
    assert body["microgrid"]["kind"] == "building"
    officers = atlas.tables["officers"]
    serving = officers[officers["building_ids"].str.split(";").apply(
        lambda ids: body["microgrid"]["id"] in ids)]  # fmt: skip
    assert {m["id"] for m in body["team"]} == set(serving["id"])
    assert all(set(m) == {"id", "name", "role", "party_member"} for m in body["team"])

    in_park = ent[kinds == "park"].iloc[0]
    body = client.get(f"/enterprises/{in_park['credit_code']}/owner").json()
    assert body["microgrid"]["kind"] == "park"
    assert body["team"] == [] and body["team_note"]

    outside = ent[ent["_community"] < 0].iloc[0]
    body = client.get(f"/enterprises/{outside['id']}/owner").json()
    assert body["grid_code"] is None and body["team"] == []


@pytest.mark.parametrize("scope", ["building", "grid", "radius"])
def test_neighbours_same_chain_nearest_first(client, atlas, scope) -> None:
    ent = atlas.enterprises
    e = ent[ent["_microgrid"] >= 0].iloc[0]
    params = {"chain": "same", "scope": scope, "radius_m": 400, "limit": 1000}
    body = client.get(f"/enterprises/{e['id']}/neighbours", params=params).json()
    got = body["neighbours"]
    assert body["chain"] == e["chain"] and got
    assert all(n["chain"] == e["chain"] and n["id"] != e["id"] for n in got)
    d = [n["distance_m"] for n in got]
    assert d == sorted(d)
    # the recount in EPSG:4549 with geopandas
    pts = atlas.tables["enterprises"].set_index("id").geometry.to_crs("EPSG:4549")
    here = pts.loc[e["id"]]
    same = ent[(ent["chain"] == e["chain"]) & (ent["id"] != e["id"])]
    if scope == "grid":
        same = same[same["_grid"] == e["_grid"]]
    dist = pts.loc[same["id"]].distance(here)
    if scope == "radius":
        dist = dist[dist <= 400]
        assert body["count"] == len(dist)
    if scope == "building":
        b = atlas.tables["buildings"]
        here_wgs = shapely.Point(e["lon"], e["lat"])
        fp = b.geometry[shapely.intersects(b.geometry.to_numpy(), here_wgs)]
        within = same[shapely.intersects(fp.iloc[0], shapely.points(same["lon"], same["lat"]))]
        dist = dist.loc[within["id"]]
    assert body["count"] == len(dist)
    expected = pd.Series(dist).sort_values()
    assert d == pytest.approx(expected.round(1).tolist(), abs=0.11)


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/officers/O9999", 404),
        ("/grids/nope", 404),
        ("/microgrids/nope", 404),
        ("/enterprises/nope/neighbours", 404),
        ("/enterprises/E000001/neighbours?scope=planet", 422),
        ("/enterprises/E000001/neighbours?scope=radius&radius_m=-5", 422),
        ("/enterprises/E000001/neighbours?chain=nonsense", 422),
        ("/grids/C01-G01?limit=0", 422),
        ("/coverage?level=county", 422),
        ("/coverage?level=community&id=C99", 404),
        ("/coverage?level=community", 422),
    ],
)
def test_bad_input_is_4xx_with_a_reason(client, url, status) -> None:
    r = client.get(url)
    assert r.status_code == status
    assert r.json()["detail"]


def test_coverage_endpoint_matches_the_module(client, atlas) -> None:
    from geo.grids.coverage import coverage

    body = client.get("/coverage", params={"level": "community", "id": "C02"}).json()
    assert body == json.loads(json.dumps(coverage(atlas, "community", "C02")))
    district = client.get("/coverage").json()
    assert district["level"] == "district" and len(district["breakdown"]) == 3
    geo = client.get("/coverage", params={"level": "grid", "id": "C01-G01", "geometry": True})
    assert geo.json()["gaps"]["items"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")


def test_cli_coverage(sample_db) -> None:
    from typer.testing import CliRunner

    from geo.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["coverage", "C01", "--db", sample_db, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["enterprises"]["total"] == 1858
    table = runner.invoke(app, ["coverage", "--db", sample_db])
    assert table.exit_code == 0 and "S01" in table.stdout
    bad = runner.invoke(app, ["coverage", "nope", "--db", sample_db])
    assert bad.exit_code == 2
