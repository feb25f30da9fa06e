"""Hostile input that used to answer 500 (or store a degenerate edit): each is a clear 4xx now,
and a refused write has stored nothing.

* a bbox of 1e308 in EPSG:3857, a NUL in a static file's path;
* coordinates of ±1e308 in EPSG:4549, JSON integers of 400 digits in PUT, preview and build;
* an ``If-Match`` of 5,000 digits; a grid commit without ``If-Match``;
* a boundary of zero area, a reason of 900 KB.
"""

from __future__ import annotations

import pytest
from support import store_version

from geo.errors import InvalidInput
from geo.ids import MAX_REASON_CHARS
from geo.service import boundaries
from geo.service.boundaries import BoundaryDraft

WEST = "东至信诚路、南至南环路、西至伟业路、北至江南大道"
TINY = [[120.17, 30.18], [120.17 + 1e-12, 30.18], [120.17, 30.18 + 1e-12], [120.17, 30.18]]
NEEDLE = [[120.17, 30.18], [120.18, 30.18], [120.18, 30.18000001], [120.17, 30.18]]  # 1 km × 1 mm
HUGE = [[1e308, 1e308], [-1e308, 1e308], [-1e308, -1e308], [1e308, 1e308]]
BIG_INT = "1" + "0" * 399


def _etag(hc, cid: str = "C01") -> str:
    r = hc.get(f"/communities/{cid}")
    assert r.status_code == 200, r.text
    return r.headers["etag"]


# ---------------------------------------------------------------------------------- reads


def test_a_bbox_of_1e308_in_web_mercator_is_a_400(hc) -> None:
    for bbox in ("1e308,1e308,1e308,1e308", "-1e308,-1e308,1e308,1e308", "1,1,1,1"):
        r = hc.get("/collections/enterprises/items", params={"bbox": bbox, "bbox-crs": "EPSG:3857"})
        assert r.status_code == 400, (bbox, r.status_code, r.text[:200])
        assert "bbox" in r.json()["detail"]


def test_a_nul_in_a_static_path_is_a_404(hc) -> None:
    assert hc.get("/static/leaflet-1.9.4/leaflet.js").status_code == 200
    for path in (
        "/static/leaflet-1.9.4/leaflet.js%00.png",
        "/static/%00",
        "/static/leaflet-1.9.4/leaflet.js%E2%80%AE",
        "/maps/community/C01%00",
        "/collections/communities/items/C01%00",
    ):
        r = hc.get(path)
        assert r.status_code == 404, (path, r.status_code, r.text[:200])
        assert "U+" in r.json()["detail"]


# ----------------------------------------------------------------------- numbers in bodies


def test_coordinates_of_1e308_in_a_projected_crs_are_a_422_and_store_nothing(hc, writable) -> None:
    db, _ = writable
    before = store_version(db)
    geometry = {"type": "Polygon", "coordinates": [HUGE]}
    r = hc.put(
        "/communities/C01/boundary",
        json={"geometry": geometry, "crs": "EPSG:4549"},
        headers={"If-Match": _etag(hc)},
    )
    assert r.status_code == 422, r.text[:300]
    assert "out of range" in r.json()["detail"]
    r = hc.post(
        "/communities/C01/boundary/preview", json={"geometry": geometry, "crs": "EPSG:4549"}
    )
    assert r.status_code == 422, r.text[:300]
    assert store_version(db) == before
    assert hc.get("/locate", params={"lon": 120.17, "lat": 30.18}).status_code == 200


def _big_int_polygon() -> str:
    ring = f"[[{BIG_INT},30.1],[120.2,30.1],[120.2,30.2],[{BIG_INT},30.1]]"
    return '{"type":"Polygon","coordinates":[' + ring + "]}"


@pytest.mark.parametrize("digits", [400, 4000])
def test_an_integer_of_hundreds_of_digits_is_a_422_in_put_preview_and_build(
    hc, writable, digits: int
) -> None:
    db, _ = writable
    before = store_version(db)
    polygon = _big_int_polygon().replace(BIG_INT, "1" + "0" * (digits - 1))
    line = (
        '{"type":"LineString","coordinates":[[' + "1" + "0" * (digits - 1) + ",30.1],[120.2,30.2]]}"
    )
    roads = (
        '{"type":"FeatureCollection","features":[{"type":"Feature","id":"W1",'
        '"properties":{"name":"信诚路"},"geometry":' + line + "}]}"
    )
    calls = [
        ("PUT", "/communities/C01/boundary", '{"geometry":' + polygon + "}"),
        ("POST", "/communities/C01/boundary/preview", '{"geometry":' + polygon + "}"),
        ("POST", "/boundaries/build", '{"four_to":"' + WEST + '","roads":' + roads + "}"),
    ]
    for method, path, body in calls:
        r = hc.request(
            method,
            path,
            content=body.encode(),
            headers={"content-type": "application/json", "If-Match": _etag(hc)},
        )
        assert r.status_code == 422, (path, r.status_code, r.text[:300])
        assert len(r.text) < 1000  # the number is cut short in the message
    assert store_version(db) == before


def test_an_if_match_of_5000_digits_is_a_400(hc, writable) -> None:
    db, _ = writable
    before = store_version(db)
    huge = "1" * 5000
    calls = [
        ("PUT", "/communities/C01/boundary", {"four_to": WEST}),
        ("POST", "/communities/C01/boundary/revert", {"version": 1}),
        ("POST", "/communities/C02/grids/commit", {"count": 3}),
    ]
    for method, path, body in calls:
        for value in (huge, f'"{huge}"', "1" * 19):
            r = hc.request(method, path, json=body, headers={"If-Match": value})
            assert r.status_code == 400, (path, r.status_code, r.text[:200])
            assert "not a version number" in r.json()["detail"]
            assert len(r.json()["detail"]) < 300
    assert store_version(db) == before


# ------------------------------------------------------------------------- degenerate edits


@pytest.mark.parametrize("snap", [0, 5])
@pytest.mark.parametrize("ring", [TINY, NEEDLE], ids=["1e-12 triangle", "1 mm needle"])
def test_a_degenerate_boundary_is_a_422_and_no_new_version(hc, writable, ring, snap) -> None:
    db, _ = writable
    before = store_version(db)
    etag = _etag(hc)
    body = {"geometry": {"type": "Polygon", "coordinates": [ring]}, "snap_tolerance_m": snap}
    r = hc.put("/communities/C01/boundary", json=body, headers={"If-Match": etag})
    assert r.status_code == 422, r.text[:300]
    assert "degenerate" in r.json()["detail"]
    assert _etag(hc) == etag and store_version(db) == before
    r = hc.post("/communities/C01/boundary/preview", json=body)
    assert r.status_code in (200, 422), r.text[:300]


def test_a_900_kb_reason_is_a_422(hc, writable) -> None:
    db, _ = writable
    before = store_version(db)
    reason = "为" * 900_000
    r = hc.put(
        "/communities/C01/boundary",
        json={"four_to": WEST, "reason": reason},
        headers={"If-Match": _etag(hc)},
    )
    assert r.status_code == 422, r.text[:300]
    r = hc.post(
        "/communities/C01/boundary/revert",
        json={"version": 1, "reason": "x" * (MAX_REASON_CHARS + 1)},
        headers={"If-Match": _etag(hc)},
    )
    assert r.status_code == 422, r.text[:300]
    assert store_version(db) == before
    r = hc.put(
        "/communities/C01/boundary",
        json={"four_to": WEST, "reason": "x" * MAX_REASON_CHARS},
        headers={"If-Match": _etag(hc)},
    )
    assert r.status_code == 200, r.text[:300]


def test_a_grid_commit_needs_if_match(hc, writable) -> None:
    db, _ = writable
    before = store_version(db)
    r = hc.post("/communities/C02/grids/commit", json={"count": 3})
    assert r.status_code == 428, r.text[:300]
    assert "If-Match header required" in r.json()["detail"]
    assert store_version(db) == before
    r = hc.post(
        "/communities/C02/grids/commit", json={"count": 3}, headers={"If-Match": str(before)}
    )
    assert r.status_code == 200, r.text[:300]


# ------------------------------------------------------------------ the actions (the CLI path)


@pytest.mark.parametrize(
    ("draft", "says"),
    [
        (BoundaryDraft(geometry={"type": "Polygon", "coordinates": [TINY]}), "degenerate"),
        (BoundaryDraft(geometry={"type": "Polygon", "coordinates": [NEEDLE]}), "degenerate"),
        (
            BoundaryDraft(geometry={"type": "Polygon", "coordinates": [HUGE]}, crs="EPSG:4549"),
            "out of range",
        ),
    ],
    ids=["1e-12 triangle", "1 mm needle", "1e308 in EPSG:4549"],
)
def test_set_boundary_refuses_degenerate_and_unprojectable_geometry(
    store, draft: BoundaryDraft, says: str
) -> None:
    tables = store.snapshot().tables
    with pytest.raises(InvalidInput, match=says):
        boundaries.set_boundary(
            store, tables, "C01", draft, expected_version=1, author="p", roads=None
        )
    assert store.version() == 1 and store.community_version("C01") == 1


def test_the_actions_bound_the_reason(store) -> None:
    tables = store.snapshot().tables
    long = "x" * (MAX_REASON_CHARS + 1)
    with pytest.raises(InvalidInput, match="reason"):
        boundaries.set_boundary(
            store, tables, "C01", BoundaryDraft(four_to=WEST), expected_version=1, author="p",
            reason=long,
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="reason"):
        boundaries.revert(store, tables, "C01", 1, expected_version=1, author="p", reason=long)
    assert store.version() == 1
