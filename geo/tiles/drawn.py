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
import shapely
from numpy.typing import NDArray

from geo.tiles.encoding import _geometry_commands, _starts, _varint, _varint_len, _varints
from geo.tiles.encoding_few import _TWO, _VARINTS
from geo.tiles.tile_math import tile_bounds


def _zig(v: int) -> bytes:
    """The varint of the zigzag of v."""
    z = v << 1 if v >= 0 else ~(v << 1)
    return _VARINTS[z] if z < _TWO else _varint(z)


@dataclass(frozen=True)
class Drawn:
    """The geometry of each feature of a zoom layer (by position), encoded on the zoom's grid:
    ``table[i]`` is (x0, y0, start, end): the grid position of feature i's first point and
    where its tail is in ``tails``; an empty tail (start = end) means it draws nothing at this
    zoom (it collapsed: a drawn line or ring has at least a ``LineTo``)."""

    zoom: int
    table: NDArray[np.int64]  # (n, 4)
    tails: bytes
    points: NDArray[np.int64]  # coordinates of each feature's shape (to weigh a tile's work)

    def geometry(self, at: list[int], features: NDArray[np.int64], ox: int, oy: int) -> dict:
        """The ``geometry`` field's bytes of ``features`` (positions in the layer) in a tile
        whose corner is at grid position (ox, oy), keyed by ``at`` (their positions in the
        tile); features that draw nothing are left out."""
        tails = self.tails
        return {
            k: b"\x09" + _zig(x - ox) + _zig(y - oy) + tails[start:end]
            for k, (x, y, start, end) in zip(at, self.table[features].tolist(), strict=True)
            if end > start
        }


def draw(kind: str, shapes: NDArray[np.object_], z: int, extent: int) -> Drawn:
    """Encode each of ``shapes`` (Web Mercator, as drawn at zoom z) on the zoom's grid."""
    feat, tokens = _geometry_commands(kind, shapes, tile_bounds(z, 0, 0), extent)
    n = len(shapes)
    table = np.zeros((n, 4), dtype=np.int64)
    tails = b""
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
        tails = _varints(rest)
        end = np.cumsum(np.bincount(owner, weights=_varint_len(rest), minlength=n).astype(np.int64))
        table[:, 3] = end
        table[1:, 2] = end[:-1]
    points = shapely.get_num_coordinates(shapes).astype(np.int64)
    return Drawn(z, table, tails, points)
