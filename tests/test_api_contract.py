"""The API keeps its word: one error shape, strict numbers and per-point status in POST /locate,
one OpenAPI version everywhere (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest

from geo.settings import Settings


def _inside(atlas, n: int) -> list[list[float]]:
    """``n`` enterprise positions (inside the district)."""
    ent = atlas.enterprises.iloc[:n]
    return [[float(x), float(y)] for x, y in zip(ent["lon"], ent["lat"], strict=True)]


# -- one error shape ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "url", "kwargs", "needle"),
    [
        ("get", "/locate", {"params": {"lon": "abc", "lat": 30.18}}, "query parameter 'lon'"),
        ("get", "/locate", {"params": {"lat": 30.18}}, "query parameter 'lon'"),
        ("post", "/locate", {"json": {"points": [[120.17]]}}, "body field 'points[0][1]'"),
        (
            "post",
            "/locate",
            {"content": b"{", "headers": {"content-type": "application/json"}},
            "JSON",
        ),
    ],
)
def test_validation_errors_answer_detail_as_one_sentence(client, method, url, kwargs, needle):
    r = getattr(client, method)(url, **kwargs)
    assert r.status_code == 422, r.text
    body = r.json()
    assert isinstance(body["detail"], str) and "\n" not in body["detail"]
    assert needle in body["detail"]
    assert body["errors"] and all({"loc", "msg", "type"} <= set(e) for e in body["errors"])


def test_several_problems_are_counted_in_the_sentence(client) -> None:
    r = client.get("/locate", params={"lon": "x", "lat": "y"})
    assert r.status_code == 422
    assert "and 1 more problem" in r.json()["detail"] and len(r.json()["errors"]) == 2


def test_openapi_says_what_a_422_holds(client) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    model = schemas["HTTPValidationError"]
    assert model["properties"]["detail"]["type"] == "string"
    assert model["properties"]["errors"]["type"] == "array"
    assert model["required"] == ["detail"]


# -- POST /locate: strict numbers, per-point status ---------------------------------------------
@pytest.mark.parametrize("point", [["120.172", 30.187], [120.172, "30.187"], [True, 30.187]])
def test_post_locate_refuses_strings_and_booleans(client, point) -> None:
    r = client.post("/locate", json={"points": [point]})
    assert r.status_code == 422, r.text
    assert "points[0]" in r.json()["detail"]
    if any(isinstance(v, str) for v in point):
        assert "not a string" in r.json()["detail"]


def test_post_locate_still_takes_integers(client) -> None:
    r = client.post("/locate", json={"points": [[120, 30]]})  # JSON integers are numbers
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["point"] == {"lon": 120.0, "lat": 30.0}


BAD = [["120.172", 30.187], [30.187, 120.172], [120.17], None, [120.1, 30.1, 5]]


def test_errors_report_answers_every_point(client, atlas) -> None:
    good = _inside(atlas, 3)
    points = [good[0], *BAD, good[1], good[2]]
    r = client.post("/locate", json={"points": points, "errors": "report"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["failed"] == len(BAD)
    results = body["results"]
    assert len(results) == len(points)
    for i in (0, 6, 7):
        single = client.get("/locate", params={"lon": points[i][0], "lat": points[i][1]}).json()
        assert results[i] == single
    errors = [results[i]["error"] for i in range(1, 6)]
    assert "not a string" in errors[0] and "lon" in errors[0]
    assert "swapped" in errors[1]
    assert "lat" in errors[2]
    assert "[lon, lat]" in errors[3] and "[lon, lat]" in errors[4]


def test_errors_fail_stays_all_or_nothing(client, atlas) -> None:
    points = [*_inside(atlas, 2), [30.187, 120.172]]
    assert client.post("/locate", json={"points": points}).status_code == 422
    r = client.post("/locate", json={"points": points, "errors": "fail"})
    assert r.status_code == 422 and "point 2" in r.json()["detail"]
    assert "failed" not in client.post("/locate", json={"points": points[:2]}).json()


def test_errors_report_refuses_what_is_not_a_point(client) -> None:
    """Only a bad point is reported in its place; a bad crs or body fails as a whole."""
    r = client.post("/locate", json={"points": "1,2", "errors": "report"})
    assert r.status_code == 422
    r = client.post("/locate", json={"points": [[1, 2]], "crs": "wgs-85", "errors": "report"})
    assert r.status_code == 422
    r = client.post("/locate", json={"points": [[1, 2]], "errors": "some"})
    assert r.status_code == 422 and "'fail' or 'report'" in r.json()["detail"]


def test_errors_report_locates_the_good_points_in_one_call(client, atlas, monkeypatch) -> None:
    from geo.atlas import Atlas

    calls: list[int] = []
    real = Atlas.locate_indices

    def counted(self, lon, lat):
        calls.append(len(lon))
        return real(self, lon, lat)

    monkeypatch.setattr(Atlas, "locate_indices", counted)
    points = [*_inside(atlas, 40), [None, 1], *_inside(atlas, 40)]
    r = client.post("/locate", json={"points": points, "errors": "report"})
    assert r.status_code == 200 and r.json()["failed"] == 1
    assert calls == [80]


def test_a_batch_of_100000_with_one_bad_point_returns_the_rest(sample_db, atlas) -> None:
    from fastapi.testclient import TestClient

    from geo.api.app import create_app
    from geo.store import open_store

    rng = np.random.default_rng(15)
    minx, miny, maxx, maxy = atlas.bounds
    pts = np.column_stack([rng.uniform(minx, maxx, 100_000), rng.uniform(miny, maxy, 100_000)])
    points = pts.tolist()
    points[54_321] = ["120.172", 30.187]
    store = open_store(sample_db)
    app = create_app(store, Settings(db=sample_db, max_batch_points=100_000))
    with TestClient(app) as c:
        r = c.post("/locate", json={"points": points, "errors": "report"})
    store.close()
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert body["failed"] == 1 and len(body["results"]) == 100_000
    assert "not a string" in body["results"][54_321]["error"]
    assert sum("error" in x for x in body["results"]) == 1
    assert body["results"][0]["point"] == {"lon": points[0][0], "lat": points[0][1]}


# -- one OpenAPI version -----------------------------------------------------------------------
def test_openapi_version_is_the_one_the_landing_page_and_conformance_declare(client) -> None:
    version = client.get("/openapi.json").json()["openapi"]
    assert version.startswith("3.1.")
    links = {x["rel"]: x for x in client.get("/", params={"f": "json"}).json()["links"]}
    desc = links["service-desc"]
    assert desc["type"] == "application/vnd.oai.openapi+json;version=3.1"
    assert "OpenAPI 3.1" in desc["title"]
    conforms = client.get("/conformance", params={"f": "json"}).json()["conformsTo"]
    assert not [c for c in conforms if c.endswith("/oas30")]  # the 3.0 class: not claimed
