"""OGC API – Features (Part 1 Core, Part 2 CRS): the layers as collections of GeoJSON features.

Collections are the layers of `geo.model.LAYERS` (``officers`` holds personal data and is not
published). Every request reads one atlas. The routes here build the documents and links;
their parameters are read by `geo.api.dependencies` (one dependency each, a bad value is a 400
that says what to fix), features are selected and encoded by `geo.api.ogc_items` and the
``f=html`` pages come from templates (`geo.api.ogc_html`).

What a caller sees of a layer is `geo.visibility`'s: every route reads the collection as
`Visible` (the spec without the fields the caller's role may not see), so the items (JSON and
HTML), the schema, the queryables and the property filters agree — a filter on a hidden field
(``?employees=`` for an anonymous caller) is a 400, since it would leak the field's values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from geo.api import features_edit, ogc_html, ogc_items
from geo.api.auth import Role
from geo.api.dependencies import (
    CRS84,
    CRS_LIST,
    MAX_LIMIT,
    BboxArea,
    Collection,
    Coords,
    FeatureId,
    Html,
    Limit,
    Offset,
    Output,
    OutputCRS,
    feature_parameters,
    property_filters,
)
from geo.api.deps import atlas
from geo.atlas import Atlas
from geo.errors import BadRequest
from geo.model import LAYERS, LayerSpec
from geo.visibility import hidden_fields, least_role, visible_spec

__all__ = ["MAX_LIMIT", "install", "router"]

TAG = "OGC API – Features"
router = APIRouter(tags=[TAG])

GEOJSON = "application/geo+json"
SCHEMA_JSON = "application/schema+json"

# No ``…/conf/oas30``: that class is OpenAPI 3.0, and ``/openapi.json`` is OpenAPI 3.1 (FastAPI's;
# pydantic's JSON Schema 2020-12, e.g. ``prefixItems`` for [lon, lat], has no 3.0 form). The
# OpenAPI class is optional in Features Part 1 and OGC has no 3.1 class yet, so the service
# claims none and says which version it serves in the landing page's service-desc link.
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    *features_edit.CONFORMANCE,  # Part 4: create, replace, update, delete (geo.api.features_edit)
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


# -- links ------------------------------------------------------------------------------------
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


def _self_links(
    request: Request, as_html: bool, json_type: str = "application/json"
) -> list[dict[str, str]]:
    """``self`` (the format answered) and ``alternate`` (the other one)."""
    base = str(request.url.remove_query_params("f")).split("?")[0]
    as_json = _with_query(base, _replace(request, f="json"))
    html_url = _with_query(base, _replace(request, f="html"))
    return [
        _link(html_url if as_html else as_json, "self", "text/html" if as_html else json_type),
        _link(as_json if as_html else html_url, "alternate", json_type if as_html else "text/html"),
    ]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- documents --------------------------------------------------------------------------------
def _collection_links(request: Request, spec: LayerSpec) -> list[dict[str, str]]:
    en = TITLES[spec.name][1]
    items = _url(request, "features_items", collectionId=spec.name)
    this = _url(request, "features_collection", collectionId=spec.name)
    queryables = _url(request, "features_queryables", collectionId=spec.name)
    filters = "properties that can filter items (name=value)"
    return [
        _link(this + "?f=json", "self", "application/json", "this collection"),
        _link(this + "?f=html", "alternate", "text/html", "this collection as HTML"),
        _link(items, "items", GEOJSON, f"{en} as GeoJSON"),
        _link(items + "?f=html", "items", "text/html", f"{en} as HTML"),
        _link(
            queryables, "http://www.opengis.net/def/rel/ogc/1.0/queryables", SCHEMA_JSON, filters
        ),
        _link(queryables, "queryables", SCHEMA_JSON, filters),
        _link(
            _url(request, "features_schema", collectionId=spec.name),
            "describedby",
            SCHEMA_JSON,
            "schema of the features' properties",
        ),
    ]


def _collection_doc(request: Request, current: Atlas, spec: LayerSpec) -> dict[str, Any]:
    zh, en, about = TITLES[spec.name]
    table = current.tables[spec.name]
    bounds = table.total_bounds if len(table) else np.asarray(current.bounds, dtype=float)
    doc: dict[str, Any] = {
        "id": spec.name,
        "title": f"{zh} {en}",
        "description": f"{about} {len(table)} features, data version {current.version}.",
        "itemType": "feature",
        "crs": CRS_LIST,
        "storageCrs": CRS84,
        "links": _collection_links(request, spec),
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


# -- OpenAPI: answers (the parameters are documented by their dependencies) -------------------
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
    content: dict[str, Any],
    errors: Iterable[str] = ("400",),
    headers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "OK", "content": content}
    if headers:
        ok["headers"] = headers
    return {"responses": {"200": ok, **{code: _ERRORS[code] for code in errors}}}


def _finish_operation(operation: dict[str, Any]) -> None:
    """An OGC operation as the standard describes it: a bad parameter is a 400 (never 422),
    parameters carry no generated titles, ``bbox`` is one comma-separated value."""
    operation.get("responses", {}).pop("422", None)
    for parameter in operation.get("parameters", []):
        parameter.get("schema", {}).pop("title", None)
        if parameter["name"] == "bbox":
            parameter.update(style="form", explode=False)


def install(app: FastAPI) -> None:
    """Finish the OGC operations (those tagged `TAG`) in ``/openapi.json``; wraps
    ``app.openapi``, as `geo.api.limits` and `geo.api.auth` do."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                if TAG in operation.get("tags", ()):
                    _finish_operation(operation)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


# -- routes -----------------------------------------------------------------------------------
Current = Annotated[Atlas, Depends(atlas)]


def visible_collection(spec: Collection, role: Role) -> LayerSpec:
    """The collection as the caller may see it: without the fields its role may not see."""
    return visible_spec(spec, role)


Visible = Annotated[LayerSpec, Depends(visible_collection)]


def visible_filters(request: Request, spec: Visible, role: Role) -> dict[str, list[Any]]:
    """The property filters of the request, on the fields the caller may see only (400 for a
    hidden one: its answers would tell the field's values)."""
    for name in hidden_fields(spec.name, role):
        if name in request.query_params:
            raise BadRequest(
                f"{name} of {spec.name} is shown to {least_role(spec.name, name)}+ callers "
                f"only, so it cannot filter for this caller ({role}): remove {name}= or send "
                "Authorization: Bearer <token> with that role"
            )
    return property_filters(request, spec)


Filters = Annotated[dict[str, list[Any]], Depends(visible_filters)]


@router.get(
    "/",
    name="features_landing",
    summary="Landing page",
    operation_id="getLandingPage",
    openapi_extra=_doc(_JSON_OR_HTML),
)
def landing(request: Request, as_html: Html) -> Response:
    """The landing page: what the service is and the links to everything else."""
    docs = str(request.base_url) + (request.app.docs_url or "/docs").lstrip("/")
    api = str(request.base_url) + (request.app.openapi_url or "/openapi.json").lstrip("/")
    oas = ".".join(request.app.openapi_version.split(".")[:2])  # the version /openapi.json has
    links = [
        *_self_links(request, as_html),
        _link(
            api,
            "service-desc",
            f"application/vnd.oai.openapi+json;version={oas}",
            f"the API definition (OpenAPI {oas})",
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
    if as_html:
        return ogc_html.page("landing.html", **doc)
    return JSONResponse(doc)


@router.get(
    "/conformance",
    name="features_conformance",
    summary="Conformance classes",
    operation_id="getConformanceDeclaration",
    openapi_extra=_doc(_JSON_OR_HTML),
)
def conformance(request: Request, as_html: Html) -> Response:
    """The conformance classes this service implements."""
    if as_html:
        return ogc_html.page("conformance.html", "Conformance", classes=CONFORMANCE)
    return JSONResponse({"conformsTo": list(CONFORMANCE), "links": _self_links(request, False)})


@router.get(
    "/collections",
    name="features_collections",
    summary="The collections (layers)",
    operation_id="getCollections",
    openapi_extra=_doc(_JSON_OR_HTML),
)
def collections(request: Request, current: Current, as_html: Html) -> Response:
    """Every published layer, with its extent, CRS list and links."""
    docs = [_collection_doc(request, current, spec) for spec in LAYERS.values()]
    if as_html:
        rows = [
            (
                ogc_html.link(
                    _url(request, "features_collection", collectionId=d["id"]) + "?f=html", d["id"]
                ),
                d["title"],
                str(len(current.tables[d["id"]])),
                ogc_html.link(
                    _url(request, "features_items", collectionId=d["id"]) + "?f=html", "items"
                ),
            )
            for d in docs
        ]
        return ogc_html.page("collections.html", "Collections 图层", rows=rows)
    doc = {"links": _self_links(request, False), "collections": docs, "crs": CRS_LIST}
    return JSONResponse(doc)


@router.get(
    "/collections/{collectionId}",
    name="features_collection",
    summary="One collection: extent, CRS list and links",
    operation_id="describeCollection",
    openapi_extra=_doc(_JSON_OR_HTML, ("400", "404")),
)
def collection(request: Request, current: Current, spec: Visible, as_html: Html) -> Response:
    """One layer: its extent, CRS list and links."""
    doc = _collection_doc(request, current, spec)
    doc["links"][:2] = _self_links(request, as_html)
    if as_html:
        bbox = doc.get("extent", {}).get("spatial", {}).get("bbox", [[]])[0]
        return ogc_html.page(
            "collection.html",
            doc["title"],
            description=doc["description"],
            extent=", ".join(f"{b:.6f}" for b in bbox),
            properties=", ".join(spec.field_names),
            links=doc["links"],
        )
    return JSONResponse(doc)


@router.get(
    "/collections/{collectionId}/queryables",
    name="features_queryables",
    summary="Properties that filter items (name=value)",
    operation_id="getQueryables",
    openapi_extra=_doc({SCHEMA_JSON: {"schema": {"type": "object"}}}, ("404",)),
)
def queryables(request: Request, spec: Visible) -> Response:
    """The properties that filter a layer's items (``name=value``)."""
    doc = _schema_doc(request, spec, "features_queryables")
    doc["properties"].pop("geometry")
    return JSONResponse(doc, media_type=SCHEMA_JSON)


@router.get(
    "/collections/{collectionId}/schema",
    name="features_schema",
    summary="Schema of the features of a collection",
    operation_id="getSchema",
    openapi_extra=_doc({SCHEMA_JSON: {"schema": {"type": "object"}}}, ("404",)),
)
def schema(request: Request, spec: Visible) -> Response:
    """The JSON schema of a layer's features."""
    return JSONResponse(_schema_doc(request, spec, "features_schema"), media_type=SCHEMA_JSON)


_ITEMS_DESCRIPTION = (
    "Features of a collection as GeoJSON (`application/geo+json`) or HTML, ordered by id, one "
    "page at a time (`limit`, `offset`, and `next`/`prev` links that keep the query). Besides "
    "the parameters listed, any property of the collection filters by equality, e.g. "
    "`?kind=enterprise&grid_id=C01-G01` (a repeated name matches any of its values); see the "
    "collection's queryables. An unknown parameter is a 400 that lists the allowed ones."
)


def _page_links(
    request: Request, spec: LayerSpec, as_html: bool, offset: int, limit: int, matched: int
) -> list[dict[str, str]]:
    """``self``/``alternate``, ``next``/``prev`` (keeping the query) and ``collection``."""
    base = _url(request, "features_items", collectionId=spec.name)
    fmt = "html" if as_html else "json"
    media = "text/html" if as_html else GEOJSON
    links = _self_links(request, as_html, GEOJSON)
    if offset + limit < matched:
        nxt = _replace(request, f=fmt, offset=str(offset + limit), limit=str(limit))
        links.append(_link(_with_query(base, nxt), "next", media, "next page"))
    if offset > 0:
        prev = _replace(request, f=fmt, offset=str(max(0, offset - limit)), limit=str(limit))
        links.append(_link(_with_query(base, prev), "prev", media, "previous page"))
    links.append(
        _link(
            _url(request, "features_collection", collectionId=spec.name),
            "collection",
            "application/json",
            "the collection",
        )
    )
    return links


def _geojson(body: bytes, out: OutputCRS) -> GeoJSONResponse:
    return GeoJSONResponse(body, headers={"Content-Crs": f"<{out.uri}>"})


@router.get(
    "/collections/{collectionId}/items",
    name="features_items",
    summary="Features of a collection (filter with bbox and properties; page)",
    description=_ITEMS_DESCRIPTION,
    operation_id="getFeatures",
    response_class=GeoJSONResponse,
    openapi_extra=_doc(_GEOJSON_OR_HTML, ("400", "404"), _CONTENT_CRS),
)
def items(
    request: Request,
    current: Current,
    spec: Visible,
    as_html: Html,
    out: Output,
    shift: Coords,
    limit: Limit,
    offset: Offset,
    filters: Filters,
    area: BboxArea,
) -> Response:
    """A page of a layer's features, filtered by properties and ``bbox``."""
    table = current.tables[spec.name]
    rows = ogc_items.matching_rows(table, filters, area)
    page: pd.DataFrame = table.iloc[rows[offset : offset + limit]]
    links = _page_links(request, spec, as_html, offset, limit, len(rows))
    if as_html:
        zh, en, _ = TITLES[spec.name]
        return ogc_html.items_page(f"{zh} {en}", spec, page, len(rows), offset, links)
    head: dict[str, Any] = {
        "type": "FeatureCollection",
        "numberMatched": len(rows),
        "numberReturned": len(page),
        "timeStamp": _now(),
        "links": links,
    }
    if shift != "wgs84":
        head["coords"] = shift
    features = ogc_items.features_json(page, spec, ogc_items.coord_fn(out, shift))
    return _geojson(ogc_items.feature_collection_json(head, features), out)


@router.get(
    "/collections/{collectionId}/items/{featureId}",
    name="features_item",
    summary="One feature by id",
    operation_id="getFeature",
    response_class=GeoJSONResponse,
    openapi_extra=_doc(_GEOJSON_OR_HTML, ("400", "404"), _CONTENT_CRS),
)
def item(
    request: Request,
    current: Current,
    spec: Visible,
    _only: Annotated[None, Depends(feature_parameters)],
    as_html: Html,
    out: Output,
    shift: Coords,
    fid: FeatureId,
) -> Response:
    """One feature by id."""
    table = current.tables[spec.name]
    page = table.iloc[[ogc_items.feature_row(table, spec, fid)]]
    coll = _url(request, "features_collection", collectionId=spec.name)
    links = [
        *_self_links(request, as_html, GEOJSON),
        _link(coll, "collection", "application/json", "the collection"),
    ]
    if as_html:
        return ogc_html.item_page(f"{spec.name} {fid}", spec, page.iloc[0], links)
    extra = [',"links":' + json.dumps(links, ensure_ascii=False)]
    if shift != "wgs84":
        extra.append(f',"coords":"{shift}"')
    body = ogc_items.features_json(page, spec, ogc_items.coord_fn(out, shift), extra)[0]
    answer = _geojson(body.encode(), out)
    answer.headers["ETag"] = features_edit.item_etag(request, current, spec, fid)  # Part 4
    return answer
