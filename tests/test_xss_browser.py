"""Stored XSS in a real browser: a live `geo serve` of a hostile store, headless Chromium.

Every text a map shows (names, addresses, four-to text, industries, officers' names and phones,
street and road names) holds a payload (tests/hostile_names.py: ``<img src=x onerror=…>``,
``</title><script>…``, ``"><svg onload=…>``, ``javascript:…``). Each map is opened, its features
clicked and hovered (popups, tooltips), the search typed into and its results clicked; no
dialog may open, no injected element may appear, and each payload must show as plain text.
The pages carry a Content-Security-Policy that refuses an injected inline script.

Needs ``/usr/bin/chromium`` and the ``playwright`` package, exactly as tests/test_maps_browser.py:
without them the tests skip on a laptop and FAIL when ``CI=true``. Pages use ``?basemap=none``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from hostile_names import PAYLOADS, hostile_sample
from support import free_port

MARKS = [p.split(" ")[0][:12] for p in PAYLOADS if "<" in p]  # what a payload shows as text
INJECTED = "img[onerror], svg[onload], iframe, [onmouseover]"

# records CSP violations from the first moment of the page (init scripts run outside the CSP)
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(
    e.effectiveDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sample || '')));
"""

# click and hover every shown feature of every folium layer (first 14 of each: two rounds of
# the payloads), then open each feature tooltip bound by maps.js (editor roads, neighbours);
# returns the text of each popup and tooltip shown
POKE = """
() => {
  const m = GEO.map, out = [];
  const shown = () => document.querySelectorAll('.leaflet-popup-content, .leaflet-tooltip')
    .forEach(e => out.push(e.innerText));
  Object.values(GEO.layers).forEach(g => {
    if (!g || !g.getLayers || (L.MarkerClusterGroup && g instanceof L.MarkerClusterGroup)) return;
    g.getLayers().slice(0, 14).forEach(l => {
      const c = l.getBounds ? l.getBounds().getCenter() : (l.getLatLng && l.getLatLng());
      if (!c) return;
      l.fire('click', {latlng: c}, true);
      l.fire('mouseover', {latlng: c}, true);
      shown();
      l.fire('mouseout', {latlng: c}, true);
      m.closePopup();
    });
  });
  let n = 0;
  m.eachLayer(l => {
    const t = l.getTooltip && l.getTooltip();
    if (!t || t.options.permanent || !l.feature || n >= 80) return;
    n++;
    l.openTooltip(l.getBounds ? l.getBounds().getCenter() : undefined);
    shown();
    l.closeTooltip();
  });
  // enterprise markers (clustered): their popup content, shown in a popup
  const reg = GEO.registry;
  Object.keys(reg).filter(id => GEO.cluster && GEO.cluster.hasLayer(reg[id])).slice(0, 14)
    .forEach(id => {
      const mk = reg[id], p = mk.getPopup();
      L.popup().setLatLng(mk.getLatLng()).setContent(p._content(mk)).openOn(m);
      shown();
      m.closePopup();
    });
  return out;
}
"""


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):
    """`geo serve` of a new store loaded from the hostile copy of the sample."""
    tmp = tmp_path_factory.mktemp("xss")
    data = hostile_sample(tmp / "data")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp / "serve.log", "w")  # noqa: SIM115 - closed below
    cmd = [sys.executable, "-m", "geo.cli", "serve", "--db", str(tmp / "xss.gpkg")]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--data", str(data)],
        env={**os.environ, "GEO_REFRESH_SECONDS": "0.2"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"geo serve exited: {(tmp / 'serve.log').read_text()}")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("geo serve did not answer /health within 90 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


class Page:
    """A page that records dialogs (an alert is an XSS), console errors and CSP violations."""

    def __init__(self, browser) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.context.set_default_timeout(20_000)
        self.context.add_init_script(WATCH)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def open(self, url: str):
        response = self.page.goto(url)
        self.page.wait_for_function("() => window.GEO && window.GEO.ready === true", timeout=30_000)
        return response

    def js(self, script: str, arg=None):
        return self.page.evaluate(script, arg)

    def check_safe(self) -> None:
        """No dialog, no injected element, no script refused (nothing needed the CSP)."""
        self.page.wait_for_timeout(300)  # an onerror of a broken image fires late
        assert self.dialogs == [], self.dialogs
        assert self.js(f"document.querySelectorAll({INJECTED!r}).length") == 0
        assert self.js("window.__csp") == []
        assert self.errors == [], self.errors


@pytest.fixture()
def page(browser):
    p = Page(browser)
    yield p
    p.context.close()


def _policy(response) -> str:
    policy = response.headers.get("content-security-policy", "")
    script_src = next((d for d in policy.split(";") if d.strip().startswith("script-src")), "")
    assert script_src and "'unsafe-inline'" not in script_src, policy
    for directive in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in policy
    return policy


def _shows_payloads_as_text(texts: list[str]) -> None:
    joined = "\n".join(t or "" for t in texts)
    assert any(mark in joined for mark in MARKS), texts[:5]


def _search(page: Page, query: str) -> list[str]:
    """Type ``query`` into the search box; the results' text (then open the first)."""
    box = page.page.locator(".geo-search input")
    box.fill("")
    box.type(query, delay=20)
    first = page.page.locator(".geo-results li:not(.geo-none)").first
    first.wait_for(timeout=10_000)
    texts = page.page.locator(".geo-results li").all_inner_texts()
    first.click()
    page.page.wait_for_timeout(300)
    texts += page.page.locator(".leaflet-popup-content").all_inner_texts()
    return texts


def test_district_map(server, page):
    response = page.open(f"{server}/maps/?basemap=none")
    _policy(response)
    # hover the communities with the mouse (their tooltip is the name)
    points = page.js(
        """() => GEO.layers.communities.getLayers().map(l => {
             const p = GEO.map.latLngToContainerPoint(l.getBounds().getCenter());
             const r = GEO.map.getContainer().getBoundingClientRect();
             return [p.x + r.x, p.y + r.y]; })"""
    )
    for x, y in points:
        page.page.mouse.move(x, y)
        page.page.wait_for_timeout(50)
    texts = page.js(POKE)
    _shows_payloads_as_text(texts)
    _shows_payloads_as_text([page.page.locator(".geo-title").inner_text()])
    _shows_payloads_as_text(_search(page, "img"))
    _search(page, "alert")
    page.check_safe()


@pytest.mark.parametrize("cid", ["C01", "C02", "C03"])
def test_community_map(server, page, cid):
    response = page.open(f"{server}/maps/community/{cid}?basemap=none")
    _policy(response)
    title = page.page.title()
    assert "产业社区地图" in title and any(m in title for m in [*MARKS, "javascript"]), title
    _shows_payloads_as_text(page.js(POKE))
    _shows_payloads_as_text(_search(page, "script"))
    _search(page, "svg")
    page.check_safe()


def test_officer_map(server, page):
    response = page.open(f"{server}/maps/officer/O0001?basemap=none")
    _policy(response)
    panel = page.page.locator(".geo-panel")
    _shows_payloads_as_text([panel.inner_text()])
    _shows_payloads_as_text(page.js(POKE))
    for link in page.page.locator(".geo-panel a").all()[:6]:
        link.click()
        page.page.wait_for_timeout(150)
    page.check_safe()


@pytest.mark.parametrize("cid", ["C01", "C02"])
def test_editor(server, page, cid):
    response = page.open(f"{server}/maps/editor/{cid}?basemap=none")
    _policy(response)
    page.page.wait_for_function("() => GEO.editor && GEO.editor.ready")
    _shows_payloads_as_text([page.page.locator(".geo-four").inner_text()])
    _shows_payloads_as_text(page.page.locator(".geo-road-label").all_inner_texts())
    _shows_payloads_as_text(page.js(POKE))
    page.check_safe()


def test_an_injected_inline_script_is_refused(server, page):
    """Were a name ever written raw, the policy still refuses it: a script and an event handler
    added to the served page do not run, the browser reports the violation, the map still works."""

    def inject(route) -> None:
        response = route.fetch()
        body = response.text().replace(
            "</body>",
            "<script>window.__injected = 1;</script>"
            '<img src="data:," onerror="window.__handler = 1"></body>',
        )
        route.fulfill(response=response, body=body)

    page.page.route("**/maps/community/C01*", inject)
    response = page.open(f"{server}/maps/community/C01?basemap=none")
    _policy(response)
    page.page.wait_for_timeout(300)
    assert page.js("window.__injected === undefined && window.__handler === undefined")
    violations = page.js("window.__csp")
    assert any(v.startswith("script-src") for v in violations), violations
    assert page.js("GeoMaps.counts().grids") > 0
