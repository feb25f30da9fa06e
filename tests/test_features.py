"""OGC API – Features: raw HTTP on the sample district, then GDAL's OAPIF driver as a client."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from geo import crs as crs_mod
from geo.api import features
from geo.model import LAYERS
from geo.visibility import hidden_fields, visible_fields

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
GEOJSON = "application/geo+json"


@pytest.fixture(scope="module")
def api(client):
    """The session client (the app serves OGC API - Features)."""
    return client


def get_json(api, url: str, **params) -> dict:
    r = api.get(url, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def rels(doc: dict) -> dict[str, dict]:
    return {link["rel"]: link for link in doc["links"]}


def detail(api, url: str, status: int, **params) -> str:
    r = api.get(url, params=params)
    assert r.status_code == status, (url, params, r.status_code, r.text)
    body = r.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str)
    return body["detail"]


# -- landing page, conformance, collections --------------------------------------------------------
def test_landing_page_links(api) -> None:
    doc = get_json(api, "/")
    links = rels(doc)
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(links)
    assert urlsplit(links["service-desc"]["href"]).path == "/openapi.json"
    assert urlsplit(links["service-doc"]["href"]).path == "/docs"
    assert urlsplit(links["data"]["href"]).path == "/collections"
    assert api.get(links["service-desc"]["href"]).json()["openapi"].startswith("3.")
    assert get_json(api, links["conformance"]["href"])["conformsTo"]


def test_conformance_classes(api) -> None:
    conforms = set(get_json(api, "/conformance")["conformsTo"])
    base = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
    assert {base + c for c in ("core", "geojson", "html")} <= conforms
    assert base + "oas30" not in conforms  # /openapi.json is OpenAPI 3.1 (test_api)
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conforms


def test_collections_are_the_layers_without_officers(api, atlas) -> None:
    doc = get_json(api, "/collections")
    ids = [c["id"] for c in doc["collections"]]
    assert ids == ["roads", "streets", "communities", "grids", "parks", "buildings", "enterprises"]
    assert "officers" not in ids
    for c in doc["collections"]:
        assert c == get_json(api, f"/collections/{c['id']}") | {"links": c["links"]}
        assert any("\u4e00" <= ch <= "\u9fff" for ch in c["title"])  # Chinese
        assert any(ch.isascii() and ch.isalpha() for ch in c["title"])  # and English
        assert c["itemType"] == "feature"
        assert c["storageCrs"] == CRS84
        assert {CRS84, EPSG + "4490", EPSG + "4549"} <= set(c["crs"])
        assert c["extent"]["spatial"]["crs"] == CRS84
        bbox = c["extent"]["spatial"]["bbox"][0]
        assert bbox == pytest.approx(list(atlas.tables[c["id"]].total_bounds))
        items = [link for link in c["links"] if link["rel"] == "items"]
        assert {link["type"] for link in items} == {GEOJSON, "text/html"}


def test_collection_links_are_followable(api) -> None:
    doc = get_json(api, "/collections/parks")
    links = rels(doc)
    assert links["self"]["type"] == "application/json"
    schema = api.get(links["describedby"]["href"])
    assert schema.headers["content-type"].startswith("application/schema+json")
    assert set(schema.json()["properties"]) == {*LAYERS["parks"].field_names, "geometry"}
    queryables = api.get(links["queryables"]["href"]).json()
    assert set(queryables["properties"]) == set(LAYERS["parks"].field_names)


# -- items: paging, filters ------------------------------------------------------------------------
@pytest.mark.parametrize("layer", list(LAYERS))
def test_paging_through_every_collection(api, atlas, layer: str) -> None:
    table = atlas.tables[layer]
    n = len(table)
    limit = max(1, (n + 2) // 3)  # three pages (or one feature per page for tiny layers)
    url, ids, pages = f"/collections/{layer}/items?limit={limit}", [], 0
    while url:
        r = api.get(url)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == GEOJSON
        assert r.headers["content-crs"] == f"<{CRS84}>"
        doc = r.json()
        assert doc["type"] == "FeatureCollection"
        assert doc["numberMatched"] == n
        assert doc["numberReturned"] == len(doc["features"]) <= limit
        assert doc["timeStamp"].endswith("Z")
        links = rels(doc)
        assert urlsplit(links["collection"]["href"]).path == f"/collections/{layer}"
        assert ("prev" in links) == (pages > 0)
        ids += [f["id"] for f in doc["features"]]
        pages += 1
        url = links.get("next", {}).get("href")
        if url:
            assert links["next"]["type"] == GEOJSON
            assert parse_qs(urlsplit(url).query)["limit"] == [str(limit)]
    assert len(ids) == n == len(set(ids))
    assert ids == table["id"].tolist()
    assert pages == -(-n // limit)


def test_page_properties_and_geometry_match_the_atlas(api, atlas) -> None:
    doc = get_json(api, "/collections/buildings/items", limit=50, offset=10)
    table = atlas.tables["buildings"].iloc[10:60]
    assert [f["id"] for f in doc["features"]] == table["id"].tolist()
    for f, (_, row) in zip(doc["features"], table.iterrows(), strict=True):
        assert shapely.geometry.shape(f["geometry"]).equals_exact(row.geometry, 1e-12)
        assert set(f["properties"]) == set(LAYERS["buildings"].field_names) - {"id"}
        assert f["properties"]["name"] == row["name"]
        floors = row["floors"]
        assert f["properties"]["floors"] == (None if floors is None or floors != floors else floors)


def test_next_and_prev_links_keep_the_query(api) -> None:
    params = {"limit": 5, "offset": 5, "kind": "enterprise", "crs": EPSG + "4490"}
    doc = get_json(api, "/collections/buildings/items", **params)
    links = rels(doc)
    nxt = parse_qs(urlsplit(links["next"]["href"]).query)
    prev = parse_qs(urlsplit(links["prev"]["href"]).query)
    assert nxt["offset"] == ["10"] and prev["offset"] == ["0"]
    for q in (nxt, prev, parse_qs(urlsplit(links["self"]["href"]).query)):
        assert q["kind"] == ["enterprise"] and q["crs"] == [EPSG + "4490"] and q["limit"] == ["5"]


def test_offset_past_the_end_is_an_empty_page(api, atlas) -> None:
    n = len(atlas.tables["grids"])
    doc = get_json(api, "/collections/grids/items", offset=n + 5)
    assert doc["features"] == [] and doc["numberReturned"] == 0 and doc["numberMatched"] == n
    assert "next" not in rels(doc) and "prev" in rels(doc)


def box_around(table, i: int, frac: float = 0.15) -> tuple[float, ...]:
    """A box around feature ``i`` spanning ``2 * frac`` of the layer's extent each way."""
    minx, miny, maxx, maxy = table.total_bounds
    c = table.geometry.iloc[i].centroid
    dx, dy = frac * (maxx - minx), frac * (maxy - miny)
    return tuple(float(v) for v in (c.x - dx, c.y - dy, c.x + dx, c.y + dy))


def _all(api, path: str, **params) -> list[dict]:
    return get_json(api, path, limit=features.MAX_LIMIT, **params)["features"]


@pytest.mark.parametrize("layer", ["roads", "buildings", "enterprises", "grids"])
def test_bbox_matches_shapely(api, atlas, layer: str) -> None:
    table = atlas.tables[layer]
    box = box_around(table, len(table) // 2)
    truth = table["id"][shapely.intersects(table.geometry.values, shapely.box(*box))].tolist()
    assert 0 < len(truth) < len(table)
    got = _all(api, f"/collections/{layer}/items", bbox=",".join(map(repr, box)))
    assert [f["id"] for f in got] == truth
    # the same box in EPSG:4326 / EPSG:4490 is given lat,lon
    latlon = f"{box[1]!r},{box[0]!r},{box[3]!r},{box[2]!r}"
    for code in ("4326", "4490"):
        again = _all(api, f"/collections/{layer}/items", bbox=latlon, **{"bbox-crs": EPSG + code})
        assert [f["id"] for f in again] == truth


def test_bbox_in_projected_crs(api, atlas) -> None:
    table = atlas.tables["enterprises"]
    x, y = table.geometry.x.to_numpy(), table.geometry.y.to_numpy()
    e, n = crs_mod.from_wgs84(x, y, "EPSG:4549")
    e0, n0 = float(np.quantile(e, 0.3)), float(np.quantile(n, 0.3))
    e1, n1 = float(np.quantile(e, 0.6)), float(np.quantile(n, 0.6))
    truth = table["id"][(e >= e0) & (e <= e1) & (n >= n0) & (n <= n1)].tolist()
    bbox = f"{n0!r},{e0!r},{n1!r},{e1!r}"  # EPSG:4549 is northing, easting
    got = _all(api, "/collections/enterprises/items", bbox=bbox, **{"bbox-crs": EPSG + "4549"})
    got_ids = {f["id"] for f in got}
    # the box edges are curves in lon/lat: allow points within a few mm of an edge to differ
    near = np.minimum.reduce([abs(e - e0), abs(e - e1), abs(n - n0), abs(n - n1)]) < 0.01
    assert set(truth) - got_ids <= set(table["id"][near])
    assert got_ids - set(truth) <= set(table["id"][near])
    assert len(truth) > 100


def test_property_filters(api, atlas) -> None:
    b = atlas.tables["buildings"]
    grid = b["grid_id"].iloc[0]
    truth = b[(b["kind"] == "enterprise") & (b["grid_id"] == grid)]["id"].tolist()
    got = _all(api, "/collections/buildings/items", kind="enterprise", grid_id=grid)
    assert [f["id"] for f in got] == truth and truth
    floors = int(b["floors"].dropna().iloc[0])
    got = _all(api, "/collections/buildings/items", floors=floors)
    assert [f["id"] for f in got] == b[b["floors"] == floors]["id"].tolist()
    e = atlas.tables["enterprises"]
    got = _all(api, "/collections/enterprises/items", credit_code_valid="false")
    assert [f["id"] for f in got] == e[~e["credit_code_valid"].astype(bool)]["id"].tolist()
    two = b["grid_id"].unique()[:2].tolist()
    r = api.get("/collections/buildings/items", params=[("grid_id", g) for g in two])
    assert r.json()["numberMatched"] == int(b["grid_id"].isin(two).sum())


def test_filters_and_bbox_combine(api, atlas) -> None:
    b = atlas.tables["buildings"]
    box = box_around(b, 100, 0.2)
    inside = shapely.intersects(b.geometry.values, shapely.box(*box))
    truth = b[inside & (b["kind"] == "mixed-use").to_numpy()]["id"].tolist()
    got = _all(api, "/collections/buildings/items", kind="mixed-use",
               bbox=",".join(map(repr, box)))  # fmt: skip
    assert [f["id"] for f in got] == truth and 0 < len(truth) < inside.sum()


# -- CRS -------------------------------------------------------------------------------------------
def test_crs_4549_output_equals_pyproj(api, atlas) -> None:
    r = api.get("/collections/enterprises/items", params={"limit": 500, "crs": EPSG + "4549"})
    assert r.headers["content-crs"] == f"<{EPSG}4549>"
    got = np.array([f["geometry"]["coordinates"] for f in r.json()["features"]])
    table = atlas.tables["enterprises"].iloc[:500]
    # authority axis order (northing, easting), as pyproj gives without always_xy
    to = Transformer.from_crs("OGC:CRS84", "EPSG:4549")
    north, east = to.transform(table.geometry.x.to_numpy(), table.geometry.y.to_numpy())
    assert np.allclose(got, np.column_stack([north, east]), atol=1e-3, rtol=0)
    assert got[:, 0].min() > 3_000_000 and got[:, 1].max() < 1_000_000  # northing first


@pytest.mark.parametrize("code", ["4490", "4326"])
def test_geographic_crs_is_lat_lon(api, atlas, code: str) -> None:
    r = api.get("/collections/parks/items", params={"limit": 3, "crs": EPSG + code})
    assert r.headers["content-crs"] == f"<{EPSG}{code}>"
    ring = np.array(r.json()["features"][0]["geometry"]["coordinates"][0])
    truth = np.array(atlas.tables["parks"].geometry.iloc[0].exterior.coords)
    assert np.allclose(ring, truth[:, ::-1], atol=1e-12)
    assert 29 < ring[0, 0] < 31 and 119 < ring[0, 1] < 121


def test_short_crs_names_and_single_feature_crs(api, atlas) -> None:
    fid = atlas.tables["enterprises"]["id"].iloc[7]
    p = atlas.tables["enterprises"].geometry.iloc[7]
    for name in ("EPSG:4490", "[EPSG:4490]", EPSG + "4490"):
        r = api.get(f"/collections/enterprises/items/{fid}", params={"crs": name})
        assert r.status_code == 200 and r.headers["content-crs"] == f"<{EPSG}4490>"
        assert r.json()["geometry"]["coordinates"] == pytest.approx([p.y, p.x], abs=1e-12)


@pytest.mark.parametrize("shift", ["gcj02", "bd09"])
def test_coords_shift_for_chinese_web_maps(api, atlas, shift: str) -> None:
    doc = get_json(api, "/collections/enterprises/items", limit=200, coords=shift)
    assert doc["coords"] == shift
    got = np.array([f["geometry"]["coordinates"] for f in doc["features"]])
    t = atlas.tables["enterprises"].iloc[:200]
    x, y = crs_mod.from_wgs84(t.geometry.x.to_numpy(), t.geometry.y.to_numpy(), shift)
    assert np.allclose(got, np.column_stack([x, y]), atol=1e-12)
    shifted_m = np.hypot(got[:, 0] - t.geometry.x, got[:, 1] - t.geometry.y) * 111_000
    assert (shifted_m > 100).all()  # GCJ-02 moves Hangzhou by hundreds of metres


# -- single features, HTML -------------------------------------------------------------------------
def test_single_feature(api, atlas) -> None:
    row = atlas.tables["communities"].iloc[2]
    r = api.get(f"/collections/communities/items/{row['id']}")
    assert r.status_code == 200 and r.headers["content-type"] == GEOJSON
    f = r.json()
    assert f["type"] == "Feature" and f["id"] == row["id"]
    assert f["properties"]["name"] == row["name"]
    assert shapely.geometry.shape(f["geometry"]).equals_exact(row.geometry, 1e-12)
    assert urlsplit(rels(f)["collection"]["href"]).path == "/collections/communities"


def test_html_by_f_and_by_accept(api, atlas) -> None:
    name = atlas.tables["communities"]["name"].iloc[0]
    for kwargs in ({"params": {"f": "html"}}, {"headers": {"Accept": "text/html,*/*;q=0.8"}}):
        r = api.get("/collections/communities/items", **kwargs)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "<table>" in r.text and name in r.text
        for url in ("/", "/conformance", "/collections", "/collections/communities"):
            page = api.get(url, **kwargs)
            assert page.headers["content-type"].startswith("text/html") and "<h1>" in page.text
    fid = atlas.tables["communities"]["id"].iloc[0]
    r = api.get(f"/collections/communities/items/{fid}", params={"f": "html"})
    assert r.headers["content-type"].startswith("text/html") and name in r.text
    # JSON stays the default for programs
    r = api.get("/collections/communities/items", headers={"Accept": "application/json"})
    assert r.headers["content-type"] == GEOJSON


def test_html_page_links_to_next_page(api) -> None:
    r = api.get("/collections/enterprises/items", params={"f": "html", "limit": 10})
    assert "offset=10" in r.text and "f=html" in r.text


# -- errors ----------------------------------------------------------------------------------------
ITEMS = "/collections/buildings/items"


@pytest.mark.parametrize(
    ("url", "params", "status", "says"),
    [
        ("/collections/officers", {}, 404, "personal data"),
        ("/collections/officers/items", {}, 404, "roads, streets"),
        ("/collections/nope", {}, 404, "collections are"),
        ("/collections/nope/items/x", {}, 404, "collections are"),
        ("/collections/buildings/items/NOPE", {}, 404, "no feature 'NOPE'"),
        (ITEMS, {"bbox": "1,2,3"}, 400, "4 comma-separated numbers"),
        (ITEMS, {"bbox": "1,2,3,4,5,6"}, 400, "4 comma-separated numbers"),
        (ITEMS, {"bbox": "a,b,c,d"}, 400, "malformed"),
        (ITEMS, {"bbox": "120.1,30.1,nan,30.2"}, 400, "malformed"),
        (ITEMS, {"bbox": "120.2,30.1,120.1,30.2"}, 400, "inverted"),
        (ITEMS, {"bbox": "120.1,30.2,120.2,30.1"}, 400, "inverted"),
        (ITEMS, {"bbox": "30.1,120.1,30.2,120.2"}, 400, "out of range"),
        (ITEMS, {"limit": "0"}, 400, "between 1 and 10000"),
        (ITEMS, {"limit": "10001"}, 400, "between 1 and 10000"),
        (ITEMS, {"limit": "ten"}, 400, "not an integer"),
        (ITEMS, {"offset": "-1"}, 400, "at least 0"),
        (ITEMS, {"offset": "1.5"}, 400, "not an integer"),
        (ITEMS, {"colour": "red"}, 400, "name, address, kind, grid_id"),
        (ITEMS, {"floors": "tall"}, 400, "integer property"),
        ("/collections/enterprises/items", {"credit_code_valid": "maybe"}, 400, "true/false"),
        (ITEMS, {"datetime": "2024-01-01T00:00:00Z"}, 400, "no temporal property"),
        (ITEMS, {"crs": "EPSG:9999"}, 400, CRS84),
        (ITEMS, {"crs": "http://www.opengis.net/def/crs/EPSG/0/32650"}, 400, EPSG + "4549"),
        (ITEMS, {"bbox-crs": "EPSG:3395", "bbox": "1,2,3,4"}, 400, "bbox-crs"),
        (ITEMS, {"coords": "mars"}, 400, "gcj02"),
        (ITEMS, {"coords": "gcj02", "crs": EPSG + "4549"}, 400, "only applies to CRS84"),
        (ITEMS, {"f": "xml"}, 400, "f=json or f=html"),
        ("/collections/buildings/items/B00001", {"limit": "5"}, 400, "allowed: coords, crs, f"),
        ("/collections", {"f": "pdf"}, 400, "f=json or f=html"),
    ],
)
def test_bad_requests_say_what_to_fix(api, url, params, status, says) -> None:
    assert says in detail(api, url, status, **params)


def test_repeated_paging_parameter_is_rejected(api) -> None:
    r = api.get(ITEMS, params=[("limit", "5"), ("limit", "6")])
    assert r.status_code == 400 and "give it once" in r.json()["detail"]


def test_bad_projected_bbox_never_500(api) -> None:
    r = api.get(ITEMS, params={"bbox": "-1e30,-1e30,1e30,1e30", "bbox-crs": EPSG + "4549"})
    assert r.status_code in (200, 400)


# -- OpenAPI ---------------------------------------------------------------------------------------
def test_openapi_documents_the_parameters(api) -> None:
    doc = api.get("/openapi.json").json()
    paths = doc["paths"]
    for path in ("/", "/conformance", "/collections", "/collections/{collectionId}",
                 "/collections/{collectionId}/items",
                 "/collections/{collectionId}/items/{featureId}"):  # fmt: skip
        assert path in paths, path
        assert "422" not in paths[path]["get"]["responses"]
    params = {p["name"]: p for p in paths["/collections/{collectionId}/items"]["get"]["parameters"]}
    assert {"collectionId", "bbox", "bbox-crs", "limit", "offset", "crs", "coords", "f"} <= set(
        params
    )
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 10000,
                                         "default": 100}  # fmt: skip
    assert params["bbox"]["schema"]["type"] == "array" and params["bbox"]["explode"] is False
    assert {CRS84, EPSG + "4490", EPSG + "4549"} <= set(params["crs"]["schema"]["enum"])
    assert "CRS84" in params["coords"]["description"]
    ok = paths["/collections/{collectionId}/items"]["get"]["responses"]["200"]["content"]
    assert GEOJSON in ok and "text/html" in ok


def test_ten_thousand_feature_page(api, atlas) -> None:
    assert len(atlas.tables["enterprises"]) >= 10_000
    r = api.get("/collections/enterprises/items", params={"limit": 10_000})
    assert r.json()["numberReturned"] == 10_000


# -- a real client: GDAL's OAPIF driver, through pyogrio -------------------------------------------
SERVER = """
import sys, uvicorn
from geo.api.app import create_app
from geo.settings import Settings
from geo.store import open_store
db, port = sys.argv[1], int(sys.argv[2])
app = create_app(open_store(db), Settings(db=db))
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""


@pytest.fixture(scope="module")
def server(sample_db: str):
    """The service in its own process (GDAL holds the GIL while it reads, so not a thread)."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", SERVER, sample_db, str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/conformance", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the OGC API server did not start")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def pyogrio():
    import pyogrio

    assert "OAPIF" in pyogrio.list_drivers(), "pyogrio's GDAL has no OAPIF driver"
    return pyogrio


@pytest.mark.slow  # GDAL reads the service in a process of its own
def test_gdal_lists_the_collections(server, pyogrio) -> None:
    layers = pyogrio.list_layers(f"OAPIF:{server}")
    assert layers[:, 0].tolist() == list(LAYERS)
    kinds = dict(layers.tolist())
    assert kinds["roads"] == "LineString" and kinds["enterprises"] == "Point"


@pytest.mark.slow  # GDAL reads the service in a process of its own
@pytest.mark.parametrize("layer", list(LAYERS))
def test_gdal_reads_every_feature(server, pyogrio, atlas, layer: str) -> None:
    table = atlas.tables[layer]
    df = pyogrio.read_dataframe(f"OAPIF:{server}", layer=layer)
    assert len(df) == len(table)
    assert df["id"].tolist() == table["id"].tolist()
    assert df.crs is not None and df.crs.equals("OGC:CRS84")
    same = shapely.equals_exact(df.geometry.values, table.geometry.values, tolerance=1e-7)
    assert same.all(), df["id"][~same].tolist()[:5]
    # an anonymous client sees the public fields (geo.visibility), all of them
    public = set(visible_fields(layer, "anonymous"))
    assert public <= set(df.columns)
    assert not set(hidden_fields(layer, "anonymous")) & set(df.columns)


@pytest.mark.slow  # GDAL reads the service in a process of its own
def test_gdal_bbox_and_filter(server, pyogrio, atlas) -> None:
    table = atlas.tables["buildings"]
    box = box_around(table, 300, 0.1)
    truth = table["id"][shapely.intersects(table.geometry.values, shapely.box(*box))]
    df = pyogrio.read_dataframe(f"OAPIF:{server}", layer="buildings", bbox=box)
    assert sorted(df["id"]) == sorted(truth) and len(truth)
    df = pyogrio.read_dataframe(f"OAPIF:{server}", layer="buildings", where="kind = 'enterprise'")
    assert len(df) == int((table["kind"] == "enterprise").sum())


@pytest.mark.slow  # GDAL reads the service in a process of its own
def test_gdal_reads_in_cgcs2000(server, pyogrio, atlas) -> None:
    """GDAL asks for EPSG:4490 (lat/lon on the wire) and gives lon/lat back: axis order agrees."""
    df = pyogrio.read_dataframe(f"OAPIF:{server}", layer="parks", max_features=5, CRS="EPSG:4490")
    truth = atlas.tables["parks"].geometry.values[:5]
    assert shapely.equals_exact(df.geometry.values, truth, tolerance=1e-7).all()
    assert json.loads(df.crs.to_json())["id"]["code"] == 4490


def test_landing_page_credits_the_data(api) -> None:
    doc = api.get("/").json()
    assert "OpenStreetMap contributors, ODbL 1.0" in doc["attribution"]
    assert "ODbL 1.0" in api.get("/", params={"f": "html"}).text
