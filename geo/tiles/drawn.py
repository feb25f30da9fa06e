"""Every feature of a layer at one zoom encoded once, when the version is built: what a tile
that holds the feature whole sends for it, without clipping, simplifying or encoding it again.

Tiles of a zoom quantise on one grid (`geo.tiles.encoding.grid`), so a feature's geometry
commands are the same in every tile that holds it whole, but for the first ``MoveTo``: the
cursor starts at the tile's corner. Kept per feature: the grid position of that first point
and the encoded commands after it (the *tail*: the rest of the first part, then the other
parts and rings, all relative). This is the precomputation geojson-vt makes for the same
reason (simplify and transform a layer once per zoom, only clip per tile); the bytes are those
the encoders give for the feature in the tile (tested in tests/test_tiles_golden.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from geo.tiles.encoding import _geometry_commands, _starts, _varint_len, _varints
from geo.tiles.encoding_small import Geometry
from geo.tiles.tile_math import tile_bounds


@dataclass(frozen=True)
class Drawn:
    """The geometry of each feature of a zoom layer (by position), encoded on the zoom's grid:
    ``table[i]`` is (x0, y0, start, end): the grid position of feature i's first point and
    where its tail is in ``tails``; an empty tail (start = end) means it draws nothing at this
    zoom (it collapsed: a drawn line or ring has at least a ``LineTo``)."""

    zoom: int
    table: NDArray[np.int64]  # (n, 4)
    tails: NDArray[np.uint8]

    def geometry(
        self,
        hit: NDArray[np.int64],
        whole: NDArray[np.bool_],
        ox: int,
        oy: int,
        cut: Geometry,
    ) -> Geometry:
        """The ``geometry`` bytes of a tile's features ``hit`` (positions in the layer), in a
        tile whose corner is at grid position (ox, oy): those it holds ``whole`` as encoded
        here, the others (in order) as ``cut`` gives them, encoded after clipping."""
        from geo.tiles import kernels

        return kernels.tile_geometry(self.table, self.tails, hit, whole, ox, oy, *cut)


def draw(kind: str, shapes: NDArray[np.object_], z: int, extent: int) -> Drawn:
    """Encode each of ``shapes`` (Web Mercator, as drawn at zoom z) on the zoom's grid."""
    feat, tokens = _geometry_commands(kind, shapes, tile_bounds(z, 0, 0), extent)
    n = len(shapes)
    table = np.zeros((n, 4), dtype=np.int64)
    tails = np.zeros(0, dtype=np.uint8)
    if len(tokens):
        first = np.flatnonzero(_starts(feat))  # tokens come grouped by feature, in order
        present = feat[first]
        zx, zy = tokens[first + 1].astype(np.int64), tokens[first + 2].astype(np.int64)
        table[present, 0] = (zx >> 1) ^ -(zx & 1)  # un-zigzag
        table[present, 1] = (zy >> 1) ^ -(zy & 1)
        # the tails: every token but each feature's first three, as varints
        keep = np.ones(len(tokens), dtype=bool)
        keep[first] = keep[first + 1] = keep[first + 2] = False
        rest, owner = tokens[keep], feat[keep]
        tails = np.frombuffer(_varints(rest), dtype=np.uint8).copy()
        end = np.cumsum(np.bincount(owner, weights=_varint_len(rest), minlength=n).astype(np.int64))
        table[:, 3] = end
        table[1:, 2] = end[:-1]
    return Drawn(z, table, tails)
