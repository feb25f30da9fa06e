"""A spatial index of one layer at one zoom keyed by tile: the features whose bounds meet each
tile's clip box (the tile grown by its buffer), and which of them lie inside it whole.

Built once per zoom when a version is built, with numpy; a tile then finds its features with
one binary search instead of an R-tree query (what a tile of a few features spent most of its
time on). It answers what ``STRtree.query(clip box)`` answers (bounds that meet the box, edges
included) and, per feature, what `geo.tiles.source.ZoomLayer.edge` says, with the same
floating-point arithmetic as `geo.tiles.source.TileSource.clip_box` (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from geo.tiles.tile_math import HALF


@dataclass(frozen=True)
class TileIndex:
    """Per tile (key ``x << zoom | y``, ascending): a run of ``features`` (positions in the
    zoom layer, ascending) and ``whole`` (the feature lies inside the clip box)."""

    zoom: int
    keys: NDArray[np.int64]
    starts: NDArray[np.int64]  # run k is features[starts[k]:starts[k + 1]]
    features: NDArray[np.int64]
    whole: NDArray[np.bool_]

    def at(self, x: int, y: int) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """The features whose bounds meet the clip box of tile (x, y), and which lie inside."""
        key = (x << self.zoom) | y
        k = int(np.searchsorted(self.keys, key))
        if k == len(self.keys) or int(self.keys[k]) != key:
            return self.features[:0], self.whole[:0]
        a, b = int(self.starts[k]), int(self.starts[k + 1])
        return self.features[a:b], self.whole[a:b]


def _clip_boxes(z: int, x: NDArray, y: NDArray, buffer: int, extent: int) -> NDArray:
    """Clip boxes (k × 4) of tiles (x, y) at zoom z: `tile_bounds` grown by the buffer, with
    the arithmetic of `TileSource.clip_box`."""
    size = 2 * HALF / (1 << z)
    minx, miny = -HALF + x * size, HALF - (y + 1) * size
    maxx, maxy = -HALF + (x + 1) * size, HALF - y * size
    pad = (maxx - minx) * buffer / extent
    return np.stack([minx - pad, miny - pad, maxx + pad, maxy + pad], axis=1)


def build(bounds: NDArray[np.float64], z: int, buffer: int, extent: int) -> TileIndex:
    """The tile index of features with Web Mercator ``bounds`` (n × 4) at zoom z."""
    n = 1 << z
    size = 2 * HALF / n
    # tiles that may meet each feature's bounds, a tile wider each way than needed; the exact
    # test below keeps those whose clip box meets them
    x0 = np.floor((bounds[:, 0] + HALF) / size).astype(np.int64) - 1
    x1 = np.floor((bounds[:, 2] + HALF) / size).astype(np.int64) + 1
    y0 = np.floor((HALF - bounds[:, 3]) / size).astype(np.int64) - 1
    y1 = np.floor((HALF - bounds[:, 1]) / size).astype(np.int64) + 1
    x0, y0 = np.clip(x0, 0, n - 1), np.clip(y0, 0, n - 1)
    x1, y1 = np.clip(x1, 0, n - 1), np.clip(y1, 0, n - 1)
    w, h = x1 - x0 + 1, y1 - y0 + 1
    count = w * h
    feat = np.repeat(np.arange(len(bounds)), count)
    k = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    tx, ty = x0[feat] + k // h[feat], y0[feat] + k % h[feat]
    box, b = _clip_boxes(z, tx, ty, buffer, extent), bounds[feat]
    meets = (b[:, 0] <= box[:, 2]) & (b[:, 2] >= box[:, 0])
    meets &= (b[:, 1] <= box[:, 3]) & (b[:, 3] >= box[:, 1])
    feat, tx, ty, box, b = feat[meets], tx[meets], ty[meets], box[meets], b[meets]
    edge = (b[:, 0] < box[:, 0]) | (b[:, 1] < box[:, 1])
    edge |= (b[:, 2] > box[:, 2]) | (b[:, 3] > box[:, 3])
    key = (tx << z) | ty
    order = np.lexsort((feat, key))
    key = key[order]
    keys, starts = np.unique(key, return_index=True)
    starts = np.append(starts, len(key)).astype(np.int64)
    return TileIndex(z, keys, starts, feat[order], ~edge[order])
