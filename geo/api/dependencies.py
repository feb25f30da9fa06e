"""The parameters of OGC API – Features, one small FastAPI dependency each.

Each dependency reads its parameter as the client wrote it and answers a bad value with
`geo.errors.BadRequest`: a 400, as OGC API – Features asks (FastAPI's own validation would
answer 422), whose ``detail`` says what to fix. Their OpenAPI description comes from the
signatures: the ``Query``/``Path`` description and, with `WithJsonSchema`, the standard's schema
(``limit`` an integer in range, ``bbox`` an array of 4 numbers, ``crs`` one of the CRS URIs).
`geo.api.features.install` finishes those operations in ``/openapi.json`` (no 422 and no
generated titles; ``bbox`` a comma-separated form array).

Coordinates follow OGC API – Features Part 2: they are written in the axis order of the CRS
as its authority defines it. CRS84 (the default) is lon/lat; EPSG:4326 and EPSG:4490 are
lat/lon; EPSG:4549 is northing/easting (X north, Y east, as EPSG defines it); EPSG:3857 is
easting/northing. ``bbox`` is read in the axis order of ``bbox-crs`` in the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import shapely
from fastapi import Depends, Path, Query, Request
from pydantic import WithJsonSchema
from pyproj import CRS

from geo import crs as crs_mod
from geo.errors import BadRequest, NotFound
from geo.model import LAYERS, LayerSpec

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
COORDS_SHIFTS = ("wgs84", "gcj02", "bd09")
# the items' parameters that are not property filters
RESERVED = ("f", "bbox", "bbox-crs", "limit", "offset", "crs", "coords")


# -- coordinate reference systems -------------------------------------------------------------
@dataclass(frozen=True)
class OutputCRS:
    """A CRS the service reads and writes: its URI, `geo.crs` name and axis order."""

    uri: str
    name: str  # for geo.crs.from_wgs84 / to_wgs84
    swap: bool  # True when the CRS's first axis is northing/latitude
    geographic: bool


def _crs(uri: str, name: str, code: str) -> OutputCRS:
    pj = CRS.from_user_input(code)
    first = pj.axis_info[0].direction.lower()
    return OutputCRS(uri, name, first in ("north", "south"), pj.is_geographic)


SUPPORTED_CRS: dict[str, OutputCRS] = {
    c.uri: c
    for c in (
        _crs(CRS84, "wgs84", "OGC:CRS84"),
        _crs(_EPSG + "4326", "wgs84", "EPSG:4326"),
        _crs(_EPSG + "4490", "cgcs2000", "EPSG:4490"),
        _crs(_EPSG + "4549", "EPSG:4549", "EPSG:4549"),
        _crs(_EPSG + "3857", "EPSG:3857", "EPSG:3857"),
    )
}
CRS_LIST = list(SUPPORTED_CRS)
_CRS84_NAMES = ("crs84", "ogc:crs84", "urn:ogc:def:crs:ogc:1.3:crs84", CRS84.lower())
_EPSG_PREFIXES = (
    "epsg:",
    "urn:ogc:def:crs:epsg::",
    _EPSG.lower(),
    _EPSG.lower().replace("http:", "https:"),
)


def _epsg_code(name: str) -> str | None:
    """The EPSG code in a lower-case ``EPSG:n`` / URN / URI, or None."""
    for prefix in _EPSG_PREFIXES:
        if name.startswith(prefix) and name[len(prefix) :].isdigit():
            return name[len(prefix) :]
    return None


def parse_crs(value: str | None, param: str) -> OutputCRS:
    """The CRS named by a ``crs`` / ``bbox-crs`` value (URI, ``[EPSG:n]``, ``EPSG:n``, CRS84).

    >>> parse_crs("[EPSG:4490]", "crs").uri
    'http://www.opengis.net/def/crs/EPSG/0/4490'
    >>> parse_crs(None, "crs").uri == CRS84
    True
    """
    if value is None or value == "":
        return SUPPORTED_CRS[CRS84]
    low = value.strip().strip("[]").strip("<>").lower()
    if low in _CRS84_NAMES:
        return SUPPORTED_CRS[CRS84]
    code = _epsg_code(low)
    hit = SUPPORTED_CRS.get(_EPSG + code) if code else None
    if hit is None:
        raise BadRequest(f"{param}={value!r} is not supported; use one of: {', '.join(CRS_LIST)}")
    return hit


# -- helpers ----------------------------------------------------------------------------------
def _once(request: Request, name: str) -> None:
    """400 when the query gives ``name`` more than once."""
    count = len(request.query_params.getlist(name))
    if count > 1:
        raise BadRequest(f"{name} is given {count} times; give it once")


def _integer(name: str, raw: int | str, default: int, lo: int, hi: int | None) -> int:
    """``raw`` (the parameter's text, or its default) as an integer in ``lo..hi``."""
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name}={raw!r} is not an integer") from None
    if value < lo or (hi is not None and value > hi):
        span = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise BadRequest(f"{name}={value} is out of range; use an integer {span}")
    return value


def _quality(params: list[str]) -> float:
    """The ``q`` of an Accept entry's parameters (1 when absent, 0 when unreadable)."""
    for p in params:
        if p.startswith("q="):
            try:
                return float(p[2:])
            except ValueError:
                return 0.0
    return 1.0


def _media_kind(media: str) -> str | None:
    if media in ("text/html", "application/xhtml+xml"):
        return "html"
    return "json" if media.endswith("json") else None


def accept_prefers_html(accept: str) -> bool:
    """Whether an Accept header prefers text/html over JSON.

    >>> accept_prefers_html("text/html,*/*;q=0.8"), accept_prefers_html("application/json")
    (True, False)
    """
    best = {"html": 0.0, "json": 0.0}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        kind = _media_kind(media)
        if kind:
            best[kind] = max(best[kind], _quality(params))
    return best["html"] > 0 and best["html"] > best["json"]


# -- path parameters --------------------------------------------------------------------------
def collection(
    collection_id: Annotated[
        str,
        Path(alias="collectionId", description="A collection: " + ", ".join(LAYERS) + "."),
        WithJsonSchema({"type": "string"}),
    ],
) -> LayerSpec:
    """The layer a ``collectionId`` names (404 for any other, ``officers`` included)."""
    spec = LAYERS.get(collection_id)
    if spec is None:
        extra = (
            " (officers is not published: it holds personal data)"
            if collection_id == "officers"
            else ""
        )
        raise NotFound(
            f"no collection {collection_id!r}{extra}; collections are: {', '.join(LAYERS)}"
        )
    return spec


def feature_id(
    feature: Annotated[
        str,
        Path(
            alias="featureId",
            description="A feature's id (the layer's `id`), e.g. an enterprise id.",
        ),
        WithJsonSchema({"type": "string"}),
    ],
) -> str:
    """The ``featureId`` of the path."""
    return feature


# -- query parameters -------------------------------------------------------------------------
def wants_html(
    request: Request,
    f: Annotated[
        str | None,
        Query(description="Output format; overrides the Accept header (text/html gives HTML)."),
        WithJsonSchema({"type": "string", "enum": ["json", "html"]}),
    ] = None,
) -> bool:
    """``f=html|json`` wins; otherwise HTML when Accept prefers text/html over JSON."""
    if f is None:
        return accept_prefers_html(request.headers.get("accept", ""))
    f = f.lower()
    if f in ("json", "geojson"):
        return False
    if f == "html":
        return True
    raise BadRequest(f"f={f!r} is not a format of this service; use f=json or f=html")


_CRS_SCHEMA = {"type": "string", "format": "uri", "enum": CRS_LIST}


def output_crs(
    request: Request,
    crs: Annotated[
        str,
        Query(
            description="CRS of the output coordinates (OGC API – Features Part 2), written in "
            "the axis order its authority defines: CRS84 lon/lat (default); EPSG:4326 and "
            "EPSG:4490 (CGCS2000) lat/lon; EPSG:4549 (CGCS2000 / 3-degree Gauss-Kruger CM "
            "120E) northing/easting; EPSG:3857 x/y. The response's Content-Crs header names "
            "it. Also accepted: `EPSG:n`, `[EPSG:n]`, `CRS84`."
        ),
        WithJsonSchema(_CRS_SCHEMA),
    ] = CRS84,
) -> OutputCRS:
    """The CRS the coordinates are written in."""
    _once(request, "crs")
    return parse_crs(crs, "crs")


def bbox_crs(
    request: Request,
    value: Annotated[
        str,
        Query(alias="bbox-crs", description="CRS of `bbox` (Part 2); same values as `crs`."),
        WithJsonSchema(_CRS_SCHEMA),
    ] = CRS84,
) -> OutputCRS:
    """The CRS ``bbox`` is given in."""
    _once(request, "bbox-crs")
    return parse_crs(value, "bbox-crs")


Output = Annotated[OutputCRS, Depends(output_crs)]


def coords_shift(
    request: Request,
    out: Output,
    coords: Annotated[
        str,
        Query(
            description="Extension (not OGC): shift the output coordinates to GCJ-02 (`gcj02`, "
            "AMap/Gaode, Tencent) or BD-09 (`bd09`, Baidu) for clients that draw on Chinese web "
            "maps. Only with CRS84 output (crs absent or CRS84); Content-Crs still says CRS84, "
            'the collection gets a `"coords"` member. `bbox` is not shifted: it stays in '
            "bbox-crs."
        ),
        WithJsonSchema({"type": "string", "enum": list(COORDS_SHIFTS)}),
    ] = "wgs84",
) -> str:
    """``wgs84`` (as is), ``gcj02`` or ``bd09``: the shift of CRS84 output."""
    _once(request, "coords")
    shift = (coords or "wgs84").lower()
    if shift not in COORDS_SHIFTS:
        raise BadRequest(
            f"coords={shift!r} is not supported; use one of {', '.join(COORDS_SHIFTS)}"
        )
    if shift != "wgs84" and out.uri != CRS84:
        raise BadRequest(
            f"coords={shift} only applies to CRS84 output; drop crs or set crs={CRS84}"
        )
    return shift


def page_limit(
    request: Request,
    limit: Annotated[
        int | str,
        Query(
            description=f"Page size: at most this many features ({DEFAULT_LIMIT} by default). "
            "Follow the `next` link for the next page."
        ),
        WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
    ] = DEFAULT_LIMIT,
) -> int:
    """At most this many features on a page."""
    _once(request, "limit")
    return _integer("limit", limit, DEFAULT_LIMIT, 1, MAX_LIMIT)


def page_offset(
    request: Request,
    offset: Annotated[
        int | str,
        Query(description="Skip this many matching features (features are ordered by id)."),
        WithJsonSchema({"type": "integer", "minimum": 0}),
    ] = 0,
) -> int:
    """Skip this many matching features."""
    _once(request, "offset")
    return _integer("offset", offset, 0, 0, None)


# projected coordinates (metres) beyond this are no place on Earth in any supported CRS
PROJECTED_LIMIT = 1e9


def _bbox_numbers(raw: str) -> tuple[float, float, float, float]:
    """The 4 numbers of a ``bbox``, lower corner first (400 when malformed or inverted)."""
    parts = raw.split(",")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        nums = []
    if len(parts) != 4 or len(nums) != 4 or not all(math.isfinite(n) for n in nums):
        raise BadRequest(
            f"bbox={raw!r} is malformed; give 4 comma-separated numbers: "
            "minx,miny,maxx,maxy in the axis order of bbox-crs (CRS84: lon,lat)"
        )
    a1, b1, a2, b2 = nums
    if a1 > a2 or b1 > b2:
        raise BadRequest(
            f"bbox={raw!r} is inverted: the lower corner must come first "
            "(min axis 1, min axis 2, max axis 1, max axis 2)"
        )
    return a1, b1, a2, b2


def parse_bbox(raw: str, in_crs: OutputCRS) -> shapely.Geometry:
    """The WGS84 area of a ``bbox`` given in ``in_crs`` (axis order of that CRS).

    >>> parse_bbox("30.1,120.1,30.2,120.2", SUPPORTED_CRS[_EPSG + "4326"]).bounds
    (120.1, 30.1, 120.2, 30.2)
    """
    a1, b1, a2, b2 = _bbox_numbers(raw)
    x1, y1, x2, y2 = (b1, a1, b2, a2) if in_crs.swap else (a1, b1, a2, b2)
    if in_crs.geographic:
        if not (-180 <= x1 <= 180 and -180 <= x2 <= 180 and -90 <= y1 <= 90 and -90 <= y2 <= 90):
            order = "lat,lon" if in_crs.swap else "lon,lat"
            raise BadRequest(f"bbox={raw!r} is out of range for {in_crs.uri} (axis order {order})")
        return shapely.box(x1, y1, x2, y2)
    # projected: densify the edges, then take the polygon in WGS84
    cannot = BadRequest(f"bbox={raw!r} cannot be converted from {in_crs.uri}; check the numbers")
    if max(abs(x1), abs(y1), abs(x2), abs(y2)) > PROJECTED_LIMIT:
        raise cannot  # no projected CRS reaches this far (and the arithmetic would overflow)

    def back(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(crs_mod.to_wgs84(xy[:, 0], xy[:, 1], in_crs.name))

    try:  # a zero-width box cannot be densified: GEOS refuses it
        ring = shapely.segmentize(shapely.box(x1, y1, x2, y2), max((x2 - x1), (y2 - y1), 1.0) / 32)
        area = shapely.transform(ring, back)
    except shapely.errors.GEOSException:
        raise cannot from None
    if not shapely.is_valid(area) or not np.all(np.isfinite(shapely.bounds(area))):
        raise cannot
    return area


def bbox_area(
    request: Request,
    in_crs: Annotated[OutputCRS, Depends(bbox_crs)],
    bbox: Annotated[
        str | None,
        Query(
            description="Only features whose geometry intersects this box: 4 comma-separated "
            "numbers, lower corner then upper corner, in the axis order of bbox-crs (CRS84: "
            "minlon,minlat,maxlon,maxlat). A malformed or inverted box is a 400."
        ),
        WithJsonSchema(
            {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}}
        ),
    ] = None,
) -> shapely.Geometry | None:
    """The WGS84 area ``bbox`` asks for (None: no ``bbox``)."""
    _once(request, "bbox")
    return None if bbox is None else parse_bbox(bbox, in_crs)


# -- property filters -------------------------------------------------------------------------
_TRUTH = {"true": True, "1": True, "false": False, "0": False}


def _typed(name: str, kind: str, values: list[str]) -> list[Any]:
    """A filter's values as its property's type (400 when one is not)."""
    if kind == "bool":
        if any(v.lower() not in _TRUTH for v in values):
            raise BadRequest(f"{name} is a true/false property; got {values!r}")
        return [_TRUTH[v.lower()] for v in values]
    if kind in ("int", "float"):
        try:
            return [int(v) if kind == "int" else float(v) for v in values]
        except ValueError:
            what = "an integer" if kind == "int" else "a number"
            raise BadRequest(f"{name} is {what} property; got {values!r}") from None
    return values


def property_filters(
    request: Request, spec: Annotated[LayerSpec, Depends(collection)]
) -> dict[str, list[Any]]:
    """Property equality filters: ``name=value`` (a repeated name matches any of its values).

    Every query parameter that is not one of the items' own (`RESERVED`) must be a property of
    the collection; ``datetime`` is refused (no collection has a temporal property).
    """
    types = {f.name: f.type for f in spec.fields}
    filters: dict[str, list[Any]] = {}
    for name in dict.fromkeys(k for k in request.query_params if k not in RESERVED):
        if name == "datetime":
            raise BadRequest(f"collection {spec.name!r} has no temporal property; remove datetime")
        if name not in types:
            raise BadRequest(
                f"unknown query parameter {name!r} for collection {spec.name!r}: filter on one "
                f"of its properties ({', '.join(spec.field_names)}) or use "
                f"{', '.join(RESERVED)}"
            )
        filters[name] = _typed(name, types[name], request.query_params.getlist(name))
    return filters


def feature_parameters(request: Request) -> None:
    """400 for a query parameter a single feature does not take (f, crs and coords only)."""
    allowed = {"f", "crs", "coords"}
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise BadRequest(
            f"unknown query parameter(s) {', '.join(unknown)} for a single feature; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


Collection = Annotated[LayerSpec, Depends(collection)]
FeatureId = Annotated[str, Depends(feature_id)]
Html = Annotated[bool, Depends(wants_html)]
Coords = Annotated[str, Depends(coords_shift)]
Limit = Annotated[int, Depends(page_limit)]
Offset = Annotated[int, Depends(page_offset)]
BboxArea = Annotated[shapely.Geometry | None, Depends(bbox_area)]
Filters = Annotated[dict[str, list[Any]], Depends(property_filters)]
