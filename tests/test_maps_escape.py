"""Names never become markup in a map page, and served pages carry a strict script policy.

A store whose every shown text (names, addresses, four-to text, industries, officers' names and
phones) holds an XSS payload (tests/hostile_names.py): the HTML of every map holds none of them
raw, the ``<title>`` is escaped, no inline script writes ``innerHTML`` (folium's GeoJsonPopup /
GeoJsonTooltip did), and the Content-Security-Policy allows no inline script but the page's own
blocks, by hash. The browser side is tests/test_xss_browser.py.
"""

from __future__ import annotations

import re

import pytest
from hostile_names import PAYLOADS, hostile_sample

from geo import maps
from geo.maps import csp

MARKUP = [p for p in PAYLOADS if "<" in p]


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory) -> str:
    from geo.service.load import load_directory

    tmp = tmp_path_factory.mktemp("hostile")
    db = str(tmp / "hostile.gpkg")
    result = load_directory(db, hostile_sample(tmp / "data"))
    assert not result.rejected, result.rejected[:3]
    return db


@pytest.fixture(scope="module")
def hostile(hostile_db):
    from geo.atlas import Atlas
    from geo.store import open_store

    store = open_store(hostile_db)
    try:
        return Atlas(store.snapshot())
    finally:
        store.close()


@pytest.fixture(scope="module")
def pages(hostile) -> dict[str, str]:
    opts = maps.MapOptions(basemap="none")
    out = {"district": maps.district_map(hostile, opts)}
    for cid in hostile.tables["communities"]["id"]:
        out[f"community {cid}"] = maps.community_map(hostile, cid, opts)
        out[f"editor {cid}"] = maps.editor_map(hostile, cid, opts)
    for oid in hostile.tables["officers"]["id"][:5]:
        out[f"officer {oid}"] = maps.officer_map(hostile, oid, opts)
    return out


def test_the_store_really_is_hostile(hostile):
    t = hostile.tables
    for table, column in (
        ("communities", "name"),
        ("communities", "four_to"),
        ("grids", "name"),
        ("parks", "name"),
        ("buildings", "address"),
        ("officers", "name"),
        ("roads", "name"),
        ("streets", "name"),
    ):
        assert any(str(v).startswith(PAYLOADS) for v in t[table][column]), (table, column)
    assert hostile.enterprises["name"].str.contains("<img", regex=False).any()


def test_no_payload_reaches_a_page_as_markup(pages):
    for name, page in pages.items():
        for p in MARKUP:
            assert p not in page, f"{name}: raw {p!r}"
        title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
        assert "<" not in title, f"{name}: {title!r}"


def test_community_titles_are_escaped_text(pages, hostile):
    page = pages["community C01"]
    name = hostile.tables["communities"].set_index("id").loc["C01", "name"]
    assert "<title>&lt;img src=x onerror=alert(1)&gt;" in page, name


def test_no_inline_script_writes_markup(pages):
    """Popups and tooltips are drawn by maps.js with textContent, not folium's innerHTML."""
    for name, page in pages.items():
        scripts = csp.inline_scripts(page)
        assert scripts, name
        for text in scripts:
            assert "innerHTML" not in text, name
            assert "GeoMaps.init(" in page
        csp.check_inline_scripts(page)  # nothing in a block can end or reopen it


def test_a_block_that_could_be_ended_early_is_refused():
    with pytest.raises(csp.UnsafeScript):
        csp.check_inline_scripts('<script>var a = "<!--";</script>')
    with pytest.raises(csp.UnsafeScript):
        csp.check_inline_scripts('<script>var a = "<script>";</script>')
    csp.check_inline_scripts('<script src="/static/x.js"></script><script>var a = 1 < 2;</script>')


def test_policy_allows_only_the_pages_own_blocks():
    page = "<head><script>var a = 1;</script></head><body><script>GeoMaps.init()</script>"
    policy = csp.policy(page, "osm")
    script_src = next(d for d in policy.split("; ") if d.startswith("script-src"))
    assert script_src.split() == [
        "script-src",
        "'self'",
        "'sha256-+dZ6udsWxNVoGfScAq7t5IIF5UJb4F6RhjbN6oe1p4w='",  # sha256 of "var a = 1;"
        csp.script_hashes("<script>GeoMaps.init()</script>")[0],
    ]
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    for directive in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in policy
    assert "https://tile.openstreetmap.org" in policy
    assert "tile.openstreetmap.org" not in csp.policy(page, "none")


@pytest.fixture(scope="module")
def hostile_client(hostile_db):
    from fastapi.testclient import TestClient

    from geo.api.app import create_app
    from geo.settings import Settings
    from geo.store import open_store

    with TestClient(create_app(open_store(hostile_db), Settings(db=hostile_db))) as c:
        yield c


@pytest.mark.parametrize(
    "path", ["/maps/", "/maps/community/C01", "/maps/editor/C02", "/maps/officer/O0001"]
)
def test_served_pages_carry_the_policy(hostile_client, path):
    r = hostile_client.get(path, params={"basemap": "none"})
    assert r.status_code == 200, r.text
    policy = r.headers["content-security-policy"]
    script_src = next(d for d in policy.split("; ") if d.startswith("script-src")).split()
    assert "'unsafe-inline'" not in script_src
    assert sorted(script_src[2:]) == sorted(csp.script_hashes(r.text))
    for directive in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in policy
    assert "connect-src 'self'" in policy
    for p in MARKUP:
        assert p not in r.text


def test_the_maps_own_script_is_revalidated(client):
    """geo/maps.js changes with the pages (a page calling a function yesterday's copy lacks
    would break): it is revalidated, while the pinned vendored assets are cached for a day."""
    own = client.get("/static/geo/maps.js")
    assert own.status_code == 200 and own.headers["cache-control"] == "no-cache"
    assert "bindPopups" in own.text
    pinned = client.get(f"/static/{maps.LEAFLET}/leaflet.js")
    assert pinned.headers["cache-control"] == "public, max-age=86400"
