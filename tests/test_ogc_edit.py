"""OGC API – Features Part 4 (create, replace, update, delete) as QGIS and OWSLib use it.

The QGIS sequence is the one its OAPIF provider sends (src/providers/wfs/oapif/, 3.32+):
OPTIONS on the items and on the first item to learn what is allowed, POST with
``application/geo+json`` and no id (the server names it in ``Location``), PUT of the whole
feature, PATCH with ``application/merge-patch+json`` (geometry with ``Content-Crs``, or the
changed properties alone), DELETE — never ``If-Match``. It runs over HTTP against a real
``geo serve``; after each write the version history, the audit log, ``/locate`` and the vector
tiles must show it.
"""

from __future__ import annotations

import json
import math
from contextlib import nullcontext
from xml.etree import ElementTree

import httpx
import mapbox_vector_tile
import pytest
import shapely
from shapely.geometry import box, mapping, shape
from support import geo_serve

from geo.crs import to_lonlat, to_metric
from geo.store import open_store

GEOJSON = "application/geo+json"
MERGE = "application/merge-patch+json"
EPSG4326 = "<http://www.opengis.net/def/crs/EPSG/0/4326>"
ALL = "GET, HEAD, OPTIONS, PUT, PATCH, DELETE"
CUT_LAT = 30.187  # Torch cut off north of this latitude loses three parks (test_boundary_api)


@pytest.fixture(scope="module")
def served(copy_sample, issue_headers, tmp_path_factory):
    """A real `geo serve` on a copy of the sample (the slow tests); its URL, store path and
    callers' headers."""
    db = copy_sample(tmp_path_factory.mktemp("ogcedit") / "edit.gpkg")
    callers = {
        "anonymous": {},
        "officer": issue_headers(db, "officer", "li"),
        "planner": issue_headers(db, "planner", "wang"),
        "admin": issue_headers(db, "admin", "root"),
    }
    with geo_serve(db) as base:
        yield base, db, callers


def _client(served) -> httpx.Client:
    return httpx.Client(base_url=served[0], timeout=60)


@pytest.fixture(scope="module")
def app(copy_sample, issue_headers, tmp_path_factory):
    """The ASGI app on a copy of the sample (in process: the quick tests); its client, store
    path and callers' headers."""
    from fastapi.testclient import TestClient

    from geo.api.app import create_app
    from geo.settings import Settings

    db = copy_sample(tmp_path_factory.mktemp("ogcedit-app") / "edit.gpkg")
    callers = {
        "anonymous": {},
        "officer": issue_headers(db, "officer", "li"),
        "planner": issue_headers(db, "planner", "wang"),
        "admin": issue_headers(db, "admin", "root"),
    }
    with TestClient(create_app(open_store(db), Settings(db=db))) as client:
        yield client, db, callers


def store_state(db: str) -> tuple[int, list, list]:
    """(version, newest version rows, newest audit rows) of the store."""
    with open_store(db) as store:
        return store.version(), store.history(3), store.audit_rows(3)[1]


def free_square(http: httpx.Client, grid_id: str, side_m: float = 12.0) -> shapely.Polygon:
    """A square inside grid ``grid_id`` that no park or building touches (WGS84)."""
    grid = shape(http.get(f"/collections/grids/items/{grid_id}").json()["geometry"])
    minx, miny, maxx, maxy = grid.bounds
    bbox = f"{minx},{miny},{maxx},{maxy}"
    taken = [grid.boundary]
    for layer in ("parks", "buildings"):
        items = http.get(f"/collections/{layer}/items", params={"bbox": bbox, "limit": 10000})
        taken += [shape(f["geometry"]) for f in items.json()["features"]]
    free = to_metric(grid.difference(shapely.union_all(taken).buffer(1e-5)))
    spot = free.buffer(-side_m).representative_point()
    assert not spot.is_empty, "no free spot in the grid"
    return to_lonlat(box(spot.x - side_m / 2, spot.y - side_m / 2, spot.x + side_m / 2,
                         spot.y + side_m / 2))  # fmt: skip


def swapped(geometry: dict) -> dict:
    """A GeoJSON polygon with lat, lon pairs (EPSG:4326 axis order, as QGIS sends it)."""
    rings = [[[y, x] for x, y in ring] for ring in geometry["coordinates"]]
    return {"type": geometry["type"], "coordinates": rings}


def owner(http: httpx.Client, point: shapely.Point) -> dict:
    r = http.get("/locate", params={"lon": point.x, "lat": point.y})
    assert r.status_code == 200, r.text
    return r.json()


def tile(http: httpx.Client, layer: str, point: shapely.Point, z: int = 16) -> dict:
    """The decoded z-tile of ``layer`` holding ``point`` (empty for a 204)."""
    n = 2**z
    x = int((point.x + 180) / 360 * n)
    lat = math.radians(point.y)
    y = int((1 - math.asinh(math.tan(lat)) / math.pi) / 2 * n)
    r = http.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt")
    if r.status_code == 204:
        return {}
    assert r.status_code == 200, r.text
    return mapbox_vector_tile.decode(r.content).get(layer, {})


def tile_ids(http: httpx.Client, layer: str, point: shapely.Point, z: int = 16) -> set[str]:
    """The ids of the features of ``layer`` in the z-tile holding ``point``."""
    return {f["properties"]["id"] for f in tile(http, layer, point, z).get("features", [])}


def last_audit(db: str) -> dict:
    return store_state(db)[2][0]


def check_written(http, db: str, version: int, method: str, fid: str, point) -> dict:
    """After a write of building ``fid``: one new version by the planner, its audit row, and
    /locate and the tiles answering with the building at ``point``."""
    now, history, audit = store_state(db)
    assert now == version + 1 and history[0].author == "wang"
    assert audit[0]["method"] == method and audit[0]["target"] == fid
    assert audit[0]["actor"] == "wang" and audit[0]["version_after"] == now
    got = owner(http, point)["microgrid"]
    assert got["id"] == fid and got["kind"] == "building"
    features = tile(http, "buildings", point).get("features", [])
    return {f["properties"]["id"]: f["properties"] for f in features}[fid]


# ------------------------------------------------------------------------ discovery


def test_conformance_and_openapi_list_part_4(app) -> None:
    with nullcontext(app[0]) as http:
        classes = http.get("/conformance").json()["conformsTo"]
        for name in ("create-replace-delete", "update"):
            assert f"http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/{name}" in classes
        paths = http.get("/openapi.json").json()["paths"]
    item = paths["/collections/{collectionId}/items/{featureId}"]
    assert {"get", "put", "patch", "delete", "options"} <= set(item)
    assert "post" in paths["/collections/{collectionId}/items"]
    assert "Role: planner" in item["put"]["description"]


@pytest.mark.parametrize(
    ("caller", "layer", "items", "item"),
    [
        ("anonymous", "buildings", "GET, HEAD, OPTIONS", "GET, HEAD, OPTIONS"),
        ("officer", "grids", "GET, HEAD, OPTIONS", "GET, HEAD, OPTIONS"),
        ("planner", "buildings", "GET, HEAD, OPTIONS, POST", ALL),
        ("planner", "enterprises", "GET, HEAD, OPTIONS", "GET, HEAD, OPTIONS"),
        ("admin", "enterprises", "GET, HEAD, OPTIONS, POST", ALL),
        ("admin", "streets", "GET, HEAD, OPTIONS", "GET, HEAD, OPTIONS"),
    ],
)  # fmt: skip
def test_options_answer_allow_per_role(app, caller, layer, items, item) -> None:
    headers = app[2][caller]
    with nullcontext(app[0]) as http:
        first = http.get(f"/collections/{layer}/items", params={"limit": 10}).json()
        fid = first["features"][0]["id"]
        r = http.options(f"/collections/{layer}/items", headers=headers)
        assert r.status_code == 204 and r.headers["Allow"] == items
        r = http.options(f"/collections/{layer}/items/{fid}", headers=headers)
        assert r.status_code == 204 and r.headers["Allow"] == item
        # QGIS asks about a made-up id when a layer is empty
        r = http.options(f"/collections/{layer}/items/unknown_id", headers=headers)
        assert r.headers["Allow"] == item
        assert http.options("/collections/nope/items").status_code == 404
        assert http.options(f"/collections/{layer}/items/C01%00").status_code == 404


def test_every_item_answer_has_an_etag(app) -> None:
    with nullcontext(app[0]) as http:
        for layer in ("roads", "communities", "grids", "parks", "buildings", "enterprises"):
            fid = http.get(f"/collections/{layer}/items", params={"limit": 1}).json()
            r = http.get(f"/collections/{layer}/items/{fid['features'][0]['id']}")
            assert r.status_code == 200 and r.headers["ETag"].strip('W/"')
        r = http.get("/collections/communities/items/C01")
        same = http.get("/communities/C01").headers["ETag"]
        assert r.headers["ETag"].removeprefix("W/") == same.removeprefix("W/")


# --------------------------------------------------------------- the QGIS sequence


@pytest.mark.slow  # a real `geo serve`
def test_qgis_edits_a_building(served) -> None:
    _, db, callers = served
    planner = callers["planner"]
    with _client(served) as http:
        square = free_square(http, "C01-G01")
        centre = square.centroid
        assert (
            owner(http, centre)["microgrid"] is None
            or owner(http, centre)["microgrid"]["kind"] != "building"
        )
        # POST as QGIS sends it: no id, EPSG:4326 axis order (lat, lon), Content-Crs
        body = {
            "type": "Feature",
            "geometry": swapped(mapping(square)),
            "properties": {"name": "QGIS 新楼", "kind": "enterprise", "grid_id": "C01-G01",
                           "floors": 5},
        }  # fmt: skip
        before = store_state(db)[0]
        r = http.post(
            "/collections/buildings/items",
            content=json.dumps(body),
            headers={**planner, "Content-Type": GEOJSON, "Content-Crs": EPSG4326},
        )
        assert r.status_code == 201, r.text
        location = r.headers["Location"]
        fid = location[location.rindex("/items/") + len("/items/") :]
        assert r.headers["ETag"] and r.json()["id"] == fid
        assert check_written(http, db, before, "POST", fid, centre)["name"] == "QGIS 新楼"
        item = http.get(location)
        assert shape(item.json()["geometry"]).equals_exact(square, 1e-7)

        # PUT: QGIS without PATCH sends the whole feature back, with its id, no If-Match
        feature = item.json()
        feature["properties"]["name"] = "QGIS 大楼"
        version = store_state(db)[0]
        r = http.put(location, content=json.dumps(feature),
                     headers={**planner, "Content-Type": GEOJSON})  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["properties"]["name"] == "QGIS 大楼"
        assert r.headers["ETag"] != item.headers["ETag"]
        assert check_written(http, db, version, "PUT", fid, centre)["name"] == "QGIS 大楼"

        # PATCH of the geometry (merge patch, Content-Crs), then of one attribute
        moved = shapely.affinity.translate(square, xoff=0.00002)
        crs = {"Content-Type": MERGE, "Content-Crs": EPSG4326}
        version = store_state(db)[0]
        r = http.patch(location, content=json.dumps({"geometry": swapped(mapping(moved))}),
                       headers={**planner, **crs})  # fmt: skip
        assert r.status_code == 200, r.text
        assert shape(r.json()["geometry"]).equals_exact(moved, 1e-7)
        check_written(http, db, version, "PATCH", fid, moved.centroid)
        r = http.patch(location, content=json.dumps({"properties": {"floors": 9}}),
                       headers={**planner, "Content-Type": MERGE})  # fmt: skip
        assert r.status_code == 200 and r.json()["properties"]["floors"] == 9
        assert r.json()["properties"]["name"] == "QGIS 大楼"  # the rest is kept
        check_written(http, db, version + 1, "PATCH", fid, moved.centroid)

        stale_then_refused_then_deleted(
            http, db, callers, location, fid, feature, moved, r.headers["ETag"]
        )


def stale_then_refused_then_deleted(http, db, callers, location, fid, feature, moved, etag):
    """The rest of the QGIS sequence on building ``fid``: If-Match, roles, DELETE."""
    planner = callers["planner"]
    # a stale If-Match is a 412, the right one (weak form too) goes through
    version = store_state(db)[0]
    r = http.patch(location, json={"properties": {"floors": 10}},
                   headers={**planner, "If-Match": '"0123456789abcdef"'})  # fmt: skip
    assert r.status_code == 412 and "If-Match" in r.json()["detail"]
    assert store_state(db)[0] == version
    r = http.patch(location, json={"properties": {"floors": 10}},
                   headers={**planner, "If-Match": "W/" + etag.removeprefix("W/")})  # fmt: skip
    assert r.status_code == 200, r.text
    r = http.put(location, content=json.dumps(feature),
                 headers={**planner, "If-Match": etag})  # fmt: skip
    assert r.status_code == 412, r.text  # the feature changed since that ETag

    # without a token, or with too low a role: nothing stored
    version = store_state(db)[0]
    for caller, status in (("anonymous", 401), ("officer", 403)):
        headers = {**callers[caller], "Content-Type": MERGE}
        r = http.patch(location, json={"properties": {"floors": 1}}, headers=headers)
        assert r.status_code == status, r.text
        assert http.delete(location, headers=callers[caller]).status_code == status
        r = http.post("/collections/buildings/items", json=feature, headers=callers[caller])
        assert r.status_code == status
    assert store_state(db)[0] == version

    # DELETE: gone from the items, /locate and the tiles
    r = http.delete(location, headers=planner)
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert store_state(db)[0] == version + 1 and last_audit(db)["method"] == "DELETE"
    assert http.get(location).status_code == 404
    assert (owner(http, moved.centroid)["microgrid"] or {}).get("id") != fid
    assert fid not in tile_ids(http, "buildings", moved.centroid)


def test_refused_writes_store_nothing_and_say_why(app) -> None:
    _, db, callers = app
    planner = callers["planner"]
    with nullcontext(app[0]) as http:
        square = mapping(free_square(http, "C02-G01"))
        version = store_state(db)[0]
        cases = [
            ("post", "/collections/buildings/items",
             {"type": "Feature", "geometry": square,
              "properties": {"kind": "enterprise", "grid_id": "C99-G01"}},
             422, "grid_id 'C99-G01' refers to no row"),
            ("post", "/collections/buildings/items",
             {"type": "Feature", "geometry": square, "properties": {"kind": "castle"}},
             422, "kind"),
            ("post", "/collections/buildings/items",
             {"type": "Feature", "geometry": {"type": "Point", "coordinates": [120.2, 30.2]},
              "properties": {"kind": "enterprise"}},
             422, "Polygon"),
            ("post", "/collections/buildings/items",
             {"type": "Feature", "geometry": square, "properties": {"kind": "enterprise",
                                                                    "colour": "red"}},
             422, "no field 'colour'"),
            ("post", "/collections/buildings/items", [1, 2], 422, "GeoJSON Feature"),
            ("delete", "/collections/grids/items/C01-G01", None, 422, "refer to it"),
            ("put", "/collections/streets/items/S01",
             {"type": "Feature", "geometry": square, "properties": {}}, 403, "read only"),
            ("patch", "/collections/parks/items/NOPE", {"properties": {"name": "x"}}, 404,
             "no feature"),
            ("patch", "/collections/communities/items/C01", {"properties": {"code": "009"}},
             422, "cannot change"),
        ]  # fmt: skip
        for method, path, body, status, words in cases:
            kwargs = {} if body is None else {"json": body}
            r = http.request(method.upper(), path, headers=planner, **kwargs)
            assert r.status_code == status, (path, r.text)
            assert words in r.json()["detail"], r.text
        r = http.post(
            "/collections/buildings/items",
            json={"type": "Feature", "geometry": square, "properties": {"kind": "enterprise"}},
            headers={**planner, "Content-Crs": "EPSG:9999"},
        )
        assert r.status_code == 400 and "Content-Crs" in r.json()["detail"]
        assert store_state(db)[0] == version


def test_qgis_is_told_why_in_an_exception_report(app) -> None:
    """QGIS sends no Accept on writes and shows only an OWS ExceptionReport's text."""
    http, db, callers = app
    version = store_state(db)[0]
    request = http.build_request(
        "DELETE", "/collections/grids/items/C01-G01", headers=callers["planner"]
    )
    del request.headers["Accept"]
    r = http.send(request)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/xml")
    root = ElementTree.fromstring(r.content)
    ows = "{http://www.opengis.net/ows/1.1}"
    assert root.tag == f"{ows}ExceptionReport"
    exception = root.find(f"{ows}Exception")
    assert exception.get("exceptionCode") == "FeatureRefused"
    assert "deleting grids C01-G01 is refused" in exception.find(f"{ows}ExceptionText").text
    r = http.delete("/collections/grids/items/C01-G01", headers=callers["planner"])
    assert r.status_code == 422 and "refused" in r.json()["detail"]  # Accept: */*: JSON
    # refusals before the write runs: the token's, the body's validation
    for headers, body, query, status, code in (
        ({}, None, "", 401, "Unauthorized"),
        (callers["officer"], None, "", 403, "Forbidden"),
        (callers["planner"], b"{not json", "", 422, "FeatureRefused"),
        (callers["planner"], b"{}", "?reason=" + "x" * 5000, 422, "InvalidRequest"),
    ):
        request = http.build_request(
            "PATCH", "/collections/grids/items/C01-G01" + query, headers=headers, content=body
        )
        del request.headers["Accept"]
        r = http.send(request)
        assert r.status_code == status and r.headers["content-type"].startswith("application/xml")
        exception = ElementTree.fromstring(r.content).find(f"{ows}Exception")
        assert exception.get("exceptionCode") == code, r.text
        assert exception.find(f"{ows}ExceptionText").text
    assert store_state(db)[0] == version


# --------------------------------------------------------------------- communities


@pytest.mark.slow  # a real `geo serve`
def test_qgis_edits_a_community_through_the_boundary_action(served) -> None:
    _, db, callers = served
    planner = callers["planner"]
    with _client(served) as http:
        item = http.get("/collections/communities/items/C01")
        etag = item.headers["ETag"].removeprefix("W/")
        torch = shape(item.json()["geometry"])
        # an attribute change (QGIS PATCH of the changed properties): a new history version
        r = http.patch("/collections/communities/items/C01",
                       content=json.dumps({"properties": {"name": "火炬科创社区"}}),
                       headers={**planner, "Content-Type": MERGE})  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["version"] == int(etag.strip('"')) + 1
        history = http.get("/communities/C01/history").json()["versions"]
        assert history[0]["author"] == "wang" and history[0]["version"] == r.json()["version"]
        # a stale If-Match (the version read before the PATCH) is a 412
        cut = torch.intersection(box(-180, -90, 180, CUT_LAT))
        r = http.patch("/collections/communities/items/C01", json={"geometry": mapping(cut)},
                       headers={**planner, "If-Match": etag})  # fmt: skip
        assert r.status_code == 412, r.text
        # a boundary reaching into the neighbours is refused with where, nothing stored
        version = store_state(db)[0]
        grown = torch.buffer(0.003)
        r = http.patch("/collections/communities/items/C01", json={"geometry": mapping(grown)},
                       headers=planner)  # fmt: skip
        assert r.status_code == 422 and "cannot be saved" in r.json()["detail"], r.text
        assert store_state(db)[0] == version
        # the north cut off: history, warnings (grids, parks), /locate, tiles
        north = torch.difference(cut).representative_point()
        assert owner(http, north)["community"]["id"] == "C01"
        before = tile(http, "communities", north, z=15)
        r = http.patch("/collections/communities/items/C01", json={"geometry": mapping(cut)},
                       headers={**planner, "If-Match": f'"{history[0]["version"]}"'})  # fmt: skip
        assert r.status_code == 200, r.text
        warnings = " ".join(r.json()["warnings"])
        assert "re-split" in warnings and "park(s) changed community" in warnings
        assert (owner(http, north)["community"] or {}).get("id") != "C01"
        after = tile(http, "communities", north, z=15)
        torch_shape = [f["geometry"] for f in after["features"] if f["properties"]["id"] == "C01"]
        assert torch_shape != [
            f["geometry"] for f in before["features"] if f["properties"]["id"] == "C01"
        ]
        history = http.get("/communities/C01/history").json()["versions"]
        assert history[0]["reason"].startswith("update") and history[0]["author"] == "wang"
        assert last_audit(db)["target"] == "C01" and last_audit(db)["method"] == "PATCH"


# -------------------------------------------------------------------------- OWSLib


@pytest.mark.slow  # a real `geo serve`
def test_owslib_part_4_client(served) -> None:
    import owslib.ogcapi as ogcapi  # the test extra (pip install -e '.[test]')
    from owslib.ogcapi.features import Features

    base, db, callers = served
    saved = dict(ogcapi.REQUEST_HEADERS)  # OWSLib updates this module-wide dict in place
    try:
        api = Features(base, headers=callers["planner"])
        with _client(served) as http:
            square = free_square(http, "C03-G01")
        feature = {
            "type": "Feature",
            "geometry": mapping(square),
            "properties": {"name": "OWSLib 园区"},
        }
        version = store_state(db)[0]
        assert api.collection_item_create("parks", feature) is True
        fid = api.response_headers["Location"].rsplit("/", 1)[1]
        assert api.collection_item("parks", fid)["properties"]["name"] == "OWSLib 园区"
        feature["properties"]["name"] = "OWSLib 园区二期"
        assert api.collection_item_update("parks", fid, json.dumps(feature)) is True
        assert api.collection_item("parks", fid)["properties"]["name"] == "OWSLib 园区二期"
        with pytest.raises(RuntimeError, match="no field 'colour'"):
            api.collection_item_update("parks", fid, {**feature, "properties": {"colour": 1}})
        assert api.collection_item_delete("parks", fid) is True
        assert store_state(db)[0] == version + 3
        with _client(served) as http:
            assert http.get(f"/collections/parks/items/{fid}").status_code == 404
    finally:
        ogcapi.REQUEST_HEADERS.clear()
        ogcapi.REQUEST_HEADERS.update(saved)


def test_enterprises_need_an_admin_and_keep_their_crs(app) -> None:
    callers = app[2]
    body = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [3341000.0, 513000.0]},  # EPSG:4549 N, E
        "properties": {"name": "测试科技有限公司", "credit_code": "91330108MA2H0A0A0X",
                       "address": "江南大道1号", "employees": 12},
    }  # fmt: skip
    crs = {"Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/4549>"}
    with nullcontext(app[0]) as http:
        r = http.post("/collections/enterprises/items", json=body,
                      headers={**callers["planner"], **crs})  # fmt: skip
        assert r.status_code == 403 and "admin" in r.json()["detail"]
        r = http.post("/collections/enterprises/items", json=body,
                      headers={**callers["admin"], **crs})  # fmt: skip
        assert r.status_code == 201, r.text
        props = r.json()["properties"]
        assert props["source_crs"] == "EPSG:4549" and props["employees"] == 12
        lon, lat = r.json()["geometry"]["coordinates"]
        assert 120.1 < lon < 120.3 and 30.1 < lat < 30.3
        # the restricted field is not in an anonymous answer, nor in its ETag
        anon = http.get(r.headers["Location"])
        assert "employees" not in anon.json()["properties"]
        assert anon.headers["ETag"] != r.headers["ETag"]


# ------------------------------------------------------------------------- PostGIS


@pytest.mark.slow  # a fresh PostGIS database loaded with the sample
def test_part_4_on_postgis(issue_headers) -> None:
    from fastapi.testclient import TestClient
    from pg_support import fresh_database

    from geo.api.app import create_app
    from geo.service.load import load_into
    from geo.settings import SAMPLE_DIR, Settings
    from geo.store import users

    with fresh_database() as url:
        load_into(url, SAMPLE_DIR)
        with open_store(url) as store:
            planner = {"Authorization": f"Bearer {users.add_user(store, 'wang', 'planner')}"}
        with TestClient(create_app(open_store(url), Settings(db=url))) as http:
            version = store_state(url)[0]
            park = http.get("/collections/parks/items", params={"limit": 1}).json()["features"][0]
            path = f"/collections/parks/items/{park['id']}"
            etag = http.get(path).headers["ETag"]
            r = http.patch(path, json={"properties": {"name": "PostGIS 园区"}},
                           headers={**planner, "If-Match": etag})  # fmt: skip
            assert r.status_code == 200 and r.json()["properties"]["name"] == "PostGIS 园区"
            r = http.patch(path, json={"properties": {"name": "x"}},
                           headers={**planner, "If-Match": etag})  # fmt: skip
            assert r.status_code == 412
            name = {"properties": {"name": "PostGIS 社区"}}
            r = http.patch("/collections/communities/items/C02", json=name, headers=planner)
            assert r.status_code == 200 and r.json()["version"] == 2, r.text
            r = http.delete("/collections/grids/items/C01-G01", headers=planner)
            assert r.status_code == 422
            now, history, audit = store_state(url)
            assert now == version + 2 and history[0].author == "wang"
            assert [a["method"] for a in audit[:2]] == ["PATCH", "PATCH"]
