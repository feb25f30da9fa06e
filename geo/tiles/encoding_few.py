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

from geo.tiles.encoding import _TYPE, _explode, _varint, grid
from geo.tiles.tile_math import HALF

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
Tokens = list[int]  # command integers
Point = list[int]  # [x, y], tile units


def _vint(v: int) -> bytes:
    return _VARINTS[v] if v < _TWO else _varint(v)


def _zig(v: int) -> int:
    """Zigzag: 0, -1, 1, -2... → 0, 1, 2, 3..."""
    return v << 1 if v >= 0 else ~(v << 1)


def _quantised(geoms: NDArray[np.object_], bounds, extent: int) -> tuple[list, list[int]]:
    """Tile coordinates [x, y] of every point of ``geoms`` and the index of its geometry
    (`geo.tiles.encoding._quantise` in four numpy calls: the same integers)."""
    xy, at = shapely.get_coordinates(geoms, return_index=True)
    if len(xy) == 0:
        return [], []
    scale, ox, oy = grid(bounds, extent)
    q = np.rint((xy + _SHIFT) * (scale, -scale)).astype(np.int64) - (ox, oy)
    return q.tolist(), at.tolist()


_SHIFT = np.array([HALF, -HALF])  # (x + HALF, y - HALF): metres from the world's top left


def _paths(xy: list, at: list[int], n: int) -> list[list[Point]]:
    """The points [x, y] of each of n paths, without those equal to the point before."""
    paths: list[list[Point]] = [[] for _ in range(n)]
    last, last_at = None, -1
    for p, a in zip(xy, at, strict=True):
        if a != last_at:
            paths[a].append(p)
            last, last_at = p, a
        elif p != last:
            paths[a].append(p)
            last = p
    return paths


def _area2(ring: list[Point]) -> int:
    """Twice the signed area of a ring (tile coordinates, y down)."""
    x0, y0 = ring[-1]
    total = 0
    for x1, y1 in ring:
        total += x0 * y1 - x1 * y0
        x0, y0 = x1, y1
    return total


def _simple(geoms: NDArray[np.object_], feat: NDArray[np.int64], type_ids: tuple[int, ...]):
    """`geo.tiles.encoding._explode`, quicker when every geometry is a simple part (an empty
    one draws nothing either way) or a multi-part or collection of them (taken apart once)."""
    wanted = set(type_ids)
    if set(shapely.get_type_id(geoms).tolist()) <= wanted:
        return geoms, feat
    parts, ix = shapely.get_parts(geoms, return_index=True)  # multi-parts and collections
    if set(shapely.get_type_id(parts).tolist()) <= wanted:
        return parts, feat[ix]
    return _explode(geoms, feat, type_ids)


def _rings_of(polys: NDArray[np.object_]) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """The rings of polygons, each's exterior first, and the polygon of each (three calls
    quicker than `shapely.get_rings` with its index when no polygon has holes)."""
    if not shapely.get_num_interior_rings(polys).any():
        return shapely.get_exterior_ring(polys), np.arange(len(polys))
    return shapely.get_rings(polys, return_index=True)


def _ring_parts(geoms: NDArray[np.object_], feat: NDArray[np.int64], bounds, extent: int):
    """Polygon rings as (feature, points) parts: as `geo.tiles.encoding._rings` makes them."""
    polys, pfeat = _simple(geoms, feat, (3,))
    rings, rpoly = _rings_of(polys)
    xy, at = _quantised(rings, bounds, extent)
    paths = _paths(xy, at, len(rings))
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
    xy, at = _quantised(lines, bounds, extent)
    owners = lfeat.tolist()
    paths = _paths(xy, at, len(lines))
    return [(owners[i], path) for i, path in enumerate(paths) if len(path) >= 2]


def _path_bytes(parts, closed: bool) -> dict[int, bytes]:
    """The ``geometry`` bytes per feature of its parts (the cursor runs through a feature's
    parts): ``MoveTo``, ``LineTo`` and (for rings) ``ClosePath`` commands, zigzag deltas."""
    out: dict[int, list[bytes]] = {}
    varints = _VARINTS
    cx = cy = 0
    for f, path in parts:
        chunks = out.get(f)
        if chunks is None:
            chunks = out[f] = []
            cx = cy = 0
        x, y = path[0]
        chunks += (b"\x09", _vint(_zig(x - cx)), _vint(_zig(y - cy)))
        chunks.append(_vint(((len(path) - 1) << 3) | 2))
        cx, cy = x, y
        for x, y in path[1:]:  # _zig and _vint inlined: the loop of every point
            dx, dy = (x - cx) << 1, (y - cy) << 1
            dx, dy = dx if dx >= 0 else ~dx, dy if dy >= 0 else ~dy
            chunks += (
                varints[dx] if dx < _TWO else _varint(dx),
                varints[dy] if dy < _TWO else _varint(dy),
            )
            cx, cy = x, y
        if closed:
            chunks.append(b"\x0f")
    return {f: b"".join(c) for f, c in out.items()}


def _point_tokens(geoms: NDArray[np.object_], bounds, extent: int) -> dict[int, Tokens]:
    """Command tokens per feature of points (`geo.tiles.encoding._point_commands`)."""
    pts, pfeat = _simple(geoms, np.arange(len(geoms)), (0,))
    xy, at = _quantised(pts, bounds, extent)
    owners = pfeat.tolist()
    out: dict[int, Tokens] = {}
    px = py = 0
    for (x, y), a in zip(xy, at, strict=True):
        f = owners[a]
        tokens = out.get(f)
        if tokens is None:
            out[f] = [9, _zig(x), _zig(y)]
        else:
            tokens[0] += 8  # one point more
            tokens += (_zig(x - px), _zig(y - py))
        px, py = x, y
    return out


def geometry_bytes(kind: str, geoms: NDArray[np.object_], bounds, extent: int) -> dict[int, bytes]:
    """The ``geometry`` field's bytes of each of ``geoms`` (Web Mercator, clipped to the
    buffered tile ``bounds``) that draws anything, by position."""
    if kind == "point":
        return {
            f: b"".join([_vint(t) for t in tokens])
            for f, tokens in _point_tokens(geoms, bounds, extent).items()
        }
    feat = np.arange(len(geoms))
    if kind == "polygon":
        return _path_bytes(_ring_parts(geoms, feat, bounds, extent), closed=True)
    return _path_bytes(_line_parts(geoms, feat, bounds, extent), closed=False)


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
    drawn = geometry_bytes(kind, geoms, bounds, extent)
    return layer_of(name, kind, drawn, fids, attrs, rows, extent)


def layer_of(
    name: str,
    kind: str,
    drawn: dict[int, bytes],
    fids: NDArray[np.int64],
    attrs: Attributes,
    rows: NDArray[np.int64],
    extent: int,
) -> bytes:
    """The ``Layer`` message of the features ``drawn`` (position → ``geometry`` bytes): the
    feature at position i has id ``fids[i]`` and attribute row ``rows[i]``."""
    if not drawn:
        return b""
    present = sorted(drawn)
    every = len(present) == len(rows)  # (then no list to index with)
    codes = attrs.codes[rows if every else rows[present]]
    if len(present) >= _MANY_TAGS and len(attrs.keys) < 128 and codes.size < _TWO:
        used, tags = _tags_at_once(codes)
    else:
        used, tags = _tags_one_by_one(codes.tolist())
    head = b"\x18" + _BYTE[_TYPE[kind]] + b"\x22"
    varints, out = _VARINTS, []
    for f, fid, tag in zip(present, (fids if every else fids[present]).tolist(), tags, strict=True):
        geom = drawn[f]
        g = len(geom)
        body = b"".join(
            (
                b"\x08",
                varints[fid] if fid < _TWO else _varint(fid),
                b"\x12",
                varints[len(tag)],  # (a tag is a few bytes: a key, a value: fewer than 2**14)
                tag,
                head,
                varints[g] if g < _TWO else _varint(g),
                geom,
            )
        )
        b = len(body)
        out += (b"\x12", varints[b] if b < _TWO else _varint(b), body)
    raw_name = name.encode()
    body = b"".join(
        (
            b"\x78\x02\x0a",
            _vint(len(raw_name)),
            raw_name,
            *out,
            attrs.key_bytes,
            attrs.values.take(used),
            b"\x28",
            _vint(extent),
        )
    )
    return b"\x1a" + _vint(len(body)) + body


# from this many features a tile's tags are made with numpy, all at once (quicker from about
# 30 features: 63 µs against 82 for a z14 road tile of 64, 36 against 31 for one of 25)
_MANY_TAGS = 32


def _tags_one_by_one(codes: list[list[int]]) -> tuple[list[int], list[bytes]]:
    """The value indexes used (ascending: the tile's value table) and each feature's ``tags``
    bytes (key index, value index pairs of the fields that have a value), in Python."""
    used = sorted({c for row in codes for c in row if c >= 0})
    index = {c: _vint(i) for i, c in enumerate(used)}
    keys = _VARINTS
    return used, [
        b"".join([keys[j] + index[c] for j, c in enumerate(row) if c >= 0]) for row in codes
    ]


def _tags_at_once(codes: NDArray[np.int64]) -> tuple[NDArray[np.int64], list[bytes]]:
    """`_tags_one_by_one` with numpy: fewer than 128 keys (one byte each) and fewer than 2**14
    values used (one or two bytes each)."""
    has = codes >= 0
    used = np.unique(codes[has])
    feat, key = np.nonzero(has)  # feature-major
    value = np.searchsorted(used, codes[feat, key])
    two = value >= 128
    size = 2 + two.astype(np.int64)  # bytes of each (key, value) pair
    at = np.cumsum(size) - size
    buf = np.empty(int(size.sum()), dtype=np.uint8)
    buf[at] = key
    buf[at + 1] = (value & 0x7F) | (two << 7)
    buf[at[two] + 2] = value[two] >> 7
    raw = buf.tobytes()
    ends = np.cumsum(np.bincount(feat, weights=size, minlength=len(codes)).astype(np.int64))
    cuts = [0, *ends.tolist()]
    return used, [raw[cuts[i] : cuts[i + 1]] for i in range(len(codes))]
