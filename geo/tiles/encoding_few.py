"""The MVT encoder for small tiles, in Python: the same bytes as `geo.tiles.encoding`, without
its fixed cost of some hundred numpy calls per layer (which dominates a tile of a few features
and a few hundred points; a tile PostGIS makes in 0.1 ms).

Geometry is taken apart and quantised with a handful of shapely and numpy calls, then walked
point by point: repeated points dropped, collapsed rings dropped, rings wound as MVT wants,
commands, deltas and zigzag, exactly as the vectorised encoder does; features and their tags
are written as byte strings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import shapely
from numpy.typing import NDArray

from geo.tiles.encoding import _TYPE, _explode, _quantise, _varint

if TYPE_CHECKING:
    from geo.tiles.attributes import Attributes

# a tile with fewer than ``FEW`` points + ``PER_FEATURE`` × features is encoded here (above, the
# vectorised encoder is faster: it costs about 0.33 ms a layer plus 0.8 µs a point, this one
# 0.03 ms plus 2.3 µs a point and 6 µs a feature); both give the same bytes
FEW = 200
PER_FEATURE = 3

_BYTE = [bytes((i,)) for i in range(128)]
_TWO = 1 << 14  # varints of fewer bytes than this are looked up (one or two bytes)
_VARINTS = [_varint(i) for i in range(_TWO)]
Tokens = list[int]
Point = tuple[int, int, int]


def _vint(v: int) -> bytes:
    return _VARINTS[v] if v < _TWO else _varint(v)


def _zig(v: int) -> int:
    """Zigzag: 0, -1, 1, -2... → 0, 1, 2, 3..."""
    return v << 1 if v >= 0 else ~(v << 1)


def _quantised(
    geoms: NDArray[np.object_], bounds, extent: int
) -> tuple[list[int], list[int], list[int]]:
    """Tile coordinates (x, y) of every point of ``geoms`` and the index of its geometry."""
    xy, at = shapely.get_coordinates(geoms, return_index=True)
    if len(xy) == 0:
        return [], [], []
    tx, ty = _quantise(xy, bounds, extent)
    return tx.tolist(), ty.tolist(), at.tolist()


def _paths(tx: list[int], ty: list[int], at: list[int], n: int) -> list[list[Point]]:
    """The points (x, y, path) of each of n paths, without those equal to the point before."""
    paths: list[list[Point]] = [[] for _ in range(n)]
    last = None
    for p in zip(tx, ty, at, strict=True):
        if p != last:
            paths[p[2]].append(p)
            last = p
    return paths


def _area2(ring: list[Point]) -> int:
    """Twice the signed area of a ring (tile coordinates, y down)."""
    x0, y0, _ = ring[-1]
    total = 0
    for x1, y1, _ in ring:
        total += x0 * y1 - x1 * y0
        x0, y0 = x1, y1
    return total


def _simple(geoms: NDArray[np.object_], feat: NDArray[np.int64], type_ids: tuple[int, ...]):
    """`geo.tiles.encoding._explode`, quicker when every geometry is already a simple part."""
    simple = set(shapely.get_type_id(geoms).tolist()) <= set(type_ids)
    if simple and not shapely.is_empty(geoms).any():
        return geoms, feat
    return _explode(geoms, feat, type_ids)


def _rings_of(polys: NDArray[np.object_]) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """The rings of polygons, each's exterior first, and the polygon of each."""
    if not shapely.get_num_interior_rings(polys).any():
        return shapely.get_exterior_ring(polys), np.arange(len(polys))
    return shapely.get_rings(polys, return_index=True)


def _ring_parts(geoms: NDArray[np.object_], feat: NDArray[np.int64], bounds, extent: int):
    """Polygon rings as (feature, points) parts: as `geo.tiles.encoding._rings` makes them."""
    polys, pfeat = _simple(geoms, feat, (3,))
    rings, rpoly = _rings_of(polys)
    tx, ty, at = _quantised(rings, bounds, extent)
    paths = _paths(tx, ty, at, len(rings))
    rpoly_l = rpoly.tolist()
    ok_poly: dict[int, bool] = {}
    parts: list[tuple[int, list[Point]]] = []
    for i, ring in enumerate(paths):
        p = rpoly_l[i]
        exterior = i == 0 or rpoly_l[i - 1] != p
        if len(ring) > 1 and ring[-1] == ring[0]:
            ring.pop()  # the closing point
        area = _area2(ring) if len(ring) >= 3 else 0
        ok = area != 0
        if exterior:
            ok_poly[p] = ok
        if not (ok and ok_poly[p]):
            continue
        if (area > 0) != exterior:
            ring.reverse()
        parts.append((int(pfeat[p]), ring))
    return parts


def _line_parts(geoms: NDArray[np.object_], feat: NDArray[np.int64], bounds, extent: int):
    """Line parts as (feature, points): as `geo.tiles.encoding._lines` makes them."""
    lines, lfeat = _simple(geoms, feat, (1, 2))
    tx, ty, at = _quantised(lines, bounds, extent)
    owners = lfeat.tolist()
    paths = _paths(tx, ty, at, len(lines))
    return [(owners[i], path) for i, path in enumerate(paths) if len(path) >= 2]


def _path_tokens(parts, closed: bool) -> dict[int, Tokens]:
    """Command tokens per feature of its parts (the cursor runs through a feature's parts)."""
    out: dict[int, Tokens] = {}
    cx = cy = 0
    for f, path in parts:
        tokens = out.get(f)
        if tokens is None:
            tokens = out[f] = []
            cx = cy = 0
        x, y, _ = path[0]
        tokens += (9, _zig(x - cx), _zig(y - cy), ((len(path) - 1) << 3) | 2)
        cx, cy = x, y
        for x, y, _ in path[1:]:  # _zig inlined: the loop of every point
            dx, dy = (x - cx) << 1, (y - cy) << 1
            tokens += (dx if dx >= 0 else ~dx, dy if dy >= 0 else ~dy)
            cx, cy = x, y
        if closed:
            tokens.append(15)
    return out


def _point_tokens(geoms: NDArray[np.object_], bounds, extent: int) -> dict[int, Tokens]:
    """Command tokens per feature of points (`geo.tiles.encoding._point_commands`)."""
    pts, pfeat = _simple(geoms, np.arange(len(geoms)), (0,))
    tx, ty, _ = _quantised(pts, bounds, extent)
    out: dict[int, Tokens] = {}
    px = py = 0
    for f, x, y in zip(pfeat.tolist(), tx, ty, strict=True):
        tokens = out.get(f)
        if tokens is None:
            out[f] = [9, _zig(x), _zig(y)]
        else:
            tokens[0] += 8  # one point more
            tokens += (_zig(x - px), _zig(y - py))
        px, py = x, y
    return out


def _tokens(kind: str, geoms: NDArray[np.object_], bounds, extent: int) -> dict[int, Tokens]:
    if kind == "point":
        return _point_tokens(geoms, bounds, extent)
    feat = np.arange(len(geoms))
    if kind == "polygon":
        return _path_tokens(_ring_parts(geoms, feat, bounds, extent), closed=True)
    return _path_tokens(_line_parts(geoms, feat, bounds, extent), closed=False)


def is_few(geoms: NDArray[np.object_]) -> bool:
    """Whether a tile of ``geoms`` is small enough for this encoder."""
    n = len(geoms) * PER_FEATURE
    return n < FEW and n + int(shapely.get_num_coordinates(geoms).sum()) < FEW


def encode_layer_few(
    name: str,
    kind: str,
    geoms: NDArray[np.object_],
    bounds: tuple[float, float, float, float],
    fids: NDArray[np.int64],
    attrs: Attributes,
    rows: NDArray[np.int64],
    extent: int,
) -> bytes:
    """`geo.tiles.encoding.encode_layer` for a small tile (`is_few`): the same bytes."""
    drawn = _tokens(kind, geoms, bounds, extent)
    if not drawn:
        return b""
    present = sorted(drawn)
    codes = attrs.codes[rows[present]].tolist()
    used = sorted({c for row in codes for c in row if c >= 0})
    index = {c: i for i, c in enumerate(used)}
    head = b"\x18" + _BYTE[_TYPE[kind]] + b"\x22"
    out = []
    for f, row in zip(present, codes, strict=True):
        tags = b"".join([_vint(j) + _vint(index[c]) for j, c in enumerate(row) if c >= 0])
        geom = b"".join([_VARINTS[t] if t < _TWO else _varint(t) for t in drawn[f]])
        body = (
            b"\x08" + _vint(int(fids[f])) + b"\x12" + _vint(len(tags)) + tags
            + head + _vint(len(geom)) + geom
        )  # fmt: skip
        out.append(b"\x12" + _vint(len(body)) + body)
    raw_name = name.encode()
    body = (
        b"\x78\x02\x0a" + _vint(len(raw_name)) + raw_name + b"".join(out)
        + attrs.key_bytes + attrs.values.take(used) + b"\x28" + _vint(extent)
    )  # fmt: skip
    return b"\x1a" + _vint(len(body)) + body
