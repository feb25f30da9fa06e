"""Map builders (geo.maps), the maps router and `geo maps build`, without a browser."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geo import crs as crs_mod
from geo import maps

CDN = re.compile(r"https?://(?!tile\.openstreetmap|t\{s\}\.tianditu|webrd0\{s\}\.is\.autonavi)")


def _config(html: str) -> dict:
    """The JSON config handed to GeoMaps.init."""
    start = html.index("GeoMaps.init(")
    start = html.index("{", start)
    cfg, _ = json.JSONDecoder().raw_decode(html[start:])
    return cfg


def _assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)


@pytest.fixture(scope="module")
def c01(atlas) -> str:
    return maps.community_map(atlas, "C01", maps.MapOptions(basemap="none"))


def test_every_asset_is_served_locally_at_a_pinned_version(atlas, c01):
    pages = [
        c01,
        maps.district_map(atlas, maps.MapOptions(basemap="none")),
        maps.officer_map(atlas, "O0001", maps.MapOptions(basemap="none")),
        maps.editor_map(atlas, "C01", maps.MapOptions(basemap="none")),
    ]
    for html in pages:
        assets = _assets(html)
        assert assets and all(a.startswith("/static/") for a in assets), assets
        for a in assets:
            assert (maps.STATIC_DIR / a.removeprefix("/static/")).is_file(), a
        assert not CDN.search(html.split("GeoMaps.init(")[0].split("<body>")[0])
        for host in maps.CDN_HOSTS:
            assert host not in html
    # versions are in the paths
    assert "/static/leaflet-1.9.4/leaflet.js" in pages[0]
    assert "/static/leaflet-geoman-free-2.17.0/leaflet-geoman.min.js" in pages[3]


def test_folium_class_defaults_are_untouched(atlas, c01):
    import folium
    from folium.plugins import MarkerCluster

    assert "cdn" in folium.Map.default_js[0][1]
    assert "cdnjs" in MarkerCluster.default_js[0][1]


def test_community_map_content(atlas, c01):
    cfg = _config(c01)
    grids = atlas.tables["grids"]
    gids = set(grids.loc[grids["community_id"] == "C01", "id"])
    assert cfg["counts"]["grids"] == len(gids)
    assert cfg["counts"]["buildings"] == atlas.tables["buildings"]["grid_id"].isin(gids).sum()
    assert cfg["enterprises"] == "inline"
    assert '<html lang="zh-CN">' in c01
    assert "火炬产业社区" in c01 and "图例" not in c01  # the legend is drawn by maps.js
    assert [row[1] for row in cfg["legend"]][:2] == ["产业社区边界", "网格（标注网格编码）"]
    # search entries carry pinyin and initials; officers are searchable by name
    kinds = {e[0] for e in cfg["search"]}
    assert kinds == {"企业", "楼宇", "人员"}
    b = next(e for e in cfg["search"] if e[0] == "楼宇")
    assert (b[3], b[4]) == maps.pinyin_keys(b[1])
    # no phone number of any officer appears
    for phone in atlas.tables["officers"]["phone"]:
        assert str(phone) not in c01


def test_pinyin_keys():
    assert maps.pinyin_keys("海创园1号楼") == ("haichuangyuan1haolou", "hcy1hl")
    assert maps.pinyin_keys("火炬") == ("huoju", "hj")


def test_amap_shifts_every_overlay_to_gcj02(atlas):
    plain = _config(maps.community_map(atlas, "C01", maps.MapOptions(basemap="none")))
    shifted_html = maps.community_map(atlas, "C01", maps.MapOptions(basemap="amap"))
    shifted = _config(shifted_html)
    assert shifted["crs"] == "gcj02"
    e0, e1 = plain["search"][0], shifted["search"][0]
    x, y = crs_mod.from_wgs84(e0[6], e0[5], "gcj02")
    assert e1[6] == pytest.approx(float(x[0]), abs=1e-6)
    assert e1[5] == pytest.approx(float(y[0]), abs=1e-6)
    assert 0.003 < e1[6] - e0[6] < 0.007  # ~ +0.0047° lon in Hangzhou
    assert "autonavi" in shifted_html
    # vector tiles are WGS84: the amap district map keeps every layer inline instead
    district = _config(maps.district_map(atlas, maps.MapOptions(basemap="amap")))
    assert district["enterprises"] == "inline"


def test_large_layers_come_from_vector_tiles(atlas):
    html = maps.district_map(atlas, maps.MapOptions(basemap="none"))
    assert _config(html)["enterprises"] == "tiles"
    assert "/tiles/enterprises/{z}/{x}/{y}.mvt" in html
    assert "/static/leaflet.vectorgrid-1.3.0/Leaflet.VectorGrid.bundled.min.js" in html
    inline = maps.district_map(atlas, maps.MapOptions(basemap="none", tiles_url=None))
    assert _config(inline)["enterprises"] == "inline"


def test_basemaps(atlas):
    osm = maps.community_map(atlas, "C01")
    assert "tile.openstreetmap.org" in osm
    none = maps.community_map(atlas, "C01", maps.MapOptions(basemap="none"))
    assert "openstreetmap.org/{z}" not in none
    with pytest.raises(maps.OptionError, match="GEO_TIANDITU_KEY"):
        maps.MapOptions(basemap="tianditu")
    tdt = maps.community_map(atlas, "C01", maps.MapOptions(basemap="tianditu", tianditu_key="k1"))
    assert "tianditu.gov.cn" in tdt and "tk=k1" in tdt
    with pytest.raises(maps.OptionError, match="unknown basemap"):
        maps.MapOptions(basemap="google")


def test_officer_map(atlas):
    o = atlas.tables["officers"].iloc[0]
    html = maps.officer_map(atlas, o["id"], maps.MapOptions(basemap="none"))
    cfg = _config(html)
    ids = o["building_ids"].split(";")
    assert [b["id"] for b in cfg["officer"]["buildings"]] == ids
    assert cfg["counts"]["mine"] == len(ids)
    assert o["phone"] not in html
    assert "我的楼宇" in html
    with pytest.raises(maps.MapError):
        maps.officer_map(atlas, "nobody")


def test_editor_map(atlas):
    cfg = _config(maps.editor_map(atlas, "C01", maps.MapOptions(basemap="none")))
    assert cfg["community"]["id"] == "C01"
    names = {label[0] for label in cfg["roadLabels"]}
    assert {"信诚路", "南环路", "东信大道", "江南大道"} <= names
    assert cfg["neighbours"]["features"]  # C05 shares 南环路
    with pytest.raises(maps.OptionError, match="WGS84"):
        maps.editor_map(atlas, "C01", maps.MapOptions(basemap="amap"))
    with pytest.raises(maps.MapError):
        maps.community_map(atlas, "C99")


def test_router(client):
    r = client.get("/maps/community/C01?basemap=none")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert client.get("/maps/?basemap=none").status_code == 200
    assert client.get("/maps/officer/O0001").status_code == 200
    assert client.get("/maps/editor/C01?basemap=none").status_code == 200
    assert client.get("/maps/community/C99").status_code == 404
    bad = client.get("/maps/community/C01?basemap=tianditu")
    assert bad.status_code == 422 and "GEO_TIANDITU_KEY" in bad.json()["detail"]
    js = client.get("/static/leaflet-1.9.4/leaflet.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert client.get("/static/leaflet-1.9.4/images/marker-icon.png").status_code == 200
    assert client.get("/static/../geo/maps.py").status_code == 404
    assert client.get("/static/nothing.js").status_code == 404


def test_cli_maps_build(sample_db, tmp_path: Path):
    from geo.cli import app

    result = CliRunner().invoke(app, ["maps", "build", "-o", str(tmp_path), "--db", sample_db,
                                      "--basemap", "none"])  # fmt: skip
    assert result.exit_code == 0, result.output
    files = {p.name for p in tmp_path.glob("*.html")}
    assert {"index.html", "community-C01.html", "officer-O0001.html"} <= files
    assert len(files) == 1 + 7 + 453
    assert (tmp_path / "static/leaflet-1.9.4/leaflet.js").is_file()
    html = (tmp_path / "community-C01.html").read_text()
    assert all(a.startswith("static/") for a in _assets(html))
    assert 'href="officer-' in html or "officer-" in html


def test_served_maps_fetch_their_search_entries_later(client, atlas) -> None:
    page = client.get("/maps/community/C01?basemap=none").text
    assert '"searchUrl"' in page and '"search":' not in page
    entries = client.get("/maps/search.json", params={"community": "C01"}).json()
    names = {e[1] for e in entries}
    grids = atlas.tables["grids"]
    c01 = set(grids.loc[grids["community_id"] == "C01", "id"])
    buildings = atlas.tables["buildings"]
    assert set(buildings.loc[buildings["grid_id"].isin(c01), "name"]) <= names
    assert all(len(e) == 8 for e in entries)
    shifted = client.get("/maps/search.json", params={"community": "C01", "coords": "gcj02"})
    assert shifted.json()[0][6] > entries[0][6]  # GCJ-02 lies east of WGS84 here
    assert client.get("/maps/search.json", params={"community": "nope"}).status_code == 404
    assert client.get("/maps/search.json", params={"coords": "mars"}).status_code == 422


def test_every_map_credits_the_data_escaped(atlas) -> None:
    from geo import maps as maps_mod

    hostile = "数据 © <script>alert(1)</script> ODbL"
    opts = maps_mod.MapOptions(basemap="none", data_attribution=hostile)
    page = maps_mod.district_map(atlas, opts)
    assert "attributionControl.addAttribution(" in page
    assert "<script>alert(1)" not in page  # text, not markup: escaped, then a JSON string
    assert "&lt;script&gt;alert(1)" in page.replace("\\u0026", "&")
    default = maps_mod.district_map(atlas, maps_mod.MapOptions(basemap="none"))
    assert "OpenStreetMap contributors, ODbL 1.0" in default


def _page(atlas, ident, opts=None) -> str:
    if ident == "broken":
        raise ValueError("no such officer")
    return f"<p>{ident}</p>"


def test_maps_build_draws_alike_in_one_process_or_several(tmp_path: Path) -> None:
    """`geo maps build -j N`: forked workers write the same files, named in order; a map that
    fails fails the build."""
    from geo.cli.maps import _drawing

    jobs = [(f"m{i}.html", _page, (i,)) for i in range(20)]
    for processes in (1, 3):
        out = tmp_path / str(processes)
        out.mkdir()
        with _drawing(None, None, out, jobs, processes) as draw:
            assert list(draw) == [name for name, *_ in jobs]
        assert [(out / f"m{i}.html").read_text() for i in range(20)] == [
            f"<p>{i}</p>" for i in range(20)
        ]
    broken = [*jobs, ("x.html", _page, ("broken",))]
    failing = _drawing(None, None, tmp_path / "3", broken, 3)
    with pytest.raises(ValueError, match="no such officer"), failing as draw:
        list(draw)
