"""Map options, the vendored assets, colours and the maps' errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from geo.errors import InvalidInput, NotFound
from geo.settings import DATA_ATTRIBUTION

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"  # geo/static
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


class MapError(NotFound):
    """No such community or officer (the message names what is missing)."""


class OptionError(InvalidInput):
    """A map option that cannot be served (unknown base map, missing key); says how to fix."""


@dataclass(frozen=True)
class MapOptions:
    """How a map is drawn and linked: base map, asset and tile URLs, links, attribution."""

    basemap: str = "osm"
    tianditu_key: str | None = None
    static_url: str = "/static"  # where geo/static is served ("static" for built files)
    tiles_url: str | None = "/tiles"  # vector tiles; None: every layer inline
    api_url: str = ""  # the service's API (the editor calls it)
    link: str = "/maps/{kind}/{id}"  # links between maps; kind: community | officer
    district_link: str = "/maps/"
    inline_max: int = INLINE_MAX
    extra_query: str = field(default="")  # appended to links (e.g. "?basemap=none")
    # served maps ask the search endpoint as the user types (nothing loaded up front);
    # standalone files embed their entries
    search_url: str | None = None  # e.g. "/search" (GET /search?q=&community=&coords=)
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
        """Whether overlays are shifted to GCJ-02 (the amap base map)."""
        return self.basemap == "amap"

    def href(self, kind: str, ident: str) -> str:
        """The link to the map of a community or officer."""
        return self.link.format(kind=kind, id=ident) + self.extra_query
