"""Boundaries over HTTP and the `geo boundary` commands: build, edit, preview, history, revert."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping
from typer.testing import CliRunner

from geo.api.app import create_app
from geo.cli import app as cli_app
from geo.settings import SAMPLE_DIR, Settings
from geo.store import open_store

runner = CliRunner()
TORCH = "东至信诚路、南至南环路、西至东信大道、北至江南大道"
WEST = "东至信诚路、南至南环路、西至伟业路、北至江南大道"  # the western edge moved to 伟业路
UNKNOWN_AREA = "东至信诚路、南至南环路、西至汇聚地界、北至江南大道"
# a point between 东信大道 and 伟业路: inside Torch now, outside after the WEST edit
PROBE = {"lon": 120.14966, "lat": 30.18376}
CUT_LAT = 30.187  # Torch cut off north of this latitude loses ~167,000 m² and three parks


@pytest.fixture()
def db(tmp_path: Path, copy_sample) -> str:
    return copy_sample(tmp_path / "edit.gpkg")


@pytest.fixture()
def api(db: str, issue_headers):
    with TestClient(create_app(open_store(db), Settings(db=db))) as c:
        c.headers.update(issue_headers(db, "planner", "planner-a"))  # writes need a planner
        yield c


def version(api: TestClient, cid: str = "C01") -> int:
    r = api.get(f"/communities/{cid}")
    assert r.status_code == 200
    # the version is the ETag: weak (W/"3") when the answer is compressed (geo.api.compression)
    assert r.headers["ETag"].removeprefix("W/") == f'"{r.json()["properties"]["version"]}"'
    return r.json()["properties"]["version"]


def torch_shape(api: TestClient):
    return shapely.geometry.shape(api.get("/communities/C01").json()["geometry"])


# ------------------------------------------------------------------------------------ build


def test_build_from_the_store_and_from_posted_roads(client: TestClient, auth_headers) -> None:
    planner = auth_headers["planner"]
    r = client.post("/boundaries/build", json={"four_to": TORCH}, headers=planner)
    assert r.status_code == 200, r.text
    feat = r.json()
    assert feat["type"] == "Feature" and feat["geometry"]["type"] == "Polygon"
    assert feat["properties"]["area_m2"] == pytest.approx(1_608_616, rel=1e-3)
    assert feat["properties"]["sides"]["north"]["roads"] == ["江南大道"]
    roads = json.loads((SAMPLE_DIR / "roads.geojson").read_text(encoding="utf-8"))
    r = client.post("/boundaries/build", json={"four_to": WEST, "roads": roads}, headers=planner)
    assert r.status_code == 200 and 1_150_000 < r.json()["properties"]["area_m2"] < 1_250_000


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"four_to": "信诚路南环路"}, "东至"),  # FourToError
        ({"four_to": TORCH.replace("信诚路", "信成路")}, 'unknown road "信成路".*信诚路'),
        ({"four_to": UNKNOWN_AREA}, 'unknown area "汇聚"'),
        ({"four_to": TORCH, "roads": {"type": "Feature"}}, "expected a GeoJSON FeatureCollection"),
        ({"four_to": TORCH, "roads": {"type": "FeatureCollection"}}, "no 'features' list"),
        ({"four_to": TORCH, "roads": {"type": "FeatureCollection", "features": []}}, "unknown"),
    ],
)
def test_build_errors_are_422(client: TestClient, auth_headers, body: dict, message: str) -> None:
    r = client.post("/boundaries/build", json=body, headers=auth_headers["planner"])
    assert r.status_code == 422
    assert pytest.importorskip("re").search(message, r.json()["detail"]), r.json()


def test_cli_build_prints_one_feature(tmp_path: Path) -> None:
    roads, areas = SAMPLE_DIR / "roads.geojson", SAMPLE_DIR / "areas.geojson"
    r = runner.invoke(
        cli_app, ["boundary", "build", TORCH, "--roads", str(roads), "--areas", str(areas),
                  "--db", str(tmp_path / "none.gpkg")],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    feat = json.loads(r.stdout)
    assert feat["type"] == "Feature" and set(feat["properties"]) == {"area_m2", "sides"}
    assert feat["properties"]["area_m2"] == pytest.approx(1_608_616, rel=1e-3)


def test_cli_build_from_the_store(sample_db: str) -> None:
    r = runner.invoke(cli_app, ["boundary", "build", TORCH, "--db", sample_db])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["properties"]["sides"]["north"]["roads"] == ["江南大道"]


def test_cli_build_errors_exit_2(tmp_path: Path) -> None:
    roads = SAMPLE_DIR / "roads.geojson"
    none = str(tmp_path / "none.gpkg")
    bad_json = tmp_path / "bad.geojson"
    bad_json.write_text("{", encoding="utf-8")
    cases = [
        (["信诚路南环路", "--roads", str(roads)], "东至"),
        ([TORCH.replace("信诚路", "信成路"), "--roads", str(roads)], "did you mean 信诚路"),
        ([UNKNOWN_AREA, "--roads", str(roads)], 'unknown area "汇聚"'),
        ([TORCH, "--roads", str(tmp_path / "missing.geojson")], "no such file"),
        ([TORCH, "--roads", str(bad_json)], "not valid JSON"),
        ([TORCH], "give --roads"),
    ]
    for args, message in cases:
        r = runner.invoke(cli_app, ["boundary", "build", *args, "--db", none])
        assert r.exit_code == 2, (args, r.output)
        assert message in " ".join(r.stderr.split()), (message, r.stderr)
        assert r.stdout == ""


# ------------------------------------------------------------------------------------ edits


def test_put_requires_if_match_and_refuses_stale(api: TestClient) -> None:
    body = {"four_to": WEST, "reason": "west edge on 伟业路"}
    r = api.put("/communities/C01/boundary", json=body)
    assert r.status_code == 428 and "If-Match" in r.json()["detail"]
    v = version(api)
    r = api.put("/communities/C01/boundary", json=body, headers={"If-Match": str(v + 5)})
    assert r.status_code == 412 and f"is at version {v}" in r.json()["detail"]
    r = api.put("/communities/C01/boundary", json=body, headers={"If-Match": "abc"})
    assert r.status_code == 400
    r = api.put("/communities/C99/boundary", json=body, headers={"If-Match": "1"})
    assert r.status_code == 404


def test_concurrent_puts_exactly_one_wins(api: TestClient) -> None:
    v = version(api)
    barrier = threading.Barrier(2)
    codes: list[int] = []
    old = torch_shape(api)
    minx, miny, maxx, _ = old.bounds
    cut = mapping(shapely.intersection(old, box(minx - 1, miny - 1, maxx + 1, CUT_LAT)))

    def put(body: dict) -> None:
        barrier.wait()
        r = api.put(
            "/communities/C01/boundary",
            json={**body, "reason": "race"},
            headers={"If-Match": f'"{v}"', "X-Author": f"planner-{len(body)}"},
        )
        codes.append(r.status_code)

    # two real changes (TORCH, the current text, would be an unchanged no-op: 200, no write)
    bodies = ({"four_to": WEST}, {"geometry": cut, "snap_tolerance_m": 0})
    threads = [threading.Thread(target=put, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 412]
    assert version(api) == v + 1


def test_edit_history_revert_and_locate_follows(api: TestClient) -> None:
    probe = PROBE
    assert api.get("/locate", params=probe).json()["community"]["id"] == "C01"
    v = version(api)
    r = api.put(
        "/communities/C01/boundary",
        json={"four_to": WEST, "reason": "west edge on 伟业路"},
        headers={"If-Match": str(v), "X-Author": "planner-a"},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["version"] == v + 1 and r.headers["ETag"].removeprefix("W/") == f'"{v + 1}"'
    assert out["feature"]["properties"]["four_to"] == WEST
    assert api.get("/locate", params=probe).json()["community"] is None
    hist = api.get("/communities/C01/history").json()
    assert [(h["version"], h["action"], h["author"]) for h in hist["versions"][:2]] == [
        (v + 1, "edit", "planner-a"),
        (v, "load", "geo load"),
    ]
    # revert to the loaded version: a new version, the old boundary and text
    r = api.post(
        "/communities/C01/boundary/revert", json={"version": v}, headers={"If-Match": str(v + 1)}
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == v + 2
    assert r.json()["feature"]["properties"]["four_to"] == TORCH
    assert api.get("/locate", params=probe).json()["community"]["id"] == "C01"
    hist = api.get("/communities/C01/history").json()["versions"]
    assert hist[0]["action"] == "revert" and hist[0]["author"] == "planner-a"
    assert shapely.geometry.shape(hist[0]["geometry"]).equals(
        shapely.geometry.shape(hist[2]["geometry"])
    )
    r = api.post(
        "/communities/C01/boundary/revert", json={"version": 99}, headers={"If-Match": str(v + 2)}
    )
    assert r.status_code == 404


def test_enterprise_ownership_follows_an_edit(api: TestClient) -> None:
    old = torch_shape(api)
    minx, miny, maxx, _ = old.bounds
    new = shapely.intersection(old, box(minx - 1, miny - 1, maxx + 1, CUT_LAT))
    body = {"geometry": mapping(new), "snap_tolerance_m": 0, "reason": "shrink"}
    preview = api.post("/communities/C01/boundary/preview", json=body).json()
    moved = preview["enterprises"][0]["id"]
    assert api.get(f"/enterprises/{moved}/owner").json()["community"]["id"] == "C01"
    r = api.put("/communities/C01/boundary", json=body, headers={"If-Match": str(version(api))})
    assert r.status_code == 200, r.text
    assert any("four-to text was kept" in w for w in r.json()["warnings"])
    assert api.get(f"/enterprises/{moved}/owner").json()["community"] is None


def test_preview_matches_a_shapely_ground_truth(api: TestClient, db: str) -> None:
    from geo.io import read_directory

    tables = read_directory(SAMPLE_DIR).tables
    old = torch_shape(api)
    minx, miny, maxx, _ = old.bounds
    new = shapely.intersection(old, box(minx - 1, miny - 1, maxx + 1, CUT_LAT))
    body = {"geometry": mapping(new), "snap_tolerance_m": 0}
    r = api.post("/communities/C01/boundary/preview", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    ent = tables["enterprises"]
    x, y = ent.geometry.x.to_numpy(), ent.geometry.y.to_numpy()
    lost = shapely.contains_xy(old, x, y) & ~shapely.contains_xy(new, x, y)
    assert {e["id"] for e in out["enterprises"]} == set(ent["id"][lost])
    parks = tables["parks"]
    rep = shapely.point_on_surface(parks.geometry.values)
    park_lost = shapely.contains(old, rep) & ~shapely.contains(new, rep)
    assert {p["id"] for p in out["parks"]} == set(parks["id"][park_lost])
    assert out["parks"][0]["from"] == {"id": "C01", "name": "火炬产业社区"}
    assert out["parks"][0]["to"] is None
    assert out["area"]["lost_m2"] > 100_000 and out["area"]["gained_m2"] < 1
    assert out["valid"] is True and out["overlaps"] == [] and out["errors"] == []
    assert version(api) == 1  # nothing written


def test_put_refuses_overlap_outside_street_and_self_intersection(api: TestClient) -> None:
    old = torch_shape(api)
    v = str(version(api))
    south = shapely.affinity.translate(old, -0.005, -0.008)  # ~1 km south-west into 智造 (C05)
    r = api.put(
        "/communities/C01/boundary",
        json={"geometry": mapping(south), "snap_tolerance_m": 0},
        headers={"If-Match": v},
    )
    assert r.status_code == 422
    assert "C01 and C05 overlap" in r.json()["detail"] and "m² at (" in r.json()["detail"]
    east = shapely.affinity.translate(old, 0.003, 0)  # across 信诚路 into 长河街道
    r = api.put(
        "/communities/C01/boundary",
        json={"geometry": mapping(east), "snap_tolerance_m": 0},
        headers={"If-Match": v},
    )
    assert r.status_code == 422 and "reaches outside S03" in r.json()["detail"]
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[120.15, 30.188], [120.16, 30.192], [120.16, 30.188],
                         [120.15, 30.192], [120.15, 30.188]]],
    }  # fmt: skip
    r = api.put("/communities/C01/boundary", json={"geometry": bowtie}, headers={"If-Match": v})
    assert r.status_code == 422
    assert "Self-intersection at (120.155000, 30.190" in r.json()["detail"]
    assert str(version(api)) == v


def test_drawn_vertices_snap_and_the_response_says_which_edges(api: TestClient) -> None:
    from geo.boundaries.roads import RoadNetwork
    from geo.crs import to_lonlat, to_metric
    from geo.io import read_layer_file

    roads, _ = read_layer_file(SAMPLE_DIR / "roads.geojson", "roads")
    road = RoadNetwork.from_frame(roads).get("江南大道")
    old = to_metric(torch_shape(api))
    # Torch with its north-east corner region redrawn 10 m south of 江南大道
    xy = shapely.get_coordinates(old)[:-1]
    net = RoadNetwork.from_frame(roads)
    pts = shapely.points(xy)
    # vertices on 江南大道 away from the corners (moving a corner south would fold the ring)
    on_road = shapely.distance(pts, road) < 0.05  # stored vertices have 7 decimals (~1 cm)
    for cross in ("东信大道", "信诚路"):
        on_road &= shapely.distance(pts, net.get(cross)) > 30.0
    xy[on_road, 1] -= 10.0
    drawn = to_lonlat(shapely.Polygon(xy))
    r = api.post(
        "/communities/C01/boundary/preview",
        json={"geometry": mapping(drawn), "snap_tolerance_m": 15},
    )
    assert r.status_code == 200, r.text
    snapped = r.json()["snapped"]
    assert "江南大道" in {e["road"] for e in snapped["edges"]}
    far = [v for v in snapped["vertices"] if v["moved_m"] > 5]
    on_jiangnan = [v for v in far if v["road"] == "江南大道"]
    # junction vertices may land on the cross road (信诚路, 东信大道, …) instead
    assert len(on_jiangnan) >= on_road.sum() // 2
    # 10 m south of a road running up to ~45° off east-west: 7.1-10 m from it
    assert all(6.5 < v["moved_m"] < 10.5 for v in on_jiangnan)
    assert r.json()["area"]["lost_m2"] < 5_000  # vs ~20,000 m² (10 m × 2 km) unsnapped


def test_create_community(api: TestClient) -> None:
    # a small community west of Torch (across 东信大道), inside 浦沿街道
    notch = box(120.1420, 30.1900, 120.1450, 30.1920)
    body = {
        "name": "汇智产业社区", "street_id": "S03", "type": "科技创新型", "mode": "street",
        "geometry": mapping(notch), "snap_tolerance_m": 0, "reason": "new",
    }  # fmt: skip
    r = api.post("/communities", json=body, headers={"X-Author": "planner"})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert cid == "C08" and r.json()["version"] == 1
    assert r.json()["feature"]["properties"]["code"] == "003"
    assert (
        api.get("/locate", params={"lon": 120.1435, "lat": 30.1910}).json()["community"]["id"]
        == cid
    )
    assert api.post("/communities", json={**body, "id": "C08"}).status_code == 409
    assert api.post("/communities", json={**body, "type": "x"}).status_code == 422


# -------------------------------------------------------------------------------------- CLI


def test_cli_set_preview_history_revert(db: str, tmp_path: Path) -> None:
    r = runner.invoke(cli_app, ["boundary", "preview", "C01", "--four-to", WEST, "--db", db])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["area"]["lost_m2"] > 100_000
    r = runner.invoke(
        cli_app, ["boundary", "set", "C01", "--four-to", WEST, "--reason", "west",
                  "--author", "ann", "--if-version", "9", "--db", db],
    )  # fmt: skip
    assert r.exit_code == 2 and "is at version 1, not 9" in " ".join(r.stderr.split())
    r = runner.invoke(
        cli_app, ["boundary", "set", "C01", "--four-to", WEST, "--reason", "west",
                  "--author", "ann", "--db", db],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "C01 is at version 2" in r.stdout
    r = runner.invoke(cli_app, ["boundary", "history", "C01", "--db", db])
    assert r.exit_code == 0 and "ann: west" in r.stdout and "load" in r.stdout
    r = runner.invoke(cli_app, ["boundary", "revert", "C01", "1", "--db", db])
    assert r.exit_code == 0, r.output
    assert "C01 is at version 3" in r.stdout
    geom = tmp_path / "g.geojson"
    geom.write_text(json.dumps(mapping(box(120.2, 30.1, 120.3, 30.2))), encoding="utf-8")
    r = runner.invoke(cli_app, ["boundary", "set", "C01", "--geometry", str(geom), "--db", db])
    assert r.exit_code == 2 and "outside S03" in " ".join(r.stderr.split())
    r = runner.invoke(cli_app, ["check", "--db", db])
    assert r.exit_code == 0, r.output  # reverted: clean again
