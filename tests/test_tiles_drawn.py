"""Properties of what a version build prepares for tiles: each feature's shape encoded once per
zoom (`geo.tiles.drawn`), the tile index (`geo.tiles.tile_index`) and the tags made at once.

For every input Hypothesis makes: a feature inside a tile encodes to the bytes the per-tile
encoder gives it there, wherever the tile is; the tile index holds what an R-tree query of
the clip box holds; the compiled encoder gives the vectorised one's bytes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.tiles import tile_index
from geo.tiles.attributes import build_attributes
from geo.tiles.drawn import draw
from geo.tiles.encoding import encode_layer, grid
from geo.tiles.encoding_small import Geometry, encode_layer_small, geometry
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
    n = len(shapes)
    none: Geometry = (np.zeros(0, np.uint8), np.zeros((0, 2), np.int64))
    inside = drawn.geometry(np.arange(n), np.ones(n, dtype=bool), ox, oy, none)
    assert _per_feature(inside) == _per_feature(geometry(kind, shapes, bounds, EXTENT))


def _per_feature(g: Geometry) -> list[bytes]:
    buf, span = g
    return [buf[a:b].tobytes() for a, b in span.tolist()]


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


def _with_holes(geom):
    """A polygon with a hole where it is wide enough (a ring the encoder winds the other way)."""
    hole = geom.centroid.buffer(0.3 * np.sqrt(geom.area / np.pi))
    return geom.difference(hole) if hole.within(geom) else geom


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(["point", "line", "polygon"]).flatmap(
        lambda k: st.tuples(st.just(k), shapes_in_a_tile("line" if k == "point" else k))
    ),
    st.data(),
)
def test_the_compiled_encoder_gives_the_vectorised_encoders_bytes(case, data) -> None:
    """Points, lines and polygons (some with holes, some parts collapsing), features with and
    without values, ids past one byte: the same Layer from both encoders."""
    kind, (x, y, shapes) = case
    if kind == "point":  # the lines' points: one feature each, and all in one
        points = shapely.get_parts(shapely.extract_unique_points(shapes))
        shapes = np.append(points, shapely.multipoints(points))
    elif kind == "polygon":
        shapes = np.array([_with_holes(g) if i % 2 else g for i, g in enumerate(shapes)])
    if kind != "point":  # and all in one collection
        shapes = np.append(shapes, shapely.geometrycollections(list(shapes)))
    n = len(shapes)
    names = data.draw(st.lists(st.sampled_from(["甲", "b", None, "<c>"]), min_size=n, max_size=n))
    counts = data.draw(st.lists(st.integers(-2, 300), min_size=n, max_size=n))
    attrs = build_attributes(pd.DataFrame({"name": names, "count": counts}), None)
    rows = np.arange(n)
    fids = np.array(data.draw(st.lists(st.integers(1, 10**6), min_size=n, max_size=n)))
    args = ("layer", kind, shapes, tile_bounds(Z, x, y), fids, attrs, rows, EXTENT)
    assert encode_layer_small(*args) == encode_layer(*args)
