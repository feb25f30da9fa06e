"""The maps as people in the field see them (issue 15): headless Chromium on a live `geo serve`,
at 1366×768 and on a 390×844 touch phone. Each test asserts on what a person sees: visible text,
popups that open and stay open, sizes and bounding boxes that do not overlap; failures (no
internet, a plugin script that did not load, failed tiles or search) are blocked in the browser
(``page.route``) and must be said on the page in Chinese.

Needs ``/usr/bin/chromium`` and the ``playwright`` package (see tests/support.py): skips on a
laptop without them, FAILS when ``CI=true``. Screenshots go to ``tests/artifacts/field-*.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import geo_serve

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DESKTOP = {"viewport": {"width": 1366, "height": 768}}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}
OSM = "https://tile.openstreetmap.org/**"

# the boxes (page px) of the visible elements matching a selector
BOXES = """sel => [...document.querySelectorAll(sel)].filter(e => {
    const s = getComputedStyle(e), r = e.getBoundingClientRect();
    return s.visibility !== 'hidden' && s.display !== 'none' && r.width > 0
      && !e.closest('.geo-lbl-hidden');
  }).map(e => { const r = e.getBoundingClientRect();
    return {x0: r.left, y0: r.top, x1: r.right, y1: r.bottom, text: e.innerText}; })"""
MAP_BOX = """() => { const r = GEO.map.getContainer().getBoundingClientRect();
    return {x0: r.left, y0: r.top, x1: r.right, y1: r.bottom}; }"""


def overlap(a: dict, b: dict) -> bool:
    """Whether two boxes overlap (touching edges do not)."""
    return (
        a["x0"] < b["x1"] - 0.5
        and b["x0"] < a["x1"] - 0.5
        and (a["y0"] < b["y1"] - 0.5 and b["y0"] < a["y1"] - 0.5)
    )


def inside(a: dict, b: dict) -> bool:
    """Whether box ``a`` lies within box ``b``."""
    return a["x0"] >= b["x0"] and a["y0"] >= b["y0"] and a["x1"] <= b["x1"] and a["y1"] <= b["y1"]


@pytest.fixture(scope="module")
def url(browser, sample_db):
    """A live `geo serve` of the sample store."""
    with geo_serve(sample_db) as base:
        yield base


class Page:
    """A browser page whose console errors and requests leaving the machine are collected."""

    def __init__(self, browser, kind: dict, **context) -> None:
        self.context = browser.new_context(locale="zh-CN", **kind, **context)
        self.context.set_default_timeout(20_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_function("() => window.GEO && window.GEO.ready === true", timeout=40_000)

    def js(self, script: str, arg=None):
        return self.page.evaluate(script, arg)

    def boxes(self, selector: str) -> list[dict]:
        return self.js(BOXES, selector)

    def box(self, selector: str) -> dict:
        found = self.boxes(selector)
        assert found, f"nothing visible matches {selector}"
        return found[0]

    def settle(self) -> None:
        """Wait until the map stands still (its opening fit done, no zoom or pan running: a
        label measured mid-animation is where it was, not where it goes), then have the
        labels placed for what it shows, as its moveend does."""
        self.page.wait_for_timeout(300)
        self.page.wait_for_function(
            "() => !GEO.map._animatingZoom && !(GEO.map._panAnim && GEO.map._panAnim._inProgress)"
        )
        self.js("() => GeoMaps.placeLabels()")

    def view(self, lat: float, lon: float, zoom: int) -> None:
        """Zoom the map like a person would, and wait for the labels to be placed."""
        self.js("a => GEO.map.setView([a[0], a[1]], a[2], {animate: false})", [lat, lon, zoom])
        self.page.wait_for_timeout(1200)
        self.js("() => GeoMaps.placeLabels()")

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"field-{name}.png"))

    def close(self) -> None:
        self.context.close()


@pytest.fixture()
def desktop(browser):
    p = Page(browser, DESKTOP)
    yield p
    p.close()


@pytest.fixture()
def phone(browser):
    p = Page(browser, PHONE)
    yield p
    p.close()


def _no_overlaps(boxes: list[dict]) -> None:
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not overlap(a, b), f"labels overlap: {a['text']!r} and {b['text']!r}"


def _centre_of(atlas, table: str, ident: str) -> tuple[float, float]:
    t = atlas.tables[table]
    g = t.loc[t["id"] == ident].geometry.iloc[0]
    c = g.representative_point()
    return c.y, c.x


# ------------------------------------------------------------------------- the district map


def test_district_grid_labels_only_where_they_fit(url, desktop, atlas):
    desktop.open(f"{url}/maps/?basemap=none")
    mapbox = desktop.js(MAP_BOX)
    labels = desktop.boxes(".geo-grid-label")
    assert len(labels) < len(atlas.tables["grids"])  # not all 27 piled up at the opening zoom
    _no_overlaps(labels)
    desktop.shot("district-open-desktop")
    lat, lon = _centre_of(atlas, "communities", "C01")
    desktop.view(lat, lon, 16)
    labels = desktop.boxes(".geo-grid-label")
    assert labels, "no grid label fits at zoom 16"
    everything = desktop.boxes(".geo-lbl")
    _no_overlaps(everything)
    for b in everything:
        assert inside(b, mapbox), f"label {b['text']!r} is cut at the edge of the map"
    codes = set(atlas.tables["grids"]["code"])
    assert any(b["text"].split("\n")[-1] in codes for b in labels)
    desktop.shot("district-z16-desktop")
    assert desktop.errors == []


def test_district_roads_are_drawn_and_named_when_zoomed_in(url, desktop, atlas):
    desktop.open(f"{url}/maps/?basemap=none")
    assert desktop.boxes(".geo-road-name") == []  # no names at the opening zoom
    assert desktop.js("() => document.querySelectorAll('.leaflet-geoRoads-pane path').length") > 50
    lat, lon = _centre_of(atlas, "communities", "C02")
    desktop.view(lat, lon, 16)
    names = desktop.boxes(".geo-road-name")
    known = set(atlas.tables["roads"]["name"].dropna())
    assert len(names) >= 3 and all(n["text"] in known for n in names)
    legend = desktop.page.locator(".geo-legend").inner_text()
    assert "道路" in legend
    desktop.shot("district-roads-desktop")


def _dot_over_building(page: Page) -> list[float] | None:
    """The centre (page px) of an enterprise dot drawn over a building, or None."""
    return page.js(
        """() => {
        const pane = GEO.map.getPane('geoEnterprises');
        const dots = [...pane.querySelectorAll('path')].map(p => p.getBoundingClientRect())
          .filter(r => r.width > 0 && r.left > 420 && r.right < 1100
                       && r.top > 60 && r.bottom < 700)
          .slice(0, 120).map(r => [r.left + r.width / 2, r.top + r.height / 2]);
        return dots.find(([x, y]) => document.elementsFromPoint(x, y)
          .some(e => e.classList && e.classList.contains('geo-buildings'))) || null; }"""
    )


def test_enterprise_dots_are_blue_above_buildings_and_open_their_popup(url, desktop, atlas):
    desktop.open(f"{url}/maps/?basemap=none")
    assert desktop.js("GEO.cfg.enterprises") == "tiles"
    lat, lon = _centre_of(atlas, "grids", "C01-G03")
    desktop.view(lat, lon, 18)
    desktop.page.wait_for_timeout(1500)  # the z18 tiles
    spot = _dot_over_building(desktop)
    assert spot, "no enterprise dot over a building in view"
    top = desktop.js(
        """([x, y]) => { const e = document.elementFromPoint(x, y);
        return [e.closest('.leaflet-geoEnterprises-pane') !== null, e.getAttribute('fill')]; }""",
        spot,
    )
    assert top == [True, "#1565c0"]  # the dot, in the legend's blue, above the building fill
    desktop.page.mouse.click(*spot)
    popup = desktop.page.locator(".leaflet-popup-content")
    popup.wait_for()
    text = popup.inner_text()
    assert "信用代码" in text  # the enterprise's popup, not the building's
    name = desktop.page.locator(".leaflet-popup-content h4").inner_text()
    row = atlas.enterprises[atlas.enterprises["name"] == name]
    assert len(row) >= 1 and row["credit_code"].iloc[0] in text
    desktop.page.wait_for_function(
        "a => (document.querySelector('.leaflet-popup-content') || {}).innerText.includes(a)",
        arg=str(row["address"].iloc[0]),
    )  # completed with the address from /enterprises/{id}/owner
    chain = str(row["chain"].iloc[0])  # not in the tile: fetched from the feature by id
    desktop.page.wait_for_function(
        "a => (document.querySelector('.leaflet-popup-content') || {}).innerText.includes(a)",
        arg=chain,
    )
    desktop.shot("district-enterprise-popup-desktop")
    assert desktop.errors == []


def test_the_legend_says_how_enterprises_are_drawn(url, desktop):
    desktop.open(f"{url}/maps/?basemap=none")
    district = desktop.page.locator(".geo-legend").inner_text()
    assert "聚合" not in district and "抽稀" in district  # vector tiles: thinned, not clustered
    desktop.open(f"{url}/maps/community/C01?basemap=none")
    assert "聚合" in desktop.page.locator(".geo-legend").inner_text()
    clusters = desktop.boxes(".marker-cluster")
    assert clusters and all(int(c["text"]) > 1 for c in clusters)  # and they do cluster


def _open_ground(atlas, frame: str, ident: str, clear_m: float) -> tuple[float, float]:
    """A point (lat, lon) inside feature ``ident`` of ``frame``, away from every building and
    park and ``clear_m`` metres from any enterprise: where a click lands on the area itself."""
    import numpy as np
    import shapely

    t = atlas.tables[frame]
    area = t.loc[t["id"] == ident].geometry.iloc[0]
    things = shapely.union_all(
        np.concatenate([atlas.tables["buildings"].geometry, atlas.tables["parks"].geometry])
    )
    ent = shapely.points(atlas.enterprises["lon"], atlas.enterprises["lat"])
    tree = shapely.STRtree(ent)
    w, s, e, n = area.bounds
    deg = clear_m / 100_000
    best = None
    for y in np.linspace(s, n, 25)[1:-1]:
        for x in np.linspace(w, e, 25)[1:-1]:
            p = shapely.Point(x, y)
            if not area.contains(p.buffer(deg)) or things.distance(p) < deg / 2:
                continue
            room = ent[tree.nearest(p)].distance(p)
            if room > deg and (best is None or room > best[0]):
                best = (room, y, x)
    assert best, f"no open ground in {ident}"
    return best[1], best[2]


def _click_at(page: Page, lat: float, lon: float, cls: str) -> None:
    """Click the map at (lat, lon), where a path of class ``cls`` must be what is hit."""
    spot = page.js(
        """a => { const p = GEO.map.latLngToContainerPoint([a[0], a[1]]),
                 r = GEO.map.getContainer().getBoundingClientRect();
                 return [r.left + p.x, r.top + p.y]; }""",
        [lat, lon],
    )
    hit = page.js("a => document.elementFromPoint(a[0], a[1]).getAttribute('class')", spot)
    assert cls in (hit or ""), f"the click would land on {hit}"
    page.page.mouse.click(*spot)


def test_a_click_inside_a_community_reaches_the_community(url, desktop, atlas):
    desktop.open(f"{url}/maps/?basemap=none")
    _click_at(desktop, *_open_ground(atlas, "communities", "C02", 90), "geo-communities")
    popup = desktop.page.locator(".leaflet-popup-content")
    popup.wait_for()
    text = popup.inner_text()
    assert "产业社区" in text and "四至" in text and "打开社区地图" in text
    assert any(n in text for n in atlas.tables["communities"]["name"])
    desktop.shot("district-community-popup-desktop")
    desktop.js("() => GEO.map.closePopup()")
    ground = _open_ground(atlas, "grids", "C01-G02", 25)
    desktop.view(*ground, 16)
    _click_at(desktop, *ground, "geo-grids")
    popup.wait_for()
    text = popup.inner_text()
    assert "网格编码" in text and "打开社区地图" in text  # the grid, naming its community


# ------------------------------------------------------------------------- search, title


def test_a_clicked_search_result_keeps_its_popup_open(url, desktop, atlas):
    e = atlas.enterprises
    row = e[atlas.ids_of("community", e["_community"].to_numpy()) == "C01"].iloc[11]
    desktop.open(f"{url}/maps/community/C01?basemap=none")
    desktop.page.locator(".geo-search input").fill(row["name"])
    desktop.page.locator(".geo-results li", has_text=row["name"]).first.click()
    popup = desktop.page.locator(".leaflet-popup-content", has_text=row["credit_code"])
    popup.wait_for(timeout=5000)
    desktop.page.wait_for_timeout(1500)
    assert popup.is_visible(), "the popup closed again after the click"
    desktop.shot("search-click-desktop")
    assert desktop.errors == []


@pytest.mark.parametrize("kind", ["desktop", "phone"])
@pytest.mark.parametrize("path", ["community/C01", "officer/{officer}"])
def test_the_back_link_is_laid_out(url, browser, atlas, kind, path):
    page = Page(browser, DESKTOP if kind == "desktop" else PHONE)
    try:
        officer = atlas.tables["officers"]["id"].iloc[0]
        page.open(f"{url}/maps/{path.format(officer=officer)}?basemap=none")
        link, title = page.box(".geo-back"), page.box(".geo-title")
        assert link["text"] == "← 区级总览"
        assert link["x1"] - link["x0"] > 60 and link["y1"] - link["y0"] < 30  # one line
        assert inside(link, title)
        for other in page.boxes(".geo-search, .leaflet-control-zoom"):
            assert not overlap(title, other) and not overlap(link, other)
        page.shot(f"back-link-{path.split('/')[0]}-{kind}")
    finally:
        page.close()


def test_district_title_links_are_readable(url, desktop, atlas):
    desktop.open(f"{url}/maps/?basemap=none")
    links = desktop.boxes(".geo-links a")
    assert [b["text"] for b in links] == list(atlas.tables["communities"]["name"])
    _no_overlaps(links)
    assert all(b["y1"] - b["y0"] < 26 for b in links)  # text lines, not 30 px button boxes
    assert len({round(b["y0"]) for b in links}) < len(links)  # several to a line
    title, search = desktop.box(".geo-title"), desktop.box(".geo-search")
    assert all(inside(b, title) for b in links) and not overlap(title, search)


# ------------------------------------------------------------------------- the officer's phone


def _busiest_officer(atlas) -> tuple[str, str]:
    """An officer and the building of theirs with the most enterprises."""
    from geo.maps.data import derived

    counts = derived(atlas).ent["building_id"].value_counts()
    best = max(
        (
            (int(counts.get(b, 0)), o.id, b)
            for o in atlas.tables["officers"].itertuples()
            for b in str(o.building_ids or "").split(";")
            if b
        ),
    )
    return best[1], best[2]


def test_officer_phone_tap_opens_the_building_clear_of_the_title(url, phone, atlas):
    officer, _ = _busiest_officer(atlas)
    phone.open(f"{url}/maps/officer/{officer}?basemap=none")
    phone.page.wait_for_timeout(800)
    # where a person taps: an enterprise cluster sitting on the building, brought just below
    # the title box (so a popup opening above it would go under the title)
    spot = phone.js(
        """() => { const m = GEO.map, r = m.getContainer().getBoundingClientRect();
        const title = document.querySelector('.geo-title').getBoundingClientRect();
        const under = (x, y) => document.elementsFromPoint(x, y)
            .find(e => e.classList && e.classList.contains('geo-mine'));
        const on = [...document.querySelectorAll('.marker-cluster')].map(e => {
            const b = e.getBoundingClientRect();
            return [b.left + b.width / 2, b.top + b.height / 2];
          }).find(([x, y]) => under(x, y));
        if (!on) return null;
        const path = under(on[0], on[1]);
        let name = null;
        GEO.layers.mine.eachLayer(l => { if (l._path === path) name = l.feature.properties.name; });
        m.panBy([0, on[1] - (title.bottom + 40)], {animate: false});
        return [on[0], title.bottom + 40, name]; }"""
    )
    assert spot, "no enterprise cluster on the officer's buildings"
    spot, name = spot[:2], spot[2]
    phone.page.wait_for_timeout(800)
    hit = phone.js("a => document.elementFromPoint(a[0], a[1]).closest('.marker-cluster')", spot)
    assert hit is not None  # the tap lands on the cluster icon over the building
    phone.page.touchscreen.tap(*spot)
    popup = phone.page.locator(".leaflet-popup-content")
    popup.wait_for()
    phone.page.wait_for_timeout(700)  # the pan that brings it into view
    text = popup.inner_text()
    assert name in text and "地址" in text and "网格" in text and "一长二员" in text
    assert phone.boxes(".leaflet-marker-icon.leaflet-cluster-anim") == []  # nothing spread
    title, pop = phone.box(".geo-title"), phone.box(".leaflet-popup-content-wrapper")
    assert not overlap(title, pop), "the popup opened under the title box"
    assert inside(pop, phone.js(MAP_BOX))
    for control in phone.boxes(".leaflet-control"):  # zoom, layers, legend: none covers it
        assert not overlap(control, pop), f"the popup is under {control['text']!r}"
    phone.shot("officer-tap-phone")
    spread = phone.page.locator(".geo-spread")
    assert spread.is_visible()
    spread.tap()
    phone.page.wait_for_timeout(800)
    assert phone.js("() => GEO.map._popup === null || !GEO.map.hasLayer(GEO.map._popup)")
    assert phone.errors == []


def test_officer_phone_list_links_are_touch_targets(url, phone, atlas):
    officer, _ = _busiest_officer(atlas)
    phone.open(f"{url}/maps/officer/{officer}?basemap=none")
    links = phone.boxes(".geo-panel a")
    assert links
    small = [b for b in links if b["y1"] - b["y0"] < 44]
    assert small == [], f"links shorter than 44 px: {small[:3]}"
    _no_overlaps(links)
    phone.page.locator(".geo-panel").scroll_into_view_if_needed()
    phone.shot("officer-list-phone")


def test_officer_phone_grid_labels_are_not_cut(url, phone, atlas):
    seen = 0
    for officer in atlas.tables["officers"]["id"].iloc[:6]:
        phone.open(f"{url}/maps/officer/{officer}?basemap=none")
        phone.settle()
        mapbox = phone.js(MAP_BOX)
        labels = phone.boxes(".geo-grid-label, .geo-label")
        seen += len(labels)
        for b in labels:
            assert inside(b, mapbox), f"{officer}: label {b['text']!r} is cut at the map's edge"
        _no_overlaps(labels)
    assert seen > 0
    phone.shot("officer-labels-phone")


# ------------------------------------------------------------------------- failures said


def test_no_internet_basemap_falls_back_with_a_notice(url, desktop):
    desktop.page.route(OSM, lambda route: route.abort("internetdisconnected"))
    desktop.open(f"{url}/maps/community/C01")  # the default base map: OpenStreetMap
    notice = desktop.page.locator(".geo-notice", has_text="底图")
    notice.wait_for(timeout=15_000)
    assert "无法载入" in notice.inner_text() and "无底图" in notice.inner_text()
    tile_layers = (
        "() => { let n = 0; GEO.map.eachLayer(l => { n += l instanceof L.TileLayer; }); return n; }"
    )
    assert desktop.js(tile_layers) == 0
    assert desktop.js("() => GEO.map.getContainer().classList.contains('geo-no-basemap')")
    desktop.page.wait_for_timeout(1500)
    failed = [e for e in desktop.errors if "ERR_" in e or "Failed to load" in e]
    assert len(failed) < 10, f"{len(failed)} console errors"
    assert [e for e in desktop.errors if e not in failed] == []
    for other in desktop.boxes(".geo-legend"):
        assert not overlap(desktop.box(".geo-notice"), other)
    desktop.shot("offline-basemap-desktop")


def test_a_failed_vectorgrid_script_leaves_the_page_working(url, desktop):
    desktop.page.route("**/Leaflet.VectorGrid*", lambda route: route.abort())
    desktop.open(f"{url}/maps/?basemap=none")
    notice = desktop.page.locator(".geo-notice", has_text="Leaflet.VectorGrid")
    assert notice.is_visible() and "企业图层" in notice.inner_text()
    assert "其余部分可正常使用" in notice.inner_text()
    assert desktop.page.locator(".geo-title").is_visible()
    assert desktop.page.locator(".geo-legend").is_visible()
    assert desktop.js("() => document.querySelectorAll('path.geo-grids').length") > 0
    assert not [e for e in desktop.errors if e.startswith("pageerror")]
    desktop.shot("no-vectorgrid-desktop")


def test_failed_enterprise_tiles_are_said(url, desktop):
    desktop.page.route(
        "**/tiles/enterprises/**", lambda route: route.fulfill(status=503, body="busy")
    )
    desktop.open(f"{url}/maps/?basemap=none")
    notice = desktop.page.locator(".geo-notice", has_text="企业图层")
    notice.wait_for(timeout=10_000)
    assert "瓦片载入失败" in notice.inner_text() and "503" in notice.inner_text()
    desktop.shot("enterprise-tiles-failed-desktop")


def test_a_failed_search_says_so(url, desktop):
    desktop.page.route("**/maps/search.json*", lambda route: route.abort())
    desktop.page.route("**/search?*", lambda route: route.abort())
    desktop.open(f"{url}/maps/community/C01?basemap=none")
    desktop.page.locator(".geo-search input").fill("火炬")
    result = desktop.page.locator(".geo-results li").first
    desktop.page.wait_for_function(
        "() => /搜索失败/.test((document.querySelector('.geo-results') || {}).innerText || '')",
        timeout=10_000,
    )
    assert "没有找到" not in result.inner_text()
    desktop.shot("search-failed-desktop")


def test_with_javascript_off_the_page_says_what_it_needs(url, browser):
    page = Page(browser, DESKTOP, java_script_enabled=False)
    try:
        page.page.goto(f"{url}/maps/?basemap=none")
        text = page.page.locator("body").inner_text()
        assert "需要浏览器启用 JavaScript" in text
        assert page.page.locator(".geo-noscript").is_visible()
        page.shot("noscript-desktop")
    finally:
        page.close()
