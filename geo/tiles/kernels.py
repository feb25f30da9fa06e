"""The loops of MVT encoding, compiled with numba: per point (repeated points dropped,
collapsed rings dropped, rings wound as MVT wants, commands, zigzag deltas, varints) and per
feature (tags and ``Feature`` messages, the ``Layer`` around them).

Pure functions of numpy arrays; `geo.tiles.encoding_small` gives them shapely geometry and
turns their arrays into bytes. They give the bytes `geo.tiles.encoding` gives with numpy
calls (tested), without its fixed cost of some hundred calls per layer, which is most of a
tile of a few features. Compiled on first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_MOVE_TO_1 = 9
_CLOSE_PATH = 15


@njit(cache=True, nogil=True)
def _put(buf, at, v):
    """Write the varint of non-negative v at ``buf[at]``; where the next byte goes."""
    while v >= 128:
        buf[at] = (v & 127) | 128
        v >>= 7
        at += 1
    buf[at] = v
    return at + 1


@njit(cache=True, nogil=True)
def _zig(v):
    """Zigzag: 0, -1, 1, -2... → 0, 1, 2, 3..."""
    return (v << 1) ^ (v >> 63)


@njit(cache=True, nogil=True)
def _len(v):
    """Bytes of the varint of non-negative v."""
    n = 1
    while v >= 128:
        v >>= 7
        n += 1
    return n


@njit(cache=True, nogil=True)
def _runs(group, n):
    """Where each of n groups starts in ``group`` (ascending ids): run g is
    ``starts[g]:starts[g + 1]``."""
    starts = np.zeros(n + 1, dtype=np.int64)
    for g in group:
        starts[g + 1] += 1
    for g in range(n):
        starts[g + 1] += starts[g]
    return starts


@njit(cache=True, nogil=True)
def _distinct(tx, ty, a, b, xs, ys):
    """Copy points a..b-1 of (tx, ty) to (xs, ys) without those equal to the point before;
    how many are left."""
    m = 0
    for k in range(a, b):
        if m == 0 or tx[k] != xs[m - 1] or ty[k] != ys[m - 1]:
            xs[m], ys[m] = tx[k], ty[k]
            m += 1
    return m


@njit(cache=True, nogil=True)
def _area2(xs, ys, m):
    """Twice the signed area of the ring of the first m points (tile units, y down)."""
    area = 0
    if m >= 3:
        x0, y0 = xs[m - 1], ys[m - 1]
        for k in range(m):
            area += x0 * ys[k] - xs[k] * y0
            x0, y0 = xs[k], ys[k]
    return area


@njit(cache=True, nogil=True)
def _path(buf, pos, xs, ys, m, reverse, cx, cy):
    """Write a path of the first m points (last to first if ``reverse``): ``MoveTo`` its first
    point, ``LineTo`` the others, as zigzag deltas from the cursor (cx, cy). Returns where
    the next byte goes and the cursor."""
    first = m - 1 if reverse else 0
    buf[pos] = _MOVE_TO_1
    pos = _put(buf, pos + 1, _zig(xs[first] - cx))
    pos = _put(buf, pos, _zig(ys[first] - cy))
    pos = _put(buf, pos, ((m - 1) << 3) | 2)
    cx, cy = xs[first], ys[first]
    for i in range(1, m):
        k = m - 1 - i if reverse else i
        pos = _put(buf, pos, _zig(xs[k] - cx))
        pos = _put(buf, pos, _zig(ys[k] - cy))
        cx, cy = xs[k], ys[k]
    return pos, cx, cy


@njit(cache=True, nogil=True)
def _switch(span, feat, f, pos):
    """Close feature ``feat``'s bytes (none: -1) and open feature f's at ``pos``."""
    if feat >= 0:
        span[feat, 1] = pos
    span[f, 0] = pos


@njit(cache=True, nogil=True)
def line_geometry(tx, ty, part, part_feat, nfeat):
    """``geometry`` bytes per feature of line parts: points (tx, ty) in tile units, the part
    of each point (ascending) and the feature of each part (ascending). Repeated points are
    dropped, and parts left with fewer than two. Returns the bytes and each feature's (start,
    end) in them (start = end: it draws nothing)."""
    n, nparts = len(tx), len(part_feat)
    buf = np.empty(20 * n + 32 * nparts + 16, dtype=np.uint8)
    span = np.zeros((nfeat, 2), dtype=np.int64)
    starts = _runs(part, nparts)
    xs, ys = np.empty(n + 1, dtype=np.int64), np.empty(n + 1, dtype=np.int64)
    pos, feat, cx, cy = 0, -1, 0, 0
    for p in range(nparts):
        m = _distinct(tx, ty, starts[p], starts[p + 1], xs, ys)
        if m < 2:
            continue
        f = part_feat[p]
        if f != feat:
            _switch(span, feat, f, pos)
            feat, cx, cy = f, 0, 0  # the cursor starts at the corner in every feature
        pos, cx, cy = _path(buf, pos, xs, ys, m, False, cx, cy)
    if feat >= 0:
        span[feat, 1] = pos
    return buf[:pos], span


@njit(cache=True, nogil=True)
def ring_geometry(tx, ty, ring, ring_poly, poly_feat, nfeat):
    """``geometry`` bytes per feature of polygon rings: points (tx, ty) in tile units, the
    ring of each point (ascending), the polygon of each ring (each polygon's exterior first)
    and the feature of each polygon (ascending). Repeated and closing points are dropped,
    rings of no area dropped (a polygon whose exterior collapses goes with its holes);
    exteriors wind with positive area (y down), holes negative. Returns as `line_geometry`."""
    n, nrings = len(tx), len(ring_poly)
    buf = np.empty(20 * n + 32 * nrings + 16, dtype=np.uint8)
    span = np.zeros((nfeat, 2), dtype=np.int64)
    starts = _runs(ring, nrings)
    xs, ys = np.empty(n + 1, dtype=np.int64), np.empty(n + 1, dtype=np.int64)
    pos, feat, cx, cy, poly_ok = 0, -1, 0, 0, False
    for r in range(nrings):
        m = _distinct(tx, ty, starts[r], starts[r + 1], xs, ys)
        if m > 1 and xs[m - 1] == xs[0] and ys[m - 1] == ys[0]:
            m -= 1  # the closing point
        area = _area2(xs, ys, m)
        exterior = r == 0 or ring_poly[r - 1] != ring_poly[r]
        if exterior:
            poly_ok = area != 0
        if area == 0 or not poly_ok:
            continue
        f = poly_feat[ring_poly[r]]
        if f != feat:
            _switch(span, feat, f, pos)
            feat, cx, cy = f, 0, 0
        pos, cx, cy = _path(buf, pos, xs, ys, m, (area > 0) != exterior, cx, cy)
        buf[pos] = _CLOSE_PATH
        pos += 1
    if feat >= 0:
        span[feat, 1] = pos
    return buf[:pos], span


@njit(cache=True, nogil=True)
def point_geometry(tx, ty, point_feat, nfeat):
    """``geometry`` bytes per feature of points (tx, ty), the feature of each (ascending): one
    ``MoveTo`` of all a feature's points. Returns as `line_geometry`."""
    n = len(tx)
    buf = np.empty(20 * n + 16 * nfeat + 16, dtype=np.uint8)
    span = np.zeros((nfeat, 2), dtype=np.int64)
    starts = _runs(point_feat, nfeat)
    pos = 0
    for f in range(nfeat):
        a, b = starts[f], starts[f + 1]
        if a == b:
            continue
        span[f, 0], px, py = pos, 0, 0
        pos = _put(buf, pos, ((b - a) << 3) | 1)
        for k in range(a, b):
            pos = _put(buf, pos, _zig(tx[k] - px))
            pos = _put(buf, pos, _zig(ty[k] - py))
            px, py = tx[k], ty[k]
        span[f, 1] = pos
    return buf[:pos], span


@njit(cache=True, nogil=True)
def _used(codes, gspan):
    """The value codes the features that draw use (ascending: the tile's value table)."""
    nf, nk = codes.shape
    present = np.empty(nf * nk, dtype=np.int64)
    m = 0
    for i in range(nf):
        if gspan[i, 1] > gspan[i, 0]:
            for j in range(nk):
                if codes[i, j] >= 0:
                    present[m] = codes[i, j]
                    m += 1
    return np.unique(present[:m])


@njit(cache=True, nogil=True)
def _tags(codes, used, i, out, pos):
    """Write feature i's tags (key index, value index of each field that has a value) at
    ``out[pos]`` (``out`` None: only count); where the next byte goes."""
    for j in range(codes.shape[1]):
        c = codes[i, j]
        if c >= 0:
            v = np.searchsorted(used, c)
            if out is None:
                pos += _len(j) + _len(v)
            else:
                pos = _put(out, _put(out, pos, j), v)
    return pos


@njit(cache=True, nogil=True)
def layer(head, ftype, fids, codes, gbuf, gspan, keys, vbuf, voff, tail):
    """The ``Layer`` message (field 3 of ``Tile``) of a tile's features: feature i has id
    ``fids[i]``, value codes ``codes[i]`` (-1: no value) and the geometry bytes
    ``gbuf[gspan[i, 0]:gspan[i, 1]]`` (none: left out). ``head`` is the layer's version and
    name, ``keys`` its encoded keys, ``vbuf``/``voff`` every value encoded (value c is
    ``vbuf[voff[c]:voff[c + 1]]``), ``tail`` its extent. Values are the tile's own table:
    those its features use, in the order of their codes. Empty when no feature draws."""
    nf = len(fids)
    glen = gspan[:, 1] - gspan[:, 0]
    if not (glen > 0).any():
        return np.empty(0, dtype=np.uint8)
    used = _used(codes, gspan)
    tlen, blen = np.zeros(nf, dtype=np.int64), np.zeros(nf, dtype=np.int64)
    body = len(head) + len(keys) + len(tail)
    for i in range(nf):
        if glen[i] > 0:
            tlen[i] = _tags(codes, used, i, None, 0)
            blen[i] = 2 + _len(fids[i]) + _len(tlen[i]) + tlen[i] + 3 + _len(glen[i]) + glen[i]
            body += 1 + _len(blen[i]) + blen[i]
    for c in used:
        body += voff[c + 1] - voff[c]
    out = np.empty(1 + _len(body) + body, dtype=np.uint8)
    out[0] = 0x1A
    pos = _put(out, 1, body)
    out[pos : pos + len(head)] = head
    pos += len(head)
    for i in range(nf):  # Feature: 0x12 len | 0x08 id | 0x12 tlen tags | 0x18 type | 0x22 glen geom
        if glen[i] > 0:
            out[pos] = 0x12
            pos = _put(out, pos + 1, blen[i])
            out[pos] = 0x08
            pos = _put(out, pos + 1, fids[i])
            out[pos] = 0x12
            pos = _tags(codes, used, i, out, _put(out, pos + 1, tlen[i]))
            out[pos], out[pos + 1], out[pos + 2] = 0x18, ftype, 0x22
            pos = _put(out, pos + 3, glen[i])
            out[pos : pos + glen[i]] = gbuf[gspan[i, 0] : gspan[i, 1]]
            pos += glen[i]
    out[pos : pos + len(keys)] = keys
    pos += len(keys)
    for c in used:
        out[pos : pos + voff[c + 1] - voff[c]] = vbuf[voff[c] : voff[c + 1]]
        pos += voff[c + 1] - voff[c]
    out[pos : pos + len(tail)] = tail
    return out


@njit(cache=True, nogil=True)
def tile_geometry(table, tails, hit, whole, ox, oy, cbuf, cspan):
    """``geometry`` bytes of a tile's features ``hit`` (positions in a zoom layer encoded at
    version build, `geo.tiles.drawn`): those the tile holds ``whole`` from their ``table`` row
    (x0, y0, start, end) and tail in ``tails``, in a tile whose corner is at grid position
    (ox, oy); the others, in order, as encoded after clipping (``cbuf``, ``cspan``).
    Returns as `line_geometry`, by position in ``hit``."""
    n = len(hit)
    size = len(cbuf)
    for i in range(n):
        if whole[i]:
            size += table[hit[i], 3] - table[hit[i], 2] + 21
    buf = np.empty(size, dtype=np.uint8)
    span = np.zeros((n, 2), dtype=np.int64)
    pos, k = 0, 0
    for i in range(n):
        if whole[i]:
            f = hit[i]
            start, end = table[f, 2], table[f, 3]
            if end <= start:
                continue
            span[i, 0] = pos
            buf[pos] = _MOVE_TO_1
            pos = _put(buf, pos + 1, _zig(table[f, 0] - ox))
            pos = _put(buf, pos, _zig(table[f, 1] - oy))
        else:
            start, end = cspan[k, 0], cspan[k, 1]
            k += 1
            if end <= start:
                continue
            span[i, 0] = pos
        src = tails if whole[i] else cbuf
        buf[pos : pos + end - start] = src[start:end]
        pos += end - start
        span[i, 1] = pos
    return buf[:pos], span
