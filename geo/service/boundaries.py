"""Community boundaries: build from four-to text, preview, set, create, revert, history.

One implementation of each action, for `geo boundary …` and the ``/communities`` routes alike.
``tables`` are the atlas tables the caller reads from (the request's atlas, the command's
snapshot). A write goes through `Store.edit_community`, which checks the community's version
and writes the boundary, its history row and a new store version in one transaction; then
``publish`` (the adapter's: swap the atlas in and wait for every server, or wait for the running
servers) makes the new store version served and returns its warnings.

``roads`` may be the adapter's cached `RoadNetwork` of ``tables["roads"]``; by default the
network is built from that table.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import shapely

from geo.boundaries import edit
from geo.boundaries.roads import RoadNetwork
from geo.boundaries.topology import MIN_AREA_M2, SLIVER_WIDTH_M, check_partition
from geo.crs import to_metric
from geo.errors import InvalidInput, NotFound
from geo.ids import COMMUNITY_CODE, check_code, check_id, check_reason, id_problem, shown
from geo.model import COMMUNITY_TYPES, MANAGEMENT_MODES
from geo.store.base import CommunityExists, CommunityVersion, StaleCommunityError, Store

Tables: TypeAlias = Mapping[str, pd.DataFrame]
Roads: TypeAlias = RoadNetwork | pd.DataFrame | None
# makes a committed store version served; returns warnings (servers that did not catch up)
Publish: TypeAlias = Callable[[int], list[str]]
# a boundary whose vertices all lie this close to the current one's is the same boundary
UNCHANGED_M = edit.MOVED_M


# ------------------------------------------------------------------------------------- errors


class UnknownCommunityId(NotFound):
    """A community id the atlas does not hold; the message lists the ids it does."""


class UnknownVersion(NotFound):
    """A history version the community does not have; the adapters word it with the versions."""

    def __init__(self, community_id: str, version: int, versions: list[int]) -> None:
        super().__init__(f"{community_id} has no version {version}; versions: {versions}")
        self.community_id = community_id
        self.version = version
        self.versions = versions


class BoundaryRefused(edit.EditError):
    """A boundary its validation forbids: overlaps, parts outside the street, invalid rings."""


class InvalidCommunity(InvalidInput):
    """A new community whose type or management mode is not one of the model's."""


class DegenerateBoundary(InvalidInput):
    """A boundary with no usable shape: coordinates out of range (a projection that overflowed),
    or an area or mean width under the topology check's sliver limits."""


# ------------------------------------------------------------------------------ what goes in


@dataclass(frozen=True)
class BoundaryDraft:
    """A boundary as asked for: four-to text, or a drawn GeoJSON geometry in ``crs`` whose
    vertices within ``snap_tolerance_m`` snap to roads; ``extend_m`` lets a four-to road that
    stops short run on by that many metres."""

    four_to: str | None = None
    geometry: Any = None
    crs: str = "wgs84"
    snap_tolerance_m: float = edit.SNAP_TOLERANCE_M
    extend_m: float = 0.0


@dataclass(frozen=True)
class NewCommunity:
    """A new community's attributes; ``id`` and ``code`` default to the next free ones."""

    name: str
    street_id: str
    type: str
    mode: str
    id: str | None = None
    code: str | None = None
    founded: str | None = None


# ----------------------------------------------------------------------------- what comes out


@dataclass(frozen=True)
class BoundaryPreview:
    """What a new boundary would change: its proposal, validation and impact (nothing written)."""

    prop: edit.Proposal
    check: edit.Validation
    impact: dict[str, Any]  # `geo.boundaries.edit.impact`: community, area, counts, moves

    def to_dict(self) -> dict[str, Any]:
        """The preview as JSON: the impact, the feature, the problems, the snaps, the warnings."""
        errors = self.check.errors
        return {
            **self.impact,
            "feature": self.prop.feature(),
            "valid": self.check.ok,
            "errors": [p.to_dict() for p in errors],
            "overlaps": [p.to_dict() for p in errors if "overlap" in (p.kind + p.detail)],
            "outside_street": [p.to_dict() for p in errors if p.kind == "outside"],
            "gaps": [p.to_dict() for p in self.check.gaps],
            "snapped": snapped(self.prop),
            "warnings": list(self.prop.warnings),
        }


@dataclass(frozen=True)
class BoundaryCommit:
    """A written boundary: the community's new version, the store version that holds it, the
    proposal and validation it was written from, and the warnings (edit, then publish).

    ``unchanged``: the boundary (and four-to text) equalled the current one, so nothing was
    written; ``version`` and ``store_version`` are the current ones and ``note`` says so."""

    community_id: str
    version: int
    store_version: int
    prop: edit.Proposal
    check: edit.Validation
    warnings: list[str]
    unchanged: bool = False
    note: str = ""


def snapped(prop: edit.Proposal) -> dict[str, list[dict]]:
    """The drawn vertices that moved onto roads and the edges that now follow one."""
    return {"vertices": prop.snapped.vertices, "edges": prop.snapped.edges}


# ------------------------------------------------------------------------------------ actions


def build(
    four_to: str,
    tables: Tables,
    *,
    roads: Roads = None,
    areas: pd.DataFrame | None = None,
    extend_m: float = 0.0,
    within: str | None = None,
) -> edit.Proposal:
    """The polygon ``four_to`` encloses along ``roads`` (default: the atlas's) citing ``areas``
    (default: its named areas and streets); a side the text leaves open is closed by street
    ``within`` (id, name or ``district``) of the atlas. Raises `BuildError`, `FourToError`,
    `EditError`."""
    closing = None if within is None else edit.within_polygon(tables["streets"], within)
    return edit.propose(
        four_to=four_to,
        roads=tables["roads"] if roads is None else roads,
        areas=edit.named_areas(tables) if areas is None else areas,
        extend_m=extend_m,
        within=closing,
    )


def community(tables: Tables, community_id: str) -> pd.Series:
    """The community's row; `UnknownCommunityId` (listing the communities) if there is none,
    and for a value that is no community id at all (`geo.ids`: control characters, ``/`` …)."""
    comm = tables["communities"]
    problem = id_problem(community_id)
    if problem is not None:
        raise UnknownCommunityId(f"no community {shown(community_id)}: the id {problem}")
    # compared as Python strings: numpy's fixed-width text drops trailing NULs ('C07\0' == 'C07')
    hit = np.flatnonzero((comm["id"] == community_id).to_numpy(dtype=bool))
    if not len(hit):
        known = ", ".join(comm["id"].tolist())
        raise UnknownCommunityId(f"no community {community_id!r}; communities are {known}")
    return comm.iloc[int(hit[0])]


def preview(
    tables: Tables, community_id: str, draft: BoundaryDraft, *, roads: Roads = None
) -> BoundaryPreview:
    """What ``draft`` as the boundary of ``community_id`` would change; nothing is written."""
    row = community(tables, community_id)
    prop = _propose(tables, draft, row["street_id"], roads)
    _check_coordinates(prop)
    check = edit.validate(tables, community_id, row["street_id"], prop.metric)
    return BoundaryPreview(prop, check, edit.impact(tables, community_id, prop.polygon))


def set_boundary(
    store: Store,
    tables: Tables,
    community_id: str,
    draft: BoundaryDraft,
    *,
    expected_version: int | None,
    author: str,
    reason: str = "",
    roads: Roads = None,
    audit: Mapping[str, Any] | None = None,
    publish: Publish | None = None,
) -> BoundaryCommit:
    """Write ``draft`` as the boundary of ``community_id`` (a new version), if the community is
    still at ``expected_version`` (None: whatever it is now; else `StaleCommunityError`) and the
    boundary validates (else `BoundaryRefused`; `DegenerateBoundary` for one with no usable
    shape). Four-to text replaces the community's text. Nothing is written on any error."""
    row = community(tables, community_id)
    check_reason(reason)
    have = store.community_version(community_id)
    expected = have if expected_version is None else expected_version
    if expected != have:  # an early answer; the store checks again inside the write
        raise StaleCommunityError(community_id, expected, have)
    prop = _propose(tables, draft, row["street_id"], roads)
    check = _validate(tables, community_id, row["street_id"], prop)
    return _commit(
        store, tables, community_id, prop, check, expected=expected, author=author,
        reason=reason, action="edit", fields=_four_to_field(draft.four_to), audit=audit,
        publish=publish,
    )  # fmt: skip


#: the attributes `edit_community` changes; id, street, code and retired grids stay
EDITABLE_FIELDS = ("name", "type", "mode", "four_to", "founded")


def edit_community(
    store: Store,
    tables: Tables,
    community_id: str,
    draft: BoundaryDraft | None,
    fields: Mapping[str, Any],
    *,
    expected_version: int | None,
    author: str,
    reason: str = "",
    roads: Roads = None,
    audit: Mapping[str, Any] | None = None,
    publish: Publish | None = None,
) -> BoundaryCommit:
    """Change a community's attributes (``fields``, of `EDITABLE_FIELDS`) and, with ``draft``,
    its boundary, as one new version (OGC API – Features PUT/PATCH). The boundary is checked
    as `set_boundary` checks it; without ``draft`` it stays. `StaleCommunityError` unless the
    community is at ``expected_version`` (None: any); `InvalidCommunity` for a field that
    cannot change or a value the model refuses; nothing written when nothing changes."""
    row = community(tables, community_id)
    check_reason(reason)
    _check_fields(fields)
    have = store.community_version(community_id)
    expected = have if expected_version is None else expected_version
    if expected != have:
        raise StaleCommunityError(community_id, expected, have)
    changed = {k: v for k, v in fields.items() if not same_value(row[k], v)}
    if draft is None:
        prop = edit.Proposal(to_metric(row.geometry), row.geometry, "attributes")
        check = edit.validate(tables, community_id, row["street_id"], prop.metric)
    else:
        prop = _propose(tables, draft, row["street_id"], roads)
        check = _validate(tables, community_id, row["street_id"], prop)
    done = _commit(
        store, tables, community_id, prop, check, expected=expected, author=author,
        reason=reason, action="edit", fields=changed, audit=audit, publish=publish,
    )  # fmt: skip
    if "four_to" in changed:  # the text was sent with the drawing: it is not stale
        kept = [w for w in done.warnings if not w.startswith("the boundary was drawn")]
        done = dataclasses.replace(done, warnings=kept)
    return done


def same_value(stored: Any, sent: Any) -> bool:
    """Whether a sent attribute equals the stored one (every kind of missing is None)."""
    missing = stored is None or (isinstance(stored, float) and np.isnan(stored))
    return (sent is None) if missing else stored == sent


def _check_fields(fields: Mapping[str, Any]) -> None:
    """`InvalidCommunity` for a field `edit_community` does not change or a bad value."""
    fixed = sorted(set(fields) - set(EDITABLE_FIELDS))
    if fixed:
        raise InvalidCommunity(
            f"{', '.join(fixed)} of a community cannot change here (only "
            f"{', '.join(EDITABLE_FIELDS)}); send the stored value or leave it out"
        )
    for name in ("name", "four_to"):
        value = fields.get(name, "-")
        if not isinstance(value, str) or (name == "name" and not value.strip()):
            raise InvalidCommunity(f"{name} must be text (name not empty), got {shown(value)}")
    founded = fields.get("founded")
    if founded is not None and not isinstance(founded, str):
        raise InvalidCommunity(f"founded must be text such as '2024-01', got {shown(founded)}")
    for name, allowed in (("type", COMMUNITY_TYPES), ("mode", MANAGEMENT_MODES)):
        if name in fields and fields[name] not in allowed:
            raise InvalidCommunity(
                f"{name} {shown(fields[name])} is not one of {', '.join(allowed)}"
            )


def create_community(
    store: Store,
    tables: Tables,
    new: NewCommunity,
    draft: BoundaryDraft,
    *,
    author: str,
    reason: str = "",
    roads: Roads = None,
    audit: Mapping[str, Any] | None = None,
    publish: Publish | None = None,
    four_to: str | None = None,
) -> BoundaryCommit:
    """Add a community with boundary ``draft``: `CommunityExists` for a taken id,
    `InvalidCommunity` for an unknown type or mode, an id, street id or code that is not one
    (`geo.ids`) or a reason too long, `BoundaryRefused` if it does not validate. ``four_to``:
    the text to keep with a drawn boundary (default: the draft's own text, else none)."""
    comm = tables["communities"]
    _check_new(new, reason)
    cid = new.id or _next_id(comm["id"].tolist())
    if cid in set(comm["id"]):
        raise CommunityExists(f"community {cid} exists already; choose another id")
    for name, value, allowed in (
        ("type", new.type, COMMUNITY_TYPES),
        ("mode", new.mode, MANAGEMENT_MODES),
    ):
        if value not in allowed:
            raise InvalidCommunity(f"{name} {value!r} is not one of {', '.join(allowed)}")
    prop = _propose(tables, draft, new.street_id, roads)
    check = _validate(tables, cid, new.street_id, prop)
    siblings = comm[comm["street_id"] == new.street_id]["code"].tolist()
    fields = {
        "name": new.name,
        "street_id": new.street_id,
        "type": new.type,
        "mode": new.mode,
        "code": new.code or _next_code(siblings),
        "four_to": draft.four_to or four_to or "",
        "founded": new.founded,
    }
    return _commit(
        store, tables, cid, prop, check, expected=0, author=author, reason=reason or "created",
        action="create", fields=fields, create=True, audit=audit, publish=publish,
    )  # fmt: skip


def revert(
    store: Store,
    tables: Tables,
    community_id: str,
    version: int,
    *,
    expected_version: int | None,
    author: str,
    reason: str = "",
    audit: Mapping[str, Any] | None = None,
    publish: Publish | None = None,
) -> BoundaryCommit:
    """Go back to history ``version`` of ``community_id``'s boundary and four-to text, recorded
    as a new version: `StaleCommunityError` unless the latest version is ``expected_version``
    (None: any), `UnknownVersion` for a version the history does not hold."""
    row = community(tables, community_id)
    check_reason(reason)
    versions = {v.version: v for v in store.community_history(community_id)}
    latest = max(versions, default=0)
    expected = latest if expected_version is None else expected_version
    if expected != latest:
        raise StaleCommunityError(community_id, expected, latest)
    target = versions.get(version)
    if target is None:
        raise UnknownVersion(community_id, version, sorted(versions))
    prop = edit.Proposal(to_metric(target.geometry), target.geometry, "revert", target.four_to)
    check = _validate(tables, community_id, row["street_id"], prop)
    return _commit(
        store, tables, community_id, prop, check, expected=expected, author=author,
        reason=reason or f"revert to version {version}", action="revert",
        fields=_four_to_field(target.four_to), audit=audit, publish=publish,
    )  # fmt: skip


def history(store: Store, tables: Tables, community_id: str) -> list[CommunityVersion]:
    """Every version of the community's boundary, newest first (`UnknownCommunityId` for an id
    that has no history and is not in the atlas, or is no community id)."""
    if id_problem(community_id) is not None:
        community(tables, community_id)  # the 404 that says why
    versions = store.community_history(community_id)
    if not versions:
        community(tables, community_id)
    return versions


# ------------------------------------------------------------------------------------ helpers


def _propose(tables: Tables, draft: BoundaryDraft, street_id: str, roads: Roads) -> edit.Proposal:
    """The proposed boundary; a side the four-to text leaves open is closed by the street.
    `DegenerateBoundary` for a drawing the geometry engine cannot work on (rings that collapse
    to fewer than 3 points when snapped)."""
    try:
        return edit.propose(
            four_to=draft.four_to,
            geometry=draft.geometry,
            roads=tables["roads"] if roads is None else roads,
            areas=edit.named_areas(tables),
            crs=draft.crs,
            snap_tolerance_m=draft.snap_tolerance_m,
            extend_m=draft.extend_m,
            within=_street(tables, street_id) if draft.four_to is not None else None,
        )
    except shapely.errors.GEOSException as exc:
        raise DegenerateBoundary(
            f"the boundary is degenerate: the geometry engine cannot use it ({exc}); draw its "
            "real outline"
        ) from exc


def _street(tables: Tables, street_id: str) -> Any:
    """The polygon of the community's street (None if unknown: validation says so)."""
    streets = tables["streets"]
    hit = streets[streets["id"] == street_id]
    return None if hit.empty else hit.geometry.iloc[0]


def _validate(
    tables: Tables, community_id: str, street_id: str, prop: edit.Proposal
) -> edit.Validation:
    """The validation of a boundary to write; `BoundaryRefused` when it forbids the write."""
    _check_coordinates(prop)
    _check_shape(community_id, prop)
    check = edit.validate(tables, community_id, street_id, prop.metric)
    if not check.ok:
        raise BoundaryRefused(check.message())
    return check


def _check_new(new: NewCommunity, reason: str) -> None:
    """`InvalidInput` for a new community's id, street id, code or reason that is not one."""
    if new.id is not None:
        check_id(new.id, "id", new="communities")
    check_id(new.street_id, "street_id")
    if new.code is not None:
        check_code(new.code)
    check_reason(reason)


def _check_coordinates(prop: edit.Proposal) -> None:
    """`DegenerateBoundary` for a boundary whose coordinates are not finite lon/lat (a drawn
    geometry in a projected CRS whose numbers overflowed the projection)."""
    lonlat = shapely.get_coordinates(prop.polygon)
    metric = shapely.get_coordinates(prop.metric)
    ok = (
        np.isfinite(lonlat).all()
        and np.isfinite(metric).all()
        and (np.abs(lonlat[:, 0]) <= 180).all()
        and (np.abs(lonlat[:, 1]) <= 90).all()
    )
    if not ok:
        raise DegenerateBoundary(
            "the boundary's coordinates are out of range once converted to lon/lat: check the "
            "numbers and that the request's crs is the CRS they are in"
        )


def _check_shape(community_id: str, prop: edit.Proposal) -> None:
    """`DegenerateBoundary` for a boundary under the topology check's sliver limits: less than
    ``MIN_AREA_M2`` or a mean width (2 · area / perimeter) under ``SLIVER_WIDTH_M``."""
    area, perimeter = float(prop.metric.area), float(prop.metric.length)
    width = 2 * area / perimeter if perimeter > 0 else 0.0
    if area < MIN_AREA_M2 or width < SLIVER_WIDTH_M:
        raise DegenerateBoundary(
            f"the boundary of {community_id} is degenerate ({area:.3g} m², mean width "
            f"{width:.3g} m); a community needs at least {MIN_AREA_M2:g} m² and a mean width "
            f"of {SLIVER_WIDTH_M:g} m: draw its real outline"
        )


def _four_to_field(four_to: str | None) -> dict[str, Any]:
    """The four-to text to store with a boundary (none: the community keeps its text)."""
    return {"four_to": four_to} if four_to is not None else {}


def _commit(
    store: Store,
    tables: Tables,
    community_id: str,
    prop: edit.Proposal,
    check: edit.Validation,
    *,
    expected: int,
    author: str,
    reason: str,
    action: str,
    fields: dict[str, Any],
    create: bool = False,
    audit: Mapping[str, Any] | None = None,
    publish: Publish | None = None,
) -> BoundaryCommit:
    """Write the boundary as the community's next version, then publish the store version; a
    boundary and fields equal to the current ones are not written (`_unchanged`)."""
    if not create:
        same = _unchanged(store, tables, community_id, prop, check, expected, fields)
        if same is not None:
            return same
    version, store_version = store.edit_community(
        community_id,
        prop.polygon,
        author=author,
        reason=reason or action,
        expected_version=expected,
        fields=fields,
        action=action,
        create=create,
        audit=audit,
    )
    warnings = _warnings(tables, community_id, prop)
    if publish is not None:
        warnings += publish(store_version)
    return BoundaryCommit(community_id, version, store_version, prop, check, warnings)


def _unchanged(
    store: Store,
    tables: Tables,
    community_id: str,
    prop: edit.Proposal,
    check: edit.Validation,
    expected: int,
    fields: Mapping[str, Any],
) -> BoundaryCommit | None:
    """The answer to a write that changes nothing (None if it changes something): the boundary
    equals the community's current one (`same_boundary`) and every field it would set (four-to
    text, name) equals the current value. Nothing is written; the versions stay."""
    latest = store.community_history(community_id)[:1]
    if latest:
        if latest[0].version != expected:  # written since the caller's check: say so
            raise StaleCommunityError(community_id, expected, latest[0].version)
        geometry = latest[0].geometry
        current = {"four_to": latest[0].four_to, "name": latest[0].name}
    else:
        row = community(tables, community_id)
        geometry = row.geometry
        current = {k: row[k] for k in ("four_to", "name")}
    if any(k not in current or current[k] != v for k, v in fields.items()):
        return None
    if not same_boundary(prop.metric, to_metric(geometry)):
        return None
    note = (
        f"unchanged: the boundary equals version {expected} of {community_id}; nothing was written"
    )
    return BoundaryCommit(
        community_id,
        expected,
        store.version(),
        prop,
        check,
        list(prop.warnings),  # repairs of what was sent (a ring wound the wrong way) still hold
        unchanged=True,
        note=note,
    )


def same_boundary(a: Any, b: Any, tolerance_m: float = UNCHANGED_M) -> bool:
    """Whether two metric boundaries are the same: every vertex of each lies within
    ``tolerance_m`` of the other's rings (rounding to 7 decimals, vertex order, ring start,
    winding, and vertices added along an edge do not count)."""
    if a.geom_type != b.geom_type or len(shapely.get_parts(a)) != len(shapely.get_parts(b)):
        return False
    ra, rb = shapely.normalize(a).boundary, shapely.normalize(b).boundary
    return bool(shapely.hausdorff_distance(ra, rb) <= tolerance_m)


def _warnings(tables: Tables, community_id: str, prop: edit.Proposal) -> list[str]:
    """What the written boundary leaves to do: repairs made, a kept four-to text, grids that
    no longer tile the community, parks that change community."""
    out = list(prop.warnings)  # repairs of the drawn geometry (rings wound the wrong way)
    if prop.source == "geometry":
        out.append(
            "the boundary was drawn: the community's four-to text was kept and no longer "
            "describes it; send four_to to replace the text"
        )
    if not grids_tile(tables, community_id, prop.metric):
        out.append(
            f"the grids of {community_id} were drawn for the old boundary: re-split them "
            "(`geo check` lists the gaps and overlaps)"
        )
    parks = _park_moves(tables, community_id, prop.polygon)
    if parks:
        moved = ", ".join(
            f"{p['id']} {p['name']} ({_cid(p['from'])} → {_cid(p['to'])})" for p in parks
        )
        out.append(f"{len(parks)} park(s) changed community: {moved}")
    return out


def grids_tile(tables: Tables, community_id: str, metric: Any) -> bool:
    """Whether the community's grids tile the (metric) boundary ``metric`` as `geo check` sees
    it: no piece of the boundary outside every grid and no grid reaching outside it (pieces
    under the topology check's noise limits do not count). True for a community without
    grids."""
    grids = tables["grids"]
    mine = grids[grids["community_id"] == community_id]
    if mine.empty:
        return True
    geoms = to_metric(np.asarray(mine.geometry.values, dtype=object))
    found = check_partition(
        "grids", community_id, metric, mine["id"].tolist(), list(geoms), cover=True
    )
    return not any(
        p.kind in ("gap", "outside") or (p.kind == "sliver" and p.detail.startswith("gap"))
        for p in found
    )


def _park_moves(tables: Tables, community_id: str, polygon: Any) -> list[dict[str, Any]]:
    """The parks whose community changes if ``community_id`` gets the WGS84 ``polygon``."""
    return edit.impact(tables, community_id, polygon, layers=("parks",))["parks"]


def _cid(cell: Mapping[str, Any] | None) -> str:
    return "none" if cell is None else str(cell["id"])


def _next_id(ids: list[str]) -> str:
    """The id after the highest ``Cnn``.

    >>> _next_id(["C01", "C07", "X9"]), _next_id([])
    ('C08', 'C01')
    """
    nums = [int(m[1]) for i in ids if (m := re.fullmatch(r"C([0-9]+)", str(i)))]
    return f"C{max(nums, default=0) + 1:02d}"


def _next_code(codes: list[str]) -> str:
    """The 3-digit code after the highest of a street's communities.

    >>> _next_code(["001", "002", None, "²", "١٢٣"]), _next_code([])
    ('003', '001')
    """
    nums = [int(c) for c in codes if isinstance(c, str) and COMMUNITY_CODE.fullmatch(c)]
    return f"{max(nums, default=0) + 1:03d}"
