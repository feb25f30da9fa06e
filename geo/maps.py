"""Folium (Leaflet) maps in Chinese: district overview, community, officer (我的楼宇), editor.

Pure builders: an `Atlas` and `MapOptions` in, one HTML page (a string) out; no I/O, no HTTP.

* **Assets**: every JavaScript and CSS file is vendored under ``geo/static`` at a pinned version
  and linked from ``MapOptions.static_url`` (``/static`` when served, ``static`` next to the
  HTML for `geo maps build`); folium's CDN links are replaced per instance (``default_js`` /
  ``default_css``), the class attributes are never touched. Only base-map tiles come from
  outside, and ``basemap="none"`` needs none.
* **Base maps**: ``osm`` (default), ``tianditu`` (needs a key), ``amap`` (GCJ-02: every overlay
  coordinate is shifted with `geo.crs.from_wgs84(..., "gcj02")` so it lines up) and ``none``.
* **Large layers**: a layer with more than ``inline_max`` features is drawn from the service's
  vector tiles (``/tiles/{layer}/{z}/{x}/{y}.mvt``, VectorGridProtobuf) instead of inline
  GeoJSON, when ``tiles_url`` is set and the base map is not GCJ-02 (tiles are WGS84).
* **Privacy**: officers' phone numbers never appear in a map; names and roles do.
* The browser side (legend, search with pinyin, officer panel, editor) is ``static/geo/maps.js``;
  each page hands it a JSON config and exposes ``window.GEO`` for tests.
"""

from __future__ import annotations

import html
import json
import math
import weakref
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import folium
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from folium.plugins import FastMarkerCluster, VectorGridProtobuf
from folium.template import Template
from pypinyin import lazy_pinyin

from geo import crs as crs_mod
from geo.atlas import Atlas
from geo.errors import InvalidInput, NotFound
from geo.ownership import NONE
from geo.settings import DATA_ATTRIBUTION

STATIC_DIR = Path(__file__).resolve().parent / "static"
BASEMAPS = ("osm", "tianditu", "amap", "none")
INLINE_MAX = 5000  # a layer with more features than this is drawn from vector tiles

# Pinned vendored assets (geo/static/<package>-<version>/...).
LEAFLET = "leaflet-1.9.4"
MARKERCLUSTER = "leaflet.markercluster-1.5.3"
VECTORGRID = "leaflet.vectorgrid-1.3.0"
GEOMAN = "leaflet-geoman-free-2.17.0"
ASSETS_JS = {
    "leaflet": f"{LEAFLET}/leaflet.js",
    "geo_maps": "geo/maps.js",
    "markercluster": f"{MARKERCLUSTER}/leaflet.markercluster.js",
    "vectorgrid": f"{VECTORGRID}/Leaflet.VectorGrid.bundled.min.js",
    "geoman": f"{GEOMAN}/leaflet-geoman.min.js",
}
ASSETS_CSS = {
    "leaflet": f"{LEAFLET}/leaflet.css",
    "markercluster": f"{MARKERCLUSTER}/MarkerCluster.css",
    "markercluster_default": f"{MARKERCLUSTER}/MarkerCluster.Default.css",
    "geoman": f"{GEOMAN}/leaflet-geoman.css",
    "geo_maps": "geo/maps.css",
}

KIND_LABEL = {"enterprise": "企业楼宇", "mixed-use": "商住楼宇"}
COLORS = {
    "street": "#555555",
    "community": "#c0392b",
    "grid": "#2c6fbb",
    "park": "#27ae60",
    "enterprise": "#e67e22",
    "mixed-use": "#8e44ad",
    "faded": "#9e9e9e",
    "mine": "#d35400",
    "road": "#7f8c8d",
    "point": "#1565c0",
}
_OSM = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
_OSM_ATTR = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> 贡献者'
_TDT = (
    "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}"
)
_AMAP = (
    "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
    "&x={x}&y={y}&z={z}"
)


class MapError(NotFound):
    """No such community or officer (the message names what is missing)."""


class OptionError(InvalidInput):
    """A map option that cannot be served (unknown base map, missing key); says how to fix."""


@dataclass(frozen=True)
class MapOptions:
    basemap: str = "osm"
    tianditu_key: str | None = None
    static_url: str = "/static"  # where geo/static is served ("static" for built files)
    tiles_url: str | None = "/tiles"  # vector tiles; None: every layer inline
    api_url: str = ""  # the service's API (the editor calls it)
    link: str = "/maps/{kind}/{id}"  # links between maps; kind: community | officer
    district_link: str = "/maps/"
    inline_max: int = INLINE_MAX
    extra_query: str = field(default="")  # appended to links (e.g. "?basemap=none")
    # served maps fetch their search entries after the map is up (a smaller, faster page);
    # standalone files embed them
    search_url: str | None = None  # e.g. "/maps/search.json"; {scope} is the community id
    data_attribution: str = DATA_ATTRIBUTION  # credit for the data, in the attribution control

    def __post_init__(self) -> None:
        if self.basemap not in BASEMAPS:
            raise OptionError(f"unknown basemap {self.basemap!r}: use one of {', '.join(BASEMAPS)}")
        if self.basemap == "tianditu" and not self.tianditu_key:
            raise OptionError(
                "basemap=tianditu needs a Tianditu key: set GEO_TIANDITU_KEY "
                "(or use basemap=osm, amap or none)"
            )

    @property
    def gcj02(self) -> bool:
        return self.basemap == "amap"

    def href(self, kind: str, ident: str) -> str:
        return self.link.format(kind=kind, id=ident) + self.extra_query


# --------------------------------------------------------------------------------------------
# Per-atlas derived data (computed once per atlas version)

_DERIVED: weakref.WeakKeyDictionary[Atlas, _Derived] = weakref.WeakKeyDictionary()


@dataclass
class _Derived:
    ent: pd.DataFrame  # atlas.enterprises + building_id, park_id, grid_id, community_id
    officers_by_building: dict[str, list[tuple[str, str, str]]]  # id, name, role


def _derived(atlas: Atlas) -> _Derived:
    hit = _DERIVED.get(atlas)
    if hit is None:
        hit = _DERIVED[atlas] = _derive(atlas)
    return hit


def _derive(atlas: Atlas) -> _Derived:
    ent = atlas.enterprises.reset_index(drop=True).copy()
    buildings = atlas.tables["buildings"].reset_index(drop=True)
    pts = shapely.points(ent["lon"].to_numpy(), ent["lat"].to_numpy())
    pos = np.full(len(ent), NONE, dtype=np.int64)
    if len(buildings) and len(ent):
        tree = shapely.STRtree(np.asarray(buildings.geometry, dtype=object))
        e_i, b_i = tree.query(pts, predicate="within")
        pos[e_i[::-1]] = b_i[::-1]  # first hit wins
    ids = np.append(buildings["id"].to_numpy(dtype=object), None)
    ent["building_id"] = ids[pos]
    parks = np.append(buildings["park_id"].fillna("").to_numpy(dtype=object), "")
    ent["park_id"] = [p or None for p in parks[pos]]
    ent["grid_id"] = atlas.ids_of("grid", ent["_grid"].to_numpy())
    ent["community_id"] = atlas.ids_of("community", ent["_community"].to_numpy())
    by_building: dict[str, list[tuple[str, str, str]]] = {}
    for row in atlas.tables["officers"].itertuples(index=False):
        for b in str(row.building_ids or "").split(";"):
            if b.strip():
                by_building.setdefault(b.strip(), []).append((row.id, row.name, row.role))
    return _Derived(ent, by_building)


@lru_cache(maxsize=65536)
def pinyin_keys(name: str) -> tuple[str, str]:
    """Full pinyin (no spaces, lower case) and initials of a Chinese name, for search."""
    syllables = [s.lower() for s in lazy_pinyin(name, errors="default") if s.strip()]
    full = "".join(syllables).replace(" ", "")
    initials = "".join(s[0] for s in syllables if s and s[0].isalnum())
    return full, initials


# --------------------------------------------------------------------------------------------
# Geometry helpers


def _shift_fn(opts: MapOptions):
    if not opts.gcj02:
        return None

    def fn(xy: np.ndarray) -> np.ndarray:
        x, y = crs_mod.from_wgs84(xy[:, 0], xy[:, 1], "gcj02")
        return np.round(np.column_stack([x, y]), 7)

    return fn


def _geoms(frame: pd.DataFrame, opts: MapOptions) -> np.ndarray:
    geoms = np.asarray(frame.geometry, dtype=object)
    fn = _shift_fn(opts)
    return shapely.transform(geoms, fn) if fn is not None and len(geoms) else geoms


def _lonlat(lon: Any, lat: Any, opts: MapOptions) -> tuple[np.ndarray, np.ndarray]:
    x, y = crs_mod.as_arrays(lon, lat)
    if opts.gcj02:
        x, y = crs_mod.from_wgs84(x, y, "gcj02")
    return np.round(x, 7), np.round(y, 7)


def _plain(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def _collection(
    frame: pd.DataFrame, props: pd.DataFrame | None, opts: MapOptions
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of ``frame`` with ``props`` (default: id, name, code)."""
    props = frame[[c for c in ("id", "name", "code") if c in frame]] if props is None else props
    records = props.to_dict("records")
    geoms = _geoms(frame, opts)
    features = []
    for rec, g in zip(records, shapely.to_geojson(geoms) if len(geoms) else [], strict=True):
        clean = {k: _plain(v) for k, v in rec.items()}
        features.append(
            {"type": "Feature", "id": clean["id"], "properties": clean, "geometry": json.loads(g)}
        )
    return {"type": "FeatureCollection", "features": features}


def _fit(frame: pd.DataFrame, opts: MapOptions) -> list[list[float]]:
    w, s, e, n = frame.total_bounds if len(frame) else (120.12, 30.13, 120.23, 30.24)
    x, y = _lonlat([w, e], [s, n], opts)
    return [[float(y[0]), float(x[0])], [float(y[1]), float(x[1])]]


# --------------------------------------------------------------------------------------------
# Page scaffolding


class _App(MacroElement):
    """Hands the page's config and folium layers to ``GeoMaps.init`` (static/geo/maps.js)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        GeoMaps.init({{ this._parent.get_name() }}, {{ this.config|tojson }}, {
        {%- for key, layer in this.layers.items() %}
            {{ key|tojson }}: {{ layer.get_name() }},
        {%- endfor %}
        });
        {% endmacro %}
        """
    )

    def __init__(self, config: dict[str, Any], layers: dict[str, Any]) -> None:
        super().__init__()
        self._name = "GeoApp"
        self.config = config
        self.layers = layers


def _assets(opts: MapOptions, js: list[str], css: list[str]):
    s = opts.static_url.rstrip("/")
    return (
        [(f"geo_{k}", f"{s}/{ASSETS_JS[k]}") for k in js],
        [(f"geo_{k}_css", f"{s}/{ASSETS_CSS[k]}") for k in css],
    )


def _new_map(opts: MapOptions, title: str, bounds: list[list[float]]) -> folium.Map:
    center = [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
    m = folium.Map(location=center, zoom_start=14, tiles=None, control_scale=True)
    m.options["maxZoom"] = 19  # MarkerCluster needs it even with no base map (basemap=none)
    m.options["minZoom"] = 3
    js, css = _assets(opts, ["leaflet", "geo_maps"], ["leaflet", "geo_maps"])
    m.default_js, m.default_css = js, css  # instance attributes: folium's CDN list is untouched
    root = m.get_root()
    root.title = title
    root.header.add_child(
        Element('<meta name="referrer" content="no-referrer-when-downgrade">'), name="referrer"
    )
    root.header.add_child(Element('<link rel="icon" href="data:,">'), name="favicon")
    _basemap(m, opts)
    if opts.data_attribution:
        _Attribution(opts.data_attribution).add_to(m)
    m.fit_bounds(bounds)
    return m


class _Attribution(MacroElement):
    """Credit for the data in the map's attribution control (text, escaped: never markup)."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "{{ this._parent.get_name() }}.attributionControl.addAttribution({{ this.html|tojson }});"
        "{% endmacro %}"
    )

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "Attribution"
        self.html = html.escape(text)


def _basemap(m: folium.Map, opts: MapOptions) -> None:
    if opts.basemap == "osm":
        folium.TileLayer(_OSM, attr=_OSM_ATTR, name="OpenStreetMap", max_zoom=19).add_to(m)
    elif opts.basemap == "tianditu":
        for layer, name, overlay in (("vec", "天地图", False), ("cva", "天地图注记", True)):
            folium.TileLayer(
                _TDT.replace("{layer}", layer).replace("{key}", opts.tianditu_key or ""),
                attr="&copy; 天地图",
                name=name,
                subdomains="01234567",
                overlay=overlay,
                control=False,
                max_zoom=18,
            ).add_to(m)
    elif opts.basemap == "amap":
        folium.TileLayer(
            _AMAP, attr="&copy; 高德地图（GCJ-02）", name="高德地图", subdomains="1234", max_zoom=18
        ).add_to(m)


def _plugin_assets(obj: Any, opts: MapOptions, js: list[str], css: list[str]) -> Any:
    obj.default_js, obj.default_css = _assets(opts, js, css)
    return obj


def _geojson(
    data: dict[str, Any], name: str, style: dict[str, Any], *, show: bool = True, **kw: Any
) -> folium.GeoJson:
    """A GeoJson layer whose features all share ``style`` (functions are built in the page)."""
    if not data["features"]:  # folium checks popup fields against the first feature
        kw.pop("popup", None)
        kw.pop("tooltip", None)
    return folium.GeoJson(
        data, name=name, style_function=lambda _f: style, show=show, embed=True, **kw
    )


CDN_HOSTS = (
    "cdn.jsdelivr.net",
    "cdnjs.cloudflare.com",
    "unpkg.com",
    "code.jquery.com",
    "netdna.bootstrapcdn.com",
)


def _render(m: folium.Map) -> str:
    html = m.get_root().render()
    for host in CDN_HOSTS:  # a new folium default would break intranet use: fail loudly
        if host in html:
            raise RuntimeError(f"a CDN link ({host}) slipped into a map page")
    return html.replace("<html>", '<html lang="zh-CN">', 1)


# --------------------------------------------------------------------------------------------
# Layer data


def _grid_lookup(atlas: Atlas) -> dict[str, list[str]]:
    g = atlas.tables["grids"]
    names = dict(
        zip(atlas.tables["communities"]["id"], atlas.tables["communities"]["name"], strict=True)
    )
    return {
        r.id: [r.name, r.code, names.get(r.community_id, "")] for r in g.itertuples(index=False)
    }


def _building_props(atlas: Atlas, frame: pd.DataFrame, d: _Derived) -> pd.DataFrame:
    parks = dict(zip(atlas.tables["parks"]["id"], atlas.tables["parks"]["name"], strict=True))
    grids = _grid_lookup(atlas)
    counts = d.ent["building_id"].value_counts()
    out = pd.DataFrame(
        {
            "id": frame["id"].to_numpy(),
            "name": frame["name"].to_numpy(),
            "kind": frame["kind"].to_numpy(),
            "kind_label": [KIND_LABEL.get(k, k) for k in frame["kind"]],
            "address": frame["address"].fillna("").to_numpy(),
            "park": [parks.get(p, "") for p in frame["park_id"].fillna("")],
            "grid": [" ".join(grids.get(g, ["", ""])[:2]) for g in frame["grid_id"]],
            "team": [
                "、".join(f"{n}（{r}）" for _i, n, r in d.officers_by_building.get(b, [])) or "—"
                for b in frame["id"]
            ],
            "enterprises": [int(counts.get(b, 0)) for b in frame["id"]],
        }
    )
    return out


def _park_props(atlas: Atlas, frame: pd.DataFrame, d: _Derived) -> pd.DataFrame:
    grids = _grid_lookup(atlas)
    counts = d.ent["park_id"].value_counts()
    return pd.DataFrame(
        {
            "id": frame["id"].to_numpy(),
            "name": frame["name"].to_numpy(),
            "code": frame["code"].to_numpy(),
            "grid": [" ".join(grids.get(g, ["", ""])[:2]) for g in frame["grid_id"]],
            "address": frame["address"].fillna("").to_numpy(),
            "enterprises": [int(counts.get(p, 0)) for p in frame["id"]],
        }
    )


def _grid_props(atlas: Atlas, frame: pd.DataFrame, d: _Derived) -> pd.DataFrame:
    names = dict(
        zip(atlas.tables["communities"]["id"], atlas.tables["communities"]["name"], strict=True)
    )
    counts = d.ent["grid_id"].value_counts()
    return pd.DataFrame(
        {
            "id": frame["id"].to_numpy(),
            "name": frame["name"].to_numpy(),
            "code": frame["code"].to_numpy(),
            "community": [names.get(c, "") for c in frame["community_id"]],
            "enterprises": [int(counts.get(g, 0)) for g in frame["id"]],
        }
    )


_POPUP_STYLE = "max-width: 320px;"


def _popup(fields: list[str], aliases: list[str]) -> folium.GeoJsonPopup:
    return folium.GeoJsonPopup(
        fields=fields,
        aliases=aliases,
        localize=False,
        labels=True,
        style=_POPUP_STYLE,
        max_width=340,
    )


def _polygon_layers(
    m: folium.Map,
    atlas: Atlas,
    d: _Derived,
    opts: MapOptions,
    grids: pd.DataFrame,
    parks: pd.DataFrame,
    buildings: pd.DataFrame,
    *,
    faded: bool = False,
) -> dict[str, Any]:
    layers: dict[str, Any] = {}
    grid_style = {
        "color": COLORS["grid"],
        "weight": 2,
        "dashArray": "6 4",
        "fillOpacity": 0.02,
        "className": "geo-grids",
    }
    layers["grids"] = _geojson(
        _collection(grids, _grid_props(atlas, grids, d), opts),
        "网格",
        grid_style,
        popup=_popup(
            ["name", "code", "community", "enterprises"], ["网格", "网格编码", "产业社区", "企业数"]
        ),
    ).add_to(m)
    park_style = {
        "color": COLORS["park"],
        "weight": 1.5,
        "fillColor": COLORS["park"],
        "fillOpacity": 0.08 if faded else 0.18,
        "className": "geo-parks",
    }
    layers["parks"] = _geojson(
        _collection(parks, _park_props(atlas, parks, d), opts),
        "产业园区",
        park_style,
        popup=_popup(
            ["name", "code", "grid", "address", "enterprises"],
            ["园区", "微网格编码", "网格", "地址", "企业数"],
        ),
    ).add_to(m)
    props = _building_props(atlas, buildings, d)
    data = _collection(buildings, props, opts)
    b_layer = folium.GeoJson(
        data,
        name="网格内其他楼宇" if faded else "楼宇",
        style_function=_building_style_faded if faded else _building_style,
        embed=True,
        **(
            {
                "popup": _popup(
                    ["name", "kind_label", "address", "park", "grid", "team", "enterprises"],
                    ["楼宇", "类型", "地址", "所属园区", "网格", "一长二员", "企业数"],
                )
            }
            if data["features"]
            else {}
        ),
    ).add_to(m)
    layers["buildings"] = b_layer
    return layers


def _building_style(feature: dict[str, Any]) -> dict[str, Any]:
    color = COLORS.get(feature["properties"].get("kind"), COLORS["enterprise"])
    return {
        "color": color,
        "weight": 1,
        "fillColor": color,
        "fillOpacity": 0.55,
        "className": "geo-buildings",
    }


def _building_style_faded(feature: dict[str, Any]) -> dict[str, Any]:
    return {
        "color": COLORS["faded"],
        "weight": 1,
        "fillColor": COLORS["faded"],
        "fillOpacity": 0.25,
        "className": "geo-buildings",
    }


ENT_COLUMNS = [
    "lat",
    "lon",
    "id",
    "name",
    "credit_code",
    "address",
    "chain",
    "building",
    "park",
    "grid_id",
]


def _enterprise_rows(atlas: Atlas, ent: pd.DataFrame, opts: MapOptions) -> list[list[Any]]:
    bnames = dict(
        zip(atlas.tables["buildings"]["id"], atlas.tables["buildings"]["name"], strict=True)
    )
    pnames = dict(zip(atlas.tables["parks"]["id"], atlas.tables["parks"]["name"], strict=True))
    x, y = _lonlat(ent["lon"].to_numpy(), ent["lat"].to_numpy(), opts)
    rows = []
    for i, r in enumerate(ent.itertuples(index=False)):
        rows.append(
            [
                float(y[i]),
                float(x[i]),
                r.id,
                r.name,
                r.credit_code,
                r.address or "",
                _plain(r.chain) or "",
                bnames.get(r.building_id, "") if r.building_id else "",
                pnames.get(r.park_id, "") if r.park_id else "",
                r.grid_id,
            ]
        )
    return rows


def _enterprise_layer(
    m: folium.Map, atlas: Atlas, ent: pd.DataFrame, opts: MapOptions
) -> tuple[Any, str]:
    """Enterprises: clustered markers inline, or vector tiles above ``inline_max``."""
    if opts.tiles_url and not opts.gcj02 and len(ent) > opts.inline_max:
        url = opts.tiles_url.rstrip("/") + "/enterprises/{z}/{x}/{y}.mvt"
        options = (
            "{interactive: true, maxNativeZoom: 18, maxZoom: 20, "
            "getFeatureId: function (f) { return f.properties.id; }, "
            "vectorTileLayerStyles: {enterprises: GeoMaps.enterpriseTileStyle}}"
        )
        layer = VectorGridProtobuf(url, name=f"企业（{len(ent)}，矢量瓦片）", options=options)
        _plugin_assets(layer, opts, ["vectorgrid"], [])
        return layer.add_to(m), "tiles"
    layer = FastMarkerCluster(
        _enterprise_rows(atlas, ent, opts),
        callback="GeoMaps.enterpriseMarker",
        name=f"企业（{len(ent)}）",
        options={
            "chunkedLoading": True,
            "showCoverageOnHover": False,
            "spiderfyOnMaxZoom": True,
            "disableClusteringAtZoom": 19,
        },
    )
    _plugin_assets(layer, opts, ["markercluster"], ["markercluster", "markercluster_default"])
    return layer.add_to(m), "inline"


def _search_entries(
    atlas: Atlas, ent: pd.DataFrame, buildings: pd.DataFrame, d: _Derived, opts: MapOptions
) -> list[list[Any]]:
    """``[kind, name, detail, pinyin, initials, lat, lon, ref]`` for enterprises, buildings and
    the officers of those buildings (ref: the id of the layer to open)."""
    out: list[list[Any]] = []
    x, y = _lonlat(ent["lon"].to_numpy(), ent["lat"].to_numpy(), opts)
    for i, r in enumerate(ent.itertuples(index=False)):
        py, ini = pinyin_keys(r.name)
        out.append(["企业", r.name, r.credit_code, py, ini, float(y[i]), float(x[i]), r.id])
    if len(buildings):
        c = shapely.point_on_surface(np.asarray(buildings.geometry, dtype=object))
        bx, by = _lonlat(shapely.get_x(c), shapely.get_y(c), opts)
        for i, r in enumerate(buildings.itertuples(index=False)):
            label = r.name or ""  # a footprint without a name is not searched for by name
            if label:
                py, ini = pinyin_keys(label)
                out.append(
                    ["楼宇", label, r.address or "", py, ini, float(by[i]), float(bx[i]), r.id]
                )
            for _oid, name, role in d.officers_by_building.get(r.id, []):
                py, ini = pinyin_keys(name)
                where = f"{role} · {label or r.id}"
                out.append(["人员", name, where, py, ini, float(by[i]), float(bx[i]), r.id])
    return out


def _search_config(
    atlas: Atlas,
    ent: pd.DataFrame,
    buildings: pd.DataFrame,
    d: _Derived,
    opts: MapOptions,
    community_id: str | None,
) -> dict[str, Any]:
    """``{"search": entries}`` embedded, or ``{"searchUrl": url}`` to fetch them later."""
    if opts.search_url is None:
        return {"search": _search_entries(atlas, ent, buildings, d, opts)}
    query = [f"community={community_id}"] if community_id else []
    if opts.gcj02:
        query.append("coords=gcj02")
    return {"searchUrl": opts.search_url + ("?" + "&".join(query) if query else "")}


def _no_community(community_id: str, comms: pd.DataFrame) -> str:
    if len(comms) == 0:
        return (
            f"no community {community_id!r}: the store has none yet; build one from four-to "
            "text with `geo boundary build` or POST /communities"
        )
    return f"no community {community_id!r}: known ids are {', '.join(comms['id'])}"


def search_data(atlas: Atlas, community_id: str | None, opts: MapOptions) -> list[list[Any]]:
    """The search entries of the district (None) or of one community, as the maps use them."""
    d = _derived(atlas)
    if community_id is None:
        return _search_entries(atlas, d.ent, atlas.tables["buildings"], d, opts)
    comms = atlas.tables["communities"]
    if not (comms["id"] == community_id).any():
        raise MapError(_no_community(community_id, comms))
    grids = atlas.tables["grids"]
    gids = set(grids.loc[grids["community_id"] == community_id, "id"])
    buildings = atlas.tables["buildings"][atlas.tables["buildings"]["grid_id"].isin(gids)]
    ent = d.ent[d.ent["community_id"] == community_id]
    return _search_entries(atlas, ent, buildings, d, opts)


def _legend(*items: tuple[str, str, str]) -> list[list[str]]:
    return [list(i) for i in items]


_LEGEND_BASE = (
    (COLORS["community"], "产业社区边界", "line"),
    (COLORS["grid"], "网格（标注网格编码）", "dash"),
    (COLORS["park"], "产业园区", "fill"),
    (COLORS["enterprise"], "企业楼宇", "fill"),
    (COLORS["mixed-use"], "商住楼宇", "fill"),
    (COLORS["point"], "企业（聚合）", "dot"),
)


def _common_config(atlas: Atlas, opts: MapOptions, kind: str, title: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "title": title,
        "version": atlas.version,
        "basemap": opts.basemap,
        "crs": "gcj02" if opts.gcj02 else "wgs84",
        "grids": _grid_lookup(atlas),
        "links": {"district": opts.district_link + opts.extra_query},
    }


# --------------------------------------------------------------------------------------------
# The maps


def community_map(atlas: Atlas, community_id: str, opts: MapOptions | None = None) -> str:
    """One community: its boundary, grids (labelled by code), parks, buildings by kind,
    enterprises clustered with popups, legend, layer control and search."""
    opts = opts or MapOptions()
    comms = atlas.tables["communities"]
    row = comms[comms["id"] == community_id]
    if row.empty:
        raise MapError(_no_community(community_id, comms))
    c = row.iloc[0]
    grids = atlas.tables["grids"][atlas.tables["grids"]["community_id"] == community_id]
    gids = set(grids["id"])
    parks = atlas.tables["parks"][atlas.tables["parks"]["grid_id"].isin(gids)]
    buildings = atlas.tables["buildings"][atlas.tables["buildings"]["grid_id"].isin(gids)]
    d = _derived(atlas)
    ent = d.ent[d.ent["community_id"] == community_id]
    title = f"{c['name']} · 产业社区地图"
    m = _new_map(opts, title, _fit(row, opts))
    boundary = _geojson(
        _collection(row, row[["id", "name", "code", "type", "four_to"]], opts),
        "社区边界",
        {"color": COLORS["community"], "weight": 3, "fillOpacity": 0, "className": "geo-community"},
        popup=_popup(["name", "type", "four_to"], ["产业社区", "类型", "四至"]),
    ).add_to(m)
    layers = {"community": boundary, **_polygon_layers(m, atlas, d, opts, grids, parks, buildings)}
    layers["enterprises"], mode = _enterprise_layer(m, atlas, ent, opts)
    folium.LayerControl(collapsed=True).add_to(m)
    config = _common_config(atlas, opts, "community", title)
    config.update(
        {
            "subtitle": f"{c['type']} · 网格 {len(grids)} · 园区 {len(parks)} · "
            f"楼宇 {len(buildings)} · 企业 {len(ent)}",
            "counts": {
                "community": 1,
                "grids": len(grids),
                "parks": len(parks),
                "buildings": len(buildings),
                "enterprises": len(ent),
            },
            "enterprises": mode,
            "legend": _legend(*_LEGEND_BASE),
            **_search_config(atlas, ent, buildings, d, opts, community_id),
            "officerLinks": _officer_links(atlas, buildings, opts),
        }
    )
    _App(config, layers).add_to(m)
    return _render(m)


def _officer_links(atlas: Atlas, buildings: pd.DataFrame, opts: MapOptions) -> dict[str, Any]:
    """building id -> [[officer id, name, role, href], ...] ("我的楼宇" links)."""
    d = _derived(atlas)
    out: dict[str, Any] = {}
    for b in buildings["id"]:
        team = d.officers_by_building.get(b)
        if team:
            out[b] = [[i, n, r, opts.href("officer", i)] for i, n, r in team]
    return out


def district_map(atlas: Atlas, opts: MapOptions | None = None) -> str:
    """The district: streets, communities (linked to their maps), grids, parks, buildings, and
    enterprises (vector tiles when there are more than ``inline_max``)."""
    opts = opts or MapOptions()
    d = _derived(atlas)
    t = atlas.tables
    title = "滨江区产业社区总览"
    m = _new_map(opts, title, _fit(t["streets"], opts))
    streets = _geojson(
        _collection(t["streets"], None, opts),
        "街道",
        {
            "color": COLORS["street"],
            "weight": 2,
            "fillOpacity": 0,
            "className": "geo-streets",
            "interactive": False,
        },
    ).add_to(m)
    comms = t["communities"]
    counts = d.ent["community_id"].value_counts()
    cprops = pd.DataFrame(
        {
            "id": comms["id"].to_numpy(),
            "name": comms["name"].to_numpy(),
            "type": comms["type"].to_numpy(),
            "four_to": comms["four_to"].to_numpy(),
            "enterprises": [int(counts.get(i, 0)) for i in comms["id"]],
            "link": [
                f'<a href="{opts.href("community", i)}">打开社区地图</a>' for i in comms["id"]
            ],
        }
    )
    community = _geojson(
        _collection(comms, cprops, opts),
        "产业社区",
        {
            "color": COLORS["community"],
            "weight": 3,
            "fillColor": COLORS["community"],
            "fillOpacity": 0.04,
            "className": "geo-communities",
        },
        popup=_popup(
            ["name", "type", "four_to", "enterprises", "link"],
            ["产业社区", "类型", "四至", "企业数", "地图"],
        ),
        tooltip=folium.GeoJsonTooltip(["name"], labels=False, sticky=True),
    ).add_to(m)
    layers = {
        "streets": streets,
        "communities": community,
        **_polygon_layers(m, atlas, d, opts, t["grids"], t["parks"], t["buildings"]),
    }
    layers["enterprises"], mode = _enterprise_layer(m, atlas, d.ent, opts)
    folium.LayerControl(collapsed=True).add_to(m)
    config = _common_config(atlas, opts, "district", title)
    config.update(
        {
            "subtitle": f"街道 {len(t['streets'])} · 产业社区 {len(comms)} · 网格 "
            f"{len(t['grids'])} · 园区 {len(t['parks'])} · 楼宇 {len(t['buildings'])} · "
            f"企业 {len(d.ent)}",
            "counts": {
                "streets": len(t["streets"]),
                "communities": len(comms),
                "grids": len(t["grids"]),
                "parks": len(t["parks"]),
                "buildings": len(t["buildings"]),
                "enterprises": len(d.ent),
            },
            "enterprises": mode,
            "legend": _legend(((COLORS["street"], "街道边界", "line")), *_LEGEND_BASE),
            "communityLinks": [
                [i, n, opts.href("community", i)]
                for i, n in zip(comms["id"], comms["name"], strict=True)
            ],
            **_search_config(atlas, d.ent, t["buildings"], d, opts, None),
            "officerLinks": _officer_links(atlas, t["buildings"], opts),
        }
    )
    _App(config, layers).add_to(m)
    return _render(m)


def officer_map(atlas: Atlas, officer_id: str, opts: MapOptions | None = None) -> str:
    """我的楼宇: the officer's buildings highlighted and fitted, the rest of their grids faded,
    and a list of each building's enterprises (a side panel; below the map on a phone)."""
    opts = opts or MapOptions()
    officers = atlas.tables["officers"]
    row = officers[officers["id"] == officer_id]
    if row.empty:
        raise MapError(f"no officer {officer_id!r}")
    o = row.iloc[0]
    mine_ids = [b.strip() for b in str(o["building_ids"] or "").split(";") if b.strip()]
    b_all = atlas.tables["buildings"]
    mine = b_all[b_all["id"].isin(mine_ids)]
    gids = set(mine["grid_id"])
    grids = atlas.tables["grids"][atlas.tables["grids"]["id"].isin(gids)]
    parks = atlas.tables["parks"][atlas.tables["parks"]["grid_id"].isin(gids)]
    others = b_all[b_all["grid_id"].isin(gids) & ~b_all["id"].isin(mine_ids)]
    d = _derived(atlas)
    ent = d.ent[d.ent["building_id"].isin(mine_ids)]
    title = f"我的楼宇 · {o['name']}（{o['role']}）"
    m = _new_map(opts, title, _fit(mine if len(mine) else grids, opts))
    layers = _polygon_layers(m, atlas, d, opts, grids, parks, others, faded=True)
    props = _building_props(atlas, mine, d)
    mine_style = {
        "color": COLORS["mine"],
        "weight": 3,
        "fillColor": COLORS["mine"],
        "fillOpacity": 0.6,
        "className": "geo-mine",
    }
    layers["mine"] = _geojson(
        _collection(mine, props, opts),
        "我的楼宇",
        mine_style,
        popup=_popup(
            ["name", "kind_label", "address", "grid", "team", "enterprises"],
            ["楼宇", "类型", "地址", "网格", "一长二员", "企业数"],
        ),
    ).add_to(m)
    layers["enterprises"], mode = _enterprise_layer(m, atlas, ent, opts)
    folium.LayerControl(collapsed=True).add_to(m)
    rows = _enterprise_rows(atlas, ent, opts)
    panel = []
    for b in mine.itertuples(index=False):
        team = [[n, r] for i, n, r in d.officers_by_building.get(b.id, []) if i != officer_id]
        panel.append(
            {
                "id": b.id,
                "name": b.name,
                "address": b.address or "",
                "kind": KIND_LABEL.get(b.kind, b.kind),
                "grid": _grid_lookup(atlas)[b.grid_id][:2],
                "team": team,
                "enterprises": [
                    [r[2], r[3], r[4]]
                    for r, e in zip(rows, ent.itertuples(), strict=True)
                    if e.building_id == b.id
                ],
            }
        )
    config = _common_config(atlas, opts, "officer", title)
    config.update(
        {
            "subtitle": f"{len(mine)} 栋楼宇 · {len(ent)} 家企业",
            "officer": {
                "id": o["id"],
                "name": o["name"],
                "role": o["role"],
                "party_member": bool(o["party_member"]),
                "buildings": panel,
            },
            "counts": {
                "mine": len(mine),
                "buildings": len(others),
                "grids": len(grids),
                "parks": len(parks),
                "enterprises": len(ent),
            },
            "enterprises": mode,
            "legend": _legend(
                (COLORS["mine"], "我的楼宇", "fill"),
                (COLORS["faded"], "网格内其他楼宇", "fill"),
                (COLORS["park"], "产业园区", "fill"),
                (COLORS["grid"], "网格", "dash"),
                (COLORS["point"], "企业", "dot"),
            ),
        }
    )
    _App(config, layers).add_to(m)
    return _render(m)


def editor_map(atlas: Atlas, community_id: str, opts: MapOptions | None = None) -> str:
    """The planner's boundary editor: the boundary (reloaded from the API), named roads with
    labels, neighbouring boundaries, GeoMan drawing with snapping to both, 预览 and 保存."""
    opts = opts or MapOptions()
    if opts.gcj02:
        raise OptionError(
            "the boundary editor draws in WGS84: use basemap=osm, tianditu or none (not amap)"
        )
    comms = atlas.tables["communities"]
    row = comms[comms["id"] == community_id]
    if row.empty:
        raise MapError(_no_community(community_id, comms))
    c = row.iloc[0]
    geom = row.geometry.iloc[0]
    area = shapely.buffer(shapely.envelope(geom), 0.01)
    roads = atlas.tables["roads"]
    near = roads[shapely.intersects(np.asarray(roads.geometry, dtype=object), area)]
    others = comms[
        (comms["id"] != community_id)
        & shapely.intersects(np.asarray(comms.geometry, dtype=object), area)
    ]
    streets = atlas.tables["streets"]
    near_streets = streets[shapely.intersects(np.asarray(streets.geometry, dtype=object), area)]
    title = f"{c['name']} · 边界编辑"
    m = _new_map(opts, title, _fit(row, opts))
    m.default_js = [*m.default_js, *_assets(opts, ["geoman"], [])[0]]
    m.default_css = [*m.default_css, *_assets(opts, [], ["geoman"])[1]]
    config = _common_config(atlas, opts, "editor", title)
    config.update(
        {
            "community": {"id": c["id"], "name": c["name"], "four_to": c["four_to"]},
            "api": opts.api_url.rstrip("/"),
            "geometry": json.loads(shapely.to_geojson(geom)),
            "roads": _collection(near, near[["id", "name", "class"]], opts),
            "roadLabels": _road_labels(near),
            "neighbours": _collection(others, others[["id", "name"]], opts),
            "streets": _collection(near_streets, None, opts),
            "legend": _legend(
                (COLORS["community"], "当前边界（可编辑）", "line"),
                ("#34495e", "相邻社区边界（可吸附）", "dash"),
                (COLORS["road"], "道路中心线（可吸附）", "line"),
            ),
        }
    )
    _App(config, {}).add_to(m)
    return _render(m)


def _road_labels(roads: pd.DataFrame) -> list[list[Any]]:
    """One label per road name: [name, lat, lon, angle°] at the middle of its longest piece."""
    named = roads[roads["name"].fillna("") != ""]
    out = []
    for name, group in named.groupby("name", sort=True):
        geoms = np.asarray(group.geometry, dtype=object)
        g = geoms[int(np.argmax(shapely.length(geoms)))]
        if g.geom_type == "MultiLineString":
            g = max(g.geoms, key=lambda p: p.length)
        mid = g.interpolate(0.5, normalized=True)
        a = g.interpolate(0.45, normalized=True)
        b = g.interpolate(0.55, normalized=True)
        dx = (b.x - a.x) * math.cos(math.radians(mid.y))
        angle = -math.degrees(math.atan2(b.y - a.y, dx))
        if angle > 90:
            angle -= 180
        elif angle < -90:
            angle += 180
        out.append([name, round(mid.y, 7), round(mid.x, 7), round(angle, 1)])
    return out


def index_of_maps(atlas: Atlas) -> dict[str, list[str]]:
    """The ids of every map `geo maps build` writes: communities and officers."""
    return {
        "community": list(atlas.tables["communities"]["id"]),
        "officer": list(atlas.tables["officers"]["id"]),
    }
