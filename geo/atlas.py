"""The atlas: an immutable, read-optimised snapshot of the store, and the hot path `locate`.

Every committed store version publishes a new `Atlas`; readers (API, CLI) hold a reference to
one atlas and never see a half-applied change. Ownership is answered level by level —
street, community, grid (constrained to the owning community), micro-grid (constrained to the
owning grid) — with `geo.ownership.PolygonIndex`.

Micro-grids are the parks, and the buildings that stand outside every park; a building inside a
park belongs to the park's micro-grid.
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geo import crs as crs_mod
from geo.ownership import Frame, Hierarchy, PolygonIndex, Window

if TYPE_CHECKING:  # pandas is imported where a table is built: a ready atlas needs none
    import pandas as pd

    from geo.store.base import Snapshot

LEVELS = ("street", "community", "grid", "microgrid")
#: the tables an ownership index is built from (`geo.ready` keys its files by their stamps)
POLYGON_TABLES = ("streets", "communities", "grids", "parks", "buildings")
_LEVEL_TABLE = {"street": "streets", "community": "communities", "grid": "grids"}
_PARENT_LEVEL = {"grid": "community", "microgrid": "grid"}
_PARENT_KEY = {"grid": "community_id", "microgrid": "grid_id"}
_SERIALS = itertools.count(1)
# A point further than this outside the district is a wrong input, not an unowned point.
_FAR_DEG = 0.5


@dataclass(frozen=True)
class Level:
    """One level of the hierarchy: its cells (sorted by id) and their index.

    ``table`` holds the cells' rows (id, name, code, kind for micro-grids, parent key,
    geometry) in an `Atlas`; a ready atlas (`geo.ready`) has none, only the descriptions.
    """

    name: str
    table: pd.DataFrame | None
    index: PolygonIndex

    @classmethod
    def described(cls, name: str, index: PolygonIndex, descriptions: list[dict[str, Any]]) -> Level:
        """A level without a table: ``descriptions`` (one per cell, as `descriptions`)."""
        level = cls(name, None, index)
        level.__dict__["descriptions"] = [*descriptions, None]
        return level

    @cached_property
    def ids_or_none(self) -> NDArray[np.object_]:
        """The ids followed by None, so that indexing with NONE (-1) gives None."""
        if self.table is not None:
            return np.append(self.table["id"].to_numpy(dtype=object), None)
        ids = np.empty(len(self.descriptions), dtype=object)
        ids[:-1] = [d["id"] for d in self.descriptions[:-1]]  # type: ignore[index]
        return ids

    @cached_property
    def descriptions(self) -> list[dict[str, Any] | None]:
        """``{"id", "name", "code"}`` (plus ``kind`` for micro-grids) per cell, then None.

        Indexing with NONE (-1) gives None. Callers must not modify the dicts.
        """
        assert self.table is not None
        cols = ["id", "name", "code"] + (["kind"] if self.name == "microgrid" else [])
        rows = self.table[cols].astype(object).where(self.table[cols].notna(), None)
        out: list[dict[str, Any] | None] = rows.to_dict("records")
        for d in out:
            d["code"] = d["code"] or None
        return [*out, None]

    def describe(self, i: int) -> dict[str, Any] | None:
        """The description of cell ``i``, or None for NONE."""
        return self.descriptions[i]


class Locator:
    """Ownership at one store version: the levels, their combined index and the district's
    bounds. An `Atlas` is one (with every table); `geo.ready` loads one from a file."""

    version: int
    frame: Frame
    levels: dict[str, Level]
    hierarchy: Hierarchy
    bounds: tuple[float, ...]

    def __init__(
        self,
        version: int,
        frame: Frame,
        levels: dict[str, Level],
        hierarchy: Hierarchy,
        bounds: tuple[float, ...],
    ) -> None:
        """A locator of these parts (`geo.ready`); an `Atlas` builds its own."""
        self.version, self.frame, self.levels = version, frame, levels
        self.hierarchy, self.bounds = hierarchy, bounds
        self.serial = next(_SERIALS)

    @classmethod
    def build(cls, snapshot: Snapshot) -> Locator:
        """The ownership of ``snapshot``'s polygon tables (`POLYGON_TABLES`: it needs no other,
        so a snapshot of those alone will do)."""
        atlas = Atlas.__new__(Atlas)
        atlas.tables = snapshot.tables
        for _ in atlas._build_index(None):
            pass
        bounds = _street_bounds(snapshot.tables["streets"])
        return cls(snapshot.version, atlas.frame, atlas.levels, atlas.hierarchy, bounds)

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
        import pandas as pd

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


class Atlas(Locator):
    """All layers at one store version, with spatial indexes for ownership."""

    def __init__(
        self, snapshot: Snapshot, previous: Atlas | None = None, ready: Locator | None = None
    ) -> None:
        """The atlas of ``snapshot``; a level whose polygons and parents equal those of
        ``previous`` (an edit elsewhere) reuses its index instead of rebuilding it. ``ready``
        (`geo.ready`: the same polygon tables' index, loaded from a file) gives every index."""
        for _ in self._build(snapshot, previous, ready):
            pass

    @classmethod
    def in_steps(
        cls, snapshot: Snapshot, previous: Atlas | None = None, ready: Locator | None = None
    ) -> Iterator[Atlas | None]:
        """Build the atlas a step at a time (each some milliseconds), yielding None between
        steps and the atlas last: a server builds it between requests (`geo.api.state`)."""
        atlas = cls.__new__(cls)
        yield from atlas._build(snapshot, previous, ready)
        yield atlas

    def _build(
        self, snapshot: Snapshot, previous: Atlas | None, ready: Locator | None = None
    ) -> Iterator[None]:
        self.version = snapshot.version
        self.serial = next(_SERIALS)  # unique per atlas built in this process (cache keys)
        self.tables = snapshot.tables
        if ready is not None:
            self._take_ready(ready)
        else:
            yield from self._build_index(previous)
        self.bounds = _street_bounds(self.tables["streets"])
        self.enterprises = self._own_enterprises()
        yield

    def _take_ready(self, ready: Locator) -> None:
        """The ready index's levels, each with its table (the same polygon tables)."""
        self.frame, self.hierarchy = ready.frame, ready.hierarchy
        self.levels = {}
        for name, level in ready.levels.items():
            table = self._level_table(name)
            if len(table) != len(level.index):
                raise ValueError(f"the ready index does not fit the {name} table")
            self.levels[name] = Level(name, table, level.index)

    def _level_table(self, name: str) -> pd.DataFrame:
        """The rows of one level's cells, sorted by id."""
        if name == "microgrid":
            return _microgrids(self.tables)
        return self.tables[_LEVEL_TABLE[name]].reset_index(drop=True)

    def _build_index(self, previous: Atlas | None) -> Iterator[None]:
        """Every level's index and the hierarchy, reusing ``previous``'s where unchanged."""
        self.levels = {}
        # one cell frame for every level, so a point's cell is computed once per locate
        bounds = _bounds([self.tables[t] for t in POLYGON_TABLES])
        if previous is not None and previous.frame.holds(bounds):
            self.frame = previous.frame  # an edit within the extent keeps the cells
        else:
            self.frame, previous = Frame.covering(bounds), None
        yield
        window: Window | None = None  # the cells whose shortcuts differ from previous's
        for name in LEVELS:
            table = self._level_table(name)
            parent = None
            if name in _PARENT_LEVEL:
                parent_ids = self.levels[_PARENT_LEVEL[name]].table["id"]  # type: ignore[index]
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

    # -- enterprises -------------------------------------------------------------------------
    def _own_enterprises(self) -> pd.DataFrame:
        """The enterprise table with its owners, indexed by id; credit codes looked up too."""
        import pandas as pd

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
        import pandas as pd

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


def _street_bounds(streets: pd.DataFrame) -> tuple[float, ...]:
    """The district's extent: its streets' (NaN when there are none)."""
    return tuple(streets.total_bounds) if len(streets) else (np.nan,) * 4


def _bounds(frames: list[pd.DataFrame]) -> tuple[float, float, float, float]:
    """The extent of all features of these layers (a unit box at 0, 0 when there are none)."""
    boxes = np.array([f.total_bounds for f in frames if len(f)])
    if len(boxes) == 0:
        return (0.0, 0.0, 1.0, 1.0)
    return (boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max())


def _microgrids(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Parks, plus buildings outside every park, as one level sorted by id."""
    import pandas as pd

    parks = tables["parks"].assign(kind="park")
    buildings = tables["buildings"]
    loose = buildings[buildings["park_id"].fillna("") == ""].assign(kind="building")
    cols = ["id", "name", "code", "kind", "grid_id", "geometry"]
    both = pd.concat([parks[cols], loose[cols]], ignore_index=True)
    return both.sort_values("id", kind="stable").reset_index(drop=True)


def _positions(ids: pd.Series, keys: pd.Series) -> NDArray[np.int64]:
    """Position of each key in ``ids`` (NONE where absent)."""
    import pandas as pd

    pos = pd.Index(ids).get_indexer(keys.fillna(""))
    return pos.astype(np.int64)


def _projected(crs: str) -> bool:
    kind = crs_mod.normalize_crs(crs)
    if not kind.startswith("EPSG:"):
        return False  # wgs84, cgcs2000, gcj02, bd09: degrees (and no pyproj to import)
    from pyproj import CRS

    return not CRS.from_user_input(kind).is_geographic


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


def keep_out_of_collector(freeze: bool = True) -> None:
    """Collect young objects less often (a server's requests make garbage that reference
    counting frees anyway) and, with ``freeze``, keep every object alive now (an atlas is
    millions of long-lived objects) out of the cyclic garbage collector's scans: a full
    collection over an atlas takes tenths of a second, in the middle of whichever request
    triggers it."""
    gc.set_threshold(20_000, 20, 20)
    if freeze:
        gc.collect()
        gc.freeze()
