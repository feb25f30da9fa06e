"""Golden bytes: every tile of every layer at z10/12/14/16/17 on the sample, hashed together.

The encoder and the tile source are tuned for speed; this pins their output byte for byte (the
value was computed with the encoder before that tuning). A change that alters any tile's bytes
on purpose must update `GOLDEN` and say why.

Changed on purpose once (63 of the 13,914 tiles): roads (lines) are simplified by
Douglas–Peucker, as PostGIS's ``ST_AsMVTGeom`` does, instead of keeping each line's topology (4×
the cost of a road tile for nothing a pixel shows: roads at z10 and z12 changed); and a park or
building that crosses a tile's edge is clipped from its shape simplified whole at the zoom, as
geojson-vt does, instead of simplified again after clipping in every tile (parks and buildings
at z12–z16; a line is still clipped first: simplified first, a road along the clip edge could
lose a piece).
"""

from __future__ import annotations

import hashlib

import numpy as np
import shapely

from geo import tiles
from geo.atlas import Atlas
from geo.tiles.encoding import encode_layer
from geo.tiles.encoding_small import encode_layer_small

ZOOMS = (10, 12, 14, 16, 17)
GOLDEN = "1f98c5f4af9099c309d572915e42a8326ed1136c2481b7463df1ee371d06af74"


def _digest(src: tiles.TileSource) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    for name in tiles.LAYER_NAMES:
        for z in ZOOMS:
            for zxy in tiles.tiles_covering(src.bounds([name]), [z]):
                data = src.layer_bytes(name, *zxy)
                h.update(f"{name}/{zxy}:{len(data)}:".encode())
                h.update(data)
                n += bool(data)
    return h.hexdigest(), n


def test_every_tile_is_byte_identical(atlas: Atlas) -> None:
    # a fresh source (nothing cached), then the same tiles again from its caches
    src = tiles.TileSource(atlas)
    first, n = _digest(src)
    assert n > 1000
    assert first == GOLDEN
    assert _digest(src)[0] == GOLDEN


def test_every_tile_encodes_the_same_by_every_path(atlas: Atlas) -> None:
    """Every tile, by every path: the vectorised encoder, the compiled one and, at the zooms
    prepared with each feature's encoded shape (`geo.tiles.drawn`), that shape for the
    features inside the tile with the cut ones clipped and encoded."""
    src, drawn = tiles.TileSource(atlas), 0
    for name in tiles.LAYER_NAMES:
        for z in ZOOMS:
            zl = src.layer(name, z)
            for zxy in tiles.tiles_covering(src.bounds([name]), [z]):
                box = src.clip_box(*zxy)
                hit = np.sort(zl.tree.query(shapely.box(*box)))
                geoms = zl.cut(hit, box)
                if not len(hit):
                    continue
                rows, bounds = zl.rows[hit], tiles.tile_bounds(*zxy)
                args = (name, zl.kind, geoms, bounds, rows + 1, src.attributes(name), rows)
                want = encode_layer(*args, src.extent)
                assert encode_layer_small(*args, src.extent) == want
                if zl.drawn is not None and zl.drawn.zoom == z:
                    whole = ~zl.edge(hit, box)
                    assert src._drawn_bytes(zl, hit, whole, box, zxy) == want
                    drawn += 1
    assert drawn > 5000


def test_the_tile_index_finds_what_the_rtree_finds(atlas: Atlas) -> None:
    """Per tile (every tile of the data and a ring around it), the tile index holds the
    features whose bounds meet the clip box — what ``STRtree.query`` gives — and marks as whole
    exactly those inside it."""
    src = tiles.TileSource(atlas)
    checked = 0
    for name in ("roads", "streets", "parks", "buildings"):
        for z in (8, 12, 15, 17):
            zl = src.layer(name, z)
            assert zl.index is not None
            x0, y0, x1, y1 = _tile_range(src.bounds([name]), z)
            for x in range(x0 - 1, x1 + 2):
                for y in range(y0 - 1, y1 + 2):
                    box = src.clip_box(z, x, y)
                    want = np.sort(zl.tree.query(shapely.box(*box)))
                    hit, whole = zl.index.at(x, y)
                    assert np.array_equal(hit, want)
                    assert np.array_equal(whole, ~zl.edge(want, box))
                    checked += len(want) > 0
    assert checked > 1000


def _tile_range(bounds, z: int) -> tuple[int, int, int, int]:
    found = tiles.tiles_covering(bounds, [z])
    xs, ys = [t[1] for t in found], [t[2] for t in found]
    return min(xs), min(ys), max(xs), max(ys)


def test_loading_the_compiled_loops_covers_every_tile(atlas: Atlas) -> None:
    """`encoding_small.load` (run by `geo serve` in a thread before the tiles are prepared)
    compiles every signature a tile of the data calls, so no request waits for a compile."""
    from geo.tiles import kernels
    from geo.tiles.encoding_small import load

    load()
    names = ("line_geometry", "ring_geometry", "point_geometry", "tile_geometry", "layer")
    loaded = {n: list(getattr(kernels, n).signatures) for n in names}
    src = tiles.TileSource(atlas)
    for _ in src.prepare_all():
        pass
    for name in tiles.LAYER_NAMES:
        for z in (12, 16, 17):
            for zxy in tiles.tiles_covering(src.bounds([name]), [z])[:50]:
                src.tile(*zxy, [name])
    assert {n: list(getattr(kernels, n).signatures) for n in names} == loaded
