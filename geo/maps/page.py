"""Page scaffolding: a folium map with the vendored assets, base map, attribution, rendering."""

from __future__ import annotations

import html
from typing import Any

import folium
from branca.element import Element, MacroElement
from folium.elements import JSCSSMixin
from folium.map import Layer
from folium.template import Template

from geo.maps.csp import check_inline_scripts
from geo.maps.options import ASSETS_CSS, ASSETS_JS, MapOptions

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


# --------------------------------------------------------------------------------------------
# Page scaffolding


class App(MacroElement):
    """Hands the page's config, folium layers and layer control (if any) to ``GeoMaps.init``
    (static/geo/maps.js)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        GeoMaps.init({{ this._parent.get_name() }}, {{ this.config|tojson }}, {
        {%- for key, layer in this.layers.items() %}
            {{ key|tojson }}: {{ layer.get_name() }},
        {%- endfor %}
        }, {{ this.control.get_name() if this.control else "null" }}, [
        {%- for b in this._parent.geo_basemaps %}{{ b.get_name() }}, {% endfor -%}
        ]);
        {% endmacro %}
        """
    )

    def __init__(self, config: dict[str, Any], layers: dict[str, Any], control: Any = None) -> None:
        super().__init__()
        self._name = "GeoApp"
        self.config = config
        self.layers = layers
        self.control = control


class ScriptLayer(JSCSSMixin, Layer):
    """A layer made in the page by a ``GeoMaps`` factory (``factory(map, args)``), listed in
    the layer control: the factory returns an empty layer, and says so in a notice, when a
    plugin's script failed to load, so the rest of the page keeps working."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "var {{ this.get_name() }} = {{ this.factory }}({{ this._parent.get_name() }}, "
        "{{ this.args|tojson }});"
        "{% endmacro %}"
    )

    def __init__(self, factory: str, args: dict[str, Any], name: str, show: bool = True) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "GeoLayer"
        self.factory = factory
        self.args = args


NOSCRIPT = (
    '<noscript><p class="geo-noscript">此地图需要浏览器启用 JavaScript 才能显示。'
    "请在浏览器设置中开启 JavaScript 后刷新本页。</p></noscript>"
)


def assets(opts: MapOptions, js: list[str], css: list[str]):
    """``(js, css)`` folium asset lists of vendored files under ``opts.static_url``."""
    s = opts.static_url.rstrip("/")
    return (
        [(f"geo_{k}", f"{s}/{ASSETS_JS[k]}") for k in js],
        [(f"geo_{k}_css", f"{s}/{ASSETS_CSS[k]}") for k in css],
    )


def new_map(opts: MapOptions, title: str, bounds: list[list[float]]) -> folium.Map:
    """A folium map fitted to ``bounds``: vendored assets, base map, data attribution."""
    center = [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
    m = folium.Map(location=center, zoom_start=14, tiles=None, control_scale=True)
    m.options["maxZoom"] = 19  # MarkerCluster needs it even with no base map (basemap=none)
    m.options["minZoom"] = 3
    js, css = assets(opts, ["leaflet", "geo_maps"], ["leaflet", "geo_maps"])
    m.default_js, m.default_css = js, css  # instance attributes: folium's CDN list is untouched
    root = m.get_root()
    root.title = html.escape(title)  # branca writes <title>{{ title }}</title> unescaped
    root.header.add_child(
        Element('<meta name="referrer" content="no-referrer-when-downgrade">'), name="referrer"
    )
    root.header.add_child(Element('<link rel="icon" href="data:,">'), name="favicon")
    root.html.add_child(Element(NOSCRIPT), name="noscript")
    _basemap(m, opts)
    if opts.data_attribution:
        _Attribution(opts.data_attribution).add_to(m)
    fit = folium.FitBounds(bounds)
    # no zoom animation: the view is final at once, so vector-tile layers added next ask only
    # for the fitted zoom's tiles (animated, they first load the opening zoom's: 470 KB more)
    fit.options["animate"] = False
    fit.add_to(m)
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
    """Add the base map's tile layers (none for ``basemap='none'``), not yet shown: maps.js
    shows them once one tile has loaded, and otherwise says the base map is unreachable and
    draws without it (one failed request offline, not a console error per tile)."""
    layers: list[folium.TileLayer] = []
    if opts.basemap == "osm":
        layers.append(
            folium.TileLayer(_OSM, attr=_OSM_ATTR, name="OpenStreetMap", max_zoom=19, show=False)
        )
    elif opts.basemap == "tianditu":
        for layer, name, overlay in (("vec", "天地图", False), ("cva", "天地图注记", True)):
            layers.append(
                folium.TileLayer(
                    _TDT.replace("{layer}", layer).replace("{key}", opts.tianditu_key or ""),
                    attr="&copy; 天地图",
                    name=name,
                    subdomains="01234567",
                    overlay=overlay,
                    control=False,
                    max_zoom=18,
                    show=False,
                )
            )
    elif opts.basemap == "amap":
        layers.append(
            folium.TileLayer(
                _AMAP,
                attr="&copy; 高德地图（GCJ-02）",
                name="高德地图",
                subdomains="1234",
                max_zoom=18,
                show=False,
            )
        )
    for layer in layers:
        layer.add_to(m)
    m.geo_basemaps = layers  # handed to GeoMaps.init by `App`


def plugin_assets(obj: Any, opts: MapOptions, js: list[str], css: list[str]) -> Any:
    """Point a folium plugin's assets at the vendored copies."""
    obj.default_js, obj.default_css = assets(opts, js, css)
    return obj


class TextPopup(MacroElement):
    """A popup table of a GeoJson layer's properties, drawn by ``GeoMaps.bindPopups`` with
    ``textContent`` (never as markup: folium's GeoJsonPopup writes values with innerHTML).

    ``fields``: ``[property, label]`` rows, or ``[property, label, "link"]`` for a property
    holding a URL (drawn as a link labelled ``link_text``)."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "GeoMaps.bindPopups({{ this._parent.get_name() }}, {{ this.fields|tojson }}, "
        "{{ this.options|tojson }});"
        "{% endmacro %}"
    )

    def __init__(self, fields: list[list[str]], **options: Any) -> None:
        super().__init__()
        self._name = "TextPopup"
        self.fields = fields
        self.options = options


class TextTooltip(MacroElement):
    """A tooltip of one property of a GeoJson layer's features, as text
    (``GeoMaps.bindTooltips``; folium's GeoJsonTooltip writes values with innerHTML)."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "GeoMaps.bindTooltips({{ this._parent.get_name() }}, {{ this.field|tojson }}, "
        "{{ this.options|tojson }});"
        "{% endmacro %}"
    )

    def __init__(self, field: str, **options: Any) -> None:
        super().__init__()
        self._name = "TextTooltip"
        self.field = field
        self.options = options


def geojson_layer(
    data: dict[str, Any],
    name: str,
    style: dict[str, Any],
    *,
    show: bool = True,
    popup: TextPopup | None = None,
    tooltip: TextTooltip | None = None,
    **kw: Any,
) -> folium.GeoJson:
    """A GeoJson layer whose features all share ``style`` (functions are built in the page),
    with its text popup and tooltip."""
    layer = folium.GeoJson(
        data, name=name, style_function=lambda _f: style, show=show, embed=True, **kw
    )
    for child in (popup, tooltip):
        if child is not None:
            layer.add_child(child)
    return layer


CDN_HOSTS = (
    "cdn.jsdelivr.net",
    "cdnjs.cloudflare.com",
    "unpkg.com",
    "code.jquery.com",
    "netdna.bootstrapcdn.com",
)


def render(m: folium.Map) -> str:
    """The page's HTML (lang zh-CN); fails if a CDN link slipped in, or if an inline script
    holds text that could end it early (data in scripts is JSON with ``<>&`` escaped)."""
    page = m.get_root().render()
    for host in CDN_HOSTS:  # a new folium default would break intranet use: fail loudly
        if host in page:
            raise RuntimeError(f"a CDN link ({host}) slipped into a map page")
    check_inline_scripts(page)
    return page.replace("<html>", '<html lang="zh-CN">', 1)
