"""The ownership rule on interiors, shared edges, vertices, holes and multipolygons.

The raster shortcut must give exactly the answers of the plain GEOS rule, for every point.
"""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon, box

from geo.ownership import NONE, Frame, Hierarchy, PolygonIndex

X0, Y0, SIZE = 120.15, 30.18, 0.02


def voronoi_tiling(seed: int, n: int) -> np.ndarray:
    """A random exact tiling of the box: Voronoi cells of random sites, clipped."""
    rng = np.random.default_rng(seed)
    sites = shapely.multipoints(rng.uniform([X0, Y0], [X0 + SIZE, Y0 + SIZE], size=(n, 2)))
    frame = box(X0, Y0, X0 + SIZE, Y0 + SIZE)
    cells = shapely.get_parts(shapely.voronoi_polygons(sites, extend_to=frame))
    return shapely.intersection(cells, frame)


def nested_tiling(
    seed: int, n_parents: int, n_children: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parents tiling the box, and children (a second tiling cut by the parents) with the
    position of each child's parent."""
    parents = (
        voronoi_tiling(seed, n_parents)
        if n_parents > 1
        else np.array([box(X0, Y0, X0 + SIZE, Y0 + SIZE)])
    )
    pieces = shapely.intersection(voronoi_tiling(seed + 7, n_children)[:, None], parents[None, :])
    child_of, parent_of = np.nonzero(~shapely.is_empty(pieces) & (shapely.area(pieces) > 0))
    return parents, pieces[child_of, parent_of], parent_of


def reference_owner(geoms: np.ndarray, x: float, y: float) -> int:
    """The rule written out plainly: interior first, else the smallest covering index."""
    pt = shapely.Point(x, y)
    inside = [i for i, g in enumerate(geoms) if g.contains(pt)]
    if inside:
        return min(inside)
    covering = [i for i, g in enumerate(geoms) if g.intersects(pt)]
    return min(covering) if covering else NONE


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 40))
def test_every_point_of_a_tiling_has_exactly_one_owner(seed: int, n: int) -> None:
    geoms = voronoi_tiling(seed, n)
    index = PolygonIndex(geoms)
    rng = np.random.default_rng(seed + 1)
    x = rng.uniform(X0, X0 + SIZE, 20_000)
    y = rng.uniform(Y0, Y0 + SIZE, 20_000)
    owners = index.owners(x, y)
    assert (owners != NONE).all()
    assert shapely.intersects_xy(geoms[owners], x, y).all()
    np.testing.assert_array_equal(owners, index.exact_owners(x, y))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 30))
def test_vertices_and_edges_go_to_the_smallest_covering_id(seed: int, n: int) -> None:
    geoms = voronoi_tiling(seed, n)
    index = PolygonIndex(geoms)
    coords = shapely.get_coordinates(geoms)
    x, y = coords[:, 0], coords[:, 1]
    owners = index.owners(x, y)
    expected = [reference_owner(geoms, a, b) for a, b in zip(x[:200], y[:200], strict=False)]
    np.testing.assert_array_equal(owners[:200], expected)
    np.testing.assert_array_equal(owners, index.exact_owners(x, y))


def test_shared_edge_and_vertex() -> None:
    geoms = np.array([box(0, 0, 1, 1), box(1, 0, 2, 1), box(0, 1, 2, 2)])
    index = PolygonIndex(geoms)
    x = np.array([0.5, 1.0, 1.0, 1.5, 1.5, 2.0, 3.0])
    y = np.array([0.5, 0.5, 1.0, 0.5, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(index.owners(x, y), [0, 0, 0, 1, 1, 2, NONE])


def test_holes_and_the_polygon_that_fills_them() -> None:
    ring = Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (3, 1), (3, 3), (1, 3)]])
    geoms = np.array([box(1, 1, 3, 3), ring])  # the filler has the smaller id
    index = PolygonIndex(geoms)
    x = np.array([2.0, 0.5, 1.0, 2.0])
    y = np.array([2.0, 0.5, 2.0, 3.0])
    np.testing.assert_array_equal(index.owners(x, y), [0, 1, 0, 0])
    lone = PolygonIndex(np.array([ring]))
    np.testing.assert_array_equal(lone.owners(x, y), [NONE, 0, 0, 0])


def test_multipolygon_owns_points_in_each_part() -> None:
    parts = MultiPolygon([box(0, 0, 1, 1), box(5, 5, 6, 6)])
    index = PolygonIndex(np.array([parts, box(1, 0, 5, 1)]))
    x = np.array([0.5, 5.5, 3.0, 3.0])
    y = np.array([0.5, 5.5, 0.5, 3.0])
    np.testing.assert_array_equal(index.owners(x, y), [0, 0, 1, NONE])


def test_parent_constraint_keeps_children_inside_their_parent() -> None:
    # Two communities share x = 1; grid ids are ordered so that without the constraint the
    # right-hand community's grid (index 0) would win on the shared edge.
    communities = PolygonIndex(np.array([box(0, 0, 1, 1), box(1, 0, 2, 1)]))
    grids = PolygonIndex(np.array([box(1, 0, 2, 1), box(0, 0, 1, 1)]), parent=np.array([1, 0]))
    x = np.array([1.0, 0.5, 1.5, 3.0])
    y = np.array([0.5, 0.5, 0.5, 0.5])
    parent = communities.owners(x, y)
    np.testing.assert_array_equal(parent, [0, 0, 1, NONE])
    np.testing.assert_array_equal(grids.owners(x, y, parent), [1, 1, 0, NONE])
    np.testing.assert_array_equal(grids.exact_owners(x, y, parent), [1, 1, 0, NONE])


def test_nan_and_far_points_have_no_owner() -> None:
    index = PolygonIndex(np.array([box(0, 0, 1, 1)]))
    x = np.array([np.nan, 0.5, np.inf, -1e9])
    y = np.array([0.5, np.nan, 0.5, 0.5])
    np.testing.assert_array_equal(index.owners(x, y), [NONE] * 4)


def test_overlapping_polygons_give_the_smallest_id() -> None:
    index = PolygonIndex(np.array([box(0, 0, 2, 2), box(1, 1, 3, 3)]))
    x = np.array([1.5, 2.5])
    y = np.array([1.5, 2.5])
    np.testing.assert_array_equal(index.owners(x, y), [0, 1])


def test_empty_level() -> None:
    index = PolygonIndex(np.array([], dtype=object))
    assert index.owners(np.array([1.0]), np.array([1.0])).tolist() == [NONE]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), n_parents=st.integers(1, 8), n_children=st.integers(2, 40))
def test_hierarchy_equals_the_rule_level_by_level(
    seed: int, n_parents: int, n_children: int
) -> None:
    """Children tile their parents; the one-lookup path equals the exact rule at every level."""
    parents, children, parent_of = nested_tiling(seed, n_parents, n_children)
    frame = Frame.covering(tuple(shapely.total_bounds(parents)))
    top = PolygonIndex(parents, frame=frame)
    low = PolygonIndex(children, parent=parent_of, frame=frame)
    hierarchy = Hierarchy(frame, [(top, None), (low, 0)])

    rng = np.random.default_rng(seed)
    x = rng.uniform(X0 - 0.001, X0 + SIZE + 0.001, 20_000)
    y = rng.uniform(Y0 - 0.001, Y0 + SIZE + 0.001, 20_000)
    verts = shapely.get_coordinates(children)
    x, y = np.concatenate([x, verts[:, 0]]), np.concatenate([y, verts[:, 1]])
    got_top, got_low = hierarchy.owners(x, y)
    want_top = top.exact_owners(x, y)
    np.testing.assert_array_equal(got_top, want_top)
    np.testing.assert_array_equal(got_low, low.exact_owners(x, y, want_top))
    inside = want_top != NONE
    assert (got_low[inside] != NONE).all()  # every point of a parent has exactly one child
    assert (parent_of[got_low[inside]] == want_top[inside]).all()


# 10 examples: each checks ~300,000 points (every cell centre of the frame among them) after up
# to three edits, against two fresh builds
@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_parents=st.integers(1, 6),
    n_children=st.integers(2, 30),
    level=st.sampled_from(["parent", "child"]),
    grow=st.floats(-0.003, 0.003),
    edits=st.integers(1, 3),
)
def test_an_updated_index_answers_as_one_built_afresh(
    seed: int, n_parents: int, n_children: int, level: str, grow: float, edits: int
) -> None:
    """Change polygons one edit after another (grown, shrunk, overlapping their neighbours,
    leaving gaps); the windowed update answers every point as a full rebuild does."""
    parents, children, parent_of = nested_tiling(seed, n_parents, n_children)
    frame = Frame.covering((X0 - 0.01, Y0 - 0.01, X0 + SIZE + 0.01, Y0 + SIZE + 0.01))
    top = PolygonIndex(parents, frame=frame)
    low = PolygonIndex(children, parent=parent_of, frame=frame)
    hierarchy = Hierarchy(frame, [(top, None), (low, 0)])
    rng = np.random.default_rng(seed)
    for _ in range(edits):
        geoms = (parents if level == "parent" else children).copy()
        i = int(rng.integers(len(geoms)))
        geoms[i] = shapely.buffer(geoms[i], grow * rng.uniform(0.2, 1), join_style="mitre")
        if geoms[i].is_empty:
            return
        index = top if level == "parent" else low
        changed = index.changed(geoms, index.parent)
        assert changed is not None and changed.sum() <= 1
        if not changed.any():  # buffered by (almost) nothing
            continue
        updated = index.updated(geoms, changed)
        if level == "parent":
            parents, top = geoms, updated
        else:
            children, low = geoms, updated
        hierarchy = hierarchy.updated([(top, None), (low, 0)], updated.window)

    fresh_top = PolygonIndex(parents, frame=frame)
    fresh_low = PolygonIndex(children, parent=parent_of, frame=frame)
    fresh = Hierarchy(frame, [(fresh_top, None), (fresh_low, 0)])
    x = rng.uniform(X0 - 0.005, X0 + SIZE + 0.005, 20_000)
    y = rng.uniform(Y0 - 0.005, Y0 + SIZE + 0.005, 20_000)
    verts = shapely.get_coordinates(np.concatenate([parents, children]))
    cx, cy = frame.centres(np.arange(frame.outside))
    x = np.concatenate([x, verts[:, 0], cx])
    y = np.concatenate([y, verts[:, 1], cy])
    np.testing.assert_array_equal(top.owners(x, y), fresh_top.owners(x, y))
    for got, want in zip(hierarchy.owners(x, y), fresh.owners(x, y), strict=True):
        np.testing.assert_array_equal(got, want)
    want_top = fresh_top.exact_owners(x, y)
    np.testing.assert_array_equal(hierarchy.owners(x, y)[0], want_top)
    np.testing.assert_array_equal(hierarchy.owners(x, y)[1], fresh_low.exact_owners(x, y, want_top))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), n_parents=st.integers(1, 6), n_children=st.integers(2, 30))
def test_one_point_answers_as_the_vectorised_path(
    seed: int, n_parents: int, n_children: int
) -> None:
    """`Hierarchy.owner_of` (scalars, for single-point requests) equals `owners`, also on
    edges, vertices, cell corners, outside the frame and for NaN."""
    parents, children, parent_of = nested_tiling(seed, n_parents, n_children)
    children[0] = shapely.buffer(children[0], 0.001)  # overlaps its neighbours and its parent
    frame = Frame.covering(tuple(shapely.total_bounds(parents)))
    top = PolygonIndex(parents, frame=frame)
    low = PolygonIndex(children, parent=parent_of, frame=frame)
    hierarchy = Hierarchy(frame, [(top, None), (low, 0)])
    rng = np.random.default_rng(seed)
    verts = shapely.get_coordinates(np.concatenate([parents, children]))
    corners_x = frame.x0 + rng.integers(0, frame.nx, 200) * frame.dx
    corners_y = frame.y0 + rng.integers(0, frame.ny, 200) * frame.dy
    x = np.concatenate([rng.uniform(X0 - 0.01, X0 + SIZE + 0.01, 2000), verts[:, 0], corners_x])
    y = np.concatenate([rng.uniform(Y0 - 0.01, Y0 + SIZE + 0.01, 2000), verts[:, 1], corners_y])
    x, y = np.append(x, [np.nan, 200.0]), np.append(y, [30.0, 100.0])
    want = np.stack(hierarchy.owners(x, y), axis=1)
    got = np.array([hierarchy.owner_of(float(a), float(b)) for a, b in zip(x, y, strict=True)])
    np.testing.assert_array_equal(got, want)


def test_many_updates_compact_their_slots_and_still_answer_as_a_fresh_index() -> None:
    geoms = voronoi_tiling(11, 12)
    frame = Frame.covering((X0 - 0.01, Y0 - 0.01, X0 + SIZE + 0.01, Y0 + SIZE + 0.01))
    index = PolygonIndex(geoms, frame=frame)
    rng = np.random.default_rng(5)
    for _ in range(40):
        i = int(rng.integers(len(geoms)))
        moved = geoms.copy()
        moved[i] = shapely.buffer(voronoi_tiling(11, 12)[i], rng.uniform(-0.002, 0.002))
        index, geoms = index.updated(moved, index.changed(moved, None)), moved
    live = int(np.count_nonzero(index.shortcuts.cells <= -2))
    assert len(index.shortcuts.cand_count) <= 2 * live + 1024  # left-behind slots dropped
    fresh = PolygonIndex(geoms, frame=frame)
    cx, cy = frame.centres(np.arange(frame.outside))
    x = np.concatenate([cx, rng.uniform(X0, X0 + SIZE, 20_000)])
    y = np.concatenate([cy, rng.uniform(Y0, Y0 + SIZE, 20_000)])
    np.testing.assert_array_equal(index.owners(x, y), fresh.owners(x, y))
