"""Weight on the wire in a real browser: a live `geo serve` of the sample, headless Chromium.

Byte counts are what Chromium reports on the wire (CDP ``encodedDataLength``: headers and
compressed bodies), deterministic for a given sample; times are never asserted (see
``benchmarks/bench_wire.py`` for the 3G figures). Every page is opened with ``?basemap=none``.
"""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest
from support import geo_serve

DISTRICT_BUDGET = 1_200_000  # bytes, issue 15
OFFICER_BUDGET = 250_000


@pytest.fixture(scope="module")
def base(writable):
    db, _token = writable
    with geo_serve(db) as url:
        yield url


class Wire:
    """A page in a fresh context with every response's bytes on the wire recorded."""

    def __init__(self, browser) -> None:
        self.context = browser.new_context(viewport={"width": 1366, "height": 768})
        self.context.set_default_timeout(60_000)
        self.page = self.context.new_page()
        self.cdp = self.context.new_cdp_session(self.page)
        self.cdp.send("Network.enable")
        self.urls: dict[str, str] = {}
        self.encodings: dict[str, str] = {}
        self.sizes: dict[str, int] = {}
        self.last = time.monotonic()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.cdp.on("Network.requestWillBeSent", self._sent)
        self.cdp.on("Network.responseReceived", self._response)
        self.cdp.on("Network.loadingFinished", self._finished)

    def _sent(self, ev) -> None:
        self.urls[ev["requestId"]] = ev["request"]["url"]
        self.last = time.monotonic()

    def _response(self, ev) -> None:
        headers = {k.lower(): v for k, v in ev["response"]["headers"].items()}
        self.encodings[ev["requestId"]] = headers.get("content-encoding", "")

    def _finished(self, ev) -> None:
        self.sizes[ev["requestId"]] = int(ev["encodedDataLength"])
        self.last = time.monotonic()

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_function("() => window.GEO && window.GEO.ready === true")
        self.idle()

    def idle(self, quiet: float = 1.0) -> None:
        end = time.monotonic() + 30
        while time.monotonic() < end and time.monotonic() - self.last < quiet:
            self.page.wait_for_timeout(100)

    def total(self) -> int:
        return sum(self.sizes.values())

    def requested(self, part: str) -> list[str]:
        return [u for u in self.urls.values() if part in u]

    def report(self) -> str:
        rows = sorted(((s, self.urls[k]) for k, s in self.sizes.items()), reverse=True)
        return "\n".join(f"{s:>9,} {u}" for s, u in rows[:15])

    def close(self) -> None:
        self.context.close()


def _heaviest_officer(db: str) -> str:
    from geo.atlas import Atlas
    from geo.maps.data import derived
    from geo.store import open_store

    store = open_store(db)
    try:
        atlas = Atlas(store.snapshot())
    finally:
        store.close()
    per_building = derived(atlas).ent["building_id"].value_counts()

    def load(o) -> int:
        ids = [b.strip() for b in str(o.building_ids or "").split(";") if b.strip()]
        return int(sum(per_building.get(b, 0) for b in ids))

    officers = list(atlas.tables["officers"].itertuples(index=False))
    return max(officers, key=load).id


def test_district_map_weighs_under_its_budget(browser, base) -> None:
    w = Wire(browser)
    try:
        w.open(f"{base}/maps/?basemap=none")
        assert w.total() < DISTRICT_BUDGET, w.report()
        assert not w.requested("search.json"), "the search index must not load up front"
        assert not w.requested("/search?"), "nothing is searched before the user types"
        for rid, url in w.urls.items():  # HTML, scripts, styles and tiles all came compressed
            path = urlparse(url).path
            if w.sizes.get(rid, 0) > 2000 and path.endswith((".js", ".css", ".mvt", "/maps/")):
                assert w.encodings.get(rid) == "br", (url, w.encodings.get(rid))
        assert w.errors == []
    finally:
        w.close()


def test_officer_map_weighs_under_its_budget(browser, base, writable) -> None:
    officer = _heaviest_officer(writable[0])
    w = Wire(browser)
    try:
        w.open(f"{base}/maps/officer/{officer}?basemap=none")
        assert w.total() < OFFICER_BUDGET, w.report()
        assert w.errors == []
    finally:
        w.close()


def test_search_box_asks_the_server_as_the_user_types(browser, base) -> None:
    import httpx

    name = httpx.get(f"{base}/search", params={"q": "hzhk", "kind": "enterprise"}, timeout=120)
    name = name.json()
    name = name["results"][0]["name"]
    w = Wire(browser)
    try:
        w.open(f"{base}/maps/?basemap=none")
        box = w.page.locator(".geo-search input")
        box.press_sequentially(name[:4], delay=30)  # typed: one request once the typing stops
        hit = w.page.locator(".geo-results li", has_text=name).first
        hit.wait_for()
        asked = w.requested("/search?")
        assert asked and all("q=" in u for u in asked)
        assert len(asked) <= 2, asked  # debounced: not one request per key
        box.fill(name)
        box.press("Enter")  # the first hit: zoomed to, its popup open
        popup = w.page.locator(".leaflet-popup-content", has_text=name)
        popup.wait_for()
        assert w.page.evaluate("() => GEO.lastSearch[1]") == name
        box.fill("zzzzqqqxxj")
        w.page.locator(".geo-results li", has_text="没有找到").wait_for()
        assert w.errors == []
    finally:
        w.close()


REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"  # redoc.standalone.js: an <img>


@pytest.mark.parametrize(
    ("path", "shown"), [("/docs", ".opblock"), ("/redoc", "[data-section-id]")]
)
def test_docs_render_with_other_hosts_blocked(browser, base, path, shown) -> None:
    context = browser.new_context()
    outside: list[str] = []

    def only_here(route) -> None:
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    try:
        context.route("**/*", only_here)
        page = context.new_page()
        page.goto(f"{base}{path}")
        page.locator(shown).first.wait_for(timeout=60_000)
        assert "/locate" in page.inner_text("body")
        # ReDoc's "powered by" logo (hidden when it fails to load) is its only outside call
        assert [u for u in outside if u != REDOC_LOGO] == []
    finally:
        context.close()
