"""The MVT encoder, vectorised with numpy: geometry quantised to tile units and written as
commands, features and their tags packed into one ``Layer`` message (vector_tile.proto 2.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import shapely
from numpy.typing import NDArray

from geo.tiles.tile_math import EXTENT, HALF

if TYPE_CHECKING:
    from geo.tiles.attributes import Attributes

# MVT geometry types (vector_tile.proto GeomType) and command integers.
_TYPE = {"point": 1, "line": 2, "polygon": 3}
_MOVE_TO_1 = (1 << 3) | 1
_CLOSE_PATH = (1 << 3) | 7
_LINE_TO = 2


# below this many items (features of a tile, values of its table) Python loops are cheaper
# than numpy's fixed cost per call; both paths give the same bytes
_FEW = 64

_VARINT_STEPS = np.array([1 << (7 * k) for k in range(1, 10)], dtype=np.uint64)


def _varint_len(v: NDArray[np.uint64]) -> NDArray[np.int64]:
    """Bytes of the protobuf varint of each non-negative integer (one comparison per byte the
    largest needs)."""
    return np.searchsorted(_VARINT_STEPS, v, side="right") + 1


def _varints(v: NDArray[np.uint64], lens: NDArray[np.int64] | None = None) -> bytes:
    """Protobuf varints of non-negative integers, concatenated (vectorised): the first byte of
    every varint at once, then the second byte of those that have one, and so on."""
    v = np.asarray(v, dtype=np.uint64)
    if len(v) == 0:
        return b""
    if lens is None:
        lens = _varint_len(v)
    start = _before(lens)
    out = np.empty(int(start[-1] + lens[-1]), dtype=np.uint8)
    idx, k = np.arange(len(v)), 0
    while len(idx):
        rest = lens[idx] > k + 1  # another byte follows this one
        low = ((v[idx] >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8)
        out[start[idx] + k] = low | (rest.astype(np.uint8) << 7)
        idx, k = idx[rest], k + 1
    return out.tobytes()


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


@dataclass(frozen=True)
class Packed:
    """Byte strings packed in one buffer: item i is ``buf[off[i]:off[i + 1]]`` (``off[0]`` = 0).

    Made, joined and gathered with numpy, never a Python loop per item.
    """

    buf: NDArray[np.uint8]
    off: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.off) - 1

    def lengths(self) -> NDArray[np.int64]:
        """The byte length of each item."""
        return np.diff(self.off)

    def tolist(self) -> list[bytes]:
        """The items as bytes (for tests and small tables)."""
        raw, off = self.buf.tobytes(), self.off.tolist()
        return [raw[off[i] : off[i + 1]] for i in range(len(self))]

    @cached_property
    def _items(self) -> tuple[bytes, list[int]]:
        """The buffer as bytes and the offsets as a list (for `take` of a few items)."""
        return self.buf.tobytes(), self.off.tolist()

    def take(self, idx: NDArray[np.int64]) -> bytes:
        """Items ``idx``, concatenated."""
        if len(idx) <= _FEW:  # a Python loop beats numpy's fixed cost for a few items
            raw, off = self._items
            return b"".join([raw[off[i] : off[i + 1]] for i in np.asarray(idx).tolist()])
        starts, lens = self.off[idx], self.off[np.asarray(idx) + 1] - self.off[idx]
        total = int(lens.sum())
        if total == 0:
            return b""
        at = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(total)
        return self.buf[at].tobytes()

    def select(self, idx: NDArray[np.int64]) -> Packed:
        """Items ``idx`` as a new table."""
        lens = self.off[np.asarray(idx) + 1] - self.off[idx]
        return Packed(np.frombuffer(self.take(idx), dtype=np.uint8), _offsets(lens))

    def to_arrow(self) -> pa.Array:
        """The items as an Arrow ``large_binary`` array (no copy)."""
        bufs = [None, pa.py_buffer(self.off), pa.py_buffer(self.buf)]
        return pa.Array.from_buffers(pa.large_binary(), len(self), bufs)

    @classmethod
    def from_arrow(cls, arr: pa.Array | pa.ChunkedArray) -> Packed:
        """The items of an Arrow string or binary array without nulls."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.large_binary())
        arr = arr.cast(pa.large_binary())
        n = len(arr)
        _, off_buf, data = arr.buffers()
        off = np.frombuffer(off_buf, dtype=np.int64)[arr.offset : arr.offset + n + 1]
        raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
        if n == 0:
            return cls(np.zeros(0, dtype=np.uint8), np.zeros(1, dtype=np.int64))
        return cls(raw[off[0] : off[-1]], off - off[0])

    @classmethod
    def const(cls, byte: int, n: int) -> Packed:
        """n items of one byte each."""
        return cls(np.full(n, byte, dtype=np.uint8), np.arange(n + 1, dtype=np.int64))

    @classmethod
    def varints(cls, v: NDArray) -> Packed:
        """The protobuf varint of each non-negative integer."""
        v = np.asarray(v, dtype=np.uint64)
        lens = _varint_len(v)
        return cls(np.frombuffer(_varints(v, lens), dtype=np.uint8), _offsets(lens))

    @classmethod
    def assemble(cls, n: int, parts: list[tuple[NDArray[np.int64], Packed]]) -> Packed:
        """n items, each the concatenation of the pieces given to it: ``parts`` is a list of
        (rows, pieces), piece i appended to item ``rows[i]``, in the order of ``parts``."""
        total = np.zeros(n, dtype=np.int64)
        for rows, p in parts:
            total[rows] += p.lengths()
        off = _offsets(total)
        buf = np.empty(int(off[-1]), dtype=np.uint8)
        cursor = off[:-1].copy()
        for rows, p in parts:
            lens = p.lengths()
            m = int(p.off[-1])
            if m:
                buf[np.repeat(cursor[rows] - p.off[:-1], lens) + np.arange(m)] = p.buf[:m]
            cursor[rows] += lens
        return cls(buf, off)


def _offsets(lens: NDArray[np.int64]) -> NDArray[np.int64]:
    off = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=off[1:])
    return off


def _zigzag(v: NDArray[np.int64]) -> NDArray[np.uint64]:
    return ((v << 1) ^ (v >> 63)).astype(np.uint64)


def _lengths(first: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    """Lengths of the runs that start at positions ``first`` (ascending) of an array of n."""
    out = np.empty(len(first), dtype=np.int64)
    out[:-1] = first[1:] - first[:-1]
    out[-1:] = n - first[-1:]
    return out


def _before(counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Exclusive running sum: where each run starts when runs of ``counts`` are laid end to end."""
    out = np.zeros(len(counts), dtype=np.int64)
    if len(counts) > 1:
        np.cumsum(counts[:-1], out=out[1:])
    return out


def _delta(v: NDArray[np.int64]) -> NDArray[np.int64]:
    """Each value minus the one before it (the first minus 0)."""
    d = v.copy()
    d[1:] -= v[:-1]
    return d


def _starts(group: NDArray[np.int64]) -> NDArray[np.bool_]:
    """True where a new group starts in a grouped (sorted) array."""
    out = np.empty(len(group), dtype=bool)
    out[:1] = True
    np.not_equal(group[1:], group[:-1], out=out[1:])
    return out


def _explode(
    geoms: NDArray[np.object_], owner: NDArray[np.int64], type_ids: tuple[int, ...]
) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """Simple parts (of the given shapely type ids) of geoms, with their owner feature."""
    t = shapely.get_type_id(geoms)
    while ((t >= 4) & (t <= 7)).any():  # multi-parts and collections
        geoms, ix = shapely.get_parts(geoms, return_index=True)
        owner = owner[ix]
        t = shapely.get_type_id(geoms)
    keep = t == type_ids[0]
    for other in type_ids[1:]:
        keep |= t == other
    keep &= ~shapely.is_empty(geoms)
    if keep.all():
        return geoms, owner
    return geoms[keep], owner[keep]


def grid(bounds: tuple[float, float, float, float], extent: int) -> tuple[float, int, int]:
    """The grid of a tile's zoom: tile units per metre, and the grid position (x, y down) of
    the tile's top-left corner. Every tile of a zoom quantises on this one grid, so a feature
    has the same quantised shape in every tile that holds it whole (`geo.tiles.drawn`)."""
    minx, _, maxx, maxy = bounds
    size = 2 * HALF / round(2 * HALF / (maxx - minx))  # exactly `tile_bounds`'s tile size
    return extent / size, round((minx + HALF) / size) * extent, round((HALF - maxy) / size) * extent


def _quantise(
    xy: NDArray[np.float64], bounds: tuple[float, float, float, float], extent: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    scale, ox, oy = grid(bounds, extent)
    tx = np.rint((xy[:, 0] + HALF) * scale).astype(np.int64) - ox
    ty = np.rint((HALF - xy[:, 1]) * scale).astype(np.int64) - oy
    return tx, ty


def _no_repeats(tx: NDArray, ty: NDArray, part: NDArray) -> tuple[NDArray, NDArray, NDArray]:
    """The points of each part without those equal to the point before them."""
    keep = np.ones(len(part), dtype=bool)
    keep[1:] = (part[1:] != part[:-1]) | (tx[1:] != tx[:-1]) | (ty[1:] != ty[:-1])
    return tx[keep], ty[keep], part[keep]


def _rings(
    geoms: NDArray[np.object_], feat: NDArray[np.int64], bounds, extent: int
) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """Polygon rings as quantised paths: (x, y, part id per point, feature per part).

    Closing points are dropped, as are repeated points and rings that collapse to no area;
    a polygon whose exterior collapses is dropped with its holes. Exterior rings get positive
    area (clockwise on screen, y down), holes negative.
    """
    polys, pfeat = _explode(geoms, feat, (3,))
    rings, rpoly = shapely.get_rings(polys, return_index=True)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    if len(xy) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty
    tx, ty = _quantise(xy, bounds, extent)
    exterior = _starts(rpoly)  # get_rings gives each polygon's exterior first
    # drop repeated points; the closing point goes with them or as a ring's end equal to its
    # first point (below)
    tx, ty, ring = _no_repeats(tx, ty, ring)
    # after dropping repeats a ring may end on its first point: drop that point too
    first_of = np.flatnonzero(_starts(ring))
    end = first_of + _lengths(first_of, len(ring)) - 1
    dup = (end > first_of) & (tx[end] == tx[first_of]) & (ty[end] == ty[first_of])
    keep = np.ones(len(ring), dtype=bool)
    keep[end[dup]] = False
    tx, ty, ring = tx[keep], ty[keep], ring[keep]
    # signed area (surveyor's formula, tile coordinates y down) of every ring
    s = _starts(ring)
    first_of = np.flatnonzero(s)
    n_pts = _lengths(first_of, len(ring))
    nxt = np.arange(1, len(ring) + 1)
    nxt[first_of + n_pts - 1] = first_of
    cross = tx * ty[nxt] - tx[nxt] * ty
    area2 = np.add.reduceat(cross, first_of) if len(ring) else np.zeros(0, dtype=np.int64)
    ring_ids = ring[first_of]
    is_ext = exterior[ring_ids]
    ok = (n_pts >= 3) & (area2 != 0)
    # holes of a polygon whose exterior collapsed go too
    poly_ok = np.zeros(len(polys), dtype=bool)
    poly_ok[rpoly[ring_ids[is_ext & ok]]] = True
    ok &= poly_ok[rpoly[ring_ids]]
    flip = ok & ((area2 > 0) != is_ext)
    per_point_ring = np.arange(len(first_of)).repeat(n_pts)
    if flip.any():  # reverse the rings that wind the wrong way
        pos = np.arange(len(ring))
        rev = flip[per_point_ring]
        pstart = first_of[per_point_ring]
        order = np.where(rev, pstart + n_pts[per_point_ring] - 1 - (pos - pstart), pos)
        tx, ty = tx[order], ty[order]
    keep = ok[per_point_ring]
    part = per_point_ring[keep]
    return tx[keep], ty[keep], part, pfeat[rpoly[ring_ids]]


def _lines(
    geoms: NDArray[np.object_], feat: NDArray[np.int64], bounds, extent: int
) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """Line parts as quantised paths, repeated points dropped, degenerate parts dropped."""
    lines, lfeat = _explode(geoms, feat, (1, 2))
    xy, line = shapely.get_coordinates(lines, return_index=True)
    tx, ty = _quantise(xy, bounds, extent)
    tx, ty, line = _no_repeats(tx, ty, line)
    n_pts = np.bincount(line, minlength=len(lines))
    ok = n_pts >= 2
    keep = ok[line]
    return tx[keep], ty[keep], line[keep], lfeat


def _path_commands(
    tx: NDArray, ty: NDArray, part: NDArray, part_feat: NDArray, closed: bool
) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
    """MVT command streams of paths: (feature per token, tokens), grouped by feature."""
    if len(part) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
    first = _starts(part)
    ids = part[first]  # the parts present, in order
    n = _lengths(np.flatnonzero(first), len(part))
    feat = part_feat[ids]
    per_part = 2 * n + 2 + int(closed)
    pstart = _before(per_part)
    out = np.zeros(int(per_part.sum()), dtype=np.uint64)
    out[pstart] = _MOVE_TO_1
    out[pstart + 3] = ((n - 1) << 3) | _LINE_TO
    if closed:
        out[pstart + per_part - 1] = _CLOSE_PATH
    # deltas: the cursor starts at (0, 0) for every feature and runs through its parts
    fstart = _starts(feat.repeat(n))
    dx, dy = _delta(tx), _delta(ty)
    dx[fstart] = tx[fstart]
    dy[fstart] = ty[fstart]
    k = np.arange(len(tx)) - np.flatnonzero(first).repeat(n)
    xpos = pstart.repeat(n) + 2 * k + 1 + (k > 0)
    out[xpos] = _zigzag(dx)
    out[xpos + 1] = _zigzag(dy)
    return feat.repeat(per_part), out


def _point_commands(
    geoms: NDArray[np.object_], feat: NDArray[np.int64], bounds, extent: int
) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
    pts, pfeat = _explode(geoms, feat, (0,))
    if len(pts) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
    xy = shapely.get_coordinates(pts)
    tx, ty = _quantise(xy, bounds, extent)
    first = _starts(pfeat)
    m = _lengths(np.flatnonzero(first), len(pfeat))
    per_feat = 1 + 2 * m
    fstart = _before(per_feat)
    out = np.zeros(int(per_feat.sum()), dtype=np.uint64)
    out[fstart] = (m << 3) | 1
    dx, dy = _delta(tx), _delta(ty)
    dx[first] = tx[first]
    dy[first] = ty[first]
    k = np.arange(len(tx)) - np.flatnonzero(first).repeat(m)
    xpos = fstart.repeat(m) + 1 + 2 * k
    out[xpos] = _zigzag(dx)
    out[xpos + 1] = _zigzag(dy)
    return pfeat[first].repeat(per_feat), out


def _geometry_commands(
    kind: str, geoms: NDArray[np.object_], bounds, extent: int
) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
    """(feature index per token, command tokens) of clipped geometries in Web Mercator."""
    feat = np.arange(len(geoms))
    if kind == "point":
        return _point_commands(geoms, feat, bounds, extent)
    if kind == "polygon":
        tx, ty, part, pfeat = _rings(geoms, feat, bounds, extent)
        return _path_commands(tx, ty, part, pfeat, closed=True)
    tx, ty, part, pfeat = _lines(geoms, feat, bounds, extent)
    return _path_commands(tx, ty, part, pfeat, closed=False)


def encode_layer(
    name: str,
    kind: str,
    geoms: NDArray[np.object_],
    bounds: tuple[float, float, float, float],
    fids: NDArray[np.int64],
    attrs: Attributes,
    rows: NDArray[np.int64],
    extent: int = EXTENT,
) -> bytes:
    """One MVT ``Layer`` (wrapped as field 3 of ``Tile``); b"" when no feature survives.

    ``geoms`` are Web Mercator geometries already clipped to the buffered tile; ``bounds`` is
    the tile's Web Mercator bounds; ``fids`` the feature ids and ``rows`` the attribute rows.
    """
    token_feat, geom = _geometry_commands(kind, geoms, bounds, extent)
    if len(geom) == 0:
        return b""
    first = _starts(token_feat)  # tokens are grouped by feature, in order
    present = token_feat[first]  # features with geometry left
    if len(present) <= _FEW:
        at = np.flatnonzero(first)
        features, used = _few_features(fids[present], attrs.codes[rows[present]], kind, geom, at)
        return _layer_message(name, features, attrs, used, extent)
    local = np.cumsum(first) - 1
    used, tags, tag_feat = _feature_tags(attrs.codes[rows[present]])
    stream = _feature_stream(
        fids[present].astype(np.uint64), _TYPE[kind], (tags, tag_feat), (geom, local)
    )
    return _layer_message(name, _varints(stream), attrs, used, extent)


def _vint(v: int) -> bytes:
    return _BYTE[v] if v < 128 else _varint(v)


_BYTE = [bytes((i,)) for i in range(128)]


def _few_features(
    fid: NDArray[np.int64],
    codes: NDArray[np.int64],
    kind: str,
    geom: NDArray[np.uint64],
    at: NDArray[np.int64],
) -> tuple[bytes, list[int]]:
    """The ``Feature`` messages of a few features, built in Python (the bytes `_feature_tags`
    and `_feature_stream` give): feature i has value codes ``codes[i]`` and the geometry
    tokens ``geom[at[i]:at[i + 1]]``. Returns them and the value indexes used (ascending)."""
    glens = _varint_len(geom)
    raw = _varints(geom, glens)
    cum = np.zeros(len(glens) + 1, dtype=np.int64)
    np.cumsum(glens, out=cum[1:])
    edges = [*cum[at].tolist(), int(cum[-1])]
    rows = codes.tolist()
    used = sorted({c for row in rows for c in row if c >= 0})
    index = {c: i for i, c in enumerate(used)}
    head = b"\x18" + _BYTE[_TYPE[kind]] + b"\x22"
    out = []
    for i, (f, row) in enumerate(zip(fid.tolist(), rows, strict=True)):
        tags = b"".join([_vint(j) + _vint(index[c]) for j, c in enumerate(row) if c >= 0])
        g = raw[edges[i] : edges[i + 1]]
        body = b"\x08" + _vint(f) + b"\x12" + _vint(len(tags)) + tags + head + _vint(len(g)) + g
        out.append(b"\x12" + _vint(len(body)) + body)
    return b"".join(out), used


def _feature_tags(
    codes: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.uint64], NDArray[np.int64]]:
    """The tags of the features whose value codes are ``codes``: pairs (key index, value index)
    of the fields that have a value. Returns the global value indexes used (in order, the
    layer's value table), the tag tokens (feature-major) and the feature of each token."""
    used = np.unique(codes[codes >= 0])
    vidx = np.searchsorted(used, codes)
    has = codes >= 0
    feat, key = np.nonzero(has)  # feature-major
    tags = np.empty(2 * len(feat), dtype=np.uint64)
    tags[0::2] = key
    tags[1::2] = vidx[feat, key]
    tag_feat = feat.repeat(2)
    return used, tags, tag_feat


def _feature_stream(
    fid: NDArray[np.uint64],
    ftype: int,
    tagged: tuple[NDArray[np.uint64], NDArray[np.int64]],
    drawn: tuple[NDArray[np.uint64], NDArray[np.int64]],
) -> NDArray[np.uint64]:
    """The ``Feature`` messages as one varint stream, a run per feature:
    0x12 len | 0x08 id | 0x12 tlen tags | 0x18 type | 0x22 glen geom.

    ``tagged`` is (tag tokens, feature of each) and ``drawn`` (geometry tokens, feature of
    each), features numbered 0..len(fid)-1."""
    (tags, tag_feat), (geom, local) = tagged, drawn
    nf = len(fid)
    # byte lengths of the packed fields
    gbytes = np.bincount(local, weights=_varint_len(geom), minlength=nf).astype(np.int64)
    tbytes = np.bincount(tag_feat, weights=_varint_len(tags), minlength=nf).astype(np.int64)
    ntok_g = np.bincount(local, minlength=nf)
    ntok_t = np.bincount(tag_feat, minlength=nf)
    flen = (
        1
        + _varint_len(fid)
        + 1
        + _varint_len(tbytes.astype(np.uint64))
        + tbytes
        + 2
        + 1
        + _varint_len(gbytes.astype(np.uint64))
        + gbytes
    )
    per = 10 + ntok_t + ntok_g
    fs = _before(per)
    out = np.zeros(int(per.sum()), dtype=np.uint64)
    out[fs] = 0x12  # the head of each feature: 0x12 len 0x08 id 0x12 tlen
    out[fs + 2] = 0x08
    out[fs + 4] = 0x12
    out[fs + 1] = flen.astype(np.uint64)
    out[fs + 3] = fid
    out[fs + 5] = tbytes.astype(np.uint64)
    tstart = _before(ntok_t)
    out[fs[tag_feat] + 6 + (np.arange(len(tags)) - tstart[tag_feat])] = tags
    mid = fs + 6 + ntok_t
    out[mid] = 0x18
    out[mid + 1] = ftype
    out[mid + 2] = 0x22
    out[mid + 3] = gbytes.astype(np.uint64)
    gstart = _before(ntok_g)
    out[mid[local] + 4 + (np.arange(len(geom)) - gstart[local])] = geom
    return out


def _layer_message(
    name: str, features: bytes, attrs: Attributes, used: NDArray[np.int64], extent: int
) -> bytes:
    """The ``Layer`` message around encoded ``features`` (field 3 of ``Tile``): version, name,
    the keys, the ``used`` values of ``attrs`` and the extent."""
    raw_name = name.encode()
    keys = attrs.key_bytes
    values = attrs.values.take(used)
    body = (
        b"\x78\x02"  # version = 2
        + b"\x0a"
        + _varint(len(raw_name))
        + raw_name
        + features
        + keys
        + values
        + b"\x28"
        + _varint(extent)
    )
    return b"\x1a" + _varint(len(body)) + body
