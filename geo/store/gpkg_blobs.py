"""GeoPackage geometry blobs: shapely geometries to and from the bytes of a ``geom`` column.

``b"GP"``, version 0, flags (bit 0 little-endian, bits 1-3 envelope indicator: 1 =
[minx, maxx, miny, maxy], bit 4 empty geometry), int32 srs_id 4326, the envelope, then 2D ISO
WKB. Encoding and decoding are vectorised with shapely; only the byte concatenation/slicing is per
geometry.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import shapely

from geo.store.base import SRS_ID

# header length by envelope indicator (flags bits 1-3)
_HEADER_LEN = (8, 40, 56, 56, 72, 8, 8, 8)
_HEADER_DTYPE = np.dtype(
    [("magic", "S2"), ("version", "u1"), ("flags", "u1"), ("srs_id", "<i4"), ("env", "<f8", (4,))]
)
_FLAGS_ENVELOPE = 0b0000_0011  # little-endian, envelope [minx, maxx, miny, maxy]
_FLAGS_EMPTY = 0b0001_0001  # little-endian, no envelope, empty geometry


def encode_geometries(geoms: np.ndarray) -> tuple[list[bytes], np.ndarray]:
    """GeoPackage blobs of non-null shapely geometries, and their (n, 4) bounds.

    Bounds are shapely's [minx, miny, maxx, maxy], NaN for empty geometries.
    """
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    if n == 0:
        return [], np.empty((0, 4))
    wkb = shapely.to_wkb(geoms, byte_order=1, output_dimension=2)
    bounds = shapely.bounds(geoms)
    empty = shapely.is_empty(geoms)
    header = np.zeros(n, dtype=_HEADER_DTYPE)
    header["magic"] = b"GP"
    header["flags"] = np.where(empty, _FLAGS_EMPTY, _FLAGS_ENVELOPE)
    header["srs_id"] = SRS_ID
    header["env"] = bounds[:, [0, 2, 1, 3]]
    buf = header.tobytes()
    size = _HEADER_DTYPE.itemsize
    starts = range(0, n * size, size)
    hlen = np.where(empty, 8, size).tolist()
    blobs = [buf[s : s + h] + w for s, h, w in zip(starts, hlen, wkb.tolist(), strict=True)]
    return blobs, bounds


def decode_geometries(blobs: Any) -> np.ndarray:
    """Shapely geometries (None for NULL) from GeoPackage geometry blobs."""
    hl = _HEADER_LEN
    wkb = [None if b is None else b[hl[(b[3] >> 1) & 7] :] for b in blobs]
    return shapely.from_wkb(np.array(wkb, dtype=object))


def blob_envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
    """[minx, maxx, miny, maxy] of one blob (for SQL functions used by foreign triggers)."""
    if blob is None or len(blob) < 8 or blob[3] & 0x10:
        return None
    flags = blob[3]
    indicator = (flags >> 1) & 7
    if indicator:
        return struct.unpack("<4d" if flags & 1 else ">4d", blob[8:40])
    g = shapely.from_wkb(blob[_HEADER_LEN[indicator] :])
    if g is None or g.is_empty:
        return None
    minx, miny, maxx, maxy = g.bounds
    return (minx, maxx, miny, maxy)


def register_functions(conn: sqlite3.Connection) -> None:
    """The GeoPackage SQL functions used by GDAL's R-tree index triggers.

    We do not create a spatial index, but if QGIS/GDAL adds one to a layer its triggers call
    these; without them our writes would fail with "no such function: ST_IsEmpty".
    """

    def is_empty(blob: bytes | None) -> int | None:
        return None if blob is None else int(bool(blob[3] & 0x10))

    def coord(i: int) -> Callable[[bytes | None], float | None]:
        def f(blob: bytes | None) -> float | None:
            env = blob_envelope(blob)
            return None if env is None else env[i]

        return f

    conn.create_function("ST_IsEmpty", 1, is_empty, deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        conn.create_function(name, 1, coord(i), deterministic=True)
