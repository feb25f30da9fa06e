"""The boundary editor in a real browser, as a planner uses it at 1366×768: a live `geo serve`
on a copy of the sample store, headless Chromium driven by Playwright (see `support.chromium`:
skips on a laptop without it, FAILS when ``CI=true``). Pages use ``?basemap=none``.
Screenshots go to ``tests/artifacts/editor-*.png``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import shapely
from shapely.geometry import box, mapping
from shapely.geometry.polygon import orient
from support import geo_serve

from geo.errors import InvalidInput
from geo.ids import check_reason
from geo.service import boundaries
from geo.service.boundaries import BoundaryDraft

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
LAPTOP = {"width": 1366, "height": 768}
WEST = "东至信诚路、南至南环路、西至伟业路、北至江南大道"


@pytest.fixture(scope="module")
def server(browser, writable):
    """A `geo serve` of the module's own store copy, and a planner token for it."""
    db, token = writable
    with geo_serve(db) as url:
        yield url, token


class Editor:
    """The editor page of one community, its console errors collected."""

    def __init__(self, browser, url: str, cid: str = "C01", viewport=LAPTOP) -> None:
        self.context = browser.new_context(viewport=viewport, locale="zh-CN")
        self.context.set_default_timeout(30_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.goto(f"{url}/maps/editor/{cid}?basemap=none")
        self.page.wait_for_function(
            "() => window.GEO && GEO.ready && GEO.editor && GEO.editor.ready"
        )

    def js(self, script: str, arg=None):
        return self.page.evaluate(script, arg)

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"editor-{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def preview(self) -> None:
        """Click 预览 and wait for its answer (a preview, or an error message)."""
        self.js("() => { GEO.editor.lastPreview = null; GEO.editor.lastMessage = null; }")
        self.page.locator("#geo-preview").click()
        self.page.wait_for_function(
            "() => GEO.editor.lastPreview || (GEO.editor.lastMessage || {}).kind === 'error'"
        )

    def draw(self, geometry: dict) -> None:
        """Give the boundary being edited the shape ``geometry`` (as dragging its vertices would;
        the loaded boundary, which 还原 goes back to, stays)."""
        self.js(
            "g => GEO.editor.layer.setLatLngs(L.GeoJSON.geometryToLayer(g).getLatLngs())", geometry
        )

    def message(self) -> str:
        return self.page.locator("#geo-message").inner_text()

    def close(self) -> None:
        self.context.close()


@pytest.fixture()
def editor(browser, server):
    url, token = server
    page = Editor(browser, url)
    page.page.fill("#geo-token", token)
    yield page
    assert page.errors == [], page.errors
    page.close()


def english(text: str) -> list[str]:
    """Latin words left in a Chinese message: ids (C01, S03, P02), `geo check`, RFC 7946 and
    words inside a Chinese name (德信AI产业园) aside."""
    text = re.sub(r"\b[A-Z]\d+\b|geo check|RFC 7946", "", text)
    return re.findall(r"(?<![\u4e00-\u9fff])[A-Za-z]{2,}(?![\u4e00-\u9fff])", text)


def cut_north(url: str) -> dict:
    """Torch without its part north of 30.187° (~167,000 m², three parks, many enterprises)."""
    torch = shapely.geometry.shape(httpx.get(f"{url}/communities/C01").json()["geometry"])
    minx, miny, maxx, _ = torch.bounds
    return mapping(orient(shapely.intersection(torch, box(minx - 1, miny - 1, maxx + 1, 30.187))))


# --------------------------------------------------------------------- the vertex handle


def _short_edge_vertex(page: Editor) -> dict:
    """The loaded boundary with a vertex added 8 m from one of its corners, to the south (where
    GeoMan draws the add-vertex handle over the corner): as a surveyed boundary has them. The
    map zoomed to the corner at z18: the new vertex 15 px away, the two vertex handles side by
    side, the add-vertex handle between them over half of the corner's."""
    found = page.js(
        """() => { const m = GEO.map, ring = GEO.editor.loaded.coordinates[0].slice(0, -1);
           const k = ring.length, ll = c => L.latLng(c[1], c[0]);
           for (let i = 1; i < k - 1; i++) {
             const v = ll(ring[i]), prev = ll(ring[i - 1]), next = ll(ring[i + 1]);
             if (m.distance(v, prev) < 60 || m.distance(v, next) < 60) continue;
             if (ring.some((w, j) => j !== i && m.distance(v, ll(w)) < 40)) continue;
             const n = next.lat < prev.lat ? next : prev, t = 8 / m.distance(v, n);
             const added = [v.lng + (n.lng - v.lng) * t, v.lat + (n.lat - v.lat) * t];
             const at = n === next ? i + 1 : i;
             ring.splice(at, 0, added);
             ring.push(ring[0]);
             GEO.editor.setBoundary({ type: 'Polygon', coordinates: [ring] });
             return { i: n === next ? i : i + 1, k: k + 1, lat: v.lat, lng: v.lng,
                      near: { lat: added[1], lng: added[0] } };
           }
           return null; }"""
    )
    assert found, "the sample boundary has no corner with long edges on both sides"
    page.js("v => GEO.map.setView([v.lat, v.lng], 18, { animate: false })", found)
    page.page.wait_for_timeout(300)
    return found


def test_dragging_a_vertex_next_to_a_short_edge_moves_it_and_adds_none(editor: Editor) -> None:
    v = _short_edge_vertex(editor)
    editor.page.locator(".leaflet-pm-icon-edit").click()  # GeoMan's edit mode, as a person does
    editor.page.wait_for_timeout(300)
    start = editor.js(  # on the corner's handle, 4 px from its centre toward the new vertex
        """v => { const m = GEO.map, p = m.latLngToContainerPoint([v.lat, v.lng]);
                  const q = m.latLngToContainerPoint([v.near.lat, v.near.lng]);
                  const r = m.getContainer().getBoundingClientRect(), d = p.distanceTo(q);
                  return [p.x + r.x + 4 * (q.x - p.x) / d, p.y + r.y + 4 * (q.y - p.y) / d]; }""",
        v,
    )
    # what a person sees there is the corner's handle, not the add-vertex one
    on_top = editor.js(
        "xy => { const e = document.elementFromPoint(xy[0], xy[1]); return e && e.className; }",
        start,
    )
    editor.shot("short-edge-before")
    assert "marker-icon" in on_top and "marker-icon-middle" not in on_top, on_top
    away = editor.js(  # 40 px away from the boundary's centre
        """xy => { const m = GEO.map, r = m.getContainer().getBoundingClientRect();
           const c = m.latLngToContainerPoint(GEO.editor.layer.getBounds().getCenter());
           const dx = xy[0] - r.x - c.x, dy = xy[1] - r.y - c.y, n = Math.hypot(dx, dy);
           return [xy[0] + 40 * dx / n, xy[1] + 40 * dy / n]; }""",
        start,
    )
    mouse = editor.page.mouse
    mouse.move(*start)
    mouse.down()
    for s in range(1, 11):
        mouse.move(
            start[0] + (away[0] - start[0]) * s / 10, start[1] + (away[1] - start[1]) * s / 10
        )
    mouse.up()
    editor.page.wait_for_timeout(300)
    editor.shot("short-edge-after")
    # where the corner should be: moved as far as the mouse (Leaflet keeps the grab offset)
    dropped = editor.js(
        """a => { const m = GEO.map, p = m.latLngToContainerPoint([a.v.lat, a.v.lng]);
                  const ll = m.containerPointToLatLng([p.x + a.dx, p.y + a.dy]);
                  return [ll.lng, ll.lat]; }""",
        {"v": v, "dx": away[0] - start[0], "dy": away[1] - start[1]},
    )
    with editor.page.expect_request(lambda r: r.url.endswith("/boundary/preview")) as req:
        editor.preview()
    sent = json.loads(req.value.post_data)["geometry"]["coordinates"][0]
    assert len(sent) == v["k"] + 1, f"{len(sent) - 1} vertices sent, the boundary had {v['k']}"
    moved = shapely.Point(sent[v["i"]])
    assert moved.distance(shapely.Point(v["lng"], v["lat"])) > 1e-4  # the corner moved ~20 m
    assert moved.distance(shapely.Point(dropped)) < 3e-5, (sent[v["i"]], dropped)  # to ~1 m
    original = editor.js("() => GEO.editor.loaded.coordinates[0]")
    assert len(original) == len(sent)
    others = [
        k for k in range(v["k"]) if k != v["i"]
        and shapely.Point(sent[k]).distance(shapely.Point(original[k])) > 1e-6
    ]  # fmt: skip
    assert others == [], f"vertices {others} moved too"


# ------------------------------------------------------------- preview: marks and layout


def _rects(page: Editor) -> list[dict]:
    """Every Leaflet control on the page with its box."""
    return page.js(
        """() => [...document.querySelectorAll('.leaflet-control-container .leaflet-control')]
             .map(e => { const r = e.getBoundingClientRect();
               return { name: e.className, x: r.left, y: r.top, r: r.right, b: r.bottom }; })
             .filter(q => q.r > q.x && q.b > q.y)"""
    )


def _overlaps(rects: list[dict]) -> list[tuple[str, str]]:
    out = []
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            if a["x"] < b["r"] and b["x"] < a["r"] and a["y"] < b["b"] and b["y"] < a["b"]:
                out.append((a["name"], b["name"]))
    return out


def test_preview_marks_the_enterprises_that_change_community(editor: Editor, server) -> None:
    url, _ = server
    editor.draw(cut_north(url))
    editor.preview()
    preview = editor.js("() => GEO.editor.lastPreview")
    assert preview, editor.message()
    moved = preview["enterprises"]
    assert len(moved) > 20
    marks = editor.page.locator("path.geo-moved")
    assert marks.count() == len(moved)
    colour = editor.js("() => GEO.cfg.movedColor")
    assert marks.first.get_attribute("fill") == colour
    assert f"标出改变所属社区的 {len(moved)} 家企业" in editor.message()
    assert "将改变所属社区的企业" in editor.page.locator(".geo-legend").inner_text()
    # the marks sit where the enterprises are
    at = editor.js(
        "() => GEO.editor.preview.getLayers().map(l => [l.getLatLng().lng, l.getLatLng().lat])"
    )
    assert sorted(map(tuple, at)) == sorted((e["lon"], e["lat"]) for e in moved)
    # and a person sees them: every mark on the map, none under the panel or the legend
    covered = editor.js(
        """() => { const m = GEO.map, box = m.getContainer().getBoundingClientRect();
           const over = [...document.querySelectorAll('.geo-editor, .geo-legend')]
             .map(e => e.getBoundingClientRect());
           return GEO.editor.preview.getLayers().filter(l => {
             const p = m.latLngToContainerPoint(l.getLatLng()), x = p.x + box.x, y = p.y + box.y;
             return x < box.left || x > box.right || y < box.top || y > box.bottom ||
               over.some(r => x >= r.left && x <= r.right && y >= r.top && y <= r.bottom); })
             .length; }"""
    )
    assert covered == 0, f"{covered} of {len(moved)} marks hidden"
    editor.shot("preview-marks")
    # at 1366×768 nothing covers anything: panel, legend, layers, toolbar, title, scale
    rects = _rects(editor)
    assert _overlaps(rects) == [], rects
    assert all(r["x"] >= 0 and r["y"] >= 0 and r["r"] <= 1366 and r["b"] <= 768 for r in rects)
    # 还原 (cancel) takes the marks away; the next preview replaces them
    editor.page.locator("#geo-reset").click()
    assert marks.count() == 0
    editor.preview()
    assert editor.js("() => GEO.editor.lastPreview.counts.enterprises") == 0
    assert marks.count() == 0


def test_legend_and_panel_do_not_overlap_when_the_legend_opens(editor: Editor, server) -> None:
    url, _ = server
    editor.draw(cut_north(url))
    editor.preview()
    head = editor.page.locator(".geo-legend-head")
    for _ in range(2):  # collapse, then open again
        head.click()
        editor.page.wait_for_timeout(100)
        assert _overlaps(_rects(editor)) == []
    editor.page.set_viewport_size({"width": 1280, "height": 640})
    editor.page.wait_for_timeout(300)
    assert _overlaps(_rects(editor)) == [], _rects(editor)


# --------------------------------------------------------------------- messages in Chinese


def test_a_self_intersecting_boundary_is_explained_in_chinese(editor: Editor, server) -> None:
    url, _ = server
    torch = shapely.geometry.shape(httpx.get(f"{url}/communities/C01").json()["geometry"])
    (x0, y0, x1, y1) = torch.bounds
    bow = [[x0 + 0.002, y0 + 0.002], [x1 - 0.002, y1 - 0.002], [x1 - 0.002, y0 + 0.002],
           [x0 + 0.002, y1 - 0.002], [x0 + 0.002, y0 + 0.002]]  # fmt: skip
    editor.draw({"type": "Polygon", "coordinates": [bow]})
    editor.preview()
    text = editor.message()
    editor.shot("self-intersection")
    assert "不是有效的多边形" in text and "边相互交叉" in text and "经度" in text, text
    assert english(text) == [], text
    assert editor.page.locator("path.geo-problem").count() >= 1  # and marked on the map
    # a boundary across the street's edge: the refused preview's problems, in Chinese
    east = shapely.affinity.translate(torch, 0.003, 0)
    editor.draw(mapping(east))
    editor.preview()
    text = editor.message()
    assert "此边界不能保存" in text and "范围" in text, text
    assert english(text) == [], text


def test_every_boundary_message_reads_in_chinese(editor: Editor, server, store) -> None:
    """The real messages: a refused save, a degenerate drawing, a reason too long (the
    service's; the page stops one before it is sent), and the warnings of real writes (stale
    grids, parks, a drawn boundary, a reversed ring)."""
    url, token = server
    auth = {"Authorization": f"Bearer {token}"}
    v = httpx.get(f"{url}/communities/C01").json()["properties"]["version"]
    torch = shapely.geometry.shape(httpx.get(f"{url}/communities/C01").json()["geometry"])
    put = f"{url}/communities/C01/boundary"
    refused = [
        httpx.put(put, json={"geometry": mapping(shapely.affinity.translate(torch, 0.003, 0)),
                             "snap_tolerance_m": 0}, headers={**auth, "If-Match": str(v)}),
        httpx.put(put, json={"geometry": mapping(box(120.15, 30.18, 120.15001, 30.18001))},
                  headers={**auth, "If-Match": str(v)}),
    ]  # fmt: skip
    assert [r.status_code for r in refused] == [422, 422], [r.text for r in refused]
    messages = [r.json()["detail"] for r in refused]
    with pytest.raises(InvalidInput) as long:
        check_reason("长" * 5000)
    messages.append(long.value.detail)
    tables = store.snapshot().tables
    done = boundaries.set_boundary(
        store, tables, "C01", BoundaryDraft(four_to=WEST), expected_version=1, author="t"
    )
    clockwise = orient(shapely.geometry.shape(cut_north(url)), -1.0)
    drawn = boundaries.set_boundary(
        store, store.snapshot().tables, "C01",
        BoundaryDraft(geometry=mapping(clockwise), snap_tolerance_m=0),
        expected_version=2, author="t",
    )  # fmt: skip
    messages += done.warnings + drawn.warnings
    kinds = " ".join(messages)
    for word in ("overlap", "degenerate", "reason", "grids", "park", "drawn", "RFC 7946"):
        assert word in kinds, (word, messages)
    shown = editor.js("ms => ms.map(GeoMaps.chinese)", messages)
    for original, text in zip(messages, shown, strict=True):
        assert english(text) == [], (original, text)
        assert "lon, lat" not in text


# ------------------------------------------------------------------------ unchanged save


def test_saving_the_loaded_boundary_makes_no_new_version(editor: Editor, server) -> None:
    url, _ = server
    before = httpx.get(f"{url}/communities/C01").json()["properties"]["version"]
    history = len(httpx.get(f"{url}/communities/C01/history").json()["versions"])
    editor.page.fill("#geo-reason", "只是看看")
    editor.page.locator("#geo-save").click()
    editor.page.wait_for_function("() => (GEO.editor.lastMessage || {}).kind === 'ok'")
    assert "边界没有变化" in editor.message() and f"仍为版本 {before}" in editor.message()
    assert editor.js("GEO.editor.version") == before
    assert httpx.get(f"{url}/communities/C01").json()["properties"]["version"] == before
    assert len(httpx.get(f"{url}/communities/C01/history").json()["versions"]) == history


def test_a_reason_too_long_is_said_before_sending(editor: Editor) -> None:
    editor.js("() => { document.getElementById('geo-reason').value = '长'.repeat(1500); }")
    editor.page.locator("#geo-save").click()
    editor.page.wait_for_function("() => (GEO.editor.lastMessage || {}).kind === 'error'")
    assert "修改原因有 1500 个字符，上限为 1000" in editor.message()
    assert editor.page.locator("#geo-reason").get_attribute("maxlength") == "1000"
