"""Mapbox Vector Tiles 2.1 from the atlas: tile math, per-zoom simplification, encoder, PMTiles.

No HTTP here: `TileSource` turns one atlas into tiles, `write_pmtiles` writes an archive.

* **Tile math**: XYZ tiles in Web Mercator (EPSG:3857), projected with the closed formula.
  A tile has `EXTENT` units a side; geometry is clipped to the tile grown by `BUFFER` units.
* **Simplification**: per (layer, zoom), cached for the atlas. The coverages (streets,
  communities, grids) are simplified as a whole with `shapely.coverage_simplify`, so
  neighbours keep sharing their edges: no gaps, no overlaps at any zoom. Roads and the other
  polygons are simplified per tile, after clipping: simplifying first and clipping after
  moves the point where a line crosses the clip rectangle along that edge by the offset
  divided by the sine of the crossing angle — metres for a road nearly parallel to the edge —
  whereas a clipped piece keeps its exact ends. The tolerance is one 256-px pixel at that
  zoom; above `SIMPLIFY_MAXZOOM` the geometry is served as stored.
* **Points** are thinned below `THIN_BELOW`: the first point (smallest id) of every
  4×4-pixel cell of the world at that zoom is kept, so thinning is deterministic and the same
  on both sides of a tile edge. From `THIN_BELOW` up every point is served.
* **Encoder**: vectorised with numpy. Coordinates are quantised to integers; repeated points
  are dropped, rings that collapse (zero area) are dropped, and rings are wound as MVT wants
  them (exterior rings positive area — clockwise on screen, y down — holes negative). The
  protobuf is written directly (the fields of vector_tile.proto 2.1) as one varint stream.
* **Feature ids** are the 1-based position of the feature in its layer sorted by id, so they
  are stable for a given atlas version; the string ``id`` is an attribute.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mercantile
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from geo.atlas import Atlas
from geo.errors import NotFound
from geo.model import LAYERS
from geo.ownership import NONE

EXTENT = 4096
BUFFER = 64  # tile units the clip rectangle extends past each tile edge
TILE_PX = 256  # the pixel size of a tile on screen, for "one pixel" tolerances
MINZOOM, MAXZOOM = 0, 20
THIN_BELOW = 14  # points are thinned at z < THIN_BELOW (never at z >= 16)
THIN_CELL_PX = 4  # one point per THIN_CELL_PX × THIN_CELL_PX pixels when thinning
SIMPLIFY_MAXZOOM = 16  # geometry is simplified up to this zoom, served as stored above
MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
LAYER_NAMES: tuple[str, ...] = tuple(LAYERS)  # roads streets communities grids parks ...
COVERAGES = frozenset({"streets", "communities", "grids"})

R = 6378137.0
HALF = math.pi * R  # half the width of the Web Mercator world, metres
MAX_LAT = 85.0511287798066

# MVT geometry types (vector_tile.proto GeomType) and command integers.
_TYPE = {"point": 1, "line": 2, "polygon": 3}
_MOVE_TO_1 = (1 << 3) | 1
_CLOSE_PATH = (1 << 3) | 7
_LINE_TO = 2


class TileError(NotFound):
    """A tile address or layer that does not exist; the message says why."""


# --------------------------------------------------------------------------------------------
# Tile math


def check_address(z: int, x: int, y: int, maxzoom: int = MAXZOOM) -> None:
    """Raise `TileError` unless z/x/y is a tile of the pyramid (z in minzoom..maxzoom)."""
    if not MINZOOM <= z <= maxzoom:
        raise TileError(f"zoom {z} is out of range: tiles exist for z = {MINZOOM}..{maxzoom}")
    n = 1 << z
    for name, v in (("x", x), ("y", y)):
        if not 0 <= v < n:
            raise TileError(f"{name} = {v} is out of range at zoom {z}: 0 <= {name} < {n}")


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Web Mercator bounds (minx, miny, maxx, maxy) of a tile, metres."""
    size = 2 * HALF / (1 << z)
    return (-HALF + x * size, HALF - (y + 1) * size, -HALF + (x + 1) * size, HALF - y * size)


def pixel_size(z: int) -> float:
    """Metres (Web Mercator) of one screen pixel of a 256-px tile at zoom z."""
    return 2 * HALF / (TILE_PX * (1 << z))


def to_mercator(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    """WGS84 lon/lat → Web Mercator x/y, metres (latitudes clamped to ±85.0511°)."""
    lat = np.clip(lat, -MAX_LAT, MAX_LAT)
    x = np.radians(lon) * R
    y = np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * R
    return x, y


def to_lonlat(x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    """Web Mercator x/y → WGS84 lon/lat."""
    return np.degrees(x / R), np.degrees(2 * np.arctan(np.exp(y / R)) - np.pi / 2)


def tile_to_lonlat(
    z: int, x: int, y: int, tx: NDArray, ty: NDArray, extent: int = EXTENT
) -> tuple[NDArray, NDArray]:
    """Tile coordinates (y down, 0..extent) of tile z/x/y → WGS84 lon/lat."""
    minx, miny, maxx, maxy = tile_bounds(z, x, y)
    mx = minx + np.asarray(tx, dtype=float) / extent * (maxx - minx)
    my = maxy - np.asarray(ty, dtype=float) / extent * (maxy - miny)
    return to_lonlat(mx, my)


def _project(geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    def fn(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.column_stack(to_mercator(xy[:, 0], xy[:, 1]))

    return shapely.transform(geoms, fn)


def tiles_covering(bounds: Sequence[float], zooms: Iterable[int]) -> list[tuple[int, int, int]]:
    """The (z, x, y) of the tiles that cover lon/lat ``bounds`` at each zoom."""
    w, s, e, n = (float(v) for v in bounds)
    return [(t.z, t.x, t.y) for t in mercantile.tiles(w, s, e, n, zooms=list(zooms))]


# --------------------------------------------------------------------------------------------
# Layers: attributes (per atlas) and geometry (per atlas and zoom)


@dataclass(frozen=True)
class Attributes:
    """The attributes of one layer, encoded once per atlas.

    ``values`` is the layer's table of distinct values, each already encoded as an MVT
    ``Value`` message; ``codes[:, j]`` is the value index of field ``j`` per feature
    (-1: no value).
    """

    keys: tuple[str, ...]
    types: dict[str, str]  # TileJSON field types: String | Number | Boolean
    codes: NDArray[np.int64]  # (n features, n keys)
    values: list[bytes]
    columns: dict[str, Column]  # per field, reusable by the next version if it is unchanged


@dataclass(frozen=True)
class Column:
    """One field encoded: its distinct values as ``Value`` messages and each feature's index
    into them (-1: no value); ``digest`` fingerprints the field's contents."""

    digest: bytes
    codes: NDArray[np.int64]
    values: list[bytes]


@dataclass(frozen=True)
class ZoomLayer:
    """One layer ready for the tiles of one zoom: Web Mercator geometry and its index."""

    name: str
    kind: str  # point | line | polygon
    rows: NDArray[np.int64]  # positions in the layer (sorted by id) of the features kept
    geoms: NDArray[np.object_]  # Web Mercator; coverages simplified for the zoom
    tree: shapely.STRtree
    tolerance: float = 0.0  # simplify each tile's clipped pieces by this much (0: not at all)


def _counts(owners: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    hit = owners[owners != NONE]
    return np.bincount(hit, minlength=n)[:n]


def _attribute_frame(atlas: Atlas, name: str) -> pd.DataFrame:
    """The fields served for each layer, including counts that make maps useful."""
    t = atlas.tables[name].reset_index(drop=True)
    ent = atlas.enterprises
    n = len(t)
    if name == "roads":
        return t[["id", "name", "class"]]
    if name == "streets":
        out = t[["id", "name", "code"]].copy()
        comm = atlas.tables["communities"]
        out["communities"] = np.bincount(
            pd.Index(t["id"]).get_indexer(comm["street_id"]) + 1, minlength=n + 1
        )[1:]
        out["enterprises"] = _counts(ent["_street"].to_numpy(), n)
        return out
    if name == "communities":
        out = t[["id", "name", "code", "street_id", "type", "mode"]].copy()
        grid_owner = pd.Index(t["id"]).get_indexer(atlas.tables["grids"]["community_id"])
        out["grids"] = np.bincount(grid_owner + 1, minlength=n + 1)[1:]
        out["enterprises"] = _counts(ent["_community"].to_numpy(), n)
        return out
    if name == "grids":
        out = t[["id", "name", "code", "community_id"]].copy()
        out["enterprises"] = _counts(ent["_grid"].to_numpy(), n)
        return out
    if name == "parks":
        out = t[["id", "name", "code", "grid_id"]].copy()
        b_owner = pd.Index(t["id"]).get_indexer(atlas.tables["buildings"]["park_id"].fillna(""))
        out["buildings"] = np.bincount(b_owner + 1, minlength=n + 1)[1:]
        micro = atlas.levels["microgrid"].table["id"]
        owner = ent["_microgrid"].to_numpy()
        park_of_micro = pd.Index(t["id"]).get_indexer(micro)
        pos = np.where(owner != NONE, park_of_micro[np.maximum(owner, 0)], -1)
        out["enterprises"] = np.bincount(pos + 1, minlength=n + 1)[1:]
        return out
    if name == "buildings":
        out = t[["id", "name", "code", "kind", "grid_id", "park_id", "floors"]].copy()
        pts = shapely.points(ent["lon"].to_numpy(), ent["lat"].to_numpy())
        hits = shapely.STRtree(t.geometry.values).query(pts, predicate="within")
        out["enterprises"] = np.bincount(hits[1], minlength=n)[:n]
        return out
    if name == "enterprises":
        e = ent.reset_index(drop=True)
        out = e[["id", "name", "credit_code", "chain", "employees"]].copy()
        for level in ("street", "community", "grid", "microgrid"):
            out[f"{level}_id"] = atlas.ids_of(level, e[f"_{level}"].to_numpy())
        return out
    raise TileError(unknown_layer(name))


def _field_type(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "Boolean"
    if pd.api.types.is_numeric_dtype(series):
        return "Number"
    return "String"


def _encode_value(v: Any) -> bytes:
    """One MVT ``Value`` message (string, int, sint, double or bool)."""
    if isinstance(v, str):
        raw = v.encode("utf-8")
        body = b"\x0a" + _varint(len(raw)) + raw
    elif isinstance(v, bool):
        body = b"\x38" + (b"\x01" if v else b"\x00")
    elif isinstance(v, int):
        body = b"\x20" + _varint(v) if v >= 0 else b"\x30" + _varint((v << 1) ^ (v >> 63))
    else:
        body = b"\x19" + np.float64(v).tobytes()
    return b"\x22" + _varint(len(body)) + body


def _plain(v: Any, kind: str) -> Any:
    """A Python value for the encoder, or None when missing (None, NaN, empty string)."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    if kind == "Boolean":
        return bool(v)
    if kind == "Number":
        f = float(v)
        if math.isnan(f):
            return None
        return int(f) if f.is_integer() else f
    s = str(v)
    return s or None


def _digest(series: pd.Series, kind: str) -> bytes:
    hashes = pd.util.hash_pandas_object(series, index=False).to_numpy()
    return hashlib.blake2b(hashes.tobytes() + kind.encode(), digest_size=16).digest()


def _encode_column(series: pd.Series, kind: str, digest: bytes) -> Column:
    """Encode each distinct value of a field once (not once per feature)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)  # missing: -1
    table: dict[tuple[type, Any], int] = {}
    values: list[bytes] = []
    remap = np.full(len(uniques) + 1, -1, dtype=np.int64)  # remap[-1]: missing stays -1
    for i, u in enumerate(uniques.tolist()):
        v = _plain(u, kind)
        if v is None:
            continue
        key = (type(v), v)
        if key not in table:
            table[key] = len(values)
            values.append(_encode_value(v))
        remap[i] = table[key]
    return Column(digest, remap[codes], values)


def build_attributes(frame: pd.DataFrame, previous: Attributes | None = None) -> Attributes:
    """Encode a layer's fields; a field whose contents equal ``previous``'s is reused."""
    *_, attrs = attributes_in_steps(frame, previous)
    return attrs


def attributes_in_steps(
    frame: pd.DataFrame, previous: Attributes | None = None
) -> Iterator[Attributes | None]:
    """`build_attributes` a field at a time: None between steps, the attributes last."""
    keys = tuple(frame.columns)
    types = {k: _field_type(frame[k]) for k in keys}
    columns: dict[str, Column] = {}
    for k in keys:
        digest = _digest(frame[k], types[k])
        old = previous.columns.get(k) if previous is not None else None
        columns[k] = (
            old
            if old is not None and old.digest == digest
            else (_encode_column(frame[k], types[k], digest))
        )
        yield None
    # one table of distinct values in canonical order (by encoded bytes), so that a tile's
    # value table depends on its own features only
    values = sorted({v for c in columns.values() for v in c.values})
    position = {v: i for i, v in enumerate(values)}
    yield None
    codes = np.full((len(frame), len(keys)), -1, dtype=np.int64)
    for j, k in enumerate(keys):
        c = columns[k]
        to_global = np.array([position[v] for v in c.values] + [-1], dtype=np.int64)
        codes[:, j] = to_global[c.codes]
    yield Attributes(keys, types, codes, values, columns)


def _tolerance(z: int) -> float:
    """Simplification tolerance at zoom z, metres: a pixel, or 0 above `SIMPLIFY_MAXZOOM`."""
    return pixel_size(z) if z <= SIMPLIFY_MAXZOOM else 0.0


def _thin(geoms: NDArray[np.object_], z: int) -> NDArray[np.int64]:
    """Positions of the points kept at zoom z: the first of each 4×4-pixel cell of the world."""
    if z >= THIN_BELOW or len(geoms) == 0:
        return np.arange(len(geoms))
    cell = pixel_size(z) * THIN_CELL_PX
    x, y = shapely.get_x(geoms), shapely.get_y(geoms)
    ok = np.isfinite(x) & np.isfinite(y)
    cx = np.floor((x + HALF) / cell)
    cy = np.floor((HALF - y) / cell)
    key = np.where(ok, cx * (1 << 32) + cy, -1.0)
    _, first = np.unique(key, return_index=True)  # np.unique: first occurrence per cell
    first = np.sort(first)
    return first[ok[first]]


# --------------------------------------------------------------------------------------------
# The encoder


def _varint_len(v: NDArray[np.uint64]) -> NDArray[np.int64]:
    n = np.ones(len(v), dtype=np.int64)
    for k in range(1, 10):
        n += v >= np.uint64(1 << (7 * k))
    return n


def _varints(v: NDArray[np.uint64], lens: NDArray[np.int64] | None = None) -> bytes:
    """Protobuf varints of non-negative integers, concatenated (vectorised)."""
    v = np.asarray(v, dtype=np.uint64)
    if lens is None:
        lens = _varint_len(v)
    width = int(lens.max()) if len(v) else 1
    shifts = (np.arange(width, dtype=np.uint64) * np.uint64(7))[None, :]
    groups = (v[:, None] >> shifts) & np.uint64(0x7F)
    k = np.arange(width)[None, :]
    more = k < (lens[:, None] - 1)
    groups |= np.where(more, np.uint64(0x80), np.uint64(0))
    return groups[k < lens[:, None]].astype(np.uint8).tobytes()


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


def _zigzag(v: NDArray[np.int64]) -> NDArray[np.uint64]:
    return ((v << 1) ^ (v >> 63)).astype(np.uint64)


def _starts(group: NDArray[np.int64]) -> NDArray[np.bool_]:
    """True where a new group starts in a grouped (sorted) array."""
    out = np.ones(len(group), dtype=bool)
    out[1:] = group[1:] != group[:-1]
    return out


def _explode(
    geoms: NDArray[np.object_], owner: NDArray[np.int64], type_ids: tuple[int, ...]
) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """Simple parts (of the given shapely type ids) of geoms, with their owner feature."""
    while True:
        t = shapely.get_type_id(geoms)
        multi = (t >= 4) & (t <= 7)
        if not multi.any():
            break
        geoms, ix = shapely.get_parts(geoms, return_index=True)
        owner = owner[ix]
    keep = np.isin(shapely.get_type_id(geoms), type_ids) & ~shapely.is_empty(geoms)
    return geoms[keep], owner[keep]


def _quantise(
    xy: NDArray[np.float64], bounds: tuple[float, float, float, float], extent: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    minx, miny, maxx, maxy = bounds
    tx = np.rint((xy[:, 0] - minx) * (extent / (maxx - minx))).astype(np.int64)
    ty = np.rint((maxy - xy[:, 1]) * (extent / (maxy - miny))).astype(np.int64)
    return tx, ty


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
    last = np.ones(len(ring), dtype=bool)
    last[:-1] = ring[1:] != ring[:-1]
    keep = ~last  # drop the closing point
    tx, ty, ring = tx[keep], ty[keep], ring[keep]
    start = _starts(ring)
    keep = start | (tx != np.roll(tx, 1)) | (ty != np.roll(ty, 1))
    tx, ty, ring = tx[keep], ty[keep], ring[keep]
    # after dropping repeats a ring may end on its first point: drop that point too
    first_of = np.flatnonzero(_starts(ring))
    end = np.append(first_of[1:], len(ring)) - 1
    dup = (end > first_of) & (tx[end] == tx[first_of]) & (ty[end] == ty[first_of])
    keep = np.ones(len(ring), dtype=bool)
    keep[end[dup]] = False
    tx, ty, ring = tx[keep], ty[keep], ring[keep]
    # signed area (surveyor's formula, tile coordinates y down) of every ring
    s = _starts(ring)
    first_of = np.flatnonzero(s)
    n_pts = np.diff(np.append(first_of, len(ring)))
    nxt = np.arange(1, len(ring) + 1)
    nxt[np.append(first_of[1:], len(ring)) - 1] = first_of
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
    # reverse the rings that wind the wrong way
    per_point_ring = np.repeat(np.arange(len(first_of)), n_pts)
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
    keep = _starts(line) | (tx != np.roll(tx, 1)) | (ty != np.roll(ty, 1))
    tx, ty, line = tx[keep], ty[keep], line[keep]
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
    n = np.diff(np.append(np.flatnonzero(first), len(part)))
    feat = part_feat[ids]
    per_part = 2 * n + 2 + int(closed)
    pstart = np.concatenate(([0], np.cumsum(per_part)[:-1]))
    out = np.zeros(int(per_part.sum()), dtype=np.uint64)
    out[pstart] = _MOVE_TO_1
    out[pstart + 3] = ((n - 1) << 3) | _LINE_TO
    if closed:
        out[pstart + per_part - 1] = _CLOSE_PATH
    # deltas: the cursor starts at (0, 0) for every feature and runs through its parts
    pfeat = np.repeat(feat, n)
    fstart = _starts(pfeat)
    dx = np.diff(tx, prepend=0)
    dy = np.diff(ty, prepend=0)
    dx[fstart] = tx[fstart]
    dy[fstart] = ty[fstart]
    k = np.arange(len(tx)) - np.repeat(np.flatnonzero(first), n)
    xpos = np.repeat(pstart, n) + 2 * k + 1 + (k > 0)
    out[xpos] = _zigzag(dx)
    out[xpos + 1] = _zigzag(dy)
    return np.repeat(feat, per_part), out


def _point_commands(
    geoms: NDArray[np.object_], feat: NDArray[np.int64], bounds, extent: int
) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
    pts, pfeat = _explode(geoms, feat, (0,))
    if len(pts) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
    xy = shapely.get_coordinates(pts)
    tx, ty = _quantise(xy, bounds, extent)
    first = _starts(pfeat)
    m = np.diff(np.append(np.flatnonzero(first), len(pfeat)))
    per_feat = 1 + 2 * m
    fstart = np.concatenate(([0], np.cumsum(per_feat)[:-1]))
    out = np.zeros(int(per_feat.sum()), dtype=np.uint64)
    out[fstart] = (m << 3) | 1
    dx = np.diff(tx, prepend=0)
    dy = np.diff(ty, prepend=0)
    dx[first] = tx[first]
    dy[first] = ty[first]
    k = np.arange(len(tx)) - np.repeat(np.flatnonzero(first), m)
    xpos = np.repeat(fstart, m) + 1 + 2 * k
    out[xpos] = _zigzag(dx)
    out[xpos + 1] = _zigzag(dy)
    return np.repeat(pfeat[first], per_feat), out


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
    present = np.unique(token_feat)  # features with geometry left, in order
    local = np.searchsorted(present, token_feat)
    nf = len(present)
    # tags: pairs (key index, value index) of the fields that have a value
    codes = attrs.codes[rows[present]]
    used = np.unique(codes[codes >= 0])
    vidx = np.searchsorted(used, codes)
    has = codes >= 0
    key_idx = np.broadcast_to(np.arange(codes.shape[1]), codes.shape)
    pairs = np.stack([key_idx, vidx], axis=2)[has]  # (n tags, 2), feature-major
    tags = pairs.reshape(-1).astype(np.uint64)
    tag_feat = np.repeat(np.nonzero(has)[0], 2)
    # byte lengths of the packed fields
    glen = _varint_len(geom)
    tlen = _varint_len(tags)
    gbytes = np.bincount(local, weights=glen, minlength=nf).astype(np.int64)
    tbytes = np.bincount(tag_feat, weights=tlen, minlength=nf).astype(np.int64)
    ntok_g = np.bincount(local, minlength=nf)
    ntok_t = np.bincount(tag_feat, minlength=nf)
    fid = fids[present].astype(np.uint64)
    ftype = _TYPE[kind]
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
    # a varint stream per feature: 0x12 len | 0x08 id | 0x12 tlen tags | 0x18 type | 0x22 glen geom
    per = 10 + ntok_t + ntok_g
    fs = np.concatenate(([0], np.cumsum(per)[:-1]))
    out = np.zeros(int(per.sum()), dtype=np.uint64)
    head = np.array([0x12, 0, 0x08, 0, 0x12, 0], dtype=np.uint64)
    for i, v in enumerate(head):
        out[fs + i] = v
    out[fs + 1] = flen.astype(np.uint64)
    out[fs + 3] = fid
    out[fs + 5] = tbytes.astype(np.uint64)
    tstart = np.concatenate(([0], np.cumsum(ntok_t)[:-1]))
    out[fs[tag_feat] + 6 + (np.arange(len(tags)) - tstart[tag_feat])] = tags
    mid = fs + 6 + ntok_t
    out[mid] = 0x18
    out[mid + 1] = ftype
    out[mid + 2] = 0x22
    out[mid + 3] = gbytes.astype(np.uint64)
    gstart = np.concatenate(([0], np.cumsum(ntok_g)[:-1]))
    out[mid[local] + 4 + (np.arange(len(geom)) - gstart[local])] = geom
    features = _varints(out)
    raw_name = name.encode()
    keys = b"".join(b"\x1a" + _varint(len(k)) + k for k in (s.encode() for s in attrs.keys))
    values = b"".join(attrs.values[i] for i in used.tolist())
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


# --------------------------------------------------------------------------------------------
# The tile source of one atlas


class TileSource:
    """Tiles of one atlas. Per-layer attributes and per-(layer, zoom) geometry are cached here;
    a new atlas version gets a new source (see `source_for`), so edits show at once."""

    def __init__(self, atlas: Atlas, buffer: int = BUFFER, extent: int = EXTENT) -> None:
        self.atlas = atlas
        self.version = atlas.version
        self.buffer = buffer
        self.extent = extent
        self._lock = threading.RLock()
        self._attrs: dict[str, Attributes] = {}
        self._previous: dict[str, Attributes] = {}  # the last version's, see `follow`
        self._hashes: dict[str, NDArray[np.uint64]] = {}
        self._frames: dict[str, pd.DataFrame] = {}
        self._projected: dict[str, NDArray[np.object_]] = {}
        self._zooms: dict[tuple[str, int], ZoomLayer] = {}

    # -- layers ------------------------------------------------------------------------------
    def attributes(self, name: str) -> Attributes:
        attrs = self._attrs.get(name)
        if attrs is None:
            with self._lock:
                attrs = self._attrs.get(name)
                if attrs is None:
                    previous = self._previous.get(name)
                    attrs = build_attributes(self.attribute_frame(name), previous)
                    self._attrs[name] = attrs
                    self._previous.pop(name, None)
        return attrs

    def prepare(self, name: str) -> Iterator[None]:
        """Make the attributes of layer ``name`` a field per step (for a caller that runs
        other work between steps, see `geo.api.tiles.TileCache.carry_over`)."""
        if name in self._attrs:
            return
        attrs = None
        for attrs in attributes_in_steps(self.attribute_frame(name), self._previous.get(name)):
            if attrs is None:
                yield
        with self._lock:
            self._attrs.setdefault(name, attrs)
            self._previous.pop(name, None)

    def follow(self, old: TileSource) -> None:
        """Take over what ``old`` (the previous version's source) made that still holds: the
        geometry of layers whose table is the same (snapshots share unchanged tables), and
        encoded fields, reused where unchanged."""
        self._previous = {**old._previous, **old._attrs, **self._previous}
        with old._lock:
            same = {n for n in LAYERS if old.atlas.tables[n] is self.atlas.tables[n]}
            projected = {n: g for n, g in old._projected.items() if n in same}
            zooms = {k: zl for k, zl in old._zooms.items() if k[0] in same}
        with self._lock:
            self._projected = {**projected, **self._projected}
            self._zooms = {**zooms, **self._zooms}

    def attribute_hashes(self, name: str) -> NDArray[np.uint64]:
        """One hash per feature of the attributes its tiles carry (to compare two atlases)."""
        hashes = self._hashes.get(name)
        if hashes is None:
            hashes = pd.util.hash_pandas_object(self.attribute_frame(name), index=False)
            hashes = self._hashes[name] = hashes.to_numpy()
        return hashes

    def attribute_frame(self, name: str) -> pd.DataFrame:
        """The fields the tiles of layer ``name`` carry, one row per feature (made once)."""
        frame = self._frames.get(name)
        if frame is None:
            frame = self._frames[name] = _attribute_frame(self.atlas, name)
        return frame

    def changed_boxes(self, old: TileSource, name: str, z: int) -> NDArray[np.float64] | None:
        """Web Mercator bounds (k × 4) of the features of layer ``name`` whose zoom-z tile
        encoding differs from ``old``'s (their old and their new shape); None when features
        were added, removed or renumbered, which changes the whole layer.

        A tile of this layer at zoom z that no box touches (clip buffer included) encodes the
        same bytes under both atlases: its features, their simplified shapes and attributes
        are equal.
        """
        ids_old, ids_new = old.atlas.tables[name]["id"], self.atlas.tables[name]["id"]
        if len(ids_old) != len(ids_new) or not np.array_equal(ids_old, ids_new):
            return None
        shapes = []
        layers = (old.layer(name, z), self.layer(name, z))
        for zl in layers:
            g = np.full(len(ids_new), None, dtype=object)
            g[zl.rows] = zl.geoms
            shapes.append(g)
        changed = old.attribute_hashes(name) != self.attribute_hashes(name)
        if layers[0] is not layers[1]:  # not the same geometry (see `follow`)
            changed |= shapely.to_wkb(shapes[0]) != shapely.to_wkb(shapes[1])
        rows = np.flatnonzero(changed)
        boxes = np.vstack([shapely.bounds(shapes[0][rows]), shapely.bounds(shapes[1][rows])])
        return boxes[~np.isnan(boxes).any(axis=1)]

    def fields(self, name: str) -> dict[str, str]:
        """TileJSON field types of a layer: ``{"id": "String", "enterprises": "Number"...}``."""
        return dict(self.attributes(_check_layer(name)).types)

    def projected(self, name: str) -> NDArray[np.object_]:
        geoms = self._projected.get(name)
        if geoms is None:
            geoms = _project(self.atlas.tables[name].geometry.values)
            self._projected[name] = geoms
        return geoms

    def layer(self, name: str, z: int) -> ZoomLayer:
        """The layer at zoom z: simplified (or thinned), indexed; built once per atlas.

        Zooms that serve the same geometry share one entry: points from `THIN_BELOW` up,
        other layers above `SIMPLIFY_MAXZOOM`.
        """
        kind = LAYERS[_check_layer(name)].geometry or "point"
        top = THIN_BELOW if kind == "point" else SIMPLIFY_MAXZOOM + 1
        key = (name, min(z, top))
        zl = self._zooms.get(key)
        if zl is not None:
            return zl
        with self._lock:
            zl = self._zooms.get(key)
            if zl is None:
                zl = self._build_layer(name, kind, key[1])
                self._zooms[key] = zl
        return zl

    def _build_layer(self, name: str, kind: str, z: int) -> ZoomLayer:
        base = self.projected(name)
        tol = 0.0  # points are thinned, never simplified
        if kind == "point":
            rows = _thin(base, z)
            geoms = base[rows]
        else:
            # coverages are simplified whole (shared edges); the others per tile, after clipping
            tol, geoms = _tolerance(z), base
            if name in COVERAGES:
                if tol and len(base):
                    geoms = shapely.coverage_simplify(base, tol, simplify_boundary=True)
                tol = 0.0
            rows = np.flatnonzero(~(shapely.is_empty(geoms) | shapely.is_missing(geoms)))
            geoms = geoms[rows]
        return ZoomLayer(name, kind, rows.astype(np.int64), geoms, shapely.STRtree(geoms), tol)

    # -- tiles -------------------------------------------------------------------------------
    def clip_box(self, z: int, x: int, y: int) -> tuple[float, float, float, float]:
        minx, miny, maxx, maxy = tile_bounds(z, x, y)
        pad = (maxx - minx) * self.buffer / self.extent
        return (minx - pad, miny - pad, maxx + pad, maxy + pad)

    def layer_bytes(self, name: str, z: int, x: int, y: int) -> bytes:
        """The encoded ``Layer`` of one layer in tile z/x/y (b"" when it has no feature)."""
        zl = self.layer(name, z)
        box = self.clip_box(z, x, y)
        hit = np.sort(zl.tree.query(shapely.box(*box)))
        if len(hit) == 0:
            return b""
        geoms = zl.geoms[hit]
        if zl.kind != "point":
            geoms = shapely.clip_by_rect(geoms, *box)
        if zl.tolerance:
            geoms = shapely.simplify(geoms, zl.tolerance, preserve_topology=True)
        rows = zl.rows[hit]
        return encode_layer(
            name,
            zl.kind,
            geoms,
            tile_bounds(z, x, y),
            rows + 1,
            self.attributes(name),
            rows,
            self.extent,
        )

    def tile(self, z: int, x: int, y: int, layers: Sequence[str] | None = None) -> bytes:
        """The MVT of tile z/x/y with ``layers`` (default all); b"" when the tile is empty."""
        check_address(z, x, y)
        names = normalise_layers(layers)
        return b"".join(self.layer_bytes(name, z, x, y) for name in names)

    def bounds(self, layers: Sequence[str] | None = None) -> tuple[float, float, float, float]:
        """WGS84 bounds (w, s, e, n) of the data in ``layers`` (default all)."""
        boxes = [
            self.atlas.tables[n].total_bounds
            for n in normalise_layers(layers)
            if len(self.atlas.tables[n])
        ]
        if not boxes:
            return (-180.0, -MAX_LAT, 180.0, MAX_LAT)
        b = np.array(boxes)
        return (
            float(np.nanmin(b[:, 0])),
            float(np.nanmin(b[:, 1])),
            float(np.nanmax(b[:, 2])),
            float(np.nanmax(b[:, 3])),
        )


def tiles_touching(
    boxes: NDArray[np.float64], z: int, x: NDArray[np.int64], y: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """Which tiles z/x/y (arrays) have a clip rectangle (`BUFFER` included) that touches one of
    the Web Mercator ``boxes``."""
    hit = np.zeros(len(x), dtype=bool)
    if len(boxes) == 0 or len(x) == 0:
        return hit
    size = 2 * HALF / (1 << z)
    pad = size * BUFFER / EXTENT
    minx, maxy = -HALF + x * size, HALF - y * size
    clips = shapely.box(minx - pad, maxy - size - pad, minx + size + pad, maxy + pad)
    tile_i, _ = shapely.STRtree(shapely.box(*boxes.T)).query(clips, predicate="intersects")
    hit[tile_i] = True
    return hit


def unknown_layer(name: str) -> str:
    """The 404 reason for a layer that does not exist."""
    return f"unknown layer {name!r}; layers are: {', '.join(LAYER_NAMES)}"


def _check_layer(name: str) -> str:
    if name not in LAYERS:
        raise TileError(unknown_layer(name))
    return name


def normalise_layers(layers: Sequence[str] | str | None) -> tuple[str, ...]:
    """Layer names in the canonical order, checked; a comma-separated string works too."""
    if layers is None:
        return LAYER_NAMES
    if isinstance(layers, str):
        layers = [s for s in (p.strip() for p in layers.split(",")) if s]
    if not layers:
        return LAYER_NAMES
    for name in layers:
        _check_layer(name)
    wanted = set(layers)
    return tuple(n for n in LAYER_NAMES if n in wanted)


_SOURCES: weakref.WeakKeyDictionary[Atlas, TileSource] = weakref.WeakKeyDictionary()
_SOURCES_LOCK = threading.Lock()


def source_for(atlas: Atlas) -> TileSource:
    """The tile source of an atlas (one per atlas object, dropped with it)."""
    src = _SOURCES.get(atlas)
    if src is None:
        with _SOURCES_LOCK:
            src = _SOURCES.get(atlas)
            if src is None:
                src = _SOURCES[atlas] = TileSource(atlas)
    return src


def tilejson(
    atlas: Atlas,
    tiles_url: str,
    layers: Sequence[str] | str | None = None,
    minzoom: int = MINZOOM,
    maxzoom: int = MAXZOOM,
) -> dict[str, Any]:
    """TileJSON 3.0.0 for ``layers`` served at ``tiles_url`` (with {z}/{x}/{y})."""
    src = source_for(atlas)
    names = normalise_layers(layers)
    w, s, e, n = src.bounds(names)
    return {
        "tilejson": "3.0.0",
        "name": names[0] if len(names) == 1 else "geo",
        "description": "Industrial communities (产业社区): " + ", ".join(names),
        "version": f"1.0.{atlas.version}",
        "scheme": "xyz",
        "tiles": [tiles_url],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": [w, s, e, n],
        "center": [(w + e) / 2, (s + n) / 2, min(max(minzoom, 13), maxzoom)],
        "vector_layers": [
            {
                "id": name,
                "fields": src.fields(name),
                "minzoom": minzoom,
                "maxzoom": maxzoom,
                "description": f"{name} ({LAYERS[name].geometry}s); feature id = position "
                "in the layer sorted by id, + 1",
            }
            for name in names
        ],
    }


# --------------------------------------------------------------------------------------------
# PMTiles


def write_pmtiles(
    atlas: Atlas,
    path: str | Path,
    minzoom: int = 10,
    maxzoom: int = 16,
    layers: Sequence[str] | str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Write a PMTiles v3 archive of ``layers`` (default all) for z = minzoom..maxzoom.

    Tiles cover the bounds of the data; empty tiles are left out. Tiles are gzip-compressed
    MVT. ``progress(done, total)`` is called as tiles are made. Returns
    ``{"tiles": written, "candidates": total, "bytes": file size}``.
    """
    from pmtiles.tile import Compression, TileType, zxy_to_tileid
    from pmtiles.writer import Writer

    if not MINZOOM <= minzoom <= maxzoom <= MAXZOOM:
        raise TileError(f"zooms must satisfy {MINZOOM} <= minzoom <= maxzoom <= {MAXZOOM}")
    src = source_for(atlas)
    names = normalise_layers(layers)
    w, s, e, n = src.bounds(names)
    candidates = sorted(
        (zxy_to_tileid(z, x, y), z, x, y)
        for z, x, y in tiles_covering((w, s, e, n), range(minzoom, maxzoom + 1))
    )
    total = len(candidates)
    written = 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:
        writer = Writer(f)
        for done, (tid, z, x, y) in enumerate(candidates, 1):
            data = src.tile(z, x, y, names)
            if data:
                writer.write_tile(tid, gzip.compress(data, mtime=0))
                written += 1
            if progress is not None:
                progress(done, total)
        if written == 0:
            raise TileError("no tile has any feature: nothing to write")
        meta = tilejson(atlas, "", names, minzoom, maxzoom)
        metadata = {k: v for k, v in meta.items() if k not in ("tiles", "tilejson")}
        header = {
            "tile_type": TileType.MVT,
            "tile_compression": Compression.GZIP,
            "min_lon_e7": int(w * 1e7),
            "min_lat_e7": int(s * 1e7),
            "max_lon_e7": int(e * 1e7),
            "max_lat_e7": int(n * 1e7),
            "center_zoom": int(meta["center"][2]),
            "center_lon_e7": int(meta["center"][0] * 1e7),
            "center_lat_e7": int(meta["center"][1] * 1e7),
        }
        writer.finalize(header, metadata)
    tmp.replace(path)
    return {"tiles": written, "candidates": total, "bytes": path.stat().st_size}
