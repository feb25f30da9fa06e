"""The attributes a layer's tiles carry: what a map needs to draw and label each feature
(`MAP_FIELDS`: ``id``, ``name``, ``code``, ``kind`` and counts; every other field comes from the
feature by id, e.g. ``GET /collections/{layer}/items/{id}``), their values encoded as MVT
``Value`` messages once per atlas, vectorised (numpy and Arrow, no Python loop per value), and
reused field by field across versions.

Tiles are public (the service's tiles and maps are the same for every caller). Only an
operator's export that asks for a more trusted role (`geo export tiles --role officer`) carries
more: every field of the layer that role may see (`geo.visibility`), with the counts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from numpy.typing import NDArray

from geo import visibility
from geo.atlas import Atlas
from geo.ownership import NONE
from geo.tiles.encoding import Packed, _varint
from geo.tiles.tile_math import TileError, unknown_layer

# What a map draws and labels, per layer (the public tiles); the rest comes from the feature by
# id. Roads keep ``class`` (their kind: the line weight); an enterprise's code is its credit code.
MAP_FIELDS: dict[str, tuple[str, ...]] = {
    "roads": ("id", "name", "class"),
    "streets": ("id", "name", "code", "communities", "enterprises"),
    "communities": ("id", "name", "code", "grids", "enterprises"),
    "grids": ("id", "name", "code", "enterprises"),
    "parks": ("id", "name", "code", "buildings", "enterprises"),
    "buildings": ("id", "name", "code", "kind", "enterprises"),
    "enterprises": ("id", "name", "credit_code"),
}


@dataclass(frozen=True)
class Column:
    """One field encoded: its distinct values as ``Value`` messages and each feature's index
    into them (-1: no value); ``digest`` fingerprints the field's contents."""

    digest: bytes
    codes: NDArray[np.int64]
    values: Packed


@dataclass(frozen=True)
class Attributes:
    """The attributes of one layer, encoded once per atlas.

    ``values`` is the layer's table of distinct values, each already encoded as an MVT
    ``Value`` message, in canonical order (by encoded bytes, so that a tile's value table
    depends on its own features only); ``codes[:, j]`` is the value index of field ``j`` per
    feature (-1: no value); ``key_bytes`` the ``Layer``'s encoded keys.
    """

    keys: tuple[str, ...]
    types: dict[str, str]  # TileJSON field types: String | Number | Boolean
    codes: NDArray[np.int64]  # (n features, n keys)
    values: Packed
    columns: dict[str, Column]  # per field, reusable by the next version if it is unchanged
    key_bytes: bytes = b""


def _counts(owners: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    hit = owners[owners != NONE]
    return np.bincount(hit, minlength=n)[:n]


def _attribute_frame(atlas: Atlas, name: str, role: str = visibility.PUBLIC) -> pd.DataFrame:
    """The fields the tiles of layer ``name`` carry for ``role``: `MAP_FIELDS` for the public
    tiles, every field ``role`` may see (`geo.visibility`) for a more trusted role's export."""
    if name not in MAP_FIELDS:
        raise TileError(unknown_layer(name))
    if role == visibility.PUBLIC:
        return _all_attributes(atlas, name, detail=False)[list(MAP_FIELDS[name])]
    frame = _all_attributes(atlas, name, detail=True)
    hidden = [c for c in visibility.hidden_fields(name, role) if c in frame.columns]
    return frame.drop(columns=hidden) if hidden else frame


def _index_of(ids: pd.Series, keys: pd.Series) -> NDArray[np.int64]:
    """Positions in ``ids`` of each of ``keys`` (-1: not there)."""
    return pd.Index(ids).get_indexer(keys)


def _per(owner: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    """How many of ``owner`` (positions, -1 none) fall on each of n features."""
    return np.bincount(owner + 1, minlength=n + 1)[1:]


def _all_attributes(atlas: Atlas, name: str, detail: bool = True) -> pd.DataFrame:
    """The fields of each layer with the counts that make maps useful (``detail``: the
    layer's other fields too)."""
    t = atlas.tables[name].reset_index(drop=True)
    ent = atlas.enterprises
    n = len(t)
    fields = [c for c in t.columns if c != "geometry" and not c.startswith("_")]
    if name == "enterprises":
        return _enterprise_attributes(atlas, fields if detail else list(MAP_FIELDS[name]))
    out = t[fields].copy()
    if name == "streets":
        out["communities"] = _per(_index_of(t["id"], atlas.tables["communities"]["street_id"]), n)
        out["enterprises"] = _counts(ent["_street"].to_numpy(), n)
    elif name == "communities":
        out["grids"] = _per(_index_of(t["id"], atlas.tables["grids"]["community_id"]), n)
        out["enterprises"] = _counts(ent["_community"].to_numpy(), n)
    elif name == "grids":
        out["enterprises"] = _counts(ent["_grid"].to_numpy(), n)
    elif name == "parks":
        buildings = atlas.tables["buildings"]["park_id"].fillna("")
        out["buildings"] = _per(_index_of(t["id"], buildings), n)
        out["enterprises"] = _park_enterprises(atlas, t["id"], n)
    elif name == "buildings":
        pts = shapely.points(ent["lon"].to_numpy(), ent["lat"].to_numpy())
        hits = shapely.STRtree(t.geometry.values).query(pts, predicate="within")
        out["enterprises"] = np.bincount(hits[1], minlength=n)[:n]
    return out


def _park_enterprises(atlas: Atlas, ids: pd.Series, n: int) -> NDArray[np.int64]:
    """Enterprises per park: those whose micro-grid is the park."""
    micro = atlas.levels["microgrid"].table["id"]
    owner = atlas.enterprises["_microgrid"].to_numpy()
    park_of_micro = _index_of(ids, micro)
    pos = np.where(owner != NONE, park_of_micro[np.maximum(owner, 0)], -1)
    return _per(pos, n)


def _enterprise_attributes(atlas: Atlas, fields: list[str]) -> pd.DataFrame:
    """The enterprises' ``fields``, with the ids of their four owners in detail."""
    e = atlas.enterprises.reset_index(drop=True)
    detail = len(fields) > len(MAP_FIELDS["enterprises"])
    out = e[[f for f in fields if f in e.columns and f != "geometry"]].copy()
    if detail:
        for level in ("street", "community", "grid", "microgrid"):
            out[f"{level}_id"] = atlas.ids_of(level, e[f"_{level}"].to_numpy())
    return out


def _field_type(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "Boolean"
    if pd.api.types.is_numeric_dtype(series):
        return "Number"
    return "String"


# -- Value messages, vectorised -------------------------------------------------------------------
def _messages(parts: list[tuple[NDArray[np.int64], Packed]], n: int) -> Packed:
    """``Value`` messages (field 4 of ``Layer``: 0x22, length, body) of n values whose bodies
    are the concatenation of ``parts`` (rows, pieces) in order."""
    body = Packed.assemble(n, parts)
    rows = np.arange(n)
    head = (rows, Packed.const(0x22, n))
    return Packed.assemble(n, [head, (rows, Packed.varints(body.lengths())), (rows, body)])


def _string_column(series: pd.Series) -> tuple[NDArray[np.int64], Packed]:
    """Codes (-1: missing or empty) and the distinct strings as ``Value`` messages."""
    arr = pa.array(series.astype("string"), type=pa.large_string(), from_pandas=True)
    enc = pc.dictionary_encode(arr)
    codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    raw = Packed.from_arrow(enc.dictionary)
    lens = raw.lengths()
    keep = lens > 0  # an empty string is no value
    remap = np.full(len(lens) + 1, -1, dtype=np.int64)
    remap[np.flatnonzero(keep)] = np.arange(int(keep.sum()))
    raw = raw.select(np.flatnonzero(keep))
    n, rows = len(raw), np.arange(len(raw))
    msgs = _messages(
        [(rows, Packed.const(0x0A, n)), (rows, Packed.varints(raw.lengths())), (rows, raw)], n
    )
    return remap[codes], msgs


def _number_column(series: pd.Series) -> tuple[NDArray[np.int64], Packed]:
    """Codes (-1: missing) and the distinct numbers as ``Value`` messages: a whole number as
    ``int_value`` (``sint_value`` below 0), any other as ``double_value``."""
    if pd.api.types.is_integer_dtype(series.dtype) and not series.hasnans:
        v = series.to_numpy(dtype=np.int64)
        uniq, inv = np.unique(v, return_inverse=True)
        return inv.reshape(-1).astype(np.int64), _int_messages(uniq)
    f = series.astype("float64").to_numpy()
    ok = ~np.isnan(f)
    uniq, inv = np.unique(f[ok], return_inverse=True)
    codes = np.full(len(f), -1, dtype=np.int64)
    codes[ok] = inv.reshape(-1)
    whole = np.isfinite(uniq) & (uniq == np.floor(uniq)) & (np.abs(uniq) < 2.0**63)
    parts = []
    i, d = np.flatnonzero(whole), np.flatnonzero(~whole)
    ints = _int_messages(uniq[i].astype(np.int64))
    parts.append((i, ints))
    doubles = uniq[d].astype("<f8").view(np.uint8)
    body = Packed(doubles, np.arange(len(d) + 1, dtype=np.int64) * 8)
    rows = np.arange(len(d))
    parts.append((d, _messages([(rows, Packed.const(0x19, len(d))), (rows, body)], len(d))))
    return codes, Packed.assemble(len(uniq), parts)


def _int_messages(v: NDArray[np.int64]) -> Packed:
    """``Value`` messages of integers: ``int_value`` from 0 up, ``sint_value`` below."""
    neg = v < 0
    tag = np.where(neg, 0x30, 0x20).astype(np.uint8)
    zig = ((v << 1) ^ (v >> 63)).astype(np.uint64)
    payload = np.where(neg, zig, v.astype(np.uint64))
    rows = np.arange(len(v))
    tags = Packed(tag, np.arange(len(v) + 1, dtype=np.int64))
    return _messages([(rows, tags), (rows, Packed.varints(payload))], len(v))


def _bool_column(series: pd.Series) -> tuple[NDArray[np.int64], Packed]:
    """Codes and the distinct booleans as ``Value`` messages."""
    v = series.to_numpy(dtype=bool)
    uniq, inv = np.unique(v, return_inverse=True)
    n, rows = len(uniq), np.arange(len(uniq))
    flags = Packed(uniq.astype(np.uint8), np.arange(n + 1, dtype=np.int64))
    return inv.reshape(-1).astype(np.int64), _messages(
        [(rows, Packed.const(0x38, n)), (rows, flags)], n
    )


_ENCODERS = {"String": _string_column, "Number": _number_column, "Boolean": _bool_column}


def _digest(series: pd.Series, kind: str) -> bytes:
    hashes = pd.util.hash_pandas_object(series, index=False).to_numpy()
    return hashlib.blake2b(hashes.tobytes() + kind.encode(), digest_size=16).digest()


def _encode_column(series: pd.Series, kind: str, digest: bytes) -> Column:
    """Encode each distinct value of a field once (not once per feature), vectorised."""
    codes, values = _ENCODERS[kind](series)
    return Column(digest, codes, values)


def build_attributes(frame: pd.DataFrame, previous: Attributes | None = None) -> Attributes:
    """Encode a layer's fields; a field whose contents equal ``previous``'s is reused."""
    *_, attrs = attributes_in_steps(frame, previous)
    assert attrs is not None
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
        if old is None or old.digest != digest:
            old = _encode_column(frame[k], types[k], digest)
        columns[k] = old
        yield None
    # one table of distinct values in canonical order (by encoded bytes)
    every = pa.chunked_array([c.values.to_arrow() for c in columns.values()], pa.large_binary())
    distinct = pc.unique(every)
    table = distinct.take(pc.sort_indices(distinct))
    yield None
    codes = np.full((len(frame), len(keys)), -1, dtype=np.int64)
    for j, k in enumerate(keys):
        c = columns[k]
        where = pc.index_in(c.values.to_arrow(), value_set=table).to_numpy(zero_copy_only=False)
        to_global = np.append(where.astype(np.int64), -1)
        codes[:, j] = to_global[c.codes]
    key_bytes = b"".join(b"\x1a" + _varint(len(k)) + k for k in (s.encode() for s in keys))
    yield Attributes(keys, types, codes, Packed.from_arrow(table), columns, key_bytes)
