"""Properties of what a version build prepares for tiles: each feature's shape encoded once per
zoom (`geo.tiles.drawn`), the tile index (`geo.tiles.tile_index`) and the tags made at once.

For every input Hypothesis makes: a feature inside a tile encodes to the bytes the per-tile
encoder gives it there, wherever the tile is; the tile index holds what an R-tree query of
the clip box holds; the tags made with numpy are the ones made one by one.
"""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.tiles import tile_index
from geo.tiles.drawn import draw
from geo.tiles.encoding import grid
from geo.tiles.encoding_few import _tags_at_once, _tags_one_by_one, geometry_bytes
from geo.tiles.tile_math import BUFFER, EXTENT, HALF, tile_bounds

Z = 15
X0, Y0 = 27_360, 13_470  # a z15 tile over Hangzhou's Binjiang district


def _clip_box(x: int, y: int) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = tile_bounds(Z, x, y)
    pad = (maxx - minx) * BUFFER / EXTENT
    return (minx - pad, miny - pad, maxx + pad, maxy + pad)


unit = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def shapes_in_a_tile(draw_, kind: str):
    """A tile near the district and a few lines or polygons inside its clip box (some
    collapsing to nothing at this zoom: a few grid units across)."""
    x, y = X0 + draw_(st.integers(0, 3)), Y0 + draw_(st.integers(0, 3))
    minx, miny, maxx, maxy = _clip_box(x, y)
    scale = draw_(st.sampled_from([1e-4, 1e-2, 0.3]))  # of the box: tiny, small, large
    out = []
    for _ in range(draw_(st.integers(1, 6))):
        cx, cy = draw_(unit), draw_(unit)
        pts = [
            (
                minx + (cx + scale * (draw_(unit) - 0.5)) * (maxx - minx),
                miny + (cy + scale * (draw_(unit) - 0.5)) * (maxy - miny),
            )
            for _ in range(draw_(st.integers(2, 8)))
        ]
        geom = shapely.LineString(pts)
        if kind == "polygon":
            geom = shapely.convex_hull(geom.buffer(scale * (maxx - minx) * 0.05 + 0.01))
        out.append(shapely.clip_by_rect(geom, minx, miny, maxx, maxy))
    return x, y, np.array(out, dtype=object)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["line", "polygon"]).flatmap(
        lambda k: st.tuples(st.just(k), shapes_in_a_tile(k))
    )
)
def test_a_feature_inside_a_tile_encodes_as_drawn_at_the_zoom(case) -> None:
    kind, (x, y, shapes) = case
    drawn = draw(kind, shapes, Z, EXTENT)
    bounds = tile_bounds(Z, x, y)
    _, ox, oy = grid(bounds, EXTENT)
    at = list(range(len(shapes)))
    assert drawn.geometry(at, np.arange(len(shapes)), ox, oy) == geometry_bytes(
        kind, shapes, bounds, EXTENT
    )


def test_the_zoom_grid_is_the_tiles_corner() -> None:
    scale, ox, oy = grid(tile_bounds(Z, X0, Y0), EXTENT)
    assert (ox, oy) == (X0 * EXTENT, Y0 * EXTENT)
    assert scale == EXTENT * (1 << Z) / (2 * HALF)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(unit, unit, st.floats(0.0, 3.0), st.floats(0.0, 3.0)), min_size=1, max_size=40
    )
)
def test_the_tile_index_holds_what_the_rtree_holds(boxes) -> None:
    """Bounds of every size (a point, a tile, several), some on tile edges exactly."""
    size = 2 * HALF / (1 << Z)
    minx, _, _, maxy = tile_bounds(Z, X0, Y0)
    b = np.array(
        [
            (
                minx + round(4 * fx) / 4 * size,
                maxy - round(4 * fy) / 4 * size - h * size,
                minx + round(4 * fx) / 4 * size + w * size,
                maxy - round(4 * fy) / 4 * size,
            )
            for fx, fy, w, h in boxes
        ]
    )
    tree = shapely.STRtree(shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]))
    index = tile_index.build(b, Z, BUFFER, EXTENT)
    for x in range(X0 - 2, X0 + 6):
        for y in range(Y0 - 2, Y0 + 6):
            box = _clip_box(x, y)
            want = np.sort(tree.query(shapely.box(*box)))
            hit, whole = index.at(x, y)
            assert np.array_equal(hit, want)
            c = b[want]
            edge = (c[:, 0] < box[0]) | (c[:, 1] < box[1]) | (c[:, 2] > box[2]) | (c[:, 3] > box[3])
            assert np.array_equal(whole, ~edge)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 60).flatmap(
        lambda n: st.lists(
            st.lists(st.integers(-1, 400), min_size=3, max_size=3), min_size=n, max_size=n
        )
    )
)
def test_tags_made_at_once_are_those_made_one_by_one(rows) -> None:
    codes = np.array(rows, dtype=np.int64)
    used, tags = _tags_at_once(codes)
    want_used, want_tags = _tags_one_by_one(rows)
    assert used.tolist() == want_used
    assert tags == want_tags
