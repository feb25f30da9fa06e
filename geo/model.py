"""The records of the system and their schema: one `LayerSpec` per layer.

Every layer is a table of features with a stable string ``id``; geometries are WGS84 lon/lat.
The specs here are the single source of truth for the loader (`geo.io`), the store
(`geo.store`) and the exports: a field that is not listed here is not kept.

Hierarchy: district → street → community (产业社区) → grid (网格) → micro-grid (微网格:
a park, or a building outside any park) → enterprise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FieldType = Literal["str", "int", "float", "bool"]

COUNTY_CODE = "330108"  # 杭州市滨江区 (Binjiang), GB/T 2260

COMMUNITY_TYPES = ("科技创新型", "文化创意型", "智能制造型", "商务楼宇型")
MANAGEMENT_MODES = ("platform", "street")  # 平台+街道双重管理 (橄榄形) | 区-街道-社区
BUILDING_KINDS = ("enterprise", "mixed-use")  # 企业楼宇 | 商住楼宇
# The classes a road's ``class`` is mapped onto on import (geo.columns.road_class); waterways that
# four-to text may name as sides are rows of the roads layer too. ``class`` is free text: any
# other value (OSM ``busway``, ``footway`` …) is kept as given, and a road without one keeps it
# empty (None) rather than being guessed: the boundary engine matches roads by name only.
ROAD_CLASSES = ("expressway", "arterial", "secondary", "branch")
WATERWAY_CLASSES = ("river", "canal", "stream")
TEAM_ROLES = {
    "enterprise": ("楼宇管理长", "助企联络员", "平安宣传员"),
    "mixed-use": ("楼宇管理长", "协理服务员", "综合保障员"),
}
ENTERPRISE_CRS_VALUES = ("wgs84", "cgcs2000", "gcj02", "bd09")


@dataclass(frozen=True)
class Field:
    """One field of a layer: its type, whether a value is required, the values allowed."""

    name: str
    type: FieldType
    required: bool = True
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class LayerSpec:
    """A layer: its name, geometry kind (None for attribute tables) and fields (``id`` first)."""

    name: str
    geometry: Literal["line", "polygon", "point"] | None
    fields: tuple[Field, ...]

    @property
    def field_names(self) -> tuple[str, ...]:
        """The names of the fields, ``id`` first."""
        return tuple(f.name for f in self.fields)

    @property
    def required(self) -> tuple[str, ...]:
        """The names of the fields that need a value."""
        return tuple(f.name for f in self.fields if f.required)


def _id() -> Field:
    return Field("id", "str")


ROADS = LayerSpec(
    "roads",
    "line",
    # class: ROAD_CLASSES for roads, river|canal|stream for waterways; any other value is kept,
    # and a road without one keeps it empty
    (_id(), Field("name", "str", required=False), Field("class", "str", required=False)),
)
STREETS = LayerSpec(
    "streets",
    "polygon",
    (_id(), Field("name", "str"), Field("code", "str")),
)
COMMUNITIES = LayerSpec(
    "communities",
    "polygon",
    (
        _id(),
        Field("name", "str"),
        Field("street_id", "str"),
        Field("code", "str"),
        Field("type", "str", choices=COMMUNITY_TYPES),
        Field("mode", "str", choices=MANAGEMENT_MODES),
        Field("four_to", "str"),
        Field("founded", "str", required=False),
        # ';'-separated grid codes retired by re-splits: never issued again (geo.grids.codes)
        Field("retired_grids", "str", required=False),
    ),
)
GRIDS = LayerSpec(
    "grids",
    "polygon",
    (_id(), Field("name", "str"), Field("community_id", "str"), Field("code", "str")),
)
PARKS = LayerSpec(
    "parks",
    "polygon",
    (
        _id(),
        Field("name", "str"),
        # grid and micro-grid code: empty until `geo grids split` places the park in a grid
        Field("grid_id", "str", required=False),
        Field("code", "str", required=False),
        Field("address", "str", required=False),
    ),
)
BUILDINGS = LayerSpec(
    "buildings",
    "polygon",
    (
        _id(),
        Field("name", "str", required=False),  # many real footprints have no name
        Field("address", "str", required=False),
        Field("kind", "str", choices=BUILDING_KINDS),
        Field("grid_id", "str", required=False),  # empty until `geo grids split`
        Field(
            "park_id", "str", required=False
        ),  # set: the building belongs to that park's micro-grid
        Field("code", "str", required=False),  # micro-grid code; only for buildings outside parks
        Field("floors", "int", required=False),
    ),
)
ENTERPRISES = LayerSpec(
    "enterprises",
    "point",
    (
        _id(),
        Field("name", "str"),
        Field("credit_code", "str"),
        Field("credit_code_valid", "bool"),  # computed on load (GB 32100 check character)
        Field("address", "str"),
        Field("chain", "str", required=False),  # industry chain (产业链)
        Field("employees", "int", required=False),
        Field("source_crs", "str"),  # the CRS the coordinates came in (converted to WGS84)
    ),
)
OFFICERS = LayerSpec(
    "officers",
    None,
    (
        _id(),
        Field("name", "str"),
        Field("role", "str", choices=tuple(sorted({r for t in TEAM_ROLES.values() for r in t}))),
        Field("phone", "str"),  # personal data: only for authorised callers
        Field("party_member", "bool"),
        Field("building_ids", "str"),  # ';'-separated ids of the buildings this officer serves
    ),
)

AREAS = LayerSpec(  # named areas that four-to text cites as …地界 (not served as a layer)
    "areas",
    "polygon",
    (_id(), Field("name", "str")),
)

LAYERS: dict[str, LayerSpec] = {
    s.name: s for s in (ROADS, STREETS, COMMUNITIES, GRIDS, PARKS, BUILDINGS, ENTERPRISES)
}
TABLES: dict[str, LayerSpec] = {**LAYERS, "areas": AREAS, "officers": OFFICERS}

# The containment hierarchy used by ownership: child layer -> (parent layer, parent key field).
PARENT: dict[str, tuple[str, str]] = {
    "communities": ("streets", "street_id"),
    "grids": ("communities", "community_id"),
    "parks": ("grids", "grid_id"),
    "buildings": ("grids", "grid_id"),
}
