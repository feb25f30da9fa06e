"""Every endpoint of the foundation: health, locate (GET/POST), enterprise owner, docs."""

from __future__ import annotations

import numpy as np
import pytest

from geo import crs

TORCH = "火炬产业社区"


def torch_enterprise(atlas) -> dict:
    """An enterprise that Torch owns, with its row in the atlas."""
    ent = atlas.enterprises
    torch_id = atlas.levels["community"].table.set_index("name").loc[TORCH, "id"]
    owned = atlas.ids_of("community", ent["_community"].to_numpy()) == torch_id
    return ent[owned & (ent["_microgrid"] >= 0).to_numpy()].iloc[0].to_dict()


def test_health(client) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["data_version"] >= 1
    assert body["counts"]["communities"] >= 7
    # for monitoring replicas: which server answered and how fresh its heartbeat is
    assert body["worker"]
    assert 0 <= body["heartbeat_age_seconds"] < body["heartbeat_ttl_seconds"]


def test_locate_gcj02_point_from_the_readme(client) -> None:
    r = client.get("/locate", params={"lon": 120.172, "lat": 30.187, "crs": "gcj02"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"point", "street", "community", "grid", "microgrid"}
    lon, lat = crs.gcj02_to_wgs84(120.172, 30.187)
    assert body["point"] == pytest.approx({"lon": lon[0], "lat": lat[0]})
    assert body["street"] is not None and body["community"] is not None
    assert set(body["community"]) == {"id", "name", "code"}
    assert len(body["grid"]["code"]) == 15


def test_locate_enterprise_point_in_each_crs(client, atlas) -> None:
    e = torch_enterprise(atlas)
    for name in ("wgs84", "cgcs2000", "gcj02", "bd09", "EPSG:4549"):
        x, y = crs.from_wgs84(e["lon"], e["lat"], name)
        body = client.get("/locate", params={"lon": x[0], "lat": y[0], "crs": name}).json()
        assert body["community"]["name"] == TORCH, name
        assert body["microgrid"]["kind"] in ("park", "building")
        assert len(body["microgrid"]["code"]) == 18


def test_gcj02_read_as_wgs84_lands_elsewhere(client, atlas) -> None:
    e = torch_enterprise(atlas)
    gx, gy = crs.from_wgs84(e["lon"], e["lat"], "gcj02")
    right = client.get("/locate", params={"lon": gx[0], "lat": gy[0], "crs": "gcj02"}).json()
    wrong = client.get("/locate", params={"lon": gx[0], "lat": gy[0]}).json()
    assert right["microgrid"] != wrong["microgrid"]


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"lon": 30.187, "lat": 120.172}, "swapped"),
        ({"lon": 120.172, "lat": 95}, "swapped"),
        ({"lon": "nan", "lat": 30.1}, "finite"),
        ({"lon": 120.172, "lat": "inf"}, "finite"),
        ({"lon": 3_340_000, "lat": 500_000}, "EPSG:4549"),
        ({"lon": 116.4, "lat": 39.9}, "far outside the district"),
        ({"lon": 120.172, "lat": 30.187, "crs": "mars"}, "unknown CRS"),
        ({"lon": 120.172, "lat": 30.187, "crs": "EPSG:999999"}, "EPSG:999999"),
        ({"lon": "east", "lat": 30.187}, "lon"),
    ],
)
def test_locate_bad_input_is_a_clear_422(client, params, needle) -> None:
    r = client.get("/locate", params=params)
    assert r.status_code == 422
    assert needle in str(r.json()["detail"])


def test_locate_outside_every_community_is_null_not_an_error(client, atlas) -> None:
    minx, miny, _, _ = atlas.bounds
    body = client.get("/locate", params={"lon": minx - 0.01, "lat": miny - 0.01}).json()
    assert body["street"] is None and body["community"] is None and body["microgrid"] is None


def test_post_locate_keeps_order_and_matches_get(client, atlas) -> None:
    ent = atlas.enterprises.iloc[:50]
    points = [[float(a), float(b)] for a, b in zip(ent["lon"], ent["lat"], strict=True)]
    body = client.post("/locate", json={"points": points}).json()
    assert len(body["results"]) == 50
    for point, result in zip(points[:5], body["results"][:5], strict=True):
        single = client.get("/locate", params={"lon": point[0], "lat": point[1]}).json()
        assert result == single
    owners = atlas.locate(ent["lon"].to_numpy(), ent["lat"].to_numpy())
    got = [r["community"]["id"] if r["community"] else None for r in body["results"]]
    assert got == owners["community_id"].tolist()


def test_post_locate_gcj02(client, atlas) -> None:
    e = torch_enterprise(atlas)
    gx, gy = crs.from_wgs84(e["lon"], e["lat"], "gcj02")
    body = client.post("/locate", json={"crs": "gcj02", "points": [[gx[0], gy[0]]]}).json()
    assert body["results"][0]["community"]["name"] == TORCH


def test_post_locate_names_the_bad_points(client) -> None:
    r = client.post("/locate", json={"points": [[120.17, 30.18], [30.18, 120.17]]})
    assert r.status_code == 422
    assert "point 1" in r.json()["detail"] and "swapped" in r.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"points": [[120.17]]},
        {"points": [["a", "b"]]},
        {"points": "120.17,30.18"},
        {},
        {"points": [[120.17, 30.18]], "crs": "wgs-85"},
    ],
)
def test_post_locate_malformed_bodies(client, body) -> None:
    r = client.post("/locate", json=body)
    assert r.status_code == 422


def test_post_locate_limit(client) -> None:
    r = client.post("/locate", json={"points": [[120.17, 30.18]] * 1001})
    assert r.status_code == 413
    assert "at most 1000" in r.json()["detail"]


def test_post_locate_empty_list(client) -> None:
    assert client.post("/locate", json={"points": []}).json() == {"results": []}


def test_enterprise_owner_by_id_and_credit_code(client, atlas) -> None:
    e = torch_enterprise(atlas)
    by_id = client.get(f"/enterprises/{e['id']}/owner").json()
    by_code = client.get(f"/enterprises/{e['credit_code'].lower()}/owner").json()
    assert by_id == by_code
    assert by_id["enterprise"]["credit_code"] == e["credit_code"]
    assert by_id["community"]["name"] == TORCH
    point = client.get("/locate", params={"lon": e["lon"], "lat": e["lat"]}).json()
    for level in ("street", "community", "grid", "microgrid"):
        assert by_id[level] == point[level]


def test_enterprise_with_failing_check_character_is_served_and_flagged(client, atlas) -> None:
    bad = atlas.enterprises[~atlas.enterprises["credit_code_valid"].astype(bool)]
    assert len(bad) > 0
    body = client.get(f"/enterprises/{bad.iloc[0]['credit_code']}/owner").json()
    assert body["enterprise"]["credit_code_valid"] is False


def test_unknown_enterprise_is_404(client) -> None:
    r = client.get("/enterprises/91330108MA00000000/owner")
    assert r.status_code == 404
    assert "credit code" in r.json()["detail"]


def test_docs_and_openapi(client) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/locate", "/enterprises/{key}/owner"} <= set(paths)


def test_a_new_store_version_is_served_without_restart(tmp_path, sample_dir, copy_sample) -> None:
    from fastapi.testclient import TestClient

    from geo.api.app import create_app
    from geo.service.load import load_into
    from geo.settings import Settings
    from geo.store import open_store

    db = copy_sample(tmp_path / "live.gpkg")
    app = create_app(open_store(db), Settings(db=db, refresh_seconds=0))
    with TestClient(app) as c:
        v1 = c.get("/health").json()["data_version"]
        load_into(db, sample_dir)
        assert c.get("/health").json()["data_version"] == v1 + 1


def test_points_are_located_in_one_vectorised_call(atlas) -> None:
    rng = np.random.default_rng(3)
    minx, miny, maxx, maxy = atlas.bounds
    frame = atlas.locate(rng.uniform(minx, maxx, 1000), rng.uniform(miny, maxy, 1000))
    assert list(frame.columns) == ["street_id", "community_id", "grid_id", "microgrid_id"]
    assert len(frame) == 1000


def test_the_server_imports_maps_and_pinyin_on_first_use() -> None:
    """`geo serve` imports neither folium, branca nor pypinyin at start (about half a second):
    the map builders (`geo.maps`, PEP 562) and pinyin readings are imported with their first
    use, and `geo.maps` still offers every name it lists."""
    import subprocess
    import sys

    code = (
        "import sys; import geo.api.app; "
        "heavy = ['folium', 'branca', 'pypinyin']; "
        "print([m for m in heavy if m in sys.modules]); "
        "from geo import maps; missing = [n for n in maps.__all__ if not hasattr(maps, n)]; "
        "print(missing, 'folium' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "[] True"], out.stdout + out.stderr
