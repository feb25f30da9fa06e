"""Community boundaries: build from four-to text, create, edit, preview, history, revert.

Writes take ``If-Match: <version>`` (the community's version, from ``GET /communities/{id}``
and its ``ETag``): a missing header is a 428, a stale one a 412, so two planners never
overwrite each other. The version check and the write are one store transaction; the new atlas
is published before the 2xx, so ``/locate`` answers by the new boundary at once. Every POST/PUT
here (build and preview too) needs a ``planner`` token (`geo.api.auth`); the author recorded in
the history and the audit log is the token's user.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import numpy as np
import shapely
from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from pydantic import BaseModel, Field

from geo import io as geo_io
from geo.api import limits
from geo.api.audit import context as audit_context
from geo.api.auth import Planner
from geo.api.deps import atlas
from geo.atlas import Atlas
from geo.boundaries import edit
from geo.boundaries.build import BuildError
from geo.boundaries.fourto import FourToError
from geo.boundaries.roads import RoadNetwork
from geo.crs import to_metric
from geo.model import COMMUNITIES, COMMUNITY_TYPES, MANAGEMENT_MODES
from geo.store import StaleVersionError

router = APIRouter(tags=["boundaries"])

_IF_MATCH = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')
IfMatchHeader = Annotated[
    str | None,
    Header(alias="If-Match", description="the community's current version (its ETag)"),
]


_EXTEND_HELP = (
    "four-to: run a road that stops short of the next side on along its last direction, by at "
    "most this many metres (0: never); the answer lists each extension"
)


class BuildBody(BaseModel):
    four_to: str = Field(
        description="四至 text, e.g. 东至信诚路、南至南环路、西至东信大道、北至江南大道"
    )
    roads: dict[str, Any] | None = Field(
        None, description="GeoJSON FeatureCollection of roads (default: the store's roads)"
    )
    areas: dict[str, Any] | None = Field(
        None, description="GeoJSON FeatureCollection of named areas (default: the store's areas)"
    )
    extend_m: float = Field(0.0, ge=0, le=2000, description=_EXTEND_HELP)
    within: str | None = Field(
        None,
        description="a street id, or 'district': its boundary closes a side the text leaves "
        "open (三至 texts)",
    )


class BoundaryBody(BaseModel):
    four_to: str | None = Field(None, description="new four-to text (built along the roads)")
    geometry: dict[str, Any] | None = Field(
        None, description="a drawn GeoJSON Polygon/MultiPolygon (or a Feature holding one)"
    )
    crs: str = Field("wgs84", description="CRS of the drawn geometry (wgs84, gcj02, EPSG:n …)")
    snap_tolerance_m: float = Field(
        edit.SNAP_TOLERANCE_M, ge=0, le=100, description="drawn vertices this close snap to roads"
    )
    extend_m: float = Field(0.0, ge=0, le=2000, description=_EXTEND_HELP)
    reason: str = Field("", description="why the boundary changes (kept in the history)")


class CreateBody(BoundaryBody):
    id: str | None = Field(None, description="new community id (default: the next Cnn)")
    name: str
    street_id: str
    type: str = Field(description=f"one of {', '.join(COMMUNITY_TYPES)}")
    mode: str = Field(description=f"one of {', '.join(MANAGEMENT_MODES)}")
    code: str | None = Field(None, description="3-digit code in the street (default: next)")
    founded: str | None = None


class RevertBody(BaseModel):
    version: int = Field(ge=1, description="the history version to go back to")
    reason: str = ""


# ------------------------------------------------------------------------------------ helpers


def _store(request: Request):
    return request.app.state.atlas.store


def _network(request: Request, current: Atlas) -> RoadNetwork:
    """The store's road network, built again only when the roads change (not on every edit):
    a version whose roads were not written shares the previous one's roads table."""
    roads = current.tables["roads"]
    cached = getattr(request.app.state, "road_network", None)
    if cached is not None and cached[0] is roads:
        return cached[1]
    network = RoadNetwork.from_frame(roads)
    request.app.state.road_network = (roads, network)
    return network


def _row(current: Atlas, community_id: str):
    comm = current.tables["communities"]
    hit = np.flatnonzero(comm["id"].to_numpy() == community_id)
    if not len(hit):
        known = ", ".join(comm["id"].tolist())
        raise HTTPException(404, f"no community {community_id!r}; communities are {known}")
    return comm.iloc[int(hit[0])]


def _if_match(value: str | None, community_id: str) -> int:
    if value is None:
        raise HTTPException(
            428,
            f"If-Match header required: send the version of community {community_id} you "
            f"edited (GET /communities/{community_id} returns it as ETag), e.g. If-Match: 3",
        )
    m = _IF_MATCH.match(value)
    if not m:
        raise HTTPException(
            400, f"If-Match {value!r} is not a version number; send e.g. If-Match: 3"
        )
    return int(m[1])


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def _propose(request: Request, current: Atlas, body: BoundaryBody, street_id: str) -> edit.Proposal:
    """The proposed boundary; a side the four-to text leaves open is closed by the street."""
    settings = request.app.state.settings
    limits.check_geojson(body.geometry, settings, "the geometry", crs_member=False)
    try:
        return edit.propose(
            four_to=body.four_to,
            geometry=body.geometry,
            roads=_network(request, current),
            areas=edit.named_areas(current.tables),
            crs=body.crs,
            snap_tolerance_m=body.snap_tolerance_m,
            extend_m=body.extend_m,
            within=_street(current, street_id) if body.four_to is not None else None,
        )
    except (edit.EditError, BuildError, FourToError) as exc:
        raise HTTPException(422, _http_words(str(exc))) from exc


def _street(current: Atlas, street_id: str):
    """The polygon of the community's street (None if unknown: validation says so)."""
    streets = current.tables["streets"]
    hit = streets[streets["id"] == street_id]
    return None if hit.empty else hit.geometry.iloc[0]


def _within(current: Atlas, key: str | None):
    """The polygon of street ``key`` (or of the whole district for 'district'); None for None."""
    try:
        return edit.within_polygon(current.tables["streets"], key)
    except edit.EditError as exc:
        raise HTTPException(422, str(exc)) from exc


def _http_words(message: str) -> str:
    """A builder's hint in the API's terms: the body fields, not the CLI's options."""
    return message.replace("--extend-m ", "extend_m=").replace("--within ", "within=")


def _validate(current: Atlas, community_id: str, street_id: str, prop) -> edit.Validation:
    try:
        check = edit.validate(current.tables, community_id, street_id, prop.metric)
    except edit.EditError as exc:
        raise HTTPException(422, str(exc)) from exc
    if not check.ok:
        raise HTTPException(422, check.message())
    return check


def _feature(row, version: int) -> dict[str, Any]:
    props = {f: row[f] for f in COMMUNITIES.field_names if f != "id"}
    props["area_m2"] = round(float(to_metric(row.geometry).area), 1)
    props["version"] = version
    return {
        "type": "Feature",
        "id": row["id"],
        "geometry": shapely.geometry.mapping(row.geometry),
        "properties": props,
    }


def _warnings(current: Atlas, community_id: str, prop) -> list[str]:
    out = list(prop.warnings)  # repairs of the drawn geometry (rings wound the wrong way)
    if prop.source == "geometry":
        out.append(
            "the boundary was drawn: the community's four-to text was kept and no longer "
            "describes it; send four_to to replace the text"
        )
    if (current.tables["grids"]["community_id"] == community_id).any():
        out.append(
            f"the grids of {community_id} were drawn for the old boundary: re-split them "
            "(`geo check` lists the gaps and overlaps)"
        )
    return out


def _commit(
    request: Request,
    response: Response,
    current: Atlas,
    community_id: str,
    prop,
    check: edit.Validation,
    *,
    expected: int,
    author: str,
    reason: str,
    action: str,
    fields: dict[str, Any],
    create: bool = False,
) -> dict[str, Any]:
    store = _store(request)
    try:
        version, store_version = store.edit_community(
            community_id,
            prop.polygon,
            author=author,
            reason=reason or action,
            expected_version=expected,
            fields=fields,
            action=action,
            create=create,
            audit=audit_context(request, target=community_id),
        )
    except StaleVersionError as exc:
        raise HTTPException(412, str(exc)) from exc
    except KeyError as exc:
        raise HTTPException(404, f"no community {community_id!r}") from exc
    except ValueError as exc:  # a field that does not fit the schema, an existing id
        raise HTTPException(409 if create else 422, str(exc)) from exc
    holder = request.app.state.atlas
    published = holder.publish(store_version)  # every server answers from it before our 2xx
    fresh = published.atlas
    _etag(response, version)
    return {
        "id": community_id,
        "version": version,
        "store_version": store_version,
        "feature": _feature(_row(fresh, community_id), version),
        "snapped": {"vertices": prop.snapped.vertices, "edges": prop.snapped.edges},
        "gaps": [p.to_dict() for p in check.gaps],
        "warnings": _warnings(fresh, community_id, prop)
        + published.warnings(holder.publish_timeout),
    }


def _issue(layer: str, issue: geo_io.Issue) -> str:
    """A reader's issue as a warning; row 0 is the whole layer (e.g. re-oriented rings)."""
    return f"{layer}: {issue.reason}" + (f" (feature {issue.row})" if issue.row else "")


# ------------------------------------------------------------------------------------- routes


@router.post("/boundaries/build", summary="Build a polygon from four-to text along roads")
def build(
    request: Request, body: BuildBody, current: Annotated[Atlas, Depends(atlas)]
) -> dict[str, Any]:
    warnings: list[str] = []
    settings = request.app.state.settings
    limits.check_geojson(body.roads, settings, "roads")
    limits.check_geojson(body.areas, settings, "areas")
    try:
        if body.roads is not None:
            roads, issues = geo_io.read_layer_doc(body.roads, "roads", "roads")
            warnings += [_issue("roads", i) for i in issues]
            network = RoadNetwork.from_frame(roads)
        else:
            network = _network(request, current)
        if body.areas is not None:
            areas, issues = geo_io.read_layer_doc(body.areas, "areas", "areas")
            warnings += [_issue("areas", i) for i in issues]
        else:
            areas = edit.named_areas(current.tables)
        prop = edit.propose(
            four_to=body.four_to,
            roads=network,
            areas=areas,
            extend_m=body.extend_m,
            within=_within(current, body.within),
        )
    except (geo_io.InputError, edit.EditError, BuildError, FourToError) as exc:
        raise HTTPException(422, _http_words(str(exc))) from exc
    return prop.feature({"warnings": warnings} if warnings else None)


@router.get("/communities/{community_id}", summary="A community with its current version")
def get_community(
    request: Request,
    response: Response,
    community_id: str,
    current: Annotated[Atlas, Depends(atlas)],
) -> dict[str, Any]:
    row = _row(current, community_id)
    version = _store(request).community_version(community_id)
    _etag(response, version)
    return _feature(row, version)


@router.post("/communities", status_code=201, summary="Create a community")
def create_community(
    request: Request,
    response: Response,
    body: CreateBody,
    current: Annotated[Atlas, Depends(atlas)],
    user: Planner,
) -> dict[str, Any]:
    comm = current.tables["communities"]
    cid = body.id or _next_id(comm["id"].tolist())
    if cid in set(comm["id"]):
        raise HTTPException(409, f"community {cid} exists already; choose another id")
    for name, value, allowed in (
        ("type", body.type, COMMUNITY_TYPES),
        ("mode", body.mode, MANAGEMENT_MODES),
    ):
        if value not in allowed:
            raise HTTPException(422, f"{name} {value!r} is not one of {', '.join(allowed)}")
    prop = _propose(request, current, body, body.street_id)
    check = _validate(current, cid, body.street_id, prop)
    siblings = comm[comm["street_id"] == body.street_id]["code"].tolist()
    fields = {
        "name": body.name,
        "street_id": body.street_id,
        "type": body.type,
        "mode": body.mode,
        "code": body.code or _next_code(siblings),
        "four_to": body.four_to or "",
        "founded": body.founded,
    }
    out = _commit(
        request, response, current, cid, prop, check, expected=0, author=user.name,
        reason=body.reason or "created", action="create", fields=fields, create=True,
    )  # fmt: skip
    response.headers["Location"] = f"/communities/{cid}"
    return out


@router.put("/communities/{community_id}/boundary", summary="Set a community's boundary")
def put_boundary(
    request: Request,
    response: Response,
    community_id: str,
    body: BoundaryBody,
    current: Annotated[Atlas, Depends(atlas)],
    user: Planner,
    if_match: IfMatchHeader = None,
) -> dict[str, Any]:
    row = _row(current, community_id)
    expected = _if_match(if_match, community_id)
    have = _store(request).community_version(community_id)
    if expected != have:  # early answer; the store checks again inside the write
        raise HTTPException(412, str(_stale(community_id, expected, have)))
    prop = _propose(request, current, body, row["street_id"])
    check = _validate(current, community_id, row["street_id"], prop)
    fields = {"four_to": body.four_to} if body.four_to is not None else {}
    return _commit(
        request, response, current, community_id, prop, check, expected=expected,
        author=user.name, reason=body.reason, action="edit", fields=fields,
    )  # fmt: skip


@router.post(
    "/communities/{community_id}/boundary/preview",
    summary="What a new boundary would change (nothing is written)",
)
def preview(
    request: Request,
    community_id: str,
    body: BoundaryBody,
    current: Annotated[Atlas, Depends(atlas)],
) -> dict[str, Any]:
    row = _row(current, community_id)
    prop = _propose(request, current, body, row["street_id"])
    check = edit.validate(current.tables, community_id, row["street_id"], prop.metric)
    out = edit.impact(current.tables, community_id, prop.polygon)
    return {
        **out,
        "feature": prop.feature(),
        "valid": check.ok,
        "errors": [p.to_dict() for p in check.errors],
        "overlaps": [p.to_dict() for p in check.errors if "overlap" in (p.kind + p.detail)],
        "outside_street": [p.to_dict() for p in check.errors if p.kind == "outside"],
        "gaps": [p.to_dict() for p in check.gaps],
        "snapped": {"vertices": prop.snapped.vertices, "edges": prop.snapped.edges},
        "warnings": list(prop.warnings),
    }


@router.get("/communities/{community_id}/history", summary="Every version of a boundary")
def history(
    request: Request, community_id: str, current: Annotated[Atlas, Depends(atlas)]
) -> dict[str, Any]:
    versions = _store(request).community_history(community_id)
    if not versions:
        _row(current, community_id)  # 404 for unknown ids
    return {
        "id": community_id,
        "version": versions[0].version if versions else 0,
        "versions": [_version(v) for v in versions],
    }


@router.post(
    "/communities/{community_id}/boundary/revert",
    summary="Go back to an earlier version (recorded as a new version)",
)
def revert(
    request: Request,
    response: Response,
    community_id: str,
    body: RevertBody,
    current: Annotated[Atlas, Depends(atlas)],
    user: Planner,
    if_match: IfMatchHeader = None,
) -> dict[str, Any]:
    row = _row(current, community_id)
    expected = _if_match(if_match, community_id)
    versions = {v.version: v for v in _store(request).community_history(community_id)}
    if expected != (max(versions) if versions else 0):
        raise HTTPException(412, str(_stale(community_id, expected, max(versions, default=0))))
    target = versions.get(body.version)
    if target is None:
        raise HTTPException(
            404,
            f"community {community_id} has no version {body.version}; versions are "
            f"{sorted(versions) or 'none'} (GET /communities/{community_id}/history)",
        )
    prop = edit.Proposal(to_metric(target.geometry), target.geometry, "revert", target.four_to)
    check = _validate(current, community_id, row["street_id"], prop)
    fields = {"four_to": target.four_to} if target.four_to is not None else {}
    reason = body.reason or f"revert to version {body.version}"
    return _commit(
        request, response, current, community_id, prop, check, expected=expected,
        author=user.name, reason=reason, action="revert", fields=fields,
    )  # fmt: skip


def _stale(community_id: str, expected: int, current: int) -> Exception:
    from geo.store import StaleCommunityError

    return StaleCommunityError(community_id, expected, current)


def _version(v) -> dict[str, Any]:
    return {
        "version": v.version,
        "store_version": v.store_version,
        "author": v.author,
        "time": v.time,
        "reason": v.reason,
        "action": v.action,
        "four_to": v.four_to,
        "area_m2": round(float(to_metric(v.geometry).area), 1),
        "geometry": shapely.geometry.mapping(v.geometry),
    }


def _next_id(ids: list[str]) -> str:
    nums = [int(m[1]) for i in ids if (m := re.fullmatch(r"C(\d+)", str(i)))]
    return f"C{max(nums, default=0) + 1:02d}"


def _next_code(codes: list[str]) -> str:
    nums = [int(c) for c in codes if isinstance(c, str) and c.isdigit()]
    return f"{max(nums, default=0) + 1:03d}"
