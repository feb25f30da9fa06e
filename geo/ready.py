"""A ready atlas per store version: the ownership index on disk, loaded in milliseconds.

Building the ownership index (`geo.atlas`: the shortcut raster of every level and their
combination) takes a second or more; a command that answers from it (`geo locate`,
`geo assign`) and a starting `geo serve` load it from a file instead, written the first time it
is built. A file is keyed by the stamps of the polygon tables the index is built from
(`geo.atlas.POLYGON_TABLES`; `geo.store.base.Store.stamps`: a random token per table write, in
both stores): any write to one of them gives another key, so a stale file is never used; an
enterprise or officer write keeps the key. A byte copy of a store (a backup, a test's copy) has
the same stamps and so the same index: it may use a file found in its folder under another
store's name. Files are named by their store (so pruning keeps a few per store) and key.

Where: beside a GeoPackage, in ``<store>.gpkg.ready/``; for a PostGIS store in
``$XDG_CACHE_HOME/geo/ready`` (``~/.cache/geo/ready``); ``GEO_CACHE_DIR`` overrides both.
A folder that cannot be written is skipped (the index is built in memory, as before).

The format (no pickle: the file may sit on a shared disk and is not trusted): the bytes
``GEOREADY``, the JSON header's length and CRC-32 (little-endian uint32), the header (format,
key, frame, bounds, the levels' ids/names/codes/kinds, where each array lies, the data's length
and CRC-32), then the raw little-endian arrays (shortcut cells and candidates per level,
parents, polygons as WKB, the combined cells and their table). Everything is checked on load
(checksums, length, sizes, dtypes, value ranges, geometry types);
a file that fails any check, is truncated, corrupt or another store's is ignored and rebuilt.
Files are written to a temporary name and renamed into place; the newest `KEEP` per store stay.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from geo.atlas import _PARENT_LEVEL, LEVELS, POLYGON_TABLES, Atlas, Level, Locator
from geo.ownership import (
    _CELL_DEG,
    _EXACT,
    _MARGIN,
    _MAX_CELLS,
    NONE,
    Frame,
    Hierarchy,
    PolygonIndex,
    Shortcuts,
)

if TYPE_CHECKING:
    from geo.store.base import Snapshot, Store

FORMAT = 1
KEEP = 3  # files kept per store (the newest)
KEEP_STORES = 4  # in a shared folder (PostGIS, GEO_CACHE_DIR): other stores' files kept, x KEEP
MAGIC = b"GEOREADY"
_PREFIX = len(MAGIC) + 8  # the magic, the header's length and its CRC-32 (uint32 each)
SUFFIX = ".ready"
_ALIGN = 64
_MAX_HEADER = 256 << 20
_MAX_FRAME_CELLS = 1 << 28
_DTYPES = {"<i4": np.int32, "<i8": np.int64, "|u1": np.uint8}
_POLYGONAL = {"Polygon", "MultiPolygon"}


class Unfit(ValueError):
    """A ready file that does not pass a check: it is ignored (and rebuilt)."""


# -- where, and under which name -------------------------------------------------------------


def identity(location: str) -> str:
    """The store's identity: a GeoPackage's resolved path, or a PostGIS URL's
    ``postgresql://host:port/db`` (no user, no password)."""
    from geo.store import describe, is_database_url

    return describe(location) if is_database_url(location) else os.path.realpath(location)


def location_of(store: Store) -> str:
    """The location a store was opened at: a PostGIS store's URL, a GeoPackage's path."""
    url = getattr(store, "url", None)
    return url if isinstance(url, str) else os.fspath(store.path)  # type: ignore[attr-defined]


def folder_for(location: str) -> Path:
    """Where the ready files of the store at ``location`` live (see the module doc)."""
    from geo.store import is_database_url

    if os.environ.get("GEO_CACHE_DIR"):
        return Path(os.environ["GEO_CACHE_DIR"])
    if not is_database_url(location):
        return Path(os.path.realpath(location) + SUFFIX)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "geo" / "ready"


def key_of(stamps: dict[str, str]) -> str:
    """The key of the index of a store whose polygon tables have ``stamps`` (the build's
    constants too: another cell size is another index). The store's name does not enter it:
    stamps are random per write, so equal stamps mean the same tables (a byte copy)."""
    text = json.dumps(
        {
            "format": FORMAT,
            "stamps": [stamps.get(name) for name in POLYGON_TABLES],
            "cells": [_CELL_DEG, _MAX_CELLS, _MARGIN],
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def path_for(location: str, key: str) -> Path:
    """The file of ``key``: named by the store (so that pruning keeps a few per store) and key."""
    store = hashlib.sha256(identity(location).encode()).hexdigest()[:16]
    return folder_for(location) / f"{store}-{key[:32]}{SUFFIX}"


def found_for(location: str, key: str) -> Path:
    """The file to read for ``key``: the store's own, else one of the same key written for a
    byte copy of the store in the same folder (the store's own path when there is none)."""
    own = path_for(location, key)
    if own.is_file():
        return own
    with contextlib.suppress(OSError):
        for other in sorted(own.parent.glob(f"*-{key[:32]}{SUFFIX}")):
            return other
    return own


# -- what commands and the server call -------------------------------------------------------


def locator(store: Store, location: str) -> Locator:
    """The ownership of the store's latest version: from its ready file, else built from the
    polygon tables alone (and written for the next command)."""
    version, stamps = store.stamps()
    key = key_of(stamps)
    found = load(found_for(location, key), key, version)
    if found is not None:
        return found
    snapshot = store.snapshot(only=POLYGON_TABLES)
    built = Locator.build(snapshot)
    key = key_of(snapshot.stamps)
    save(built, path_for(location, key), key)
    return built


def atlas(snapshot: Snapshot, location: str) -> Atlas:
    """The atlas of ``snapshot`` (every table), its index from the ready file when there is
    one for these polygon tables; else built, and its index written."""
    key = key_of(snapshot.stamps)
    path = path_for(location, key)
    found = load(found_for(location, key), key, snapshot.version)
    if found is not None:
        with contextlib.suppress(ValueError):  # tables that do not fit: build afresh
            return Atlas(snapshot, ready=found)
    built = Atlas(snapshot)
    save(built, path, key)
    return built


# -- writing ---------------------------------------------------------------------------------


def save(located: Locator, path: Path, key: str) -> bool:
    """Write the index of ``located`` to ``path`` (atomically: a temporary file renamed) and
    prune older files of the store; False (nothing written) when the folder is not writable."""
    header, arrays = _parts(located, key)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=SUFFIX, dir=path.parent)
        with os.fdopen(fd, "wb") as out:
            _write(out, header, arrays)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return False
    _prune(path)
    return True


def _parts(located: Locator, key: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header (without array places) and the arrays of ``located``'s index."""
    f = located.frame
    arrays: dict[str, np.ndarray] = {}
    levels = []
    for i, name in enumerate(LEVELS):
        level = located.levels[name]
        index = level.index
        wkb = shapely.to_wkb(index.geoms) if len(index.geoms) else np.array([], dtype=object)
        lengths = np.array([len(b) for b in wkb], dtype=np.int64)
        arrays[f"{i}.wkb"] = np.frombuffer(b"".join(wkb), dtype=np.uint8)
        arrays[f"{i}.wkb_ends"] = np.cumsum(lengths, dtype=np.int64)
        if index.parent is not None:
            arrays[f"{i}.parent"] = index.parent.astype(np.int64)
        sc = index.shortcuts
        if sc is not None:
            arrays[f"{i}.cells"] = sc.cells.astype(np.int32)
            arrays[f"{i}.cand"] = sc.cand.astype(np.int64)
            arrays[f"{i}.cand_start"] = sc.cand_start.astype(np.int64)
            arrays[f"{i}.cand_count"] = sc.cand_count.astype(np.int64)
        levels.append({"name": name, "cells": level.descriptions[:-1]})
    arrays["combo"] = located.hierarchy.combo.astype(np.int32)
    arrays["table"] = np.stack(located.hierarchy.table).astype(np.int64)
    header = {
        "format": FORMAT,
        "key": key,
        "frame": [float(f.x0), float(f.y0), float(f.dx), float(f.dy), int(f.nx), int(f.ny)],
        "bounds": [float(b) for b in located.bounds],
        "levels": levels,
    }
    return header, arrays


def _write(out: Any, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Header, then every array at an aligned offset (its place noted in the header)."""
    places: dict[str, Any] = {}
    offset = 0  # relative to the data's start, which follows the header
    for name, array in arrays.items():
        places[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "offset": offset}
        offset += _aligned(array.nbytes)
    blobs = []
    crc = 0
    for array in arrays.values():
        data = np.ascontiguousarray(array).tobytes()
        blob = data + b"\0" * (_aligned(len(data)) - len(data))
        crc = zlib.crc32(blob, crc)
        blobs.append(blob)
    header = {**header, "arrays": places, "crc32": crc, "bytes": offset}
    text = json.dumps(header, ensure_ascii=False, allow_nan=True).encode()
    start = _aligned(_PREFIX + len(text))
    out.write(MAGIC + struct.pack("<II", len(text), zlib.crc32(text)) + text)
    out.write(b"\0" * (start - _PREFIX - len(text)))
    for blob in blobs:
        out.write(blob)


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _prune(path: Path) -> None:
    """Remove the store's older ready files, keeping the newest `KEEP`; in a folder shared by
    stores, the other stores' beyond the newest `KEEP_STORES` x `KEEP`; and temporaries an
    interrupted writer left behind (an hour old)."""
    prefix = path.name.split("-", 1)[0] + "-"
    with contextlib.suppress(OSError):
        files = [p for p in path.parent.glob("*" + SUFFIX) if not p.name.startswith(".")]
        files.sort(key=_age)  # newest first
        mine = [p for p in files if p.name.startswith(prefix) and p != path]
        others = [p for p in files if not p.name.startswith(prefix)]  # a shared folder
        stale = [p for p in path.parent.glob(".tmp-*" + SUFFIX) if _age(p) > 3600]
        for old in mine[KEEP - 1 :] + others[KEEP_STORES * KEEP :] + stale:
            with contextlib.suppress(OSError):
                old.unlink()


def _age(path: Path) -> float:
    """Seconds since ``path`` was last written (0 when it is gone)."""
    import time

    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


# -- reading, as untrusted input -------------------------------------------------------------


def load(path: Path, key: str, version: int) -> Locator | None:
    """The locator in ``path`` if it is a sound ready file of ``key``; None otherwise (no
    file, unreadable, truncated, corrupt, another store's or another version's)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        found = _decode(data, key, version)
    except Exception:  # untrusted bytes: whatever is wrong with them, build afresh instead
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # in use: the newest, kept by pruning
    return found


def _decode(data: bytes, key: str, version: int) -> Locator:
    """The locator a ready file's bytes describe, every part checked (`Unfit` otherwise)."""
    header, start = _header(data)
    if header.get("format") != FORMAT or header.get("key") != key:
        raise Unfit("another format or another store's index")
    frame = _frame(header["frame"])
    arrays = _Arrays(data, start, header["arrays"])
    levels: dict[str, Level] = {}
    pairs: list[tuple[PolygonIndex, int | None]] = []
    described = header["levels"]
    if [lv.get("name") for lv in described] != list(LEVELS):
        raise Unfit("levels")
    for i, name in enumerate(LEVELS):
        cells = _descriptions(name, described[i]["cells"])
        parent_pos = LEVELS.index(_PARENT_LEVEL[name]) if name in _PARENT_LEVEL else None
        parent_count = len(pairs[parent_pos][0]) if parent_pos is not None else 0
        index = _index(arrays, i, len(cells), frame, parent_pos is not None, parent_count)
        levels[name] = Level.described(name, index, cells)
        pairs.append((index, parent_pos))
    hierarchy = _hierarchy(arrays, frame, pairs)
    bounds = header["bounds"]
    if not (isinstance(bounds, list) and len(bounds) == 4):
        raise Unfit("bounds")
    return Locator(version, frame, levels, hierarchy, tuple(float(b) for b in bounds))


def _header(data: bytes) -> tuple[dict[str, Any], int]:
    """The JSON header (its checksum right) and where the arrays start (the padding zero, the
    data's length and checksum right)."""
    if len(data) < _PREFIX or not data.startswith(MAGIC):
        raise Unfit("not a ready file")
    length, crc = struct.unpack_from("<II", data, len(MAGIC))
    end = _PREFIX + length
    if length > _MAX_HEADER or end > len(data):
        raise Unfit("truncated header")
    text = data[_PREFIX:end]
    if zlib.crc32(text) != crc:
        raise Unfit("corrupt header: its checksum differs")
    header = json.loads(text.decode())
    if not isinstance(header, dict) or not isinstance(header.get("arrays"), dict):
        raise Unfit("header")
    start = _aligned(end)
    if data[end:start].strip(b"\0") or header.get("bytes") != len(data) - start:
        raise Unfit("truncated (or grown) data")
    if header.get("crc32") != zlib.crc32(memoryview(data)[start:]):
        raise Unfit("corrupt data: its checksum differs")
    return header, start


def _frame(values: Any) -> Frame:
    """The frame, its numbers finite and its size bounded."""
    if not (isinstance(values, list) and len(values) == 6):
        raise Unfit("frame")
    x0, y0, dx, dy = (float(v) for v in values[:4])
    nx, ny = values[4], values[5]
    if not all(math.isfinite(v) for v in (x0, y0, dx, dy)) or dx <= 0 or dy <= 0:
        raise Unfit("frame")
    if type(nx) is not int or type(ny) is not int or not 0 < nx * ny <= _MAX_FRAME_CELLS:
        raise Unfit("frame")
    if nx <= 0 or ny <= 0:
        raise Unfit("frame")
    return Frame(x0, y0, dx, dy, nx, ny)


class _Arrays:
    """The arrays of a ready file, each checked against the file's size and allowed dtypes."""

    def __init__(self, data: bytes, start: int, places: dict[str, Any]) -> None:
        self.data, self.start, self.places = data, start, places

    def has(self, name: str) -> bool:
        """Whether the file holds an array of this name."""
        return name in self.places

    def get(self, name: str, dtype: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """The array ``name`` (read-only), which must have ``dtype`` (and ``shape``)."""
        place = self.places.get(name)
        if not isinstance(place, dict) or _DTYPES.get(place.get("dtype")) is not dtype:
            raise Unfit(f"array {name}")
        dims, offset = place.get("shape"), place.get("offset")
        if not isinstance(dims, list) or not all(type(d) is int and d >= 0 for d in dims):
            raise Unfit(f"array {name}")
        if type(offset) is not int or offset < 0 or offset % _ALIGN:
            raise Unfit(f"array {name}")
        if shape is not None and tuple(dims) != shape:
            raise Unfit(f"array {name}: shape")
        count = math.prod(dims)
        begin = self.start + offset
        if begin + count * np.dtype(dtype).itemsize > len(self.data):
            raise Unfit(f"array {name}: truncated")
        return np.frombuffer(self.data, dtype=dtype, count=count, offset=begin).reshape(dims)


def _within(values: np.ndarray, low: int, high: int, what: str) -> None:
    """Every value in ``low..high`` (inclusive)."""
    if len(values) and (int(values.min()) < low or int(values.max()) > high):
        raise Unfit(f"{what}: values out of range")


def _descriptions(name: str, cells: Any) -> list[dict[str, Any]]:
    """The cells' descriptions: ``id`` text; ``name``, ``code`` text or null; ``kind``."""
    keys = {"id", "name", "code"} | ({"kind"} if name == "microgrid" else set())
    if not isinstance(cells, list):
        raise Unfit("descriptions")
    for d in cells:
        if not isinstance(d, dict) or set(d) != keys or not isinstance(d["id"], str):
            raise Unfit("descriptions")
        if not all(d[k] is None or isinstance(d[k], str) for k in ("name", "code")):
            raise Unfit("descriptions")
        if name == "microgrid" and d["kind"] not in ("park", "building"):
            raise Unfit("descriptions")
    return cells


def _index(
    arrays: _Arrays, i: int, n: int, frame: Frame, constrained: bool, parent_count: int
) -> PolygonIndex:
    """Level ``i``'s polygon index: ``n`` polygons, parents, shortcuts, all checked."""
    ends = arrays.get(f"{i}.wkb_ends", np.int64, (n,))
    wkb = arrays.get(f"{i}.wkb", np.uint8)
    if n and (ends[-1] != len(wkb) or np.any(np.diff(ends) <= 0) or ends[0] <= 0):
        raise Unfit("polygons")
    raw = wkb.tobytes()
    starts = np.concatenate([[0], ends[:-1]]).tolist()
    blobs = [raw[a:b] for a, b in zip(starts, ends.tolist(), strict=True)]
    geoms = shapely.from_wkb(np.array(blobs, dtype=object)) if n else np.array([], dtype=object)
    if n and not set(shapely.get_type_id(geoms).tolist()) <= {3, 6}:  # Polygon, MultiPolygon
        raise Unfit("polygons")
    parent = None
    if constrained:
        parent = arrays.get(f"{i}.parent", np.int64, (n,))
        _within(parent, NONE, parent_count - 1, "parents")
    shortcuts = None
    if n:
        cells = arrays.get(f"{i}.cells", np.int32, (frame.outside + 1,))
        count = arrays.get(f"{i}.cand_count", np.int64)
        slots = len(count)
        first = arrays.get(f"{i}.cand_start", np.int64, (slots,))
        cand = arrays.get(f"{i}.cand", np.int64)
        _within(cells, _EXACT - (slots - 1) if slots else NONE, n - 1, "cells")
        _within(cand, 0, n - 1, "candidates")
        _within(count, 0, len(cand), "candidates")
        _within(first, 0, len(cand), "candidates")
        if slots and int((first + count).max()) > len(cand):
            raise Unfit("candidates")
        shortcuts = Shortcuts(cells, cand, first, count)
    return PolygonIndex.from_parts(geoms, parent, frame, shortcuts)


def _hierarchy(
    arrays: _Arrays, frame: Frame, pairs: list[tuple[PolygonIndex, int | None]]
) -> Hierarchy:
    """The combined cells and their table of owners, checked against the levels."""
    combo = arrays.get("combo", np.int32, (frame.outside + 1,))
    table = arrays.get("table", np.int64)
    if table.ndim != 2 or table.shape[0] != len(pairs) or table.shape[1] < 1:
        raise Unfit("table")
    _within(combo, 0, table.shape[1] - 1, "combined cells")
    columns = [table[j] for j in range(len(pairs))]
    for column, (index, _) in zip(columns, pairs, strict=True):
        _within(column, NONE, len(index) - 1, "table")
    return Hierarchy.from_parts(frame, pairs, combo, columns)
