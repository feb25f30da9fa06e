"""Community boundaries: build from four-to text, create, edit, preview, history, revert.

Writes take ``If-Match: <version>`` (the community's version, from ``GET /communities/{id}``
and its ``ETag``): a missing header is a 428, a stale one a 412, so two planners never
overwrite each other. The version check and the write are one store transaction; the new atlas
is published before the 2xx, so ``/locate`` answers by the new boundary at once. Every POST/PUT
here (build and preview too) needs a ``planner`` token (`geo.api.auth`); the author recorded in
the history and the audit log is the token's user.
"""

from __future__ import annotations

from typing import Annotated, Any

import shapely
from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, Field

from geo import io as geo_io
from geo.api import limits
from geo.api.audit import context as audit_context
from geo.api.auth import Planner
from geo.api.deps import atlas
from geo.api.versions import Publisher, if_match
from geo.atlas import Atlas
from geo.boundaries import edit
from geo.boundaries.roads import RoadNetwork
from geo.crs import to_metric
from geo.errors import NotFound
from geo.ids import MAX_REASON_CHARS
from geo.model import COMMUNITIES, COMMUNITY_TYPES, MANAGEMENT_MODES
from geo.service import boundaries
from geo.store.base import CommunityVersion

router = APIRouter(tags=["boundaries"])

IfMatchHeader = Annotated[
    str | None,
    Header(alias="If-Match", description="the community's current version (its ETag)"),
]


_EXTEND_HELP = (
    "four-to: run a road that stops short of the next side on along its last direction, by at "
    "most this many metres (0: never); the answer lists each extension"
)


class BuildBody(BaseModel):
    """Four-to text to build a polygon from, along the store's roads or posted ones."""

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
    """A new boundary: four-to text or a drawn geometry, and why."""

    four_to: str | None = Field(None, description="new four-to text (built along the roads)")
    geometry: dict[str, Any] | None = Field(
        None, description="a drawn GeoJSON Polygon/MultiPolygon (or a Feature holding one)"
    )
    crs: str = Field("wgs84", description="CRS of the drawn geometry (wgs84, gcj02, EPSG:n …)")
    snap_tolerance_m: float = Field(
        edit.SNAP_TOLERANCE_M, ge=0, le=100, description="drawn vertices this close snap to roads"
    )
    extend_m: float = Field(0.0, ge=0, le=2000, description=_EXTEND_HELP)
    reason: str = Field(
        "",
        max_length=MAX_REASON_CHARS,
        description="why the boundary changes (kept in the history)",
    )


class CreateBody(BoundaryBody):
    """A new community: its attributes and its boundary."""

    id: str | None = Field(
        None, description="new community id: C and digits (default: the next Cnn)"
    )
    name: str
    street_id: str
    type: str = Field(description=f"one of {', '.join(COMMUNITY_TYPES)}")
    mode: str = Field(description=f"one of {', '.join(MANAGEMENT_MODES)}")
    code: str | None = Field(None, description="3-digit code in the street (default: next)")
    founded: str | None = None


class RevertBody(BaseModel):
    """The history version to go back to, and why."""

    version: int = Field(ge=1, description="the history version to go back to")
    reason: str = Field("", max_length=MAX_REASON_CHARS, description="why (kept in the history)")


# ------------------------------------------------------------------------------------ helpers


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


def _draft(request: Request, body: BoundaryBody) -> boundaries.BoundaryDraft:
    """The body's boundary, its geometry checked against the configured limits first."""
    settings = request.app.state.settings
    limits.check_geojson(body.geometry, settings, "the geometry", crs_member=False)
    return boundaries.BoundaryDraft(
        four_to=body.four_to,
        geometry=body.geometry,
        crs=body.crs,
        snap_tolerance_m=body.snap_tolerance_m,
        extend_m=body.extend_m,
    )


def _version_of(current: Atlas, community_id: str, header: str | None) -> int:
    """The community version ``If-Match`` names (an unknown community is a 404 first)."""
    boundaries.community(current.tables, community_id)
    return if_match(
        header,
        f"the version of community {community_id} you edited "
        f"(GET /communities/{community_id} returns it as ETag)",
    )


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


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


def _written(
    response: Response, done: boundaries.BoundaryCommit, publisher: Publisher, current: Atlas
) -> dict[str, Any]:
    """A write's answer, read from the atlas it was published in (the request's, when nothing
    was written: ``unchanged``, with a ``note``); its ETag is the version."""
    answer_atlas = publisher.atlas if publisher.atlas is not None else current
    row = boundaries.community(answer_atlas.tables, done.community_id)
    _etag(response, done.version)
    out = {
        "id": done.community_id,
        "version": done.version,
        "store_version": done.store_version,
        "unchanged": done.unchanged,
        "feature": _feature(row, done.version),
        "snapped": boundaries.snapped(done.prop),
        "gaps": [p.to_dict() for p in done.check.gaps],
        "warnings": done.warnings,
    }
    if done.note:
        out["note"] = done.note
    return out


def _issue(layer: str, issue: geo_io.Issue) -> str:
    """A reader's issue as a warning; row 0 is the whole layer (e.g. re-oriented rings)."""
    return f"{layer}: {issue.reason}" + (f" (feature {issue.row})" if issue.row else "")


def _version(v: CommunityVersion) -> dict[str, Any]:
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


# ------------------------------------------------------------------------------------- routes


@router.post("/boundaries/build", summary="Build a polygon from four-to text along roads")
def build(
    request: Request, body: BuildBody, current: Annotated[Atlas, Depends(atlas)]
) -> dict[str, Any]:
    """The polygon the four-to text encloses, with its sides and the build's report."""
    warnings: list[str] = []
    settings = request.app.state.settings
    limits.check_geojson(body.roads, settings, "roads")
    limits.check_geojson(body.areas, settings, "areas")
    if body.roads is not None:
        roads, issues = geo_io.read_layer_doc(body.roads, "roads", "roads")
        warnings += [_issue("roads", i) for i in issues]
    else:
        roads = _network(request, current)
    areas = None
    if body.areas is not None:
        areas, issues = geo_io.read_layer_doc(body.areas, "areas", "areas")
        warnings += [_issue("areas", i) for i in issues]
    prop = boundaries.build(
        body.four_to,
        current.tables,
        roads=roads,
        areas=areas,
        extend_m=body.extend_m,
        within=body.within,
    )
    return prop.feature({"warnings": warnings} if warnings else None)


@router.get("/communities/{community_id}", summary="A community with its current version")
def get_community(
    request: Request,
    response: Response,
    community_id: str,
    current: Annotated[Atlas, Depends(atlas)],
) -> dict[str, Any]:
    """The community as a GeoJSON Feature; its version is also the ``ETag``."""
    row = boundaries.community(current.tables, community_id)
    version = request.app.state.atlas.store.community_version(community_id)
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
    """Add a community (version 1); ``Location`` names it."""
    new = boundaries.NewCommunity(
        name=body.name,
        street_id=body.street_id,
        type=body.type,
        mode=body.mode,
        id=body.id,
        code=body.code,
        founded=body.founded,
    )
    publisher = Publisher(request)
    done = boundaries.create_community(
        request.app.state.atlas.store, current.tables, new, _draft(request, body),
        author=user.name, reason=body.reason, roads=_network(request, current),
        audit=audit_context(request), publish=publisher,  # the store names the new id
    )  # fmt: skip
    response.headers["Location"] = f"/communities/{done.community_id}"
    return _written(response, done, publisher, current)


@router.put("/communities/{community_id}/boundary", summary="Set a community's boundary")
def put_boundary(
    request: Request,
    response: Response,
    community_id: str,
    body: BoundaryBody,
    current: Annotated[Atlas, Depends(atlas)],
    user: Planner,
    if_match_header: IfMatchHeader = None,
) -> dict[str, Any]:
    """Write a new boundary (a new version) if ``If-Match`` is the community's version."""
    expected = _version_of(current, community_id, if_match_header)
    publisher = Publisher(request)
    done = boundaries.set_boundary(
        request.app.state.atlas.store, current.tables, community_id, _draft(request, body),
        expected_version=expected, author=user.name, reason=body.reason,
        roads=_network(request, current), audit=audit_context(request, target=community_id),
        publish=publisher,
    )  # fmt: skip
    return _written(response, done, publisher, current)


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
    """The parks, buildings and enterprises that would change community, the area gained and
    lost, and what validation finds."""
    draft = _draft(request, body)
    roads = _network(request, current)
    return boundaries.preview(current.tables, community_id, draft, roads=roads).to_dict()


@router.get("/communities/{community_id}/history", summary="Every version of a boundary")
def history(
    request: Request, community_id: str, current: Annotated[Atlas, Depends(atlas)]
) -> dict[str, Any]:
    """The community's versions, newest first."""
    versions = boundaries.history(request.app.state.atlas.store, current.tables, community_id)
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
    if_match_header: IfMatchHeader = None,
) -> dict[str, Any]:
    """Write an earlier version's boundary and four-to text again, as a new version."""
    expected = _version_of(current, community_id, if_match_header)
    publisher = Publisher(request)
    try:
        done = boundaries.revert(
            request.app.state.atlas.store, current.tables, community_id, body.version,
            expected_version=expected, author=user.name, reason=body.reason,
            audit=audit_context(request, target=community_id), publish=publisher,
        )  # fmt: skip
    except boundaries.UnknownVersion as exc:  # worded with where to find the versions
        raise NotFound(
            f"community {community_id} has no version {body.version}; versions are "
            f"{exc.versions or 'none'} (GET /communities/{community_id}/history)"
        ) from exc
    return _written(response, done, publisher, current)
