"""Hostile input: limits (413/422/503) and geometry abuse on every endpoint that takes geometry.

Every case must be a clear 4xx (or repaired and answered), never a 500 or a hang.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from pathlib import Path

import pytest

from geo.service.backup import backup
from geo.settings import Settings

RING = [[120.17, 30.18], [120.18, 30.18], [120.18, 30.19], [120.17, 30.19], [120.17, 30.18]]
BOWTIE = [[120.17, 30.18], [120.18, 30.19], [120.18, 30.18], [120.17, 30.19], [120.17, 30.18]]
FOUR_TO = "东至信诚路、南至南环路、西至东信大道、北至江南大道"


def _app(db: str, **limits):
    from geo.api.app import create_app
    from geo.store import open_store

    return create_app(open_store(db), Settings(db=db, **limits))


@pytest.fixture(scope="module")
def writable(sample_db: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A copy of the sample store (writes allowed) and a planner token for it."""
    from geo.store import open_store, users

    db = str(tmp_path_factory.mktemp("hostile") / "store.gpkg")
    backup(sample_db, db)
    store = open_store(db)
    try:
        token = users.add_user(store, "hostile-planner", "planner")
    finally:
        store.close()
    return db, token


def _client(db: str, token: str, **limits):
    from fastapi.testclient import TestClient

    return TestClient(
        _app(db, **limits),
        raise_server_exceptions=False,
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.fixture(scope="module")
def hc(writable):
    with _client(*writable) as c:
        yield c


def _version(c, cid: str = "C01") -> str:
    return c.get(f"/communities/{cid}").headers["etag"]


def _calls(geometry):
    """(method, path, json body, headers) for every endpoint that takes a geometry."""
    return [
        ("POST", "/communities/C01/boundary/preview", {"geometry": geometry}, {}),
        ("PUT", "/communities/C01/boundary", {"geometry": geometry}, "if-match"),
        (
            "POST",
            "/communities",
            {
                "geometry": geometry,
                "name": "恶意",
                "street_id": "S01",
                "type": "科技创新型",
                "mode": "platform",
            },
            {},
        ),
        (
            "POST",
            "/boundaries/build",
            {
                "four_to": FOUR_TO,
                "roads": {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "properties": {"id": "r1", "name": "信诚路"},
                            "geometry": geometry,
                        },
                    ],
                },
            },
            {},
        ),
    ]


def _send(c, method, path, body, headers, *, raw: str | None = None):
    if headers == "if-match":
        headers = {"If-Match": _version(c)}
    if raw is not None:
        headers = {**headers, "content-type": "application/json"}
        return c.request(method, path, content=raw.encode(), headers=headers)
    return c.request(method, path, json=body, headers=headers)


ABUSE = {
    "self-intersecting": {"type": "Polygon", "coordinates": [BOWTIE]},
    "empty polygon": {"type": "Polygon", "coordinates": []},
    "empty ring": {"type": "Polygon", "coordinates": [[]]},
    "nested collections": {
        "type": "GeometryCollection",
        "geometries": [
            {
                "type": "GeometryCollection",
                "geometries": [{"type": "Polygon", "coordinates": [RING]}],
            }
        ],
    },
    "coordinates as strings": {
        "type": "Polygon",
        "coordinates": [[[str(x), str(y)] for x, y in RING]],
    },
    "null coordinates": {"type": "Polygon", "coordinates": [[[None, None]] * 4]},
    "boolean coordinates": {"type": "Polygon", "coordinates": [[[True, False]] * 4]},
    "coordinates an object": {"type": "Polygon", "coordinates": {"a": 1}},
    "too deep": {"type": "Polygon", "coordinates": [[[[[[[1]]]]]]]},
    "unclosed two points": {"type": "Polygon", "coordinates": [[[120.17, 30.18], [120.18, 30.18]]]},
    "huge numbers": {
        "type": "Polygon",
        "coordinates": [[[1e308, 1e308], [1e308, -1e308], [-1e308, 1e308], [1e308, 1e308]]],
    },
    "crs member": {
        "type": "Polygon",
        "coordinates": [RING],
        "crs": {"type": "name", "properties": {"name": "EPSG:3857"}},
    },
    "not geojson": "POLYGON((0 0, 1 0, 1 1, 0 0))",
}


@pytest.mark.parametrize("name", list(ABUSE))
def test_geometry_abuse_is_a_clear_4xx(hc, name: str) -> None:
    for method, path, body, headers in _calls(ABUSE[name]):
        t = time.monotonic()
        r = _send(hc, method, path, body, headers)
        assert 400 <= r.status_code < 500, (name, method, path, r.status_code, r.text[:300])
        detail = r.json()["detail"]
        assert detail, (name, path)
        assert time.monotonic() - t < 10, (name, path, "slow")


def test_geometry_abuse_messages_say_what_is_wrong(hc) -> None:
    def detail(name: str) -> str:
        r = _send(hc, *_calls(ABUSE[name])[0])
        assert r.status_code == 422, r.text
        return r.json()["detail"]

    assert "Self-intersection" in detail("self-intersecting")
    assert "empty" in detail("empty polygon")
    assert "GeometryCollection" in detail("nested collections")
    assert "not a number" in detail("coordinates as strings")
    assert "out of range" in detail("huge numbers")
    assert "crs member" in detail("crs member")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_json_nan_and_infinity_literals_are_422(hc, literal: str) -> None:
    ring = json.dumps(RING).replace("120.17", literal, 1)
    geometry = f'{{"type": "Polygon", "coordinates": [{ring}]}}'
    for method, path, body, headers in _calls(None):
        body = json.dumps(body).replace("null", geometry, 1)
        r = _send(hc, method, path, None, headers, raw=body)
        assert r.status_code == 422, (path, r.status_code, r.text[:300])
    # and in places where pydantic rejects the value: the 422 must still encode (not 500)
    for path, raw in [
        ("/locate", f'{{"points": {literal}}}'),
        ("/locate", f'{{"points": [[1, "x"]], "crs": {literal}}}'),
        ("/boundaries/build", f'{{"four_to": {literal}}}'),
        ("/communities/C01/boundary/preview", f'{{"four_to": "x", "snap_tolerance_m": {literal}}}'),
    ]:
        r = _send(hc, "POST", path, None, {}, raw=raw)
        assert r.status_code == 422, (path, raw, r.status_code, r.text[:300])


def _ccw(ring: list[list[float]]) -> bool:
    """Whether a GeoJSON ring is counter-clockwise (positive shoelace area)."""
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring)) > 0


CW_EXTERIOR = (
    "the exterior ring was clockwise; it was reversed (RFC 7946: exteriors counter-clockwise)"
)


def test_wrong_winding_is_repaired(hc) -> None:
    cw = {"type": "Polygon", "coordinates": [RING[::-1]]}
    r = _send(hc, *_calls(cw)[0])
    assert r.status_code == 200, r.text
    assert _ccw(r.json()["feature"]["geometry"]["coordinates"][0])  # RFC 7946
    assert CW_EXTERIOR in r.json()["warnings"], r.json()["warnings"]
    ccw = _send(hc, *_calls({"type": "Polygon", "coordinates": [RING]})[0])
    assert ccw.json()["warnings"] == []  # nothing repaired, nothing reported


def test_clockwise_exterior_put_is_stored_ccw_and_reported(hc) -> None:
    """A planner's PUT with C01's own boundary wound clockwise: accepted, reported, stored CCW."""
    before = hc.get("/communities/C01").json()["geometry"]
    assert before["type"] == "Polygon" and _ccw(before["coordinates"][0])
    cw = {"type": "Polygon", "coordinates": [ring[::-1] for ring in before["coordinates"]]}
    r = hc.put(
        "/communities/C01/boundary",
        json={"geometry": cw, "reason": "clockwise test"},
        headers={"If-Match": _version(hc)},
    )
    assert r.status_code == 200, r.text
    assert CW_EXTERIOR in r.json()["warnings"], r.json()["warnings"]
    assert _ccw(r.json()["feature"]["geometry"]["coordinates"][0])
    stored = hc.get("/communities/C01").json()["geometry"]
    assert _ccw(stored["coordinates"][0])
    # the same boundary, only wound the other way: nothing new to write (issue 15)
    assert r.json()["unchanged"] is True
    assert hc.get("/communities/C01/history").json()["versions"][0]["reason"] != "clockwise test"


def test_hole_wound_the_wrong_way_is_reported(hc) -> None:
    hole = [[120.172, 30.182], [120.176, 30.182], [120.176, 30.186], [120.172, 30.186]]
    hole.append(hole[0])  # counter-clockwise: RFC 7946 wants holes clockwise
    assert _ccw(hole)
    geometry = {"type": "Polygon", "coordinates": [RING, hole]}
    r = _send(hc, *_calls(geometry)[0])
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == [
        "the hole was counter-clockwise; it was reversed (RFC 7946: holes clockwise)"
    ]
    exterior, inner = r.json()["feature"]["geometry"]["coordinates"]
    assert _ccw(exterior) and not _ccw(inner)


def test_load_reports_reoriented_features(sample_dir: Path, tmp_path: Path) -> None:
    """`geo load` accepts clockwise polygons, stores them CCW and says how many it re-oriented."""
    import shutil

    from typer.testing import CliRunner

    from geo.cli import app as cli_app
    from geo.store import open_store

    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    parks = json.loads((data / "parks.geojson").read_text(encoding="utf-8"))
    for k in (0, 2):
        geometry = parks["features"][k]["geometry"]
        rings = geometry["coordinates"] if geometry["type"] == "Polygon" else None
        assert rings is not None and _ccw(rings[0])
        geometry["coordinates"] = [ring[::-1] for ring in rings]
    (data / "parks.geojson").write_text(json.dumps(parks, ensure_ascii=False), encoding="utf-8")
    db = tmp_path / "s.gpkg"
    r = CliRunner().invoke(cli_app, ["load", str(data), "--db", str(db), "--verbose"])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())  # the console wraps long lines
    assert "parks file: 2 features (rows 1, 3) wound the wrong way" in text, text[:2000]
    assert "were re-oriented (RFC 7946" in text and "0 rejected" in text
    store = open_store(str(db))
    try:
        stored = store.snapshot().tables["parks"]
    finally:
        store.close()
    for k in (0, 2):
        fid = parks["features"][k].get("id") or parks["features"][k]["properties"]["id"]
        geom = stored.loc[stored["id"] == fid].geometry.iloc[0]
        assert geom.exterior.is_ccw, fid


def test_too_many_vertices_is_422_naming_the_count(writable) -> None:
    n = 1_001
    step = 2 * math.pi / n
    ring = [
        [120.175 + 0.004 * math.cos(i * step), 30.185 + 0.004 * math.sin(i * step)]
        for i in range(n)
    ]
    ring.append(ring[0])
    geometry = {"type": "Polygon", "coordinates": [ring]}
    with _client(*writable, max_vertices=1_000) as c:
        for method, path, body, headers in _calls(geometry):
            r = _send(c, method, path, body, headers)
            assert r.status_code == 422, (path, r.text[:300])
            assert "1,002 vertices" in r.json()["detail"] and "1,000" in r.json()["detail"]


def test_a_million_vertex_ring_is_refused_quickly(hc) -> None:
    n = 1_000_000
    step = 2 * math.pi / n
    coords = ",".join(
        f"[{120.175 + 0.004 * math.cos(i * step):.7f},{30.185 + 0.004 * math.sin(i * step):.7f}]"
        for i in range(n)
    )
    raw = f'{{"geometry": {{"type": "Polygon", "coordinates": [[{coords}]]}}}}'
    t = time.monotonic()
    r = _send(hc, "POST", "/communities/C01/boundary/preview", None, {}, raw=raw)
    assert r.status_code == 413, r.text[:300]
    assert "GEO_MAX_BODY_BYTES" in r.json()["detail"]
    assert time.monotonic() - t < 10


def test_too_many_road_features_is_422(writable) -> None:
    line = {"type": "LineString", "coordinates": [[120.17, 30.18], [120.18, 30.18]]}
    roads = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"id": f"r{i}", "name": f"路{i}"}, "geometry": line}
            for i in range(11)
        ],
    }
    with _client(*writable, max_features=10) as c:
        r = c.post("/boundaries/build", json={"four_to": FOUR_TO, "roads": roads})
    assert r.status_code == 422
    assert "11 features" in r.json()["detail"] and "GEO_MAX_FEATURES" in r.json()["detail"]


def test_body_size_limit_declared_and_chunked(writable) -> None:
    body = json.dumps({"points": [[120.17, 30.18]] * 2000}).encode()
    with _client(*writable, max_body_bytes=10_000) as c:
        r = c.post("/locate", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert f"{len(body):,} bytes" in r.json()["detail"]

        def chunks():
            for i in range(0, len(body), 4096):
                yield body[i : i + 4096]

        r = c.post("/locate", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413, r.text[:200]
        small = {"points": [[120.172, 30.187]]}
        assert c.post("/locate", json=small).status_code == 200


def test_slow_requests_time_out_with_a_reason(writable) -> None:
    from fastapi.testclient import TestClient

    app = _app(writable[0], request_timeout_seconds=1.0)

    @app.get("/test-slow")
    async def slow() -> dict:
        await asyncio.sleep(5)
        return {}

    @app.get("/test-slow-sync")
    def slow_sync() -> dict:  # a thread that cannot be cancelled: answered 503 all the same
        time.sleep(3)
        return {}

    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/locate", params={"lon": 120.172, "lat": 30.187}).status_code == 200
        t = time.monotonic()
        r = c.get("/test-slow")
        assert r.status_code == 503
        assert "1 s" in r.json()["detail"] and r.headers["retry-after"]
        assert time.monotonic() - t < 3
        t = time.monotonic()
        assert c.get("/test-slow-sync").status_code == 503
        assert time.monotonic() - t < 2.5
        assert c.get("/locate", params={"lon": 120.172, "lat": 30.187}).status_code == 200


def test_existing_limits_still_hold(hc) -> None:
    r = hc.post("/locate", json={"points": [[120.17, 30.18]] * 100_001})
    assert r.status_code == 413
    assert hc.get("/tiles/communities/30/0/0.mvt").status_code in (400, 404, 422)


def test_assign_defuses_formula_cells(sample_db: str, tmp_path: Path) -> None:
    from geo.atlas import Atlas
    from geo.service.assign import assign_table
    from geo.store import open_store

    src = tmp_path / "in.csv"
    src.write_bytes(
        "name,lon,lat\r\n=cmd|' /C calc'!A0,120.172,30.187\n@SUM(1+1),-120.0,30.187\r\n".encode(
            "gbk"
        )
    )
    store = open_store(sample_db)
    try:
        atlas = Atlas(store.snapshot())
    finally:
        store.close()
    dst = tmp_path / "out.csv"
    assign_table(atlas, src, dst)
    text = dst.read_bytes().decode("utf-8-sig")
    rows = [line.split(",") for line in text.splitlines()]
    assert rows[1][0].startswith("'=cmd")
    assert rows[2][0] == "'@SUM(1+1)"
    assert rows[2][1] == "-120.0"  # numbers stay numbers
