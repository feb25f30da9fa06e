"""Topology of a partition: overlaps, gaps, slivers, invalid rings, parts outside the parent.

Two partitions are checked, both in `geo.crs.METRIC_CRS` (EPSG:4549) with areas in m²:

* the communities of a street (``cover=False``): communities need not fill their street, so a
  *gap* is land between neighbouring communities that belongs to neither: a hole enclosed by
  communities, or a strip narrower than ``2 * gap_width_m`` between two of them (found by a
  mitred morphological closing of their union);
* the grids of a community (``cover=True``): grids tile their community, so every piece of the
  community outside all grids is a gap.

A piece of overlap or gap whose mean width (2 · area / perimeter) is under ``sliver_width_m``
is reported as a *sliver*. Pieces smaller than ``min_area_m2``, or thinner than 5 cm (two
drawings of one road centerline that differ by millimetres), are noise and ignored.
Every problem carries its area and a WGS84 location (a point on the piece) for the map.

`check_district` runs both checks over a whole district; `check_member` checks one (edited)
member against its siblings and parent, as boundary edits are validated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geo.boundaries.roads import lonlat
from geo.crs import to_metric

MIN_AREA_M2 = 1.0
GAP_WIDTH_M = 10.0
SLIVER_WIDTH_M = 1.0
NOISE_WIDTH_M = 0.05  # thinner pieces are digitising/rounding noise along shared edges
TOUCH_M = 0.01

_REASON_AT = re.compile(r"\[\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)\s*\]")


@dataclass(frozen=True)
class Problem:
    """One topology problem.

    ``kind``: overlap | gap | sliver | invalid | outside; ``level``: communities | grids;
    ``parent``: the street (for communities) or community (for grids); ``ids``: the members
    involved; ``location``: WGS84 (lon, lat) of a point on the piece.
    """

    kind: str
    level: str
    parent: str
    ids: tuple[str, ...]
    area_m2: float
    location: tuple[float, float]
    detail: str = ""

    @property
    def message(self) -> str:
        """The problem in one line: what, how large and where (lon, lat)."""
        what = {
            "overlap": f"{' and '.join(self.ids)} overlap",
            "gap": f"gap between {', '.join(self.ids)}",
            "sliver": f"sliver ({self.detail}) between {', '.join(self.ids)}",
            "invalid": f"{', '.join(self.ids)} is not a valid polygon ({self.detail})",
            "outside": f"{', '.join(self.ids)} reaches outside {self.parent}",
        }[self.kind]
        lon, lat = self.location
        return f"{what}: {self.area_m2:.1f} m² at ({lon:.6f}, {lat:.6f}) (lon, lat)"

    def to_dict(self) -> dict:
        """The problem as plain JSON values, with its message."""
        return {
            "kind": self.kind,
            "level": self.level,
            "parent": self.parent,
            "ids": list(self.ids),
            "area_m2": round(self.area_m2, 1),
            "location": {"lon": self.location[0], "lat": self.location[1]},
            "detail": self.detail,
            "message": self.message,
        }


def invalid_location(geom: BaseGeometry) -> tuple[str, tuple[float, float] | None] | None:
    """Why a metric geometry is invalid and where (WGS84 lon, lat), or None when it is valid."""
    if geom is None or geom.is_empty:
        return "empty geometry", None
    if shapely.is_valid(geom):
        return None
    reason = shapely.is_valid_reason(geom)
    m = _REASON_AT.search(reason)
    where = lonlat(float(m[1]), float(m[2])) if m else None
    return _REASON_AT.sub("", reason).strip(), where


def _where(piece: BaseGeometry) -> tuple[float, float]:
    p = shapely.point_on_surface(piece)
    return lonlat(p.x, p.y)


def _pieces(geom: BaseGeometry, min_area: float) -> list[BaseGeometry]:
    parts = shapely.get_parts(geom)
    return [
        p
        for p in parts
        if p.geom_type == "Polygon" and p.area >= min_area and _width(p) >= NOISE_WIDTH_M
    ]


def _width(piece: BaseGeometry) -> float:
    return 2.0 * piece.area / piece.length if piece.length else 0.0


def check_partition(
    level: str,
    parent_id: str,
    parent: BaseGeometry | None,
    ids: Sequence[str],
    geoms: Sequence[BaseGeometry],
    *,
    cover: bool,
    min_area_m2: float = MIN_AREA_M2,
    gap_width_m: float = GAP_WIDTH_M,
    sliver_width_m: float = SLIVER_WIDTH_M,
) -> list[Problem]:
    """Problems among the members ``ids``/``geoms`` (metric) of one parent (metric or None)."""
    ids = list(ids)
    geoms = np.asarray(list(geoms), dtype=object)
    out, valid = _invalid_members(level, parent_id, ids, geoms)
    good = np.flatnonzero(valid)
    members = _Members(level, parent_id, ids, good, geoms[good], sliver_width_m)
    out += _overlaps(members, min_area_m2)
    out += _outside(members, parent, min_area_m2)
    out += _gaps(members, parent, cover=cover, gap_width_m=gap_width_m, min_area_m2=min_area_m2)
    return out


@dataclass(frozen=True)
class _Members:
    """The valid members of one parent: ``fixed[k]`` is member ``ids[good[k]]``."""

    level: str
    parent_id: str
    ids: list[str]
    good: np.ndarray
    fixed: np.ndarray
    sliver_width_m: float

    def piece_problem(self, kind: str, members: tuple[str, ...], piece: BaseGeometry) -> Problem:
        """A ``kind`` problem for ``piece``, or a sliver when it is thinner than the limit."""
        width = _width(piece)
        if width < self.sliver_width_m:
            detail = f"{kind}, {width:.2f} m wide"
            return Problem(
                "sliver", self.level, self.parent_id, members, piece.area, _where(piece), detail
            )
        return Problem(kind, self.level, self.parent_id, members, piece.area, _where(piece))


def _invalid_members(
    level: str, parent_id: str, ids: list[str], geoms: np.ndarray
) -> tuple[list[Problem], np.ndarray]:
    """An ``invalid`` problem per invalid geometry, and which members are valid."""
    out: list[Problem] = []
    valid = np.ones(len(geoms), dtype=bool)
    for i, g in enumerate(geoms):
        bad = invalid_location(g)
        if bad is not None:
            reason, where = bad
            valid[i] = False
            if where is None and g is not None and not g.is_empty:
                where = _where(g.buffer(0))
            out.append(
                Problem("invalid", level, parent_id, (ids[i],), 0.0, where or (0.0, 0.0), reason)
            )
    return out, valid


def _overlaps(m: _Members, min_area_m2: float) -> list[Problem]:
    """Overlaps between pairs of members."""
    out: list[Problem] = []
    if len(m.fixed) <= 1:
        return out
    tree = shapely.STRtree(m.fixed)
    a, b = tree.query(m.fixed, predicate="intersects")
    keep = a < b
    for i, j in zip(a[keep], b[keep], strict=True):
        inter = shapely.intersection(m.fixed[i], m.fixed[j])
        members = (m.ids[m.good[i]], m.ids[m.good[j]])
        out += [m.piece_problem("overlap", members, p) for p in _pieces(inter, min_area_m2)]
    return out


def _outside(m: _Members, parent: BaseGeometry | None, min_area_m2: float) -> list[Problem]:
    """Parts of members outside the parent."""
    out: list[Problem] = []
    if parent is None or parent.is_empty:
        return out
    outside = shapely.difference(m.fixed, parent)
    for k, part in enumerate(outside):
        for piece in _pieces(part, min_area_m2):
            out.append(
                Problem(
                    "outside", m.level, m.parent_id, (m.ids[m.good[k]],), piece.area, _where(piece)
                )
            )
    return out


def _gaps(
    m: _Members,
    parent: BaseGeometry | None,
    *,
    cover: bool,
    gap_width_m: float,
    min_area_m2: float,
) -> list[Problem]:
    """Gaps: the parent's area no member covers (when they must cover it), else the narrow
    spaces between two or more members."""
    out: list[Problem] = []
    if not len(m.fixed):
        return out
    union = shapely.union_all(m.fixed)
    if cover and parent is not None:
        gaps = shapely.difference(parent, union)
        for piece in _pieces(gaps, min_area_m2):
            near = _touching(piece, m.fixed, m.ids, m.good) or (m.parent_id,)
            out.append(m.piece_problem("gap", near, piece))
    elif len(m.fixed) > 1:
        for piece in _between(union, gap_width_m, min_area_m2):
            near = _touching(piece, m.fixed, m.ids, m.good)
            if len(near) >= 2:
                out.append(m.piece_problem("gap", near, piece))
    return out


def _touching(
    piece: BaseGeometry, geoms: np.ndarray, ids: list[str], good: np.ndarray
) -> tuple[str, ...]:
    near = np.flatnonzero(shapely.dwithin(geoms, piece, TOUCH_M))
    return tuple(ids[good[k]] for k in near)


def _between(union: BaseGeometry, width: float, min_area: float) -> list[BaseGeometry]:
    """Holes of ``union`` and strips narrower than ``2 * width`` between its parts."""
    closed = union.buffer(width, join_style="mitre", mitre_limit=10.0).buffer(
        -width, join_style="mitre", mitre_limit=10.0
    )
    holes = [
        shapely.Polygon(ring)
        for poly in shapely.get_parts(union)
        if poly.geom_type == "Polygon"
        for ring in poly.interiors
    ]
    gaps = shapely.union_all([shapely.difference(closed, union), *holes])
    return _pieces(shapely.difference(gaps, union), min_area)


def _metric(frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(to_metric(np.asarray(frame.geometry.values, dtype=object)), dtype=object)


def check_district(tables: Mapping[str, pd.DataFrame], **kwargs) -> list[Problem]:
    """Every street's communities and every community's grids (see `check_partition`)."""
    streets, communities, grids = tables["streets"], tables["communities"], tables["grids"]
    street_m = dict(zip(streets["id"], _metric(streets), strict=True))
    comm_m = _metric(communities)
    grid_m = _metric(grids)
    out: list[Problem] = []
    comm_street = communities["street_id"].to_numpy()
    for sid in sorted(set(comm_street)):
        sel = np.flatnonzero(comm_street == sid)
        out += check_partition(
            "communities",
            sid,
            street_m.get(sid),
            communities["id"].to_numpy()[sel].tolist(),
            comm_m[sel],
            cover=False,
            **kwargs,
        )
    grid_comm = grids["community_id"].to_numpy()
    for k, cid in enumerate(communities["id"]):
        sel = np.flatnonzero(grid_comm == cid)
        if not len(sel):
            continue
        parent = comm_m[k] if shapely.is_valid(comm_m[k]) else None
        out += check_partition(
            "grids",
            cid,
            parent,
            grids["id"].to_numpy()[sel].tolist(),
            grid_m[sel],
            cover=True,
            **kwargs,
        )
    return out


def check_member(
    tables: Mapping[str, pd.DataFrame],
    community_id: str,
    street_id: str,
    geom: BaseGeometry,
    **kwargs,
) -> list[Problem]:
    """Problems involving ``community_id`` if its boundary were ``geom`` (metric): its own
    validity, parts outside ``street_id``, overlaps and gaps with the street's communities."""
    streets, communities = tables["streets"], tables["communities"]
    street = streets[streets["id"] == street_id]
    parent = _metric(street)[0] if len(street) else None
    siblings = communities[
        (communities["street_id"] == street_id) & (communities["id"] != community_id)
    ]
    ids = [community_id, *siblings["id"].tolist()]
    geoms = [geom, *_metric(siblings)]
    found = check_partition("communities", street_id, parent, ids, geoms, cover=False, **kwargs)
    # overlaps with communities of other streets show up as parts outside the street
    return [p for p in found if community_id in p.ids]


__all__ = [
    "Problem",
    "check_district",
    "check_member",
    "check_partition",
    "invalid_location",
]
