"""Weight on the wire (issue 15): brotli/gzip as Accept-Encoding allows, Vary, weak ETags of
compressed bodies and their 304s, tiles compressed once, /docs and /redoc without a CDN, and
the maps' search asked from GET /search (no index up front)."""

from __future__ import annotations

import gzip
import re

import brotli
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from geo.api import compression
from geo.api.compression import MIN_BYTES, Compression, choose

TILE = "/tiles/enterprises/13/6830/3374.mvt"  # the heart of the sample district
ASKED = {"br": "gzip, deflate, br", "gzip": "gzip, deflate", None: "identity"}


def _get(client, url: str, coding: str | None, **headers: str):
    with client.stream("GET", url, headers={"Accept-Encoding": ASKED[coding], **headers}) as r:
        r.raw = b"".join(r.iter_raw())
    return r


def _body(r) -> bytes:
    coding = r.headers.get("content-encoding")
    if coding == "br":
        return brotli.decompress(r.raw)
    if coding == "gzip":
        return gzip.decompress(r.raw)
    return r.raw


@pytest.mark.parametrize(
    ("header", "coding"),
    [
        ("gzip, deflate, br, zstd", "br"),  # Chromium: br preferred at an equal q-value
        ("gzip", "gzip"),
        ("br", "br"),
        ("gzip;q=1.0, br;q=0.5", "gzip"),  # a higher q-value wins
        ("br;q=0.9, gzip;q=0.8", "br"),
        ("br;q=0, gzip", "gzip"),  # q=0: not acceptable
        ("br;q=0, gzip;q=0", None),
        ("*", "br"),
        ("gzip;q=0.2, *;q=0.5", "br"),  # * names br here, at 0.5
        ("identity", None),
        ("deflate", None),
        ("", None),
        ("x-gzip", "gzip"),
        ("BR;Q=1", "br"),
        ("gzip;q=abc, br;q=2", None),  # unreadable q-values count as 0
    ],
)
def test_negotiation_honours_q_values(header, coding) -> None:
    assert choose(header) == coding


@pytest.mark.parametrize(
    ("url", "media"),
    [
        (TILE, "application/vnd.mapbox-vector-tile"),
        ("/tiles/13/6830/3374.mvt", "application/vnd.mapbox-vector-tile"),
        ("/collections/enterprises/items?limit=200", "application/geo+json"),
        ("/search?q=hz&limit=50", "application/json"),
        ("/openapi.json", "application/json"),
        ("/maps/?basemap=none", "text/html"),
        ("/static/leaflet-1.9.4/leaflet.js", "javascript"),
        ("/static/leaflet-1.9.4/leaflet.css", "text/css"),
        ("/static/geo/maps.js", "javascript"),
    ],
)
def test_each_type_is_compressed_as_asked_with_vary(client, url, media) -> None:
    plain = _get(client, url, None)
    assert plain.status_code == 200 and media in plain.headers["content-type"]
    assert "content-encoding" not in plain.headers
    assert "accept-encoding" in plain.headers["vary"].lower()
    assert len(plain.raw) >= MIN_BYTES
    for coding in ("br", "gzip"):
        r = _get(client, url, coding)
        assert r.status_code == 200
        assert r.headers["content-encoding"] == coding, (url, coding, r.headers)
        assert "accept-encoding" in r.headers["vary"].lower()
        assert int(r.headers["content-length"]) == len(r.raw) < len(plain.raw)
        if "geo+json" not in media:  # an OGC page carries the time it was made
            assert _body(r) == plain.raw
        assert "accept-ranges" not in r.headers


def test_compressed_json_is_the_same_document(client) -> None:
    import json

    plain = _get(client, "/collections/grids/items?limit=50", None)
    for coding in ("br", "gzip"):
        r = _get(client, "/collections/grids/items?limit=50", coding)
        a, b = json.loads(_body(r)), json.loads(plain.raw)
        a.pop("timeStamp", None), b.pop("timeStamp", None)
        assert a == b


def test_br_is_preferred_and_smaller_than_gzip(client) -> None:
    br = _get(client, TILE, "br")
    gz = _get(client, TILE, "gzip")
    both = _get(client, TILE, None, **{"Accept-Encoding": "gzip;q=1, br;q=0.4"})
    assert br.headers["content-encoding"] == "br" and gz.headers["content-encoding"] == "gzip"
    assert both.headers["content-encoding"] == "gzip"
    assert len(br.raw) < len(gz.raw)


def test_tiny_bodies_and_images_are_not_compressed(client) -> None:
    r = _get(client, "/health", "br")
    assert r.status_code == 200 and len(r.raw) < MIN_BYTES
    assert "content-encoding" not in r.headers
    assert r.headers["vary"] == "Accept-Encoding"  # the same URL could be larger: caches split
    png = _get(client, "/static/leaflet-1.9.4/images/layers.png", "br")
    assert png.status_code == 200 and "content-encoding" not in png.headers
    assert "vary" not in png.headers


@pytest.mark.parametrize("url", [TILE, "/static/leaflet-1.9.4/leaflet.js", "/maps/?basemap=none"])
def test_compressed_bodies_have_weak_etags_and_304s_still_work(client, url) -> None:
    plain = _get(client, url, None)
    strong = plain.headers["etag"]
    assert not strong.startswith("W/")
    for coding in ("br", "gzip"):
        r = _get(client, url, coding)
        assert r.headers["etag"] == f"W/{strong}"  # never the identity body's strong ETag
        for sent in (r.headers["etag"], strong):
            again = _get(client, url, coding, **{"If-None-Match": sent})
            assert again.status_code == 304, (url, coding, sent)
            assert again.raw == b"" and "content-encoding" not in again.headers
            assert again.headers["etag"] == r.headers["etag"]
            assert "accept-encoding" in again.headers["vary"].lower()
    assert _get(client, url, "br", **{"If-None-Match": '"other"'}).status_code == 200
    assert _get(client, url, None, **{"If-None-Match": strong}).headers["etag"] == strong


def test_a_cached_tile_is_compressed_once(client) -> None:
    url = "/tiles/enterprises/13/6831/3374.mvt"
    first = _get(client, url, "br")
    cache = client.app.state.tile_cache
    item = next(
        v
        for k, v in cache._items.items()
        if k[1:4] == (13, 6831, 3374) and k[4] == ("enterprises",)
    )
    stored = item.forms["br"]
    assert first.raw == stored
    before = cache.bytes
    for _ in range(3):
        assert _get(client, url, "br").raw == stored
    assert item.forms["br"] is stored and cache.bytes == before  # not compressed again
    _get(client, url, "gzip")
    assert set(item.forms) == {"br", "gzip"} and cache.bytes == before + len(item.forms["gzip"])


def test_static_files_keep_ranges_on_the_identity_bytes(client) -> None:
    whole = _get(client, "/static/leaflet-1.9.4/leaflet.js", None).raw
    r = _get(client, "/static/leaflet-1.9.4/leaflet.js", "br", Range="bytes=0-99")
    assert r.status_code == 206 and r.raw == whole[:100]
    assert "content-encoding" not in r.headers


def test_etag_versions_of_writes_accept_the_weak_form(hc) -> None:
    """A compressed GET /communities/{id} has a weak ETag; sent back as If-Match, it is still
    the version (geo.api.versions reads W/"3")."""
    r = hc.get("/communities/C01", headers={"Accept-Encoding": "br"})
    version = r.json()["properties"]["version"]
    assert r.headers["etag"] in (f'"{version}"', f'W/"{version}"')
    body = {"geometry": r.json()["geometry"], "reason": "wire: weak If-Match", "force": True}
    w = hc.put("/communities/C01/boundary", json=body, headers={"If-Match": f'W/"{version}"'})
    assert w.status_code != 412, w.text


# ------------------------------------------------------------------ the middleware by itself


def _app(route):
    return Compression(Starlette(routes=[Route("/x", route)]))


def test_streamed_bodies_are_compressed_part_by_part() -> None:
    parts = [(f"line {i} " * 200).encode() for i in range(5)]

    async def gen():
        for p in parts:
            yield p

    async def route(_request):
        return StreamingResponse(gen(), media_type="application/x-ndjson; charset=utf-8")

    with (
        TestClient(_app(route)) as c,
        c.stream("GET", "/x", headers={"Accept-Encoding": "br"}) as r,
    ):
        assert r.headers.get("content-encoding") is None  # x-ndjson: not a type we know

    async def text(_request):
        return StreamingResponse(gen(), media_type="text/plain")

    with TestClient(_app(text)) as c:
        for coding, unpack in (("br", brotli.decompress), ("gzip", gzip.decompress)):
            with c.stream("GET", "/x", headers={"Accept-Encoding": coding}) as r:
                raw = b"".join(r.iter_raw())
            assert r.headers["content-encoding"] == coding
            assert "content-length" not in r.headers
            assert unpack(raw) == b"".join(parts)


def test_existing_vary_and_no_transform_are_respected() -> None:
    big = "x" * 5000

    async def vary(_request):
        return PlainTextResponse(big, headers={"Vary": "Origin", "ETag": '"v1"'})

    async def keep(_request):
        return PlainTextResponse(big, headers={"Cache-Control": "no-transform"})

    with TestClient(_app(vary)) as c:
        r = c.get("/x", headers={"Accept-Encoding": "gzip"})
        assert r.headers["vary"] == "Origin, Accept-Encoding"
        assert r.headers["etag"] == 'W/"v1"' and r.text == big
    with TestClient(_app(keep)) as c:
        r = c.get("/x", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in r.headers


def test_large_bodies_are_compressed_off_the_event_loop(monkeypatch) -> None:
    calls = []
    real = compression.run_in_threadpool

    async def spy(fn, *args):
        calls.append(len(args[0]))
        return await real(fn, *args)

    monkeypatch.setattr(compression, "run_in_threadpool", spy)
    big = "y" * (compression.THREAD_BYTES + 1)

    async def route(_request):
        return PlainTextResponse(big)

    with TestClient(_app(route)) as c:
        assert c.get("/x", headers={"Accept-Encoding": "br"}).text == big
    assert calls == [len(big)]


# ------------------------------------------------------------------ /docs and /redoc


@pytest.mark.parametrize("url", ["/docs", "/redoc"])
def test_docs_load_nothing_from_another_host(client, url) -> None:
    r = client.get(url)
    assert r.status_code == 200
    html = r.text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), html
    assert "cdn.jsdelivr.net" not in html and "fonts.googleapis" not in html
    assets = re.findall(r"""(?:src|href)\s*=\s*["'](/static/[^"']+)""", html)
    assert assets, html
    for asset in assets:
        a = client.get(asset)
        assert a.status_code == 200 and len(a.content) > 0, asset
    licences = ["/static/swagger-ui-5.35.0/LICENSE", "/static/redoc-2.5.4/LICENSE"]
    assert all(client.get(u).status_code == 200 for u in licences)


# ------------------------------------------------------------------ search asked as typed


def test_search_says_where_each_hit_is_on_the_map(client, atlas) -> None:
    r = client.get("/search", params={"q": "hzhk", "limit": 5})
    hits = r.json()["results"]
    assert hits and all(h["lon"] is not None and h["lat"] is not None for h in hits)
    ent = atlas.enterprises.set_index("id")
    for h in hits:
        if h["kind"] == "enterprise":
            assert h["ref"] == h["id"]
            assert abs(h["lon"] - ent.at[h["id"], "lon"]) < 1e-6
    shifted = client.get("/search", params={"q": "hzhk", "limit": 5, "coords": "gcj02"}).json()
    assert [h["id"] for h in shifted["results"]] == [h["id"] for h in hits]
    assert all(a["lon"] != b["lon"] for a, b in zip(shifted["results"], hits, strict=True))


def test_search_keeps_to_a_community(client, atlas) -> None:
    grids = atlas.tables["grids"]
    c01 = set(grids.loc[grids["community_id"] == "C01", "id"])
    b = atlas.tables["buildings"]
    name = b.loc[b["grid_id"].isin(c01), "name"].iloc[0]
    hits = client.get("/search", params={"q": name, "community": "C01"}).json()["results"]
    assert hits and hits[0]["name"] == name
    ent = atlas.enterprises
    in_c01 = set(ent.loc[atlas.ids_of("community", ent["_community"].to_numpy()) == "C01", "id"])
    found = client.get("/search", params={"q": "hz", "community": "C01", "kind": "enterprise",
                                          "limit": 200}).json()["results"]  # fmt: skip
    assert found and {h["id"] for h in found} <= in_c01
    r = client.get("/search", params={"q": "hz", "community": "nope"})
    assert r.status_code == 404 and "C01" in r.json()["detail"]
    assert client.get("/search", params={"q": "hz", "coords": "mars"}).status_code == 422


def test_served_maps_ask_the_search_endpoint(client) -> None:
    page = client.get("/maps/?basemap=none").text
    assert '"searchUrl": "/search"' in page and "search.json" not in page
    community = client.get("/maps/community/C01?basemap=none").text
    assert '"searchUrl": "/search?community=C01"' in community
