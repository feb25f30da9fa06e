"""Which polygon owns a point: the ownership rule, vectorised, with a shortcut raster.

The rule (DESIGN.md): a point belongs to the polygon whose interior holds it; a point exactly
on a boundary belongs to the covering polygon with the smallest id. Polygons are given sorted
by id, so "smallest id" is "smallest index". A level may be *constrained* by its parent level:
a grid owns a point only if the grid's community owns it too, so every point inside a
community is owned by exactly one of its grids, even on the community's own edge.

`PolygonIndex.owners` answers most points from a raster of cells (the idea of
timezonefinder's shortcuts): a cell that no polygon boundary touches lies wholly inside one
polygon's interior, or outside all, so every point in it has the same owner. Only points in
cells that a boundary touches go through the exact test (STRtree + GEOS predicates).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy import ndimage

NONE = -1  # no owner
_EXACT = -2  # raster marker: a boundary touches this cell, test the point exactly
_MAX_CELLS = 1 << 22  # ~4 M cells (16 MB of int32) per level
_CELL_DEG = 0.00008  # ~8 m in latitude; coarser when the extent needs more than _MAX_CELLS

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Raster:
    """A grid of cells over the layer's extent; each holds an owner index, NONE or _EXACT."""

    x0: float
    y0: float
    dx: float
    dy: float
    cells: NDArray[np.int32]  # shape (ny, nx)

    def cell_of(self, x: FloatArray, y: FloatArray) -> tuple[IntArray, IntArray, NDArray[np.bool_]]:
        """Column, row and an inside-the-raster mask for each point (NaN is outside)."""
        ny, nx = self.cells.shape
        fx = np.floor((x - self.x0) / self.dx)
        fy = np.floor((y - self.y0) / self.dy)
        inside = (fx >= 0) & (fx < nx) & (fy >= 0) & (fy < ny)
        col = np.where(inside, fx, 0).astype(np.int64)
        row = np.where(inside, fy, 0).astype(np.int64)
        return col, row, inside


class PolygonIndex:
    """Polygons of one level, sorted by id, ready to answer "who owns these points"."""

    def __init__(self, geoms: NDArray[np.object_], parent: IntArray | None = None) -> None:
        self.geoms = np.asarray(geoms, dtype=object)
        self.parent = None if parent is None else np.asarray(parent, dtype=np.int64)
        shapely.prepare(self.geoms)
        self.tree = shapely.STRtree(self.geoms)
        self.raster = _build_raster(self) if len(self.geoms) else None

    def __len__(self) -> int:
        return len(self.geoms)

    def owners(
        self, x: FloatArray, y: FloatArray, parent_owner: IntArray | None = None
    ) -> IntArray:
        """The owning polygon's index for each point, or NONE.

        ``parent_owner`` (for a constrained level) is the owner of each point in the parent
        level; a polygon owns a point only if its parent is that owner.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        out = np.full(x.shape, NONE, dtype=np.int64)
        if self.raster is None:
            return out
        col, row, inside = self.raster.cell_of(x, y)
        out[inside] = self.raster.cells[row[inside], col[inside]]
        exact = out == _EXACT
        if parent_owner is not None and self.parent is not None:
            orphan = parent_owner == NONE  # no parent owns it: no child can
            out[orphan] = NONE
            hit = out >= 0
            exact = (exact & ~orphan) | (hit & (self.parent[np.where(hit, out, 0)] != parent_owner))
        if exact.any():
            sub = None if parent_owner is None else parent_owner[exact]
            out[exact] = self.exact_owners(x[exact], y[exact], sub)
        return out

    def exact_owners(
        self, x: FloatArray, y: FloatArray, parent_owner: IntArray | None = None
    ) -> IntArray:
        """The ownership rule by GEOS predicates alone (the raster's ground truth)."""
        out = np.full(x.shape, NONE, dtype=np.int64)
        if len(x) == 0 or len(self.geoms) == 0:
            return out
        pts = shapely.points(x, y)
        pi, gi = self.tree.query(pts, predicate="intersects")
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


def _build_raster(index: PolygonIndex) -> Raster:
    """Mark cells touched by boundaries; give every other cell its region's owner."""
    minx, miny, maxx, maxy = shapely.total_bounds(index.geoms)
    dx = dy = _CELL_DEG
    cells_needed = ((maxx - minx) / dx + 3) * ((maxy - miny) / dy + 3)
    if cells_needed > _MAX_CELLS:
        dx = dy = _CELL_DEG * float(np.sqrt(cells_needed / _MAX_CELLS))
    x0, y0 = minx - dx, miny - dy  # one empty cell of margin on every side
    nx = int(np.ceil((maxx - x0) / dx)) + 2
    ny = int(np.ceil((maxy - y0) / dy)) + 2
    raster = Raster(x0, y0, dx, dy, np.zeros((ny, nx), dtype=np.int32))

    # Boundary vertices at most half a cell apart: a segment then touches only cells within
    # one cell of a vertex's cell, so dilating the vertex cells by one covers every segment.
    edges = shapely.segmentize(shapely.boundary(index.geoms), min(dx, dy) / 2)
    coords = shapely.get_coordinates(edges)
    col, row, inside = raster.cell_of(coords[:, 0], coords[:, 1])
    touched = np.zeros((ny, nx), dtype=bool)
    touched[row[inside], col[inside]] = True
    touched = ndimage.binary_dilation(touched, structure=np.ones((3, 3), dtype=bool))

    # A 4-connected region of untouched cells crosses no boundary: one owner for all of it.
    labels, count = ndimage.label(~touched)
    flat = labels.ravel()
    region, first = np.unique(flat, return_index=True)  # first cell of each region
    first = first[region > 0]
    rows, cols = np.divmod(first, nx)
    region_owner = np.full(count + 1, _EXACT, dtype=np.int32)
    region_owner[region[region > 0]] = index.exact_owners(
        x0 + (cols + 0.5) * dx, y0 + (rows + 0.5) * dy
    )
    raster.cells[:] = region_owner[labels]
    return raster
