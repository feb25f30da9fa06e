"""Golden bytes: every tile of every layer at z10/12/14/16/17 on the sample, hashed together.

The encoder and the tile source are tuned for speed; this pins their output byte for byte (the
value was computed with the encoder before that tuning). A change that alters any tile's bytes
on purpose must update `GOLDEN` and say why.
"""

from __future__ import annotations

import hashlib

import numpy as np
import shapely

from geo import tiles
from geo.atlas import Atlas
from geo.tiles.encoding import encode_layer
from geo.tiles.encoding_few import encode_layer_few, is_few

ZOOMS = (10, 12, 14, 16, 17)
GOLDEN = "a9dc115147ec5c9b10f8a3339ad49b20f75c46c9903b1349aca2d11d1f2c307c"


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


def test_small_tiles_encode_the_same_in_python_and_numpy(atlas: Atlas) -> None:
    # every tile, by both encoders (the Python one serves the small ones, `is_few`)
    src, few = tiles.TileSource(atlas), 0
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
                few += is_few(geoms)
                assert encode_layer_few(*args, src.extent) == encode_layer(*args, src.extent)
    assert few > 500
