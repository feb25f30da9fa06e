"""OGC API – Features (Part 1 Core, Part 2 CRS): the layers as collections of GeoJSON features.

Collections are the layers of `geo.model.LAYERS` (``officers`` holds personal data and is not
published). Every request reads one atlas; filtering is vectorised (pandas masks for property
equality, the layer's STRtree for ``bbox``), geometry is serialised with `shapely.to_geojson`
and coordinates are transformed with `shapely.transform` and `geo.crs`.

Coordinates follow OGC API – Features Part 2: they are written in the axis order of the CRS
as its authority defines it. CRS84 (the default) is lon/lat; EPSG:4326 and EPSG:4490 are
lat/lon; EPSG:4549 is northing/easting (X north, Y east, as EPSG defines it); EPSG:3857 is
easting/northing. ``bbox`` is read in the axis order of ``bbox-crs`` in the same way.

Query parameters are validated here (not by FastAPI) so that every bad value is a 400 whose
``detail`` says what to fix; their OpenAPI description is given explicitly, with the standard's
schemas (``bbox`` is a comma-separated array of numbers).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pyproj import CRS

from geo import crs as crs_mod
from geo.api.deps import atlas
from geo.atlas import Atlas
from geo.model import LAYERS, LayerSpec

router = APIRouter(tags=["OGC API – Features"])

GEOJSON = "application/geo+json"
SCHEMA_JSON = "application/schema+json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000

CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
)

TITLES = {
    "roads": ("道路", "Roads", "Named road centerlines."),
    "streets": ("街道", "Streets", "Sub-districts (街道) of the district."),
    "communities": ("产业社区", "Industrial communities", "Industrial communities (产业社区)."),
    "grids": ("网格", "Grids", "Management grids (网格) inside each community."),
    "parks": ("园区", "Parks", "Industrial parks: each is one micro-grid (微网格)."),
    "buildings": (
        "楼宇",
        "Buildings",
        "Building footprints; a building outside every park is its own micro-grid.",
    ),
    "enterprises": ("企业", "Enterprises", "Enterprises as points, with their credit codes."),
}

_JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}


class GeoJSONResponse(Response):
    """A GeoJSON body (`application/geo+json`)."""

    media_type = GEOJSON


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
COORDS_SHIFTS = ("wgs84", "gcj02", "bd09")


def parse_crs(value: str | None, param: str) -> OutputCRS:
    """The CRS named by a ``crs`` / ``bbox-crs`` value (URI, ``[EPSG:n]``, ``EPSG:n``, CRS84)."""
    if value is None or value == "":
        return SUPPORTED_CRS[CRS84]
    key = value.strip().strip("[]").strip("<>")
    low = key.lower()
    if low in ("crs84", "ogc:crs84", "urn:ogc:def:crs:ogc:1.3:crs84") or low == CRS84.lower():
        return SUPPORTED_CRS[CRS84]
    code = None
    for prefix in (
        "epsg:",
        "urn:ogc:def:crs:epsg::",
        _EPSG.lower(),
        _EPSG.lower().replace("http:", "https:"),
    ):
        if low.startswith(prefix) and low[len(prefix) :].isdigit():
            code = low[len(prefix) :]
    hit = SUPPORTED_CRS.get(_EPSG + code) if code else None
    if hit is None:
        raise HTTPException(
            400,
            f"{param}={value!r} is not supported; use one of: {', '.join(CRS_LIST)}",
        )
    return hit


def _coord_fn(out: OutputCRS, shift: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """The function shapely.transform applies to WGS84 lon/lat to write ``out`` (None: as is)."""
    name = shift if shift != "wgs84" else out.name
    if name in ("wgs84", "cgcs2000") and not out.swap:
        return None

    def fn(xy: np.ndarray) -> np.ndarray:
        x, y = crs_mod.from_wgs84(xy[:, 0], xy[:, 1], name)
        return np.column_stack((y, x) if out.swap else (x, y))

    return fn


# -- requests: parameters, formats, links -----------------------------------------------------
def _bad(message: str) -> HTTPException:
    return HTTPException(400, message)


def wants_html(request: Request) -> bool:
    """``f=html|json`` wins; otherwise HTML when Accept prefers text/html over JSON."""
    f = request.query_params.get("f")
    if f is not None:
        f = f.lower()
        if f in ("json", "geojson"):
            return False
        if f == "html":
            return True
        raise _bad(f"f={f!r} is not a format of this service; use f=json or f=html")
    best = {"html": 0.0, "json": 0.0}
    for part in request.headers.get("accept", "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        kind = (
            "html"
            if media in ("text/html", "application/xhtml+xml")
            else "json"
            if media.endswith("json")
            else None
        )
        if kind:
            best[kind] = max(best[kind], q)
    return best["html"] > 0 and best["html"] > best["json"]


def _check_params(request: Request, allowed: Iterable[str], what: str) -> None:
    allowed = set(allowed)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise _bad(
            f"unknown query parameter(s) {', '.join(unknown)} for {what}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def _single(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise _bad(f"{name} is given {len(values)} times; give it once")
    return values[0] if values else None


def _int_param(request: Request, name: str, default: int, lo: int, hi: int | None) -> int:
    raw = _single(request, name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad(f"{name}={raw!r} is not an integer") from None
    if value < lo or (hi is not None and value > hi):
        span = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise _bad(f"{name}={value} is out of range; use an integer {span}")
    return value


def _url(request: Request, name: str, **path: str) -> str:
    return str(request.url_for(name, **path))


def _with_query(url: str, items: Iterable[tuple[str, str]]) -> str:
    query = urlencode(list(items))
    return f"{url}?{query}" if query else url


def _replace(request: Request, **values: str | None) -> list[tuple[str, str]]:
    """The request's query with ``values`` replaced (None removes), order kept."""
    keep = [(k, v) for k, v in request.query_params.multi_items() if k not in values]
    return keep + [(k, v) for k, v in values.items() if v is not None]


def _link(href: str, rel: str, type_: str, title: str | None = None) -> dict[str, str]:
    out = {"href": href, "rel": rel, "type": type_}
    if title:
        out["title"] = title
    return out


def _self_links(request: Request, json_type: str = "application/json") -> list[dict[str, str]]:
    base = str(request.url.remove_query_params("f")).split("?")[0]
    as_json = _with_query(base, _replace(request, f="json"))
    as_html = _with_query(base, _replace(request, f="html"))
    html_now = wants_html(request)
    return [
        _link(as_html if html_now else as_json, "self", "text/html" if html_now else json_type),
        _link(
            as_json if html_now else as_html, "alternate", json_type if html_now else "text/html"
        ),
    ]


def _spec(collection_id: str) -> LayerSpec:
    spec = LAYERS.get(collection_id)
    if spec is None:
        extra = (
            " (officers is not published: it holds personal data)"
            if collection_id == "officers"
            else ""
        )
        raise HTTPException(
            404,
            f"no collection {collection_id!r}{extra}; collections are: {', '.join(LAYERS)}",
        )
    return spec


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- documents --------------------------------------------------------------------------------
def _collection_doc(request: Request, current: Atlas, spec: LayerSpec) -> dict[str, Any]:
    zh, en, about = TITLES[spec.name]
    table = current.tables[spec.name]
    bounds = table.total_bounds if len(table) else np.asarray(current.bounds, dtype=float)
    items = _url(request, "features_items", collectionId=spec.name)
    this = _url(request, "features_collection", collectionId=spec.name)
    doc: dict[str, Any] = {
        "id": spec.name,
        "title": f"{zh} {en}",
        "description": f"{about} {len(table)} features, data version {current.version}.",
        "itemType": "feature",
        "crs": CRS_LIST,
        "storageCrs": CRS84,
        "links": [
            _link(this + "?f=json", "self", "application/json", "this collection"),
            _link(this + "?f=html", "alternate", "text/html", "this collection as HTML"),
            _link(items, "items", GEOJSON, f"{en} as GeoJSON"),
            _link(items + "?f=html", "items", "text/html", f"{en} as HTML"),
            _link(
                _url(request, "features_queryables", collectionId=spec.name),
                "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                SCHEMA_JSON,
                "properties that can filter items (name=value)",
            ),
            _link(
                _url(request, "features_queryables", collectionId=spec.name),
                "queryables",
                SCHEMA_JSON,
                "properties that can filter items (name=value)",
            ),
            _link(
                _url(request, "features_schema", collectionId=spec.name),
                "describedby",
                SCHEMA_JSON,
                "schema of the features' properties",
            ),
        ],
    }
    if np.all(np.isfinite(bounds)):
        doc["extent"] = {"spatial": {"bbox": [[float(b) for b in bounds]], "crs": CRS84}}
    return doc


def _schema_doc(request: Request, spec: LayerSpec, name: str) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for f in spec.fields:
        p: dict[str, Any] = {"title": f.name, "type": _JSON_TYPES[f.type]}
        if f.choices:
            p["enum"] = list(f.choices)
        if f.name == "id":
            p["x-ogc-role"] = "id"
        props[f.name] = p
    props["geometry"] = {
        "x-ogc-role": "primary-geometry",
        "format": {"line": "geometry-linestring", "polygon": "geometry-polygon"}.get(
            spec.geometry or "", "geometry-point"
        ),
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": _url(request, name, collectionId=spec.name),
        "type": "object",
        "title": " ".join(TITLES[spec.name][:2]),
        "properties": props,
        "additionalProperties": False,
    }


# -- items: filter, page, serialise -----------------------------------------------------------
_RESERVED = ("f", "bbox", "bbox-crs", "limit", "offset", "crs", "coords")


def _filter_mask(table: pd.DataFrame, spec: LayerSpec, request: Request) -> np.ndarray:
    """Property equality filters (``name=value``; a repeated name matches any of its values)."""
    mask = np.ones(len(table), dtype=bool)
    types = {f.name: f.type for f in spec.fields}
    for name in dict.fromkeys(k for k in request.query_params if k not in _RESERVED):
        if name == "datetime":
            raise _bad(f"collection {spec.name!r} has no temporal property; remove datetime")
        if name not in types:
            raise _bad(
                f"unknown query parameter {name!r} for collection {spec.name!r}: filter on one "
                f"of its properties ({', '.join(spec.field_names)}) or use "
                f"{', '.join(_RESERVED)}"
            )
        values = request.query_params.getlist(name)
        col = table[name]
        kind = types[name]
        if kind == "int":
            try:
                wanted = [int(v) for v in values]
            except ValueError:
                raise _bad(f"{name} is an integer property; got {values!r}") from None
            hit = col.isin(wanted).fillna(False)
        elif kind == "bool":
            truth = {"true": True, "1": True, "false": False, "0": False}
            if any(v.lower() not in truth for v in values):
                raise _bad(f"{name} is a true/false property; got {values!r}")
            hit = col.isin([truth[v.lower()] for v in values]).fillna(False)
        elif kind == "float":
            try:
                wanted_f = [float(v) for v in values]
            except ValueError:
                raise _bad(f"{name} is a number property; got {values!r}") from None
            hit = col.isin(wanted_f).fillna(False)
        else:
            hit = col.isin(values)
        mask &= np.asarray(hit, dtype=bool)
    return mask


def _parse_bbox(raw: str, bbox_crs: OutputCRS) -> shapely.Geometry:
    """The WGS84 area of a ``bbox`` given in ``bbox_crs`` (axis order of that CRS)."""
    parts = raw.split(",")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        nums = []
    if len(parts) != 4 or len(nums) != 4 or not all(math.isfinite(n) for n in nums):
        raise _bad(
            f"bbox={raw!r} is malformed; give 4 comma-separated numbers: "
            "minx,miny,maxx,maxy in the axis order of bbox-crs (CRS84: lon,lat)"
        )
    a1, b1, a2, b2 = nums
    if a1 > a2 or b1 > b2:
        raise _bad(
            f"bbox={raw!r} is inverted: the lower corner must come first "
            "(min axis 1, min axis 2, max axis 1, max axis 2)"
        )
    x1, y1, x2, y2 = (b1, a1, b2, a2) if bbox_crs.swap else (a1, b1, a2, b2)
    if bbox_crs.geographic:
        if not (-180 <= x1 <= 180 and -180 <= x2 <= 180 and -90 <= y1 <= 90 and -90 <= y2 <= 90):
            order = "lat,lon" if bbox_crs.swap else "lon,lat"
            raise _bad(f"bbox={raw!r} is out of range for {bbox_crs.uri} (axis order {order})")
        return shapely.box(x1, y1, x2, y2)
    # projected: densify the edges, then take the polygon in WGS84
    ring = shapely.segmentize(shapely.box(x1, y1, x2, y2), max((x2 - x1), (y2 - y1), 1.0) / 32)

    def back(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(crs_mod.to_wgs84(xy[:, 0], xy[:, 1], bbox_crs.name))

    area = shapely.transform(ring, back)
    if not shapely.is_valid(area) or not np.all(np.isfinite(shapely.bounds(area))):
        raise _bad(f"bbox={raw!r} cannot be converted from {bbox_crs.uri}; check the numbers")
    return area


def _properties(page: pd.DataFrame, spec: LayerSpec) -> list[str]:
    """Each row's properties (every field but ``id``) as a JSON object, nulls as null."""
    cast = {"int": int, "float": float, "bool": bool, "str": str}
    names, cols = [], []
    for f in spec.fields:
        if f.name == "id" or f.name not in page.columns:
            continue
        col = page[f.name]
        null = col.isna().to_numpy()
        to = cast[f.type]
        names.append(f.name)
        cols.append(
            [None if n else to(v) for v, n in zip(col.to_numpy(dtype=object), null, strict=True)]
        )
    if not cols:
        return ["{}"] * len(page)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    return [dumps(dict(zip(names, row, strict=True))) for row in zip(*cols, strict=True)]


def _features_json(page: pd.DataFrame, spec: LayerSpec, fn, extra: Iterable[str] = ()) -> list[str]:
    geoms = page.geometry.to_numpy()
    if fn is not None:
        geoms = shapely.transform(geoms, fn)
    geo = shapely.to_geojson(geoms)
    ids = [json.dumps(str(i), ensure_ascii=False) for i in page["id"].to_numpy()]
    props = _properties(page, spec)
    tail = "".join(extra)
    return [
        f'{{"type":"Feature","id":{i},"geometry":{g if g is not None else "null"},'
        f'"properties":{p}{tail}}}'
        for i, g, p in zip(ids, geo, props, strict=True)
    ]


# -- HTML -------------------------------------------------------------------------------------
def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:70em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;"
        "text-align:left;vertical-align:top}th{background:#f3f3f3}"
        f"</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _a(href: str, text: str) -> str:
    return f'<a href="{html.escape(href)}">{html.escape(text)}</a>'


def _links_html(links: list[dict[str, str]]) -> str:
    rows = "".join(
        f"<li>{_a(link['href'], link.get('title') or link['rel'])} "
        f"({html.escape(link['rel'])}, {html.escape(link['type'])})</li>"
        for link in links
    )
    return f"<ul>{rows}</ul>"


def _table_html(header: list[str], rows: Iterable[Iterable[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return html.escape(str(value))


# -- OpenAPI parameter descriptions -----------------------------------------------------------
def _q(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
        **extra,
    }


def _p(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


P_F = _q(
    "f",
    "Output format; overrides the Accept header (text/html gives HTML).",
    {"type": "string", "enum": ["json", "html"]},
)
P_COLLECTION = _p("collectionId", "A collection: " + ", ".join(LAYERS) + ".")
P_FEATURE = _p("featureId", "A feature's id (the layer's `id`), e.g. an enterprise id.")
P_CRS = _q(
    "crs",
    "CRS of the output coordinates (OGC API – Features Part 2), written in the axis order its "
    "authority defines: CRS84 lon/lat (default); EPSG:4326 and EPSG:4490 (CGCS2000) lat/lon; "
    "EPSG:4549 (CGCS2000 / 3-degree Gauss-Kruger CM 120E) northing/easting; EPSG:3857 x/y. "
    "The response's Content-Crs header names it. Also accepted: `EPSG:n`, `[EPSG:n]`, `CRS84`.",
    {"type": "string", "format": "uri", "enum": CRS_LIST, "default": CRS84},
)
P_COORDS = _q(
    "coords",
    "Extension (not OGC): shift the output coordinates to GCJ-02 (`gcj02`, AMap/Gaode, "
    "Tencent) or BD-09 (`bd09`, Baidu) for clients that draw on Chinese web maps. Only with "
    "CRS84 output (crs absent or CRS84); Content-Crs still says CRS84, the collection gets a "
    '`"coords"` member. `bbox` is not shifted: it stays in bbox-crs.',
    {"type": "string", "enum": list(COORDS_SHIFTS), "default": "wgs84"},
)
ITEMS_PARAMETERS = [
    P_COLLECTION,
    _q(
        "bbox",
        "Only features whose geometry intersects this box: 4 comma-separated numbers, lower "
        "corner then upper corner, in the axis order of bbox-crs (CRS84: "
        "minlon,minlat,maxlon,maxlat). A malformed or inverted box is a 400.",
        {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}},
        style="form",
        explode=False,
    ),
    _q(
        "bbox-crs",
        "CRS of `bbox` (Part 2); same values as `crs`.",
        {"type": "string", "format": "uri", "enum": CRS_LIST, "default": CRS84},
    ),
    _q(
        "limit",
        f"Page size: at most this many features ({DEFAULT_LIMIT} by default). Follow "
        "the `next` link for the next page.",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    ),
    _q(
        "offset",
        "Skip this many matching features (features are ordered by id).",
        {"type": "integer", "minimum": 0, "default": 0},
    ),
    P_CRS,
    P_COORDS,
    P_F,
]
_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string", "description": "what is wrong and how to fix it"}},
    "required": ["detail"],
}
_ERRORS = {
    "400": {
        "description": "Bad parameter",
        "content": {"application/json": {"schema": _ERROR_SCHEMA}},
    },
    "404": {
        "description": "Unknown collection or feature",
        "content": {"application/json": {"schema": _ERROR_SCHEMA}},
    },
}
_JSON_OR_HTML = {"application/json": {"schema": {"type": "object"}}, "text/html": {}}
_GEOJSON_OR_HTML = {GEOJSON: {"schema": {"type": "object"}}, "text/html": {}}


_CONTENT_CRS = {
    "Content-Crs": {
        "description": "The CRS of the coordinates, as `<uri>` (OGC API – Features Part 2)",
        "schema": {"type": "string"},
    }
}


def _doc(
    parameters: list[dict[str, Any]],
    content: dict[str, Any],
    errors: Iterable[str] = ("400",),
    headers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "OK", "content": content}
    if headers:
        ok["headers"] = headers
    return {
        "parameters": parameters,
        "responses": {"200": ok, **{code: _ERRORS[code] for code in errors}},
    }


# -- routes -----------------------------------------------------------------------------------
Current = Annotated[Atlas, Depends(atlas)]


@router.get(
    "/",
    name="features_landing",
    summary="Landing page",
    operation_id="getLandingPage",
    openapi_extra=_doc([P_F], _JSON_OR_HTML),
)
def landing(request: Request) -> Response:
    docs = str(request.base_url) + (request.app.docs_url or "/docs").lstrip("/")
    api = str(request.base_url) + (request.app.openapi_url or "/openapi.json").lstrip("/")
    links = [
        *_self_links(request),
        _link(
            api,
            "service-desc",
            "application/vnd.oai.openapi+json;version=3.0",
            "the API definition (OpenAPI 3.0)",
        ),
        _link(docs, "service-doc", "text/html", "the API documentation"),
        _link(
            _url(request, "features_conformance"),
            "conformance",
            "application/json",
            "conformance classes implemented",
        ),
        _link(
            _url(request, "features_collections"),
            "data",
            "application/json",
            "the collections (layers)",
        ),
    ]
    doc = {
        "title": request.app.title,
        "description": "OGC API – Features: the layers of the industrial communities "
        "(产业社区) as GeoJSON: " + ", ".join(LAYERS) + ".",
        "attribution": request.app.state.settings.data_attribution,
        "links": links,
    }
    if wants_html(request):
        body = f"<p>{html.escape(doc['description'])}</p><p>{html.escape(doc['attribution'])}</p>"
        return _page(doc["title"], body + _links_html(links))
    return JSONResponse(doc)


@router.get(
    "/conformance",
    name="features_conformance",
    summary="Conformance classes",
    operation_id="getConformanceDeclaration",
    openapi_extra=_doc([P_F], _JSON_OR_HTML),
)
def conformance(request: Request) -> Response:
    doc = {"conformsTo": list(CONFORMANCE), "links": _self_links(request)}
    if wants_html(request):
        return _page(
            "Conformance", "<ul>" + "".join(f"<li>{_a(c, c)}</li>" for c in CONFORMANCE) + "</ul>"
        )
    return JSONResponse(doc)


@router.get(
    "/collections",
    name="features_collections",
    summary="The collections (layers)",
    operation_id="getCollections",
    openapi_extra=_doc([P_F], _JSON_OR_HTML),
)
def collections(request: Request, current: Current) -> Response:
    docs = [_collection_doc(request, current, spec) for spec in LAYERS.values()]
    doc = {"links": _self_links(request), "collections": docs, "crs": CRS_LIST}
    if wants_html(request):
        rows = [
            (
                _a(_url(request, "features_collection", collectionId=d["id"]) + "?f=html", d["id"]),
                html.escape(d["title"]),
                str(len(current.tables[d["id"]])),
                _a(_url(request, "features_items", collectionId=d["id"]) + "?f=html", "items"),
            )
            for d in docs
        ]
        return _page("Collections 图层", _table_html(["id", "title", "features", ""], rows))
    return JSONResponse(doc)


@router.get(
    "/collections/{collectionId}",
    name="features_collection",
    summary="One collection: extent, CRS list and links",
    operation_id="describeCollection",
    openapi_extra=_doc([P_COLLECTION, P_F], _JSON_OR_HTML, ("400", "404")),
)
def collection(request: Request, current: Current) -> Response:
    spec = _spec(request.path_params["collectionId"])
    doc = _collection_doc(request, current, spec)
    doc["links"][:2] = _self_links(request)
    if wants_html(request):
        bbox = doc.get("extent", {}).get("spatial", {}).get("bbox", [[]])[0]
        body = (
            f"<p>{html.escape(doc['description'])}</p>"
            f"<p>Extent (CRS84): {html.escape(', '.join(f'{b:.6f}' for b in bbox))}</p>"
            f"<p>Properties: {html.escape(', '.join(spec.field_names))}</p>"
            f"{_links_html(doc['links'])}"
        )
        return _page(doc["title"], body)
    return JSONResponse(doc)


@router.get(
    "/collections/{collectionId}/queryables",
    name="features_queryables",
    summary="Properties that filter items (name=value)",
    operation_id="getQueryables",
    openapi_extra=_doc([P_COLLECTION], {SCHEMA_JSON: {"schema": {"type": "object"}}}, ("404",)),
)
def queryables(request: Request) -> Response:
    spec = _spec(request.path_params["collectionId"])
    doc = _schema_doc(request, spec, "features_queryables")
    doc["properties"].pop("geometry")
    return JSONResponse(doc, media_type=SCHEMA_JSON)


@router.get(
    "/collections/{collectionId}/schema",
    name="features_schema",
    summary="Schema of the features of a collection",
    operation_id="getSchema",
    openapi_extra=_doc([P_COLLECTION], {SCHEMA_JSON: {"schema": {"type": "object"}}}, ("404",)),
)
def schema(request: Request) -> Response:
    spec = _spec(request.path_params["collectionId"])
    return JSONResponse(_schema_doc(request, spec, "features_schema"), media_type=SCHEMA_JSON)


_ITEMS_DESCRIPTION = (
    "Features of a collection as GeoJSON (`application/geo+json`) or HTML, ordered by id, one "
    "page at a time (`limit`, `offset`, and `next`/`prev` links that keep the query). Besides "
    "the parameters listed, any property of the collection filters by equality, e.g. "
    "`?kind=enterprise&grid_id=C01-G01` (a repeated name matches any of its values); see the "
    "collection's queryables. An unknown parameter is a 400 that lists the allowed ones."
)


@router.get(
    "/collections/{collectionId}/items",
    name="features_items",
    summary="Features of a collection (filter with bbox and properties; page)",
    description=_ITEMS_DESCRIPTION,
    operation_id="getFeatures",
    response_class=GeoJSONResponse,
    openapi_extra=_doc(ITEMS_PARAMETERS, _GEOJSON_OR_HTML, ("400", "404"), _CONTENT_CRS),
)
def items(request: Request, current: Current) -> Response:
    spec = _spec(request.path_params["collectionId"])
    table = current.tables[spec.name]
    as_html = wants_html(request)
    out = parse_crs(_single(request, "crs"), "crs")
    bbox_crs = parse_crs(_single(request, "bbox-crs"), "bbox-crs")
    shift = _coords(request, out)
    limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, None)
    mask = _filter_mask(table, spec, request)
    raw_bbox = _single(request, "bbox")
    if raw_bbox is not None:
        area = _parse_bbox(raw_bbox, bbox_crs)
        hits = table.sindex.query(area, predicate="intersects")
        inside = np.zeros(len(table), dtype=bool)
        inside[hits] = True
        mask &= inside
    rows = np.flatnonzero(mask)
    matched = len(rows)
    page = table.iloc[rows[offset : offset + limit]]

    base = _url(request, "features_items", collectionId=spec.name)
    fmt = "html" if as_html else "json"
    media = "text/html" if as_html else GEOJSON
    links = _self_links(request, GEOJSON)
    if offset + limit < matched:
        nxt = _with_query(
            base, _replace(request, f=fmt, offset=str(offset + limit), limit=str(limit))
        )
        links.append(_link(nxt, "next", media, "next page"))
    if offset > 0:
        prev = _with_query(
            base, _replace(request, f=fmt, offset=str(max(0, offset - limit)), limit=str(limit))
        )
        links.append(_link(prev, "prev", media, "previous page"))
    links.append(
        _link(
            _url(request, "features_collection", collectionId=spec.name),
            "collection",
            "application/json",
            "the collection",
        )
    )

    if as_html:
        return _items_html(spec, page, matched, offset, links)
    stamp = _now()
    features = _features_json(page, spec, _coord_fn(out, shift))
    head = {
        "type": "FeatureCollection",
        "numberMatched": matched,
        "numberReturned": len(page),
        "timeStamp": stamp,
        "links": links,
    }
    if shift != "wgs84":
        head["coords"] = shift
    body = json.dumps(head, ensure_ascii=False)[:-1] + ',"features":[' + ",".join(features) + "]}"
    return GeoJSONResponse(body.encode(), headers={"Content-Crs": f"<{out.uri}>"})


@router.get(
    "/collections/{collectionId}/items/{featureId}",
    name="features_item",
    summary="One feature by id",
    operation_id="getFeature",
    response_class=GeoJSONResponse,
    openapi_extra=_doc(
        [P_COLLECTION, P_FEATURE, P_CRS, P_COORDS, P_F],
        _GEOJSON_OR_HTML,
        ("400", "404"),
        _CONTENT_CRS,
    ),
)
def item(request: Request, current: Current) -> Response:
    spec = _spec(request.path_params["collectionId"])
    fid = request.path_params["featureId"]
    _check_params(request, ("f", "crs", "coords"), "a single feature")
    as_html = wants_html(request)
    out = parse_crs(_single(request, "crs"), "crs")
    shift = _coords(request, out)
    table = current.tables[spec.name]
    ids = table["id"].to_numpy()
    pos = int(np.searchsorted(ids, fid)) if len(ids) else 0
    if pos >= len(ids) or ids[pos] != fid:
        hits = np.flatnonzero(ids == fid)  # in case a table is not sorted
        if not len(hits):
            example = f" (ids look like {ids[0]!r})" if len(ids) else ""
            raise HTTPException(
                404,
                f"no feature {fid!r} in collection {spec.name!r}{example}; "
                f"list them at /collections/{spec.name}/items",
            )
        pos = int(hits[0])
    page = table.iloc[[pos]]
    coll = _url(request, "features_collection", collectionId=spec.name)
    links = [
        *_self_links(request, GEOJSON),
        _link(coll, "collection", "application/json", "the collection"),
    ]
    if as_html:
        row = page.iloc[0]
        rows = [(html.escape(n), _cell(row[n])) for n in spec.field_names]
        rows.append(("geometry", html.escape(str(row.geometry.geom_type))))
        return _page(
            f"{spec.name} {fid}", _table_html(["property", "value"], rows) + _links_html(links)
        )
    extra = [',"links":' + json.dumps(links, ensure_ascii=False)]
    if shift != "wgs84":
        extra.append(f',"coords":"{shift}"')
    body = _features_json(page, spec, _coord_fn(out, shift), extra)[0]
    return GeoJSONResponse(body.encode(), headers={"Content-Crs": f"<{out.uri}>"})


def _coords(request: Request, out: OutputCRS) -> str:
    shift = (_single(request, "coords") or "wgs84").lower()
    if shift not in COORDS_SHIFTS:
        raise _bad(f"coords={shift!r} is not supported; use one of {', '.join(COORDS_SHIFTS)}")
    if shift != "wgs84" and out.uri != CRS84:
        raise _bad(f"coords={shift} only applies to CRS84 output; drop crs or set crs={CRS84}")
    return shift


def _items_html(
    spec: LayerSpec, page: pd.DataFrame, matched: int, offset: int, links: list[dict[str, str]]
) -> HTMLResponse:
    zh, en, _ = TITLES[spec.name]
    names = list(spec.field_names)
    rows = [
        [_cell(v) for v in values] + [html.escape(str(g.geom_type) if g is not None else "")]
        for values, g in zip(
            page[names].itertuples(index=False, name=None), page.geometry.to_numpy(), strict=True
        )
    ]
    nav = " ".join(
        _a(link["href"], link["rel"])
        for link in links
        if link["rel"] in ("prev", "next", "collection", "alternate")
    )
    shown = f"{offset + 1}–{offset + len(page)}" if len(page) else "none"
    body = f"<p>{matched} features match; showing {shown}.</p><p>{nav}</p>" + _table_html(
        [*names, "geometry"], rows
    )
    return _page(f"{zh} {en}", body)
