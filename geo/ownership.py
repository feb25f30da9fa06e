"""Which polygon owns a point: the ownership rule, vectorised, with a shortcut raster.

The rule (DESIGN.md): a point belongs to the polygon whose interior holds it; a point exactly
on a boundary belongs to the covering polygon with the smallest id. Polygons are given sorted
by id, so "smallest id" is "smallest index". A level may be *constrained* by its parent level:
a grid owns a point only if the grid's community owns it too, so every point inside a
community is owned by exactly one of its grids, even on the community's own edge.

`PolygonIndex.owners` answers most points from a raster of cells (the idea of
timezonefinder's shortcuts): a cell that no polygon boundary touches lies wholly inside one
polygon's interior, or outside all, so every point in it has the same owner. Only points in
cells that a boundary touches are tested exactly, against the polygons that touch the cell.
`Hierarchy` stacks levels on one frame: a cell that no boundary of any level touches answers
every level with one lookup.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy import ndimage

NONE = -1  # no owner
_EXACT = -2  # raster marker: a boundary touches this cell, test the point exactly
_MAX_CELLS = 1 << 23  # ~8 M cells (32 MB of int32) per level
_CELL_DEG = 0.00008  # ~8 m in latitude; coarser when the extent needs more than _MAX_CELLS

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Frame:
    """A grid of cells over an extent; levels that share a frame share their cell lookups."""

    x0: float
    y0: float
    dx: float
    dy: float
    nx: int
    ny: int

    @classmethod
    def covering(cls, bounds: tuple[float, float, float, float]) -> Frame:
        """Cells of about `_CELL_DEG` (coarser if needed) with one cell of margin all round."""
        minx, miny, maxx, maxy = bounds
        d = _CELL_DEG
        needed = ((maxx - minx) / d + 4) * ((maxy - miny) / d + 4)
        if needed > _MAX_CELLS:
            d *= float(np.sqrt(needed / _MAX_CELLS))
        nx = int(np.ceil((maxx - minx) / d)) + 3
        ny = int(np.ceil((maxy - miny) / d)) + 3
        return cls(minx - d, miny - d, d, d, nx, ny)

    @property
    def outside(self) -> int:
        """The flat index given to points outside the frame (and NaN)."""
        return self.nx * self.ny

    def cells_of(self, x: FloatArray, y: FloatArray) -> IntArray:
        """Flat cell index (row * nx + col) of each point; `outside` where it falls outside."""
        fx = (x - self.x0) * (1.0 / self.dx)
        fy = (y - self.y0) * (1.0 / self.dy)
        inside = (fx >= 0) & (fx < self.nx) & (fy >= 0) & (fy < self.ny)  # NaN: False
        with np.errstate(invalid="ignore"):
            flat = fy.astype(np.int64) * self.nx + fx.astype(np.int64)
        return np.where(inside, flat, self.outside)

    def centres(self, flat: IntArray) -> tuple[FloatArray, FloatArray]:
        rows, cols = np.divmod(flat, self.nx)
        return self.x0 + (cols + 0.5) * self.dx, self.y0 + (rows + 0.5) * self.dy


class PolygonIndex:
    """Polygons of one level, sorted by id, ready to answer "who owns these points"."""

    def __init__(
        self, geoms: NDArray[np.object_], parent: IntArray | None = None, frame: Frame | None = None
    ) -> None:
        self.geoms = np.asarray(geoms, dtype=object)
        self.parent = None if parent is None else np.asarray(parent, dtype=np.int64)
        shapely.prepare(self.geoms)
        self.tree = shapely.STRtree(self.geoms)
        if frame is None and len(self.geoms):
            frame = Frame.covering(tuple(shapely.total_bounds(self.geoms)))
        self.frame = frame
        self.shortcuts = _shortcuts(self, frame) if frame is not None and len(self.geoms) else None

    def __len__(self) -> int:
        return len(self.geoms)

    def owners(
        self,
        x: FloatArray,
        y: FloatArray,
        parent_owner: IntArray | None = None,
        flat: IntArray | None = None,
    ) -> IntArray:
        """The owning polygon's index for each point, or NONE.

        ``parent_owner`` (for a constrained level) is the owner of each point in the parent
        level; a polygon owns a point only if its parent is that owner. ``flat`` are the points'
        cells in this index's frame, when the caller has computed them already.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if self.shortcuts is None or self.frame is None:
            return np.full(x.shape, NONE, dtype=np.int64)
        if flat is None:
            flat = self.frame.cells_of(x, y)
        out = self.shortcuts.cells[flat].astype(np.int64)
        near_edge = out <= _EXACT  # a boundary touches the cell: test its candidates
        mismatch = np.zeros(x.shape, dtype=bool)
        if parent_owner is not None and self.parent is not None:
            orphan = parent_owner == NONE  # no parent owns it: no child can
            out[orphan] = NONE
            near_edge &= ~orphan
            hit = out >= 0
            mismatch = hit & (self.parent[np.where(hit, out, 0)] != parent_owner)
        if near_edge.any():
            sub = None if parent_owner is None else parent_owner[near_edge]
            out[near_edge] = self._candidate_owners(x[near_edge], y[near_edge], sub, out[near_edge])
        if mismatch.any():
            sub = None if parent_owner is None else parent_owner[mismatch]
            out[mismatch] = self.exact_owners(x[mismatch], y[mismatch], sub)
        return out

    def _candidate_owners(
        self, x: FloatArray, y: FloatArray, parent_owner: IntArray | None, codes: IntArray
    ) -> IntArray:
        """The rule for points in boundary cells, against the polygons that touch each cell."""
        sc = self.shortcuts
        slots = _EXACT - codes
        counts = sc.cand_count[slots]
        pi = np.repeat(np.arange(len(x)), counts)
        offsets = np.arange(len(pi)) - np.repeat(np.cumsum(counts) - counts, counts)
        gi = sc.cand[np.repeat(sc.cand_start[slots], counts) + offsets]
        covered = shapely.intersects_xy(self.geoms[gi], x[pi], y[pi])
        return self._resolve(pi[covered], gi[covered], x, y, parent_owner)

    def exact_owners(
        self,
        x: FloatArray,
        y: FloatArray,
        parent_owner: IntArray | None = None,
    ) -> IntArray:
        """The ownership rule by GEOS predicates alone (the shortcuts' ground truth)."""
        if len(x) == 0 or len(self.geoms) == 0:
            return np.full(x.shape, NONE, dtype=np.int64)
        pi, gi = self.tree.query(shapely.points(x, y), predicate="intersects")
        return self._resolve(pi, gi, x, y, parent_owner)

    def _resolve(
        self,
        pi: IntArray,
        gi: IntArray,
        x: FloatArray,
        y: FloatArray,
        parent_owner: IntArray | None,
    ) -> IntArray:
        """Pick each point's owner among (point, covering polygon) pairs: interior, then id."""
        out = np.full(x.shape, NONE, dtype=np.int64)
        if parent_owner is not None and self.parent is not None:
            keep = self.parent[gi] == parent_owner[pi]
            pi, gi = pi[keep], gi[keep]
        if len(pi) == 0:
            return out
        on_boundary = ~shapely.contains_xy(self.geoms[gi], x[pi], y[pi])
        rank = on_boundary.astype(np.int64) * len(self.geoms) + gi
        order = np.lexsort((rank, pi))
        first = np.unique(pi[order], return_index=True)[1]
        out[pi[order][first]] = gi[order][first]
        return out


@dataclass(frozen=True)
class Shortcuts:
    """Per cell of a frame: an owner, NONE, or (boundary cells) a slot of candidate polygons."""

    cells: NDArray[np.int32]  # owner index | NONE | _EXACT - slot; last cell: outside the frame
    cand: IntArray  # candidate polygon indices, grouped by slot
    cand_start: IntArray  # per slot: first position in cand
    cand_count: IntArray  # per slot: number of candidates


def _shortcuts(index: PolygonIndex, frame: Frame) -> Shortcuts:
    """Mark cells touched by boundaries; give every other cell its region's owner."""
    # Boundary vertices at most half a cell apart: a segment then touches only cells within
    # one cell of a vertex's cell, so dilating the vertex cells by one covers every segment.
    edges = shapely.segmentize(shapely.boundary(index.geoms), min(frame.dx, frame.dy) / 2)
    coords = shapely.get_coordinates(edges)
    flat = frame.cells_of(coords[:, 0], coords[:, 1])
    touched = np.zeros(frame.outside + 1, dtype=bool)
    touched[flat] = True
    touched = touched[:-1].reshape(frame.ny, frame.nx)
    touched = ndimage.binary_dilation(touched, structure=np.ones((3, 3), dtype=bool))

    # A 4-connected region of untouched cells crosses no boundary: one owner for all of it.
    labels, count = ndimage.label(~touched)
    region, first = np.unique(labels.ravel(), return_index=True)  # first cell of each region
    first = first[region > 0]
    region_owner = np.full(count + 1, _EXACT, dtype=np.int32)
    region_owner[region[region > 0]] = index.exact_owners(*frame.centres(first))
    cells = np.empty(frame.outside + 1, dtype=np.int32)
    cells[:-1] = region_owner[labels.ravel()]
    cells[-1] = NONE

    # Boundary cells keep the polygons that touch them: code _EXACT - slot, slot into a CSR list.
    edge_cells = np.flatnonzero(touched.ravel())
    cells[edge_cells] = _EXACT - np.arange(len(edge_cells), dtype=np.int32)
    x0, y0 = frame.centres(edge_cells)
    half_x, half_y = frame.dx / 2, frame.dy / 2
    boxes = shapely.box(x0 - half_x, y0 - half_y, x0 + half_x, y0 + half_y)
    box_i, geom_i = index.tree.query(boxes, predicate="intersects")
    order = np.lexsort((geom_i, box_i))
    counts = np.bincount(box_i, minlength=len(edge_cells))
    return Shortcuts(cells, geom_i[order], np.cumsum(counts) - counts, counts)


class Hierarchy:
    """Levels on one frame, each optionally constrained by an earlier level, answered together.

    Every cell that no boundary of any level touches maps to one row of a table holding the
    owner at every level; only points in the other cells go through the levels one by one.
    """

    def __init__(self, frame: Frame, levels: list[tuple[PolygonIndex, int | None]]) -> None:
        self.frame = frame
        self.levels = levels  # (index, position of its parent level or None)
        self.combo, self.table = _combine(frame, levels)
        self.mixed_row = len(self.table[0]) - 1

    def owners(self, x: FloatArray, y: FloatArray) -> list[IntArray]:
        """Owner index per level for each point (NONE where none), in the order of the levels."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        flat = self.frame.cells_of(x, y)
        combo = self.combo[flat]
        out = [column[combo] for column in self.table]
        mixed = np.flatnonzero(combo == self.mixed_row)
        if len(mixed):
            xs, ys, fs = x[mixed], y[mixed], flat[mixed]
            sub: list[IntArray] = []
            for index, parent in self.levels:
                sub.append(index.owners(xs, ys, None if parent is None else sub[parent], fs))
            for column, values in zip(out, sub, strict=True):
                column[mixed] = values
        return out


def _combine(
    frame: Frame, levels: list[tuple[PolygonIndex, int | None]]
) -> tuple[NDArray[np.int32], list[IntArray]]:
    """Per cell, a row of owners at every level; cells needing an exact test share the last row."""
    n_cells = frame.outside + 1
    effective: list[IntArray] = []
    mixed = np.zeros(n_cells, dtype=bool)
    for index, parent in levels:
        if index.shortcuts is None:
            value = np.full(n_cells, NONE, dtype=np.int64)
        else:
            value = index.shortcuts.cells.astype(np.int64)
        mixed |= value <= _EXACT
        if parent is not None and index.parent is not None:
            up = effective[parent]
            value = np.where(up == NONE, NONE, value)
            hit = value >= 0
            mixed |= hit & (index.parent[np.where(hit, value, 0)] != up)
        effective.append(np.where(value <= _EXACT, NONE, value))
    radix = [len(index) + 1 for index, _ in levels]
    if float(np.prod(radix, dtype=np.float64)) < 2**62:
        key = np.zeros(n_cells, dtype=np.int64)
        for value, r in zip(effective, radix, strict=True):
            key = key * r + (value + 1)
        key[mixed] = -1
        unique, combo = np.unique(key, return_inverse=True)
        table = []
        for r in reversed(radix):
            table.append(unique % r - 1)
            unique = unique // r
        table.reverse()
    else:  # too many polygons for one integer key: compare rows instead
        rows = np.stack(effective, axis=1)
        rows[mixed] = -2
        unique_rows, combo = np.unique(rows, axis=0, return_inverse=True)
        table = [unique_rows[:, i].copy() for i in range(len(levels))]
    # the mixed row goes last, with NONE at every level (its cells are resolved per level);
    # without mixed cells an unused NONE row is appended so that the last row is never a hit
    k = len(table[0])
    if mixed.any():
        code = int(combo.ravel()[np.flatnonzero(mixed)[0]])
        order = np.r_[np.delete(np.arange(k), code), code]  # new row i is old row order[i]
        new_of_old = np.empty(k, dtype=np.int64)
        new_of_old[order] = np.arange(k)
        combo = new_of_old[combo.ravel()]
        table = [column[order] for column in table]
        for column in table:
            column[-1] = NONE
    else:
        table = [np.append(column, NONE) for column in table]
    return combo.astype(np.int32).ravel(), table
