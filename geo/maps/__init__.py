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

Modules: `options` (MapOptions, assets, colours, errors), `page` (the folium page: assets, base
map, attribution, rendering), `data` (per-atlas derived data, GeoJSON, popup properties),
`layers` (the shared layers, search entries, config), and one per map: `district` (with
`index_of_maps`), `community`, `officer`, `editor`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from geo.maps.options import (
    ASSETS_CSS,
    ASSETS_JS,
    BASEMAPS,
    COLORS,
    GEOMAN,
    INLINE_MAX,
    KIND_LABEL,
    LEAFLET,
    MARKERCLUSTER,
    STATIC_DIR,
    VECTORGRID,
    MapError,
    MapOptions,
    OptionError,
)

if TYPE_CHECKING:
    from geo.maps.community import community_map
    from geo.maps.data import pinyin_keys
    from geo.maps.district import district_map, index_of_maps
    from geo.maps.editor import editor_map
    from geo.maps.layers import ENT_COLUMNS, search_data
    from geo.maps.officer import officer_map
    from geo.maps.page import CDN_HOSTS

# the builders import folium, branca and pypinyin (~0.5 s): a server imports them with its
# first map, not at start (PEP 562)
_LAZY = {
    "community_map": "community",
    "pinyin_keys": "data",
    "district_map": "district",
    "index_of_maps": "district",
    "editor_map": "editor",
    "ENT_COLUMNS": "layers",
    "search_data": "layers",
    "officer_map": "officer",
    "CDN_HOSTS": "page",
}


def __getattr__(name: str) -> Any:
    """A builder (or constant) of a module imported on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ASSETS_CSS",
    "ASSETS_JS",
    "BASEMAPS",
    "CDN_HOSTS",
    "COLORS",
    "ENT_COLUMNS",
    "GEOMAN",
    "INLINE_MAX",
    "KIND_LABEL",
    "LEAFLET",
    "MARKERCLUSTER",
    "STATIC_DIR",
    "VECTORGRID",
    "MapError",
    "MapOptions",
    "OptionError",
    "community_map",
    "district_map",
    "editor_map",
    "index_of_maps",
    "officer_map",
    "pinyin_keys",
    "search_data",
]
