"""The maps in a real browser: a live `geo serve`, headless Chromium driven by Playwright.

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``) and the ``playwright`` Python
package (never ``playwright install``: the system Chromium is used). Without them the tests
skip with the reason on a laptop and FAIL when ``CI=true``. Every page is opened with
``?basemap=none``, so no request leaves the machine. Screenshots go to ``tests/artifacts/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from support import free_port

from geo.settings import SAMPLE_DIR

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


class Server:
    def __init__(self, tmp: Path, copy_sample) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = copy_sample(tmp / "maps.gpkg")  # the sample as `geo load` stores it
        env = {**os.environ, "GEO_REFRESH_SECONDS": "0.2", "GEO_DATA": str(SAMPLE_DIR)}
        self.log = open(tmp / "serve.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "geo.cli", "serve", "--db", self.db, "--port", str(self.port)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"geo serve exited: {(tmp / 'serve.log').read_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("geo serve did not answer /health within 90 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

    def atlas(self):
        from geo.atlas import Atlas
        from geo.store import open_store

        store = open_store(self.db)
        try:
            return Atlas(store.snapshot())
        finally:
            store.close()


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory, copy_sample):
    s = Server(tmp_path_factory.mktemp("serve"), copy_sample)
    yield s
    s.stop()


class Page:
    """A page with its console errors collected."""

    def __init__(self, browser, viewport: dict[str, int]) -> None:
        self.context = browser.new_context(viewport=viewport, locale="zh-CN")
        self.context.set_default_timeout(20_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.external: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("request", self._request)

    def _request(self, request) -> None:
        if not request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
            self.external.append(request.url)

    def open(self, url: str, timeout: float = 20_000) -> None:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        self.page.goto(url)
        try:
            self.page.wait_for_function(
                "() => window.GEO && window.GEO.ready === true", timeout=timeout
            )
        except PlaywrightTimeout:
            pytest.fail(f"{url} never became ready; console errors: {self.errors}")

    def js(self, script: str, arg=None):
        return self.page.evaluate(script, arg)

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def check_clean(self) -> None:
        assert self.errors == [], f"JavaScript errors: {self.errors}"
        assert self.external == [], f"requests left the machine: {self.external[:5]}"

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


def _community_expectations(atlas, cid: str) -> dict[str, int]:
    grids = atlas.tables["grids"]
    gids = set(grids.loc[grids["community_id"] == cid, "id"])
    ent = atlas.ids_of("community", atlas.enterprises["_community"].to_numpy())
    return {
        "community": 1,
        "grids": len(gids),
        "parks": int(atlas.tables["parks"]["grid_id"].isin(gids).sum()),
        "buildings": int(atlas.tables["buildings"]["grid_id"].isin(gids).sum()),
        "enterprises": int((ent == cid).sum()),
    }


def test_community_map_draws_every_feature(server, desktop, phone):
    want = _community_expectations(server.atlas(), "C01")
    desktop.open(f"{server.url}/maps/community/C01?basemap=none")
    assert desktop.js("GeoMaps.counts()") == want
    drawn = desktop.js(
        """() => Object.fromEntries(['community', 'grids', 'parks', 'buildings'].map(
            k => [k, document.querySelectorAll('path.geo-' + k).length]))"""
    )
    assert drawn == {k: want[k] for k in drawn}
    # every clustered enterprise is drawn: cluster icons + loose markers add up (counted once
    # the fit-to-bounds zoom animation is over: during it, both zooms' clusters are on the map)
    shown = """() => { const c = GEO.cluster; let n = 0;
        c._featureGroup.eachLayer(l => { n += l.getChildCount ? l.getChildCount() : 1; });
        return n; }"""
    settled = f"() => !GEO.map._animatingZoom && ({shown})() === {want['enterprises']}"
    try:
        desktop.page.wait_for_function(settled, timeout=10_000)
    except Exception:  # report the count actually drawn
        assert desktop.js(shown) == want["enterprises"]
    assert desktop.page.locator(".geo-legend").is_visible()
    assert desktop.page.locator(".leaflet-control-layers").count() == 1
    desktop.shot("community-C01-desktop")
    desktop.check_clean()
    phone.open(f"{server.url}/maps/community/C01?basemap=none")
    phone.shot("community-C01-phone")
    assert phone.js("document.documentElement.scrollWidth") <= PHONE["width"]
    phone.check_clean()


def test_clicking_an_enterprise_shows_its_popup_with_grid_code(server, desktop):
    atlas = server.atlas()
    e = atlas.enterprises
    row = e[atlas.ids_of("community", e["_community"].to_numpy()) == "C01"].iloc[0]
    grid = atlas.levels["grid"].table.iloc[int(row["_grid"])]
    desktop.open(f"{server.url}/maps/community/C01?basemap=none")
    # zoom to the marker at the deepest zoom; if it still shares a cluster, spiderfy that
    desktop.js(
        "id => { const m = GEO.registry[id];"
        " GEO.map.setView(m.getLatLng(), GEO.map.getMaxZoom(), {animate: false}); }",
        row["id"],
    )
    desktop.page.wait_for_timeout(800)
    desktop.js(
        "id => { const m = GEO.registry[id], p = GEO.cluster.getVisibleParent(m);"
        " if (!m._icon && p && p.spiderfy) p.spiderfy(); }",
        row["id"],
    )
    desktop.page.wait_for_function("id => !!GEO.registry[id]._icon", arg=row["id"])
    desktop.page.wait_for_timeout(500)  # the spiderfy animation ends
    box = desktop.js(
        "id => { const r = GEO.registry[id]._icon.getBoundingClientRect();"
        " return [r.x + r.width / 2, r.y + r.height / 2]; }",
        row["id"],
    )
    desktop.page.mouse.click(*box)
    popup = desktop.page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5000)
    text = popup.inner_text()
    assert row["name"] in text and row["credit_code"] in text
    assert grid["code"] in text
    desktop.shot("community-C01-popup-desktop")
    desktop.check_clean()


def test_search_finds_a_building_by_pinyin_and_initials(server, desktop):
    from pypinyin import Style, lazy_pinyin

    atlas = server.atlas()
    b = atlas.tables["buildings"]
    grids = atlas.tables["grids"]
    c01 = set(grids.loc[grids["community_id"] == "C01", "id"])
    name = b.loc[b["grid_id"].isin(c01), "name"].iloc[3]
    desktop.open(f"{server.url}/maps/community/C01?basemap=none")
    search = desktop.page.locator(".geo-search input")
    for query in (
        "".join(lazy_pinyin(name)),
        "".join(lazy_pinyin(name, style=Style.FIRST_LETTER)).lower(),
    ):
        search.fill(query)
        hit = desktop.page.locator(".geo-results li", has_text=name).first
        hit.wait_for(timeout=10_000)
    hit.click()
    popup = desktop.page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=10_000)
    assert name in popup.inner_text()
    desktop.check_clean()


def test_officer_map_fits_the_officers_buildings(server, desktop, phone):
    atlas = server.atlas()
    o = atlas.tables["officers"].iloc[0]
    ids = o["building_ids"].split(";")
    b = atlas.tables["buildings"].set_index("id").loc[ids]
    w, s, e, n = b.total_bounds
    for page, size in ((desktop, "desktop"), (phone, "phone")):
        page.open(f"{server.url}/maps/officer/{o['id']}?basemap=none")
        page.page.wait_for_timeout(300)
        view = page.js(
            "(() => { const b = GEO.map.getBounds();"
            " return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; })()"
        )
        assert view[0] <= w and view[1] <= s and view[2] >= e and view[3] >= n
        fit = page.js(f"GEO.map.getBoundsZoom(L.latLngBounds([[{s}, {w}], [{n}, {e}]]))")
        assert page.js("GEO.map.getZoom()") >= fit - 1  # fitted to them (padding), not the district
        assert page.js("GeoMaps.counts().mine") == len(ids)
        panel = page.page.locator(".geo-panel")
        assert panel.is_visible()
        for name in b["name"]:
            assert name in panel.inner_text()
        assert o["phone"] not in page.page.content()  # personal data stays out
        assert (
            page.js("document.documentElement.scrollWidth")
            <= (DESKTOP if size == "desktop" else PHONE)["width"]
        )
        page.shot(f"officer-{o['id']}-{size}")
        page.check_clean()


def test_district_map_becomes_interactive(server, desktop):
    """Measures (not asserts) the time to interactive; the figure goes to tests/artifacts/."""
    desktop.open(f"{server.url}/maps/?basemap=none", timeout=30_000)
    ms = desktop.js("GEO.interactiveAt")
    tiles = desktop.js(
        "performance.getEntriesByType('resource').filter(r => r.name.includes('/tiles/')).length"
    )
    print(f"\ndistrict map interactive after {ms:.0f} ms (navigation start), {tiles} tiles")
    assert desktop.js("GEO.cfg.enterprises") == "tiles"
    assert tiles > 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "district-interactive-ms.txt").write_text(f"{ms:.0f}\n")
    desktop.shot("district-desktop")
    desktop.check_clean()


# -------------------------------------------------------------------------- the editor


@pytest.fixture()
def edit_server(browser, tmp_path_factory, copy_sample):
    """A server of its own: the editor writes to the store."""
    s = Server(tmp_path_factory.mktemp("edit"), copy_sample)
    yield s
    s.stop()


def _drag_vertex(page: Page, index: int, toward: float = 0.35) -> None:
    """Drag vertex ``index`` of the boundary a fraction of the way toward its centre."""
    pts = page.js(
        """i => { const l = GEO.editor.layer, m = GEO.map;
           const ring = l.getLatLngs()[0]; const v = ring[i % ring.length];
           const c = l.getBounds().getCenter();
           const a = m.latLngToContainerPoint(v), b = m.latLngToContainerPoint(c);
           const r = m.getContainer().getBoundingClientRect();
           return [a.x + r.x, a.y + r.y, b.x + r.x, b.y + r.y]; }""",
        index,
    )
    x0, y0, x1, y1 = pts
    x, y = x0 + (x1 - x0) * toward, y0 + (y1 - y0) * toward
    mouse = page.page.mouse
    mouse.move(x0, y0)
    mouse.down()
    for k in range(1, 11):
        mouse.move(x0 + (x - x0) * k / 10, y0 + (y - y0) * k / 10)
    mouse.up()
    page.page.wait_for_timeout(200)


def _open_corners(page: Page) -> list[int]:
    """Vertex indexes of the boundary, those with the longest edges on both sides first: a
    vertex dragged there moves clear of every road (so snapping keeps the polygon valid)."""
    return page.js(
        """() => { const m = GEO.map, ring = GEO.editor.layer.getLatLngs()[0], k = ring.length;
           const p = ring.map(v => m.latLngToContainerPoint(v));
           const room = p.map((q, i) => Math.min(q.distanceTo(p[(i + k - 1) % k]),
                                                 q.distanceTo(p[(i + 1) % k])));
           return [...room.keys()].sort((a, b) => room[b] - room[a]); }"""
    )


def test_editor_preview_save_and_stale_save(edit_server, desktop, issue_headers):
    url = edit_server.url
    planner = issue_headers(edit_server.db, "planner", "planner-browser")
    before = httpx.get(f"{url}/communities/C01").json()
    desktop.open(f"{url}/maps/editor/C01?basemap=none")
    desktop.page.wait_for_function("() => GEO.editor && GEO.editor.ready")
    desktop.page.fill("#geo-token", planner["Authorization"].removeprefix("Bearer "))
    assert desktop.js("GEO.editor.version") == before["properties"]["version"]
    assert desktop.page.locator(".geo-road-label").count() > 5  # roads labelled by name
    # edit mode (GeoMan toolbar), then move a vertex toward the inside
    desktop.page.locator(".leaflet-pm-icon-edit").click()
    first, second = _open_corners(desktop)[:2]
    _drag_vertex(desktop, first)
    desktop.page.locator(".leaflet-pm-icon-edit").click()  # finish editing
    desktop.page.locator("#geo-preview").click()
    desktop.page.wait_for_function(
        "() => GEO.editor.lastPreview || (GEO.editor.lastMessage || {}).kind === 'error'"
    )
    assert desktop.js("GEO.editor.lastPreview"), desktop.js("GEO.editor.lastMessage")
    assert "预览" in desktop.page.locator("#geo-message").inner_text()
    desktop.shot("editor-preview-desktop")
    desktop.page.fill("#geo-reason", "测试：北界调整")
    desktop.page.locator("#geo-save").click()
    desktop.page.wait_for_function(
        "() => GEO.editor.saved === 1 || GEO.editor.lastMessage.kind === 'error'"
    )
    assert desktop.js("GEO.editor.lastMessage.kind") == "ok", desktop.js("GEO.editor.lastMessage")
    after = httpx.get(f"{url}/communities/C01").json()
    assert after["properties"]["version"] == before["properties"]["version"] + 1
    assert after["geometry"] != before["geometry"]
    # someone else saves in between: the page's version is stale
    other = httpx.put(
        f"{url}/communities/C01/boundary",
        json={"geometry": before["geometry"], "reason": "另一位规划员还原"},
        headers={"If-Match": f'"{after["properties"]["version"]}"', **planner},
    )
    assert other.status_code == 200, other.text
    _drag_vertex(desktop, second)
    desktop.page.locator("#geo-save").click()
    desktop.page.wait_for_function("() => GEO.editor.lastMessage.kind === 'error'")
    text = desktop.page.locator("#geo-message").inner_text()
    assert "已被他人修改" in text
    desktop.shot("editor-412-desktop")
    desktop.errors = [e for e in desktop.errors if "412" not in e]  # the browser logs the 412
    desktop.check_clean()


def test_search_opens_an_enterprise_popup(server, desktop):
    atlas = server.atlas()
    e = atlas.enterprises
    row = e[atlas.ids_of("community", e["_community"].to_numpy()) == "C01"].iloc[7]
    desktop.open(f"{server.url}/maps/community/C01?basemap=none")
    desktop.page.locator(".geo-search input").fill(row["name"])
    desktop.page.locator(".geo-results li", has_text=row["name"]).first.click()
    popup = desktop.page.locator(".leaflet-popup-content", has_text=row["credit_code"])
    popup.wait_for(timeout=5000)
    desktop.check_clean()
