"""OGC API – Features Part 4 (Create, Replace, Update, Delete) over the collections.

``POST /collections/{id}/items`` creates a feature (201, ``Location`` and ``ETag``), ``PUT``
replaces one, ``PATCH`` changes some of its properties and/or its geometry (a JSON Merge
Patch, ``application/merge-patch+json``, or plain JSON), ``DELETE`` removes it; ``OPTIONS`` on
both paths answers ``Allow`` with the methods the caller's role may use (QGIS reads it to decide
whether a layer is editable). Communities, grids, parks, buildings and roads need a
``planner`` token, enterprises an ``admin`` token; streets are read only.

Each write is one action of `geo.service`: communities go through `geo.service.boundaries`
(validation, overlaps, history, impact warnings), the other layers through
`geo.service.features_edit` (the row read as an import reads it, references checked, one new
store version with author, reason and audit row); the 2xx waits until every server answers
from the new version. The body's coordinates are in ``Content-Crs`` (Part 2: CRS84 by default;
EPSG:4326, 4490, 4549 and 3857 in their official axis order, as the GET side writes them).

Refusals: every write that stores nothing answers a `geo.errors.GeoError` as every route does
(``{"detail": …}`` through `geo.api.errors`), with one exception for QGIS: its OAPIF provider
(3.32 … 3.44) shows the text of an OWS ``ExceptionReport`` body and nothing of a JSON one, and
sends no ``Accept`` header on its writes; so a write request *without* ``Accept`` gets the same
sentence as ``<ExceptionReport><Exception exceptionCode="FeatureRefused"><ExceptionText>…``
(`geo.api.errors`, for every refusal of these routes: the body's, its token's, its
validation's), and QGIS prints it in its message log. Any ``Accept`` (curl, browsers, OWSLib,
httpx send ``*/*``) keeps the JSON answer.

Versions: every item answer carries an ``ETag`` (a community's history version; for other
layers a digest of the stored feature). ``If-Match`` with a stale one is a 412. A write without
``If-Match`` is accepted, because QGIS (3.32 and later) sends none on PUT, PATCH or DELETE: the
store serialises writes, and history and the audit log keep every version.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from geo.api import limits, ogc_items
from geo.api.auth import RANK, Planner, Role, audit_context
from geo.api.communities import _network as road_network
from geo.api.dependencies import CRS84, Collection, FeatureId, parse_crs
from geo.api.deps import atlas
from geo.api.versions import Publisher
from geo.atlas import Atlas
from geo.errors import Forbidden
from geo.ids import MAX_REASON_CHARS, id_problem, shown
from geo.model import LAYERS, LayerSpec
from geo.service import features_edit as edits
from geo.store.users import User
from geo.visibility import visible_spec

TAG = "OGC API – Features"
GEOJSON = "application/geo+json"
router = APIRouter(tags=[TAG])


class GeoJSONResponse(Response):
    """A GeoJSON body (`application/geo+json`): the feature written."""

    media_type = GEOJSON


CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/features",
)
READS = ("GET", "HEAD", "OPTIONS")

Current = Annotated[Atlas, Depends(atlas)]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="the feature's ETag as read; a stale one is a 412 (optional: see the "
        "module's notes on QGIS)",
    ),
]
ContentCrs = Annotated[
    str | None,
    Header(
        alias="Content-Crs",
        description="CRS of the body's coordinates (Part 2), e.g. "
        "<http://www.opengis.net/def/crs/EPSG/0/4549>; default CRS84 (lon, lat)",
    ),
]
Reason = Annotated[
    str,
    Query(max_length=MAX_REASON_CHARS, description="why (kept with the version and history)"),
]
_FEATURE = {"type": "object", "description": "a GeoJSON Feature"}
FeatureBody = Annotated[Any, Body(description="a GeoJSON Feature", json_schema_extra=_FEATURE)]
PatchBody = Annotated[
    Any,
    Body(
        description="a JSON Merge Patch (RFC 7396): {'properties': {...}} and/or {'geometry': …}",
        json_schema_extra={"type": "object"},
    ),
]


# ------------------------------------------------------------------------------- helpers


def allowed(layer: str, role: str, item: bool) -> list[str]:
    """The methods ``role`` may use on a collection's items (``item``: on one item)."""
    needed = edits.WRITE_ROLES.get(layer)
    if needed is None or RANK[role] < RANK[needed]:
        return list(READS)
    return [*READS, *(("PUT", "PATCH", "DELETE") if item else ("POST",))]


def item_etag(request: Request, current: Atlas, spec: LayerSpec, fid: str) -> str:
    """The ETag of one stored item as ``spec`` (the caller's view) shows it."""
    if spec.name == "communities":
        return f'"{request.app.state.atlas.store.community_version(fid)}"'
    table = current.tables[spec.name]
    row = table.iloc[ogc_items.feature_row(table, spec, fid)]
    return f'"{edits.feature_tag(row, spec)}"'


def _writer(spec: LayerSpec, user: User) -> None:
    """403 unless ``user`` may write ``spec``'s features."""
    needed = edits.WRITE_ROLES.get(spec.name)
    if needed is None:
        raise edits.NotEditable(
            f"{spec.name} is read only here; editable collections are "
            f"{', '.join(edits.WRITE_ROLES)}"
        )
    if RANK[user.role] < RANK[needed]:
        raise Forbidden(f"writing {spec.name} needs the role {needed}; {user.name} is {user.role}")


def _body_crs(value: str | None) -> edits.BodyCrs:
    crs = parse_crs(value, "Content-Crs")
    return edits.BodyCrs(crs.name, crs.swap)


def _parsed(request: Request, body: Any) -> Any:
    """The body as JSON (also when sent without a JSON Content-Type), its geometry within the
    configured limits."""
    if isinstance(body, bytes | bytearray):
        try:
            body = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise edits.FeatureRefused(
                f"the body is not JSON ({exc}); send a GeoJSON Feature as application/geo+json"
            ) from exc
    geometry = body.get("geometry") if isinstance(body, dict) else None
    limits.check_geojson(geometry, request.app.state.settings, "the geometry")
    return body


def _answer(
    request: Request, done: edits.FeatureWrite, publisher: Publisher, role: str, status: int
) -> Response:
    """A write's answer: the feature as ``GET …/items/{id}`` shows it (CRS84) with the
    write's ``store_version``, ``warnings`` (and a community's ``version``), its ETag."""
    current = publisher.atlas or request.app.state.atlas.current()
    spec = visible_spec(LAYERS[done.layer], role)
    table = current.tables[done.layer]
    page = table.iloc[[ogc_items.feature_row(table, spec, done.feature_id)]]
    members: dict[str, Any] = {
        "store_version": done.store_version,
        "unchanged": done.unchanged,
        "warnings": done.warnings,
    }
    if done.community_version is not None:
        members["version"] = done.community_version
        etag = f'"{done.community_version}"'
    else:
        etag = f'"{edits.feature_tag(page.iloc[0], spec)}"'
    if done.note:
        members["note"] = done.note
    extra = "," + json.dumps(members, ensure_ascii=False)[1:-1]
    body = ogc_items.features_json(page, spec, None, [extra])[0]
    headers = {"ETag": etag, "Content-Crs": f"<{CRS84}>"}  # the answer's coordinates: CRS84
    if status == 201:
        headers["Location"] = str(
            request.url_for("features_item", collectionId=done.layer, featureId=done.feature_id)
        )
    return Response(body.encode(), status, headers, media_type=GEOJSON)


# -------------------------------------------------------------------------------- routes


@router.options(
    "/collections/{collectionId}/items",
    name="features_items_options",
    summary="The methods the caller may use on a collection's items (Allow)",
    status_code=204,
)
def items_options(spec: Collection, role: Role) -> Response:
    """``Allow``: POST besides the reads when the caller's role may create features here."""
    return Response(status_code=204, headers={"Allow": ", ".join(allowed(spec.name, role, False))})


@router.options(
    "/collections/{collectionId}/items/{featureId}",
    name="features_item_options",
    summary="The methods the caller may use on one item (Allow)",
    status_code=204,
)
def item_options(spec: Collection, fid: FeatureId, role: Role) -> Response:
    """``Allow``: PUT, PATCH and DELETE besides the reads when the caller's role may write
    here (answered for any id, as QGIS asks about a made-up one in an empty layer; a value
    that is no id at all, with a control character or a slash, is a 404)."""
    problem = id_problem(fid)
    if problem is not None:
        raise edits.NoSuchFeature(f"no feature {shown(fid)} in {spec.name}: the id {problem}")
    return Response(status_code=204, headers={"Allow": ", ".join(allowed(spec.name, role, True))})


@router.post(
    "/collections/{collectionId}/items",
    name="features_create",
    summary="Create a feature (OGC API – Features Part 4)",
    status_code=201,
    response_class=GeoJSONResponse,
)
def create(
    request: Request,
    spec: Collection,
    current: Current,
    user: Planner,
    role: Role,
    body: FeatureBody,
    content_crs: ContentCrs = None,
    reason: Reason = "",
) -> Response:
    """A new feature from a GeoJSON Feature (without an id the layer's next id is given);
    ``Location`` names it. Communities need planner, enterprises admin."""
    return _create(request, spec, current, user, role, body, content_crs, reason)


def _create(
    request: Request,
    spec: LayerSpec,
    current: Atlas,
    user: User,
    role: str,
    body: Any,
    content_crs: str | None,
    reason: str,
) -> Response:
    """POST: through the community action or the features action."""
    _writer(spec, user)
    body = _parsed(request, body)
    crs = _body_crs(content_crs)
    publisher = Publisher(request)
    store = request.app.state.atlas.store
    common: dict[str, Any] = {
        "author": user.name, "reason": reason, "audit": audit_context(request),
        "publish": publisher,
    }  # fmt: skip
    if spec.name == "communities":
        done = edits.create_community(
            store, current.tables, body, crs=crs, roads=road_network(request, current), **common
        )
    else:
        done = edits.save_feature(store, spec.name, body, crs=crs, **common)
    return _answer(request, done, publisher, role, 201)


@router.put(
    "/collections/{collectionId}/items/{featureId}",
    name="features_replace",
    summary="Replace a feature (OGC API – Features Part 4)",
    response_class=GeoJSONResponse,
)
def replace(
    request: Request,
    spec: Collection,
    fid: FeatureId,
    current: Current,
    user: Planner,
    role: Role,
    body: FeatureBody,
    if_match: IfMatch = None,
    content_crs: ContentCrs = None,
    reason: Reason = "",
) -> Response:
    """Write the feature as sent (every property; a missing one is emptied)."""
    return _edit(request, spec, fid, current, user, role, body, if_match, content_crs, reason)


@router.patch(
    "/collections/{collectionId}/items/{featureId}",
    name="features_update",
    summary="Change some properties and/or the geometry of a feature (Part 4 update)",
    response_class=GeoJSONResponse,
)
def update(
    request: Request,
    spec: Collection,
    fid: FeatureId,
    current: Current,
    user: Planner,
    role: Role,
    body: PatchBody,
    if_match: IfMatch = None,
    content_crs: ContentCrs = None,
    reason: Reason = "",
) -> Response:
    """Apply a JSON Merge Patch: members of ``properties`` replace (null empties), a
    ``geometry`` replaces the geometry."""
    return _edit(request, spec, fid, current, user, role, body, if_match, content_crs, reason, True)


def _edit(
    request: Request,
    spec: LayerSpec,
    fid: str,
    current: Atlas,
    user: User,
    role: str,
    body: Any,
    if_match: str | None,
    content_crs: str | None,
    reason: str,
    patch: bool = False,
) -> Response:
    """PUT and PATCH: through the community action or the features action."""
    _writer(spec, user)
    body = _parsed(request, body)
    crs = _body_crs(content_crs)
    publisher = Publisher(request)
    store = request.app.state.atlas.store
    common: dict[str, Any] = {
        "crs": crs, "if_match": if_match, "author": user.name, "reason": reason,
        "audit": audit_context(request, target=fid), "publish": publisher,
    }  # fmt: skip
    if spec.name == "communities":
        done = edits.edit_community(
            store, current.tables, fid, body, patch=patch,
            roads=road_network(request, current), **common,
        )  # fmt: skip
    elif patch:
        done = edits.update_feature(store, spec.name, fid, body, **common)
    else:
        done = edits.save_feature(store, spec.name, body, feature_id=fid, **common)
    return _answer(request, done, publisher, role, 200)


@router.delete(
    "/collections/{collectionId}/items/{featureId}",
    name="features_delete",
    summary="Delete a feature (OGC API – Features Part 4)",
    response_class=JSONResponse,
)
def delete(
    request: Request,
    spec: Collection,
    fid: FeatureId,
    user: Planner,
    if_match: IfMatch = None,
    reason: Reason = "",
) -> Response:
    """Remove the feature; refused while other rows refer to it (a grid with buildings)."""

    def write() -> Response:
        _writer(spec, user)
        done = edits.delete_feature(
            request.app.state.atlas.store, spec.name, fid, if_match=if_match, author=user.name,
            reason=reason, audit=audit_context(request, target=fid), publish=Publisher(request),
        )  # fmt: skip
        answer = {
            "id": fid,
            "collection": spec.name,
            "deleted": True,
            "store_version": done.store_version,
            "warnings": done.warnings,
        }
        return JSONResponse(answer)

    return write()
