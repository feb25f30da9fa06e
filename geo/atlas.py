"""The atlas: an immutable, read-optimised snapshot of the store, and the hot path `locate`.

Every committed store version publishes a new `Atlas`; readers (API, CLI) hold a reference to
one atlas and never see a half-applied change. Ownership is answered level by level —
street, community, grid (constrained to the owning community), micro-grid (constrained to the
owning grid) — with `geo.ownership.PolygonIndex`.

Micro-grids are the parks, and the buildings that stand outside every park; a building inside a
park belongs to the park's micro-grid.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS

from geo import crs as crs_mod
from geo.ownership import Frame, Hierarchy, PolygonIndex, Window
from geo.store.base import Snapshot

LEVELS = ("street", "community", "grid", "microgrid")
_LEVEL_TABLE = {"street": "streets", "community": "communities", "grid": "grids"}
_PARENT_LEVEL = {"grid": "community", "microgrid": "grid"}
_PARENT_KEY = {"grid": "community_id", "microgrid": "grid_id"}
_SERIALS = itertools.count(1)
# A point further than this outside the district is a wrong input, not an unowned point.
_FAR_DEG = 0.5


@dataclass(frozen=True)
class Level:
    """One level of the hierarchy: its cells (sorted by id) and their index."""

    name: str
    table: pd.DataFrame  # id, name, code (+ kind for micro-grids), parent key; sorted by id
    index: PolygonIndex

    @cached_property
    def ids_or_none(self) -> NDArray[np.object_]:
        """The ids followed by None, so that indexing with NONE (-1) gives None."""
        return np.append(self.table["id"].to_numpy(dtype=object), None)

    @cached_property
    def descriptions(self) -> list[dict[str, Any] | None]:
        """``{"id", "name", "code"}`` (plus ``kind`` for micro-grids) per cell, then None.

        Indexing with NONE (-1) gives None. Callers must not modify the dicts.
        """
        cols = ["id", "name", "code"] + (["kind"] if self.name == "microgrid" else [])
        rows = self.table[cols].astype(object).where(self.table[cols].notna(), None)
        out: list[dict[str, Any] | None] = rows.to_dict("records")
        for d in out:
            d["code"] = d["code"] or None
        return [*out, None]

    def describe(self, i: int) -> dict[str, Any] | None:
        """The description of cell ``i``, or None for NONE."""
        return self.descriptions[i]


class Atlas:
    """All layers at one store version, with spatial indexes for ownership."""

    def __init__(self, snapshot: Snapshot, previous: Atlas | None = None) -> None:
        """The atlas of ``snapshot``; a level whose polygons and parents equal those of
        ``previous`` (an edit elsewhere) reuses its index instead of rebuilding it."""
        for _ in self._build(snapshot, previous):
            pass

    @classmethod
    def in_steps(cls, snapshot: Snapshot, previous: Atlas | None = None) -> Iterator[Atlas | None]:
        """Build the atlas a step at a time (each some milliseconds), yielding None between
        steps and the atlas last: a server builds it between requests (`geo.api.state`)."""
        atlas = cls.__new__(cls)
        yield from atlas._build(snapshot, previous)
        yield atlas

    def _build(self, snapshot: Snapshot, previous: Atlas | None) -> Iterator[None]:
        self.version = snapshot.version
        self.serial = next(_SERIALS)  # unique per atlas built in this process (cache keys)
        self.tables = snapshot.tables
        self.levels: dict[str, Level] = {}
        # one cell frame for every level, so a point's cell is computed once per locate
        polygon_layers = ("streets", "communities", "grids", "parks", "buildings")
        bounds = _bounds([self.tables[t] for t in polygon_layers])
        if previous is not None and previous.frame.holds(bounds):
            self.frame = previous.frame  # an edit within the extent keeps the cells
        else:
            self.frame, previous = Frame.covering(bounds), None
        yield
        window: Window | None = None  # the cells whose shortcuts differ from previous's
        for name in LEVELS:
            table = (
                _microgrids(self.tables)
                if name == "microgrid"
                else self.tables[_LEVEL_TABLE[name]].reset_index(drop=True)
            )
            parent = None
            if name in _PARENT_LEVEL:
                parent_ids = self.levels[_PARENT_LEVEL[name]].table["id"]
                parent = _positions(parent_ids, table[_PARENT_KEY[name]])
            geoms = np.asarray(table.geometry, dtype=object)
            old = previous.levels[name].index if previous is not None else None
            changed = old.changed(geoms, parent) if old is not None else None
            if old is None or changed is None:
                index = PolygonIndex(geoms, parent, self.frame)
                window = Window.whole(self.frame)
            elif not changed.any():
                index = old  # an edit elsewhere: the same index answers
            else:
                index = old.updated(geoms, changed)  # cells around the change rastered again
                window = index.window if window is None else window.union(index.window)
            self.levels[name] = Level(name, table, index)
            yield
        levels = [
            (lv.index, LEVELS.index(_PARENT_LEVEL[n]) if n in _PARENT_LEVEL else None)
            for n, lv in self.levels.items()
        ]
        if previous is not None and window is None:
            self.hierarchy = previous.hierarchy
        elif previous is not None and window != Window.whole(self.frame):
            self.hierarchy = previous.hierarchy.updated(levels, window)
        else:
            self.hierarchy = Hierarchy(self.frame, levels)
        yield
        streets = self.tables["streets"]
        self.bounds = tuple(streets.total_bounds) if len(streets) else (np.nan,) * 4
        self.enterprises = self._own_enterprises()
        yield

    # -- locate ------------------------------------------------------------------------------
    def locate_indices(self, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> dict[str, Any]:
        """Owner positions per level (NONE where nothing owns the point); WGS84 input."""
        return dict(zip(LEVELS, self.hierarchy.owners(lon, lat), strict=True))

    def describe_one(self, lon: float, lat: float) -> dict[str, Any]:
        """The API shape of one WGS84 point's owners (the single-point hot path: scalars)."""
        owners = self.hierarchy.owner_of(lon, lat)
        return {
            name: self.levels[name].descriptions[i] for name, i in zip(LEVELS, owners, strict=True)
        }

    def locate(self, lon: ArrayLike, lat: ArrayLike, crs: str = "wgs84") -> pd.DataFrame:
        """Owners of each point: ``street_id, community_id, grid_id, microgrid_id`` (None: none)."""
        x, y = crs_mod.to_wgs84(lon, lat, crs)
        owners = self.locate_indices(x, y)
        # one object block, None (not NaN) where nothing owns the point; no copies after this
        block = np.empty((len(LEVELS), len(x)), dtype=object)
        for row, name in enumerate(LEVELS):
            block[row] = self.ids_of(name, owners[name])
        columns = [f"{name}_id" for name in LEVELS]
        return pd.DataFrame(block.T, columns=columns, dtype=object, copy=False)

    def describe_point(self, owners: dict[str, Any], i: int) -> dict[str, Any]:
        """The API shape of one located point: each level described, or None."""
        return {name: self.levels[name].describe(int(owners[name][i])) for name in LEVELS}

    def describe_points(self, owners: dict[str, Any]) -> list[dict[str, Any]]:
        """`describe_point` for every point (the descriptions are shared, not copied)."""
        columns = [
            [self.levels[name].descriptions[i] for i in owners[name].tolist()] for name in LEVELS
        ]
        return [dict(zip(LEVELS, row, strict=True)) for row in zip(*columns, strict=True)]

    def diagnose(self, lon: ArrayLike, lat: ArrayLike, crs: str) -> list[str | None]:
        """Why each input point cannot be located (None where it can): NaN, range, swap, CRS.

        Coordinates are checked as given (degrees for wgs84/cgcs2000/gcj02/bd09 and geographic
        EPSG codes); projected coordinates are checked after conversion to WGS84.
        """
        x, y = crs_mod.to_wgs84(lon, lat, crs) if _projected(crs) else crs_mod.as_arrays(lon, lat)
        reasons: list[str | None] = [None] * len(x)
        bad = ~(np.isfinite(x) & np.isfinite(y))
        for i in np.flatnonzero(bad):
            reasons[i] = "lon and lat must be finite numbers (got NaN or Infinity)"
        minx, miny, maxx, maxy = self.bounds
        with np.errstate(invalid="ignore"):
            far = ~bad & (
                (x < minx - _FAR_DEG)
                | (x > maxx + _FAR_DEG)
                | (y < miny - _FAR_DEG)
                | (y > maxy + _FAR_DEG)
            )
        for i in np.flatnonzero(far):
            reasons[i] = _far_reason(float(x[i]), float(y[i]), self.bounds)
        return reasons

    def ids_of(self, level: str, owners: NDArray[np.int64]) -> NDArray[np.object_]:
        """The ids of owner positions at ``level`` (None where NONE)."""
        return self.levels[level].ids_or_none[owners]

    # -- enterprises -------------------------------------------------------------------------
    def _own_enterprises(self) -> pd.DataFrame:
        """The enterprise table with its owners, indexed by id; credit codes looked up too."""
        ent = self.tables["enterprises"].reset_index(drop=True)
        owners = self.locate_indices(ent.geometry.x.to_numpy(), ent.geometry.y.to_numpy())
        out = pd.DataFrame(ent.drop(columns="geometry"))
        out["lon"] = ent.geometry.x.to_numpy()
        out["lat"] = ent.geometry.y.to_numpy()
        for name in LEVELS:
            out[f"_{name}"] = owners[name]
        self._by_credit = pd.Series(out.index, index=out["credit_code"].str.upper())
        self._by_id = pd.Series(out.index, index=out["id"])
        return out

    def find_enterprise(self, key: str) -> int | None:
        """Row of the enterprise with this id or unified social credit code, else None."""
        for table, k in ((self._by_id, key), (self._by_credit, key.strip().upper())):
            if k in table.index:
                hit = table.loc[k]
                return int(hit.iloc[0]) if isinstance(hit, pd.Series) else int(hit)
        return None

    def enterprise_owner(self, row: int) -> dict[str, Any]:
        """The enterprise and its street, community, grid and micro-grid."""
        e = self.enterprises.iloc[row]
        owners = {name: [e[f"_{name}"]] for name in LEVELS}
        return {
            "enterprise": {
                "id": e["id"],
                "name": e["name"],
                "credit_code": e["credit_code"],
                "credit_code_valid": bool(e["credit_code_valid"]),
                "address": e["address"],
                "lon": float(e["lon"]),
                "lat": float(e["lat"]),
            },
            **self.describe_point(owners, 0),
        }


def _bounds(frames: list[pd.DataFrame]) -> tuple[float, float, float, float]:
    """The extent of all features of these layers (a unit box at 0, 0 when there are none)."""
    boxes = np.array([f.total_bounds for f in frames if len(f)])
    if len(boxes) == 0:
        return (0.0, 0.0, 1.0, 1.0)
    return (boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max())


def _microgrids(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Parks, plus buildings outside every park, as one level sorted by id."""
    parks = tables["parks"].assign(kind="park")
    buildings = tables["buildings"]
    loose = buildings[buildings["park_id"].fillna("") == ""].assign(kind="building")
    cols = ["id", "name", "code", "kind", "grid_id", "geometry"]
    both = pd.concat([parks[cols], loose[cols]], ignore_index=True)
    return both.sort_values("id", kind="stable").reset_index(drop=True)


def _positions(ids: pd.Series, keys: pd.Series) -> NDArray[np.int64]:
    """Position of each key in ``ids`` (NONE where absent)."""
    pos = pd.Index(ids).get_indexer(keys.fillna(""))
    return pos.astype(np.int64)


def _projected(crs: str) -> bool:
    kind = crs_mod.normalize_crs(crs)
    return kind.startswith("EPSG:") and not CRS.from_user_input(kind).is_geographic


def _far_reason(lon: float, lat: float, bounds: tuple[float, ...]) -> str:
    minx, miny, maxx, maxy = bounds
    box = f"{minx:.3f}–{maxx:.3f} E, {miny:.3f}–{maxy:.3f} N"
    where = f"({lon:g}, {lat:g}) is far outside the district ({box})"
    if abs(lon) > 180 and abs(lat) > 90:
        return f"{where}: these look like projected metres; pass crs=EPSG:4549 (or the right code)"
    if abs(lat) > 90:
        return f"latitude {lat:g} is out of range: lon and lat swapped? send lon first, then lat"
    if minx - _FAR_DEG <= lat <= maxx + _FAR_DEG and miny - _FAR_DEG <= lon <= maxy + _FAR_DEG:
        return f"{where}: lon and lat look swapped; send lon first, then lat"
    return f"{where}: check the coordinates and the crs (wgs84, cgcs2000, gcj02, bd09 or EPSG:n)"
