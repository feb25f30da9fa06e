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

NONE = -1  # no owner
_EXACT = -2  # raster marker: a boundary touches this cell, test the point exactly
_MIXED = -2  # in a combined row: a cell that needs an exact test at some level
_MAX_CELLS = 1 << 23  # ~8 M cells (32 MB of int32) per level
_CELL_DEG = 0.00008  # ~8 m in latitude; coarser when the extent needs more than _MAX_CELLS
_MARGIN = 0.02  # a frame reaches this share of the data's extent beyond it on every side

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Frame:
    """A grid of cells over an extent; levels that share a frame share their cell lookups.

    Examples
    --------
    >>> frame = Frame(x0=0.0, y0=0.0, dx=1.0, dy=1.0, nx=4, ny=3)
    >>> frame.cells_of(np.array([0.5, 3.5, 9.0]), np.array([0.5, 2.5, 0.0]))  # 9.0: outside
    array([ 0, 11, 12])
    """

    x0: float
    y0: float
    dx: float
    dy: float
    nx: int
    ny: int

    @classmethod
    def covering(cls, bounds: tuple[float, float, float, float]) -> Frame:
        """Cells of about `_CELL_DEG` (coarser if needed) over ``bounds`` grown by `_MARGIN`
        of their size (at least one cell), so that edits near the edge keep the frame."""
        minx, miny, maxx, maxy = bounds
        grow = _MARGIN * max(maxx - minx, maxy - miny)
        minx, miny, maxx, maxy = minx - grow, miny - grow, maxx + grow, maxy + grow
        d = _CELL_DEG
        needed = ((maxx - minx) / d + 4) * ((maxy - miny) / d + 4)
        if needed > _MAX_CELLS:
            d *= float(np.sqrt(needed / _MAX_CELLS))
        nx = int(np.ceil((maxx - minx) / d)) + 3
        ny = int(np.ceil((maxy - miny) / d)) + 3
        return cls(minx - d, miny - d, d, d, nx, ny)

    def holds(self, bounds: tuple[float, float, float, float]) -> bool:
        """Whether ``bounds`` lie inside the frame with at least one cell of margin (so this
        frame serves data of that extent as well as `covering` would)."""
        minx, miny, maxx, maxy = bounds
        return (
            minx >= self.x0 + self.dx
            and miny >= self.y0 + self.dy
            and maxx <= self.x0 + (self.nx - 1) * self.dx
            and maxy <= self.y0 + (self.ny - 1) * self.dy
        )

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
        """The centre (x, y) of each cell of the flat indices ``flat``.

        Examples
        --------
        >>> Frame(x0=0.0, y0=0.0, dx=1.0, dy=1.0, nx=4, ny=3).centres(np.array([0, 11]))
        (array([0.5, 3.5]), array([0.5, 2.5]))
        """
        rows, cols = np.divmod(flat, self.nx)
        return self.x0 + (cols + 0.5) * self.dx, self.y0 + (rows + 0.5) * self.dy


@dataclass(frozen=True)
class Window:
    """The cells in rows ``r0:r1`` and columns ``c0:c1`` of a frame."""

    r0: int
    r1: int
    c0: int
    c1: int

    @classmethod
    def whole(cls, frame: Frame) -> Window:
        """Every cell of ``frame``."""
        return cls(0, frame.ny, 0, frame.nx)

    @classmethod
    def around(cls, frame: Frame, bounds: FloatArray, pad: int = 2) -> Window:
        """The cells within ``pad`` cells of ``bounds`` (minx, miny, maxx, maxy)."""
        c0 = int(np.floor((bounds[0] - frame.x0) / frame.dx)) - pad
        c1 = int(np.floor((bounds[2] - frame.x0) / frame.dx)) + pad + 1
        r0 = int(np.floor((bounds[1] - frame.y0) / frame.dy)) - pad
        r1 = int(np.floor((bounds[3] - frame.y0) / frame.dy)) + pad + 1
        return cls(max(r0, 0), min(r1, frame.ny), max(c0, 0), min(c1, frame.nx))

    def union(self, other: Window) -> Window:
        """The smallest window holding both.

        Examples
        --------
        >>> Window(0, 2, 1, 3).union(Window(1, 3, 0, 1))
        Window(r0=0, r1=3, c0=0, c1=3)
        """
        return Window(
            min(self.r0, other.r0), max(self.r1, other.r1),
            min(self.c0, other.c0), max(self.c1, other.c1),
        )  # fmt: skip

    def grown(self, frame: Frame, by: int) -> Window:
        """This window grown by ``by`` cells on every side, within ``frame``."""
        return Window(
            max(self.r0 - by, 0), min(self.r1 + by, frame.ny),
            max(self.c0 - by, 0), min(self.c1 + by, frame.nx),
        )  # fmt: skip

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return (self.r1 - self.r0, self.c1 - self.c0)

    def flat(self, frame: Frame) -> IntArray:
        """The frame's flat index of every cell of the window, row by row."""
        rows = np.arange(self.r0, self.r1, dtype=np.int64)
        cols = np.arange(self.c0, self.c1, dtype=np.int64)
        return (rows[:, None] * frame.nx + cols[None, :]).ravel()


class PolygonIndex:
    """Polygons of one level, sorted by id, ready to answer "who owns these points".

    Parameters
    ----------
    geoms : array_like of shapely polygons
        Sorted by id: on a shared boundary the smaller index wins.
    parent : array_like of int, optional
        For a constrained level, the index of each polygon's parent in the parent level.
    frame : Frame, optional
        The cells of the shortcut raster (default: `Frame.covering` the polygons).

    Examples
    --------
    Two squares sharing an edge; the second point lies on that edge:

    >>> from shapely import box
    >>> index = PolygonIndex([box(0, 0, 0.01, 0.01), box(0.01, 0, 0.02, 0.01)])
    >>> index.owners([0.005, 0.01, 0.015, 1.0], [0.005, 0.005, 0.005, 1.0])
    array([ 0,  0,  1, -1])
    """

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
        self.window = None if frame is None else Window.whole(frame)  # the cells last rastered
        self.shortcuts = _shortcuts(self, frame) if frame is not None and len(self.geoms) else None

    @classmethod
    def from_parts(
        cls,
        geoms: NDArray[np.object_],
        parent: IntArray | None,
        frame: Frame,
        shortcuts: Shortcuts | None,
    ) -> PolygonIndex:
        """The index of ``geoms`` with the ``shortcuts`` an index built on ``frame`` computed
        (`geo.ready` keeps them on disk): the raster is not computed again."""
        index = object.__new__(cls)
        index.geoms = np.asarray(geoms, dtype=object)
        index.parent = None if parent is None else np.asarray(parent, dtype=np.int64)
        shapely.prepare(index.geoms)
        index.tree = shapely.STRtree(index.geoms)
        index.frame = frame
        index.window = Window.whole(frame)
        index.shortcuts = shortcuts if len(index.geoms) else None
        return index

    def __len__(self) -> int:
        return len(self.geoms)

    def changed(self, geoms: NDArray[np.object_], parent: IntArray | None) -> NDArray[np.bool_]:
        """Which of ``geoms`` differ from this index's polygon at the same position; None when
        the two cannot be compared so (another count of polygons, other parents)."""
        if len(geoms) != len(self.geoms) or (parent is None) != (self.parent is None):
            return None
        if parent is not None and not np.array_equal(parent, self.parent):
            return None
        return shapely.to_wkb(geoms) != shapely.to_wkb(self.geoms)

    def updated(self, geoms: NDArray[np.object_], changed: NDArray[np.bool_]) -> PolygonIndex:
        """This index for ``geoms``, which differ from its polygons only where ``changed``:
        only the cells around the changed polygons (old and new shape) are rasterised again;
        the index answers exactly as one built afresh. ``window`` holds those cells."""
        if self.frame is None or self.shortcuts is None or not changed.any():
            return PolygonIndex(geoms, self.parent, self.frame)
        new = object.__new__(PolygonIndex)
        new.geoms = np.asarray(geoms, dtype=object)
        new.parent = self.parent
        shapely.prepare(new.geoms)
        new.tree = shapely.STRtree(new.geoms)
        new.frame = self.frame
        moved = np.concatenate([self.geoms[changed], new.geoms[changed]])
        new.window = Window.around(self.frame, shapely.total_bounds(moved))
        new.shortcuts = self.shortcuts.patched(self.frame, new.window, *_raster(new, new.window))
        return new

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

    def owner_of(self, x: float, y: float, flat: int, parent_owner: int | None = None) -> int:
        """`owners` for one point (in cell ``flat``), with scalars instead of arrays: numpy's
        per-call overhead would cost more than the lookup itself."""
        if self.shortcuts is None:
            return NONE
        constrained = parent_owner is not None and self.parent is not None
        if constrained and parent_owner == NONE:
            return NONE
        code = int(self.shortcuts.cells[flat])
        if code > _EXACT:  # an owner, or NONE
            if code >= 0 and constrained and self.parent[code] != parent_owner:
                hits = self.tree.query(shapely.Point(x, y), predicate="intersects")
                return self._pick(hits, x, y, parent_owner)
            return code
        slot = _EXACT - code
        start = self.shortcuts.cand_start[slot]
        hits = self.shortcuts.cand[start : start + self.shortcuts.cand_count[slot]]
        return self._pick(hits, x, y, parent_owner)

    def _pick(self, gi: IntArray, x: float, y: float, parent_owner: int | None) -> int:
        """The rule for one point among candidate polygons ``gi``: interior, then smallest."""
        if parent_owner is not None and self.parent is not None:
            gi = gi[self.parent[gi] == parent_owner]
        covered = shapely.intersects_xy(self.geoms[gi], x, y)
        gi = gi[covered]
        if len(gi) == 0:
            return NONE
        inside = gi[shapely.contains_xy(self.geoms[gi], x, y)]
        return int(inside.min() if len(inside) else gi.min())

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
        """The ownership rule by GEOS predicates alone (the shortcuts' ground truth).

        Examples
        --------
        >>> from shapely import box
        >>> index = PolygonIndex([box(0, 0, 0.01, 0.01), box(0.01, 0, 0.02, 0.01)])
        >>> index.exact_owners(np.array([0.01, 0.015]), np.array([0.005, 0.005]))
        array([0, 1])
        """
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

    def patched(
        self, frame: Frame, window: Window, codes: NDArray[np.int32], cand: IntArray,
        counts: IntArray,
    ) -> Shortcuts:  # fmt: skip
        """These shortcuts with the cells of ``window`` replaced by `_raster`'s answer (its
        boundary-cell slots appended after the existing ones)."""
        base = len(self.cand_count)
        codes = np.where(codes <= _EXACT, codes - base, codes).astype(np.int32)
        cells = self.cells.copy()
        cells[window.flat(frame)] = codes
        patched = Shortcuts(
            cells,
            np.concatenate([self.cand, cand]),
            np.concatenate([self.cand_start, len(self.cand) + np.cumsum(counts) - counts]),
            np.concatenate([self.cand_count, counts]),
        )
        live = np.flatnonzero(cells <= _EXACT)
        return patched._compacted(live) if base + len(counts) > 2 * len(live) + 1024 else patched

    def _compacted(self, live: IntArray) -> Shortcuts:
        """The same answers with only the slots that ``live`` (the boundary cells) use, so
        slots left behind by many patches do not pile up."""
        slots = _EXACT - self.cells[live].astype(np.int64)
        counts = self.cand_count[slots]
        starts = np.cumsum(counts) - counts
        offsets = np.arange(int(counts.sum())) - np.repeat(starts, counts)
        cand = self.cand[np.repeat(self.cand_start[slots], counts) + offsets]
        cells = self.cells.copy()
        cells[live] = _EXACT - np.arange(len(live), dtype=np.int32)
        return Shortcuts(cells, cand, starts, counts)


def _shortcuts(index: PolygonIndex, frame: Frame) -> Shortcuts:
    """Mark cells touched by boundaries; give every other cell its region's owner."""
    codes, cand, counts = _raster(index, Window.whole(frame))
    cells = np.append(codes, np.int32(NONE))  # the last cell: outside the frame
    return Shortcuts(cells, cand, np.cumsum(counts) - counts, counts)


def _raster(index: PolygonIndex, window: Window) -> tuple[NDArray[np.int32], IntArray, IntArray]:
    """The shortcut codes of the cells of ``window`` (row by row) — an owner, NONE, or
    ``_EXACT - k`` for its k-th boundary cell — and the CSR candidates of those k cells."""
    from scipy import ndimage  # here: a ready atlas (geo.ready) never rasters, nor imports it

    frame = index.frame
    assert frame is not None
    # Boundary vertices at most half a cell apart: a segment then touches only cells within
    # one cell of a vertex's cell, so dilating the vertex cells by one covers every segment.
    # The vertices are gathered one cell beyond the window, so its edge cells dilate right too.
    outer = window.grown(frame, 1)
    geoms = index.geoms
    if outer != Window.whole(frame):
        x0, y0 = frame.x0 + outer.c0 * frame.dx, frame.y0 + outer.r0 * frame.dy
        area = shapely.box(
            x0, y0, x0 + (outer.c1 - outer.c0) * frame.dx, y0 + (outer.r1 - outer.r0) * frame.dy
        )
        geoms = geoms[index.tree.query(area, predicate="intersects")]
    edges = shapely.segmentize(shapely.boundary(geoms), min(frame.dx, frame.dy) / 2)
    coords = shapely.get_coordinates(edges)
    rows, cols = np.divmod(frame.cells_of(coords[:, 0], coords[:, 1]), frame.nx)  # as locate
    keep = (rows >= outer.r0) & (rows < outer.r1) & (cols >= outer.c0) & (cols < outer.c1)
    touched = np.zeros(outer.shape, dtype=bool)
    touched[rows[keep] - outer.r0, cols[keep] - outer.c0] = True
    touched = ndimage.binary_dilation(touched, structure=np.ones((3, 3), dtype=bool))
    top, left = window.r0 - outer.r0, window.c0 - outer.c0
    touched = touched[top : top + window.shape[0], left : left + window.shape[1]]
    flat = window.flat(frame)

    # A 4-connected region of untouched cells crosses no boundary: one owner for all of it.
    labels, count = ndimage.label(~touched)
    some_cell = np.empty(count + 1, dtype=np.int64)  # any one cell of each region (label > 0)
    some_cell[labels.ravel()] = np.arange(labels.size)
    region_owner = np.full(count + 1, _EXACT, dtype=np.int32)
    region_owner[1:] = index.exact_owners(*frame.centres(flat[some_cell[1:]]))
    codes = region_owner[labels.ravel()]

    # Boundary cells keep the polygons that touch them: code _EXACT - k, k into a CSR list.
    edge = np.flatnonzero(touched.ravel())
    codes[edge] = _EXACT - np.arange(len(edge), dtype=np.int32)
    cx, cy = frame.centres(flat[edge])
    half_x, half_y = frame.dx / 2, frame.dy / 2
    boxes = shapely.box(cx - half_x, cy - half_y, cx + half_x, cy + half_y)
    box_i, geom_i = index.tree.query(boxes, predicate="intersects")
    order = np.lexsort((geom_i, box_i))
    return codes, geom_i[order], np.bincount(box_i, minlength=len(edge))


class Hierarchy:
    """Levels on one frame, each optionally constrained by an earlier level, answered together.

    Every cell that no boundary of any level touches maps to one row of a table holding the
    owner at every level; only points in the other cells go through the levels one by one.

    Examples
    --------
    A community of two grids (the grids constrained by the community level):

    >>> from shapely import box
    >>> communities = PolygonIndex([box(0, 0, 0.02, 0.01)])
    >>> grids = PolygonIndex(
    ...     [box(0, 0, 0.01, 0.01), box(0.01, 0, 0.02, 0.01)],
    ...     parent=np.array([0, 0]),
    ...     frame=communities.frame,
    ... )
    >>> levels = Hierarchy(communities.frame, [(communities, None), (grids, 0)])
    >>> levels.owners([0.005, 0.015, 0.5], [0.005, 0.005, 0.5])
    [array([ 0,  0, -1]), array([ 0,  1, -1])]
    >>> levels.owner_of(0.01, 0.005)  # on the grids' shared edge: the smaller index
    [0, 0]
    """

    def __init__(self, frame: Frame, levels: list[tuple[PolygonIndex, int | None]]) -> None:
        self.frame = frame
        self.levels = levels  # (index, position of its parent level or None)
        self.combo, self.table = _combine(frame, levels)
        self.mixed_row = len(self.table[0]) - 1

    @classmethod
    def from_parts(
        cls,
        frame: Frame,
        levels: list[tuple[PolygonIndex, int | None]],
        combo: NDArray[np.int32],
        table: list[IntArray],
    ) -> Hierarchy:
        """The hierarchy whose combined cells (`_combine`) were computed before (`geo.ready`)."""
        new = object.__new__(cls)
        new.frame, new.levels, new.combo, new.table = frame, levels, combo, table
        new.mixed_row = len(table[0]) - 1
        return new

    def updated(self, levels: list[tuple[PolygonIndex, int | None]], window: Window) -> Hierarchy:
        """This hierarchy for ``levels`` whose shortcuts differ from its own only inside
        ``window``: only those cells are combined again (new rows appended to the table)."""
        new = object.__new__(Hierarchy)
        new.frame, new.levels, new.mixed_row = self.frame, levels, self.mixed_row
        flat = window.flat(self.frame)
        effective, mixed = _effective(levels, flat, self.frame)
        inverse, unique = _distinct_rows(levels, effective, mixed)
        table_rows = np.stack(self.table, axis=1).tolist()
        known = {tuple(r): i for i, r in enumerate(table_rows) if i != self.mixed_row}
        known[(_MIXED,) * len(levels)] = self.mixed_row
        added: list[list[int]] = []
        code = np.empty(len(unique), dtype=np.int64)
        for i, key in enumerate(map(tuple, unique.tolist())):  # distinct rows: a few hundred
            if key not in known:
                known[key] = len(table_rows) + len(added)
                added.append(list(key))
            code[i] = known[key]
        new.combo = self.combo.copy()
        new.combo[flat] = code[inverse]
        new.table = [
            np.concatenate([column, np.array([a[j] for a in added], dtype=np.int64)])
            for j, column in enumerate(self.table)
        ]
        return new

    def owner_of(self, x: float, y: float) -> list[int]:
        """`owners` of one point, with scalars (the API's single-point hot path)."""
        f = self.frame
        fx = (x - f.x0) * (1.0 / f.dx)
        fy = (y - f.y0) * (1.0 / f.dy)
        inside = 0 <= fx < f.nx and 0 <= fy < f.ny  # NaN: False
        flat = int(fy) * f.nx + int(fx) if inside else f.outside
        row = int(self.combo[flat])
        if row != self.mixed_row:
            return [int(column[row]) for column in self.table]
        out: list[int] = []
        for index, parent in self.levels:
            out.append(index.owner_of(x, y, flat, None if parent is None else out[parent]))
        return out

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


def _effective(
    levels: list[tuple[PolygonIndex, int | None]], cells: IntArray | None, frame: Frame
) -> tuple[list[IntArray], NDArray[np.bool_]]:
    """Per level, the owner of each of ``cells`` (None: every cell and the outside one) with
    its parent constraint applied, NONE where an exact test is needed; and the cells that need
    one at some level."""
    n = frame.outside + 1 if cells is None else len(cells)
    effective: list[IntArray] = []
    mixed = np.zeros(n, dtype=bool)
    for index, parent in levels:
        if index.shortcuts is None:
            value = np.full(n, NONE, dtype=np.int64)
        else:
            codes = index.shortcuts.cells
            value = (codes if cells is None else codes[cells]).astype(np.int64)
        mixed |= value <= _EXACT
        if parent is not None and index.parent is not None:
            up = effective[parent]
            value = np.where(up == NONE, NONE, value)
            hit = np.flatnonzero(value >= 0)  # none when the level is empty
            mixed[hit] |= index.parent[value[hit]] != up[hit]
        effective.append(np.where(value <= _EXACT, NONE, value))
    return effective, mixed


def _distinct_rows(
    levels: list[tuple[PolygonIndex, int | None]],
    effective: list[IntArray],
    mixed: NDArray[np.bool_],
) -> tuple[IntArray, IntArray]:
    """The distinct rows of owners (one column per level; `_MIXED` everywhere for mixed cells)
    and each cell's row among them."""
    import pandas as pd  # here: a ready atlas (geo.ready) never combines, nor imports it

    radix = [len(index) + 1 for index, _ in levels]
    if float(np.prod(radix, dtype=np.float64)) < 2**62:  # one integer per row: hash them
        key = np.zeros(len(mixed), dtype=np.int64)
        for value, r in zip(effective, radix, strict=True):
            key = key * r + (value + 1)
        key[mixed] = -1
        inverse, keys = pd.factorize(key)  # linear time, unlike np.unique's sort
        unique = np.empty((len(keys), len(levels)), dtype=np.int64)
        rest = keys.copy()
        for i in reversed(range(len(levels))):
            unique[:, i] = rest % radix[i] - 1
            rest //= radix[i]
        unique[keys == -1] = _MIXED
        return inverse.astype(np.int64), unique
    rows = np.stack(effective, axis=1)  # too many polygons for one integer key
    rows[mixed] = _MIXED
    unique, inverse = np.unique(rows, axis=0, return_inverse=True)
    return inverse.ravel().astype(np.int64), unique


def _combine(
    frame: Frame, levels: list[tuple[PolygonIndex, int | None]]
) -> tuple[NDArray[np.int32], list[IntArray]]:
    """Per cell, a row of owners at every level; cells needing an exact test share the last row."""
    effective, mixed = _effective(levels, None, frame)
    combo, unique = _distinct_rows(levels, effective, mixed)
    table = [unique[:, i].copy() for i in range(len(levels))]
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
