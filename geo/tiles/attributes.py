"""The attributes a layer's tiles carry: the served fields per layer (with counts) and their
values encoded once per atlas as MVT ``Value`` messages, reused field by field across versions.

Tiles are public (the service's tiles and maps are the same for every caller): they carry the
fields `geo.visibility` lets an anonymous caller see, never ``employees``. Only an operator's
export that asks for a more trusted role (`geo export tiles --role officer`) carries more.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from geo import visibility
from geo.atlas import Atlas
from geo.ownership import NONE
from geo.tiles.encoding import _varint
from geo.tiles.tile_math import TileError, unknown_layer


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


def _counts(owners: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    hit = owners[owners != NONE]
    return np.bincount(hit, minlength=n)[:n]


def _attribute_frame(atlas: Atlas, name: str, role: str = visibility.PUBLIC) -> pd.DataFrame:
    """The fields the tiles of layer ``name`` carry for ``role`` (`geo.visibility`)."""
    frame = _all_attributes(atlas, name)
    hidden = [c for c in visibility.hidden_fields(name, role) if c in frame.columns]
    return frame.drop(columns=hidden) if hidden else frame


def _all_attributes(atlas: Atlas, name: str) -> pd.DataFrame:
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
