"""Find a source's columns for a layer's fields, map road classes and derive stable ids.

`match_columns` finds each field of a `geo.model.LayerSpec` (and ``lon``/``lat``/``crs`` for
point tables) among a source's columns by its usual Chinese and English names, case- and
space-insensitively (道路名称 → name, 统一社会信用代码 → credit_code, 经度 → lon …);
``overrides`` (``--field ours=theirs``) win. `conform` renames the matched columns to ours, maps
road classes onto `geo.model.ROAD_CLASSES` (OSM ``highway``, 快速路/主干路/次干路/支路;
waterways become ``river``/``canal``/``stream``; any other value is kept) and fills in ids:
from the source's own key (``osm_id``, ``OBJECTID``, ``编号`` …, prefixed with the layer's
letter when numeric), else a hash of the row's content, so that re-importing a file gives the
same ids.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely

from geo.model import LayerSpec

# Per field of ours, the names sources give it (compared after `_key`), most specific first.
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "编号", "osm_id", "osmid", "objectid", "fid", "gid"),
    "name": (
        "name",
        "名称",
        "道路名称",
        "路名",
        "名字",
        "企业名称",
        "园区名称",
        "楼宇名称",
        "建筑名称",
        "街道名称",
        "社区名称",
        "网格名称",
        "单位名称",
        "河流名称",
        "水系名称",
        "区域名称",
        "name:zh",
        "name_zh",
    ),
    "credit_code": ("credit_code", "统一社会信用代码", "信用代码", "社会信用代码", "uscc"),
    "address": ("address", "地址", "注册地址", "住所", "经营地址", "详细地址", "addr"),
    "lon": ("lon", "经度", "lng", "long", "longitude", "point_x", "x坐标", "x"),
    "lat": ("lat", "纬度", "latitude", "point_y", "y坐标", "y"),
    "crs": ("crs", "坐标系"),
    "class": (
        "class",
        "highway",
        "道路等级",
        "等级",
        "fclass",
        "道路类型",
        "type",
        "类型",
        "waterway",
        "水系类型",
    ),
    "code": ("code", "代码", "编码", "区划代码", "网格编码"),
    "chain": ("chain", "产业链", "所属产业链", "行业"),
    "employees": ("employees", "从业人数", "员工人数", "员工数", "职工人数", "人数"),
    "floors": ("floors", "层数", "楼层数", "地上层数", "building:levels"),
    "kind": ("kind", "楼宇类型"),
    "phone": ("phone", "电话", "联系电话", "手机", "手机号"),
    "role": ("role", "职务", "岗位"),
    "party_member": ("party_member", "党员", "是否党员"),
    "building_ids": ("building_ids", "楼宇编号"),
    "street_id": ("street_id", "街道编号"),
    "community_id": ("community_id", "社区编号"),
    "grid_id": ("grid_id", "网格编号"),
    "park_id": ("park_id", "园区编号"),
    "four_to": ("four_to", "四至", "四至范围"),
    "founded": ("founded", "成立时间"),
    "mode": ("mode", "管理模式"),
}
# Our ids start with the layer's letter (R0001, B00001, E000001 in the sample).
ID_PREFIX = {
    "roads": "R",
    "streets": "S",
    "communities": "C",
    "grids": "G",
    "parks": "P",
    "buildings": "B",
    "enterprises": "E",
    "officers": "O",
    "areas": "A",
}
_ROAD_CLASSES = {
    "motorway": "expressway",
    "trunk": "expressway",
    "快速路": "expressway",
    "高速公路": "expressway",
    "高速": "expressway",
    "primary": "arterial",
    "主干路": "arterial",
    "主干道": "arterial",
    "secondary": "secondary",
    "tertiary": "secondary",
    "次干路": "secondary",
    "次干道": "secondary",
    "residential": "branch",
    "unclassified": "branch",
    "service": "branch",
    "living_street": "branch",
    "road": "branch",
    "支路": "branch",
    "river": "river",
    "河流": "river",
    "河": "river",
    "江": "river",
    "水系": "river",
    "canal": "canal",
    "运河": "canal",
    "渠": "canal",
    "stream": "stream",
    "ditch": "stream",
    "drain": "stream",
    "溪": "stream",
    "溪流": "stream",
}
_WATERWAY = "waterway"
ROAD_CLASSES_MAPPED = frozenset(_ROAD_CLASSES.values())  # what known classes map onto


@dataclass(frozen=True)
class ColumnMatch:
    """Which source column was used for which field of ours, and where the ids came from."""

    used: dict[str, str]
    ids: str = ""  # how ids were made, e.g. "ids from osm_id (prefixed R)"
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        """``name ← 道路名称, class ← 等级; ids derived from name + geometry``."""
        pairs = ", ".join(
            f"{ours} ← {theirs}" for ours, theirs in self.used.items() if ours != theirs
        )
        same = [ours for ours, theirs in self.used.items() if ours == theirs]
        parts = [pairs] if pairs else []
        if same:
            parts.append(f"{', '.join(same)} as named")
        text = ", ".join(parts) if parts else "no columns matched"
        return "; ".join([text, *([self.ids] if self.ids else []), *self.notes])


def _key(name: str) -> str:
    """A column name for matching: NFKC, case-folded, without spaces, ``_`` and ``-``."""
    return re.sub(r"[\s_\-]", "", unicodedata.normalize("NFKC", str(name)).casefold())


def match_columns(
    columns: Sequence[str],
    spec: LayerSpec,
    overrides: Mapping[str, str] | None = None,
    *,
    extra: Sequence[str] = (),
) -> ColumnMatch:
    """The source column for each field of ``spec`` (plus ``extra`` fields such as lon/lat).

    ``overrides`` maps our field to theirs and wins; an override naming a field we do not have
    or a column the source lacks is an `InputError` that lists what there is.
    """
    wanted = [*spec.field_names, *extra]
    by_key: dict[str, str] = {}
    for column in columns:
        by_key.setdefault(_key(column), column)
    used: dict[str, str] = {}
    for ours, theirs in (overrides or {}).items():
        if ours not in wanted:
            from geo.io import InputError  # here: `geo assign` needs no geo.io until it fails

            raise InputError(
                f"--field {ours}={theirs}: {spec.name} has no field {ours!r}; "
                f"its fields are {', '.join(wanted)}"
            )
        if theirs not in columns and _key(theirs) not in by_key:
            from geo.io import InputError

            raise InputError(
                f"--field {ours}={theirs}: the source has no column {theirs!r}; "
                f"its columns are {', '.join(map(str, columns))}"
            )
        used[ours] = theirs if theirs in columns else by_key[_key(theirs)]
    taken = set(used.values())
    for ours in wanted:
        if ours in used:
            continue
        for alias in (ours, *ALIASES.get(ours, ())):
            match = by_key.get(_key(alias))
            if match is not None and match not in taken:
                used[ours] = match
                taken.add(match)
                break
    return ColumnMatch({ours: used[ours] for ours in wanted if ours in used})


def applicable(
    overrides: Mapping[str, str], columns: Sequence[str], spec: LayerSpec, extra: Sequence[str] = ()
) -> dict[str, str]:
    """The ``overrides`` that fit a source: our field is in ``spec`` (or ``extra``) and their
    column is among ``columns`` (as `match_columns` compares names)."""
    wanted = {*spec.field_names, *extra}
    keys = {_key(c) for c in columns}
    return {o: t for o, t in overrides.items() if o in wanted and _key(t) in keys}


def road_class(value: object) -> str | None:
    """A road (or waterway) class in our vocabulary; other values come back as written."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if not text:
        return None
    key = text.lower()
    key = key.removesuffix("_link") if key.endswith("_link") else key
    return _ROAD_CLASSES.get(key, text)


def conform(
    frame: pd.DataFrame,
    spec: LayerSpec,
    overrides: Mapping[str, str] | None = None,
    *,
    extra: Sequence[str] = (),
) -> tuple[pd.DataFrame, ColumnMatch]:
    """The source frame with our column names (unmatched fields absent), road classes mapped
    and every row given a stable id; and the `ColumnMatch` saying what was used."""
    import geopandas as gpd

    match = match_columns(list(frame.columns), spec, overrides, extra=extra)
    out = pd.DataFrame(
        {ours: frame[theirs].astype(object).to_numpy() for ours, theirs in match.used.items()},
        index=frame.index,
    )
    notes: list[str] = []
    if spec.name == "roads":
        notes += _conform_classes(out, frame, match)
    ids, how = stable_ids(frame, out, spec.name, match.used.get("id"))
    out["id"] = ids
    if isinstance(frame, gpd.GeoDataFrame):
        out = gpd.GeoDataFrame(out, geometry=frame.geometry.to_numpy(), crs=frame.crs)
    return out, ColumnMatch(match.used, how, tuple(notes))


def _conform_classes(out: pd.DataFrame, frame: pd.DataFrame, match: ColumnMatch) -> list[str]:
    """Map ``class`` in place; blanks are filled from an unused ``waterway`` column."""
    notes = []
    classes = out["class"] if "class" in out else pd.Series(None, index=out.index, dtype=object)
    waterway = next((c for c in frame.columns if _key(c) == _WATERWAY), None)
    if waterway is not None and waterway not in match.used.values():
        blank = classes.isna() | (classes.astype(str).str.strip() == "")
        classes = classes.where(~blank, frame[waterway].astype(object))
        notes.append(f"class of the other rows ← {waterway}")
    mapping = {v: road_class(v) for v in pd.unique(classes.dropna())}
    out["class"] = classes.map(lambda v: mapping.get(v) if v is not None else None).astype(object)
    out["class"] = out["class"].where(out["class"].notna(), None)
    return notes


def stable_ids(
    frame: pd.DataFrame, conformed: pd.DataFrame, layer: str, key: str | None
) -> tuple[list[str], str]:
    """An id per row, the same for the same file every time, and how they were made.

    A source key (a column matched to ``id``) is used as text; numeric keys of a column that is
    not literally ``id`` (osm_id, OBJECTID …) get the layer's letter (``R`` + osm_id). Rows
    without a key get the letter + 12 hex digits of a SHA-1 of their content (fields and
    geometry). Repeats get ``-2``, ``-3`` … in row order.
    """
    prefix = ID_PREFIX.get(layer, layer[:1].upper())
    keys: list[str | None] = [None] * len(frame)
    how = ""
    if key is not None:
        keys = [_key_text(v, prefix if _key(key) != "id" else "") for v in frame[key].tolist()]
        how = f"ids from {key} (numbers prefixed {prefix})" if _key(key) != "id" else ""
    missing = [i for i, k in enumerate(keys) if k is None]
    if missing:
        hashes = _content_hashes(frame, conformed, missing)
        for i, digest in zip(missing, hashes, strict=True):
            keys[i] = f"{prefix}{digest}"
        derived = f"{len(missing)} ids derived from each row's content (SHA-1 of fields + geometry)"
        how = f"{how}; {derived}" if how else derived
    ids = pd.Series(keys, dtype=object)
    repeat = ids.groupby(ids).cumcount().to_numpy()
    if repeat.any():
        ids = ids.where(repeat == 0, ids + "-" + pd.Series(repeat + 1).astype(str))
        how += f"; {int((repeat > 0).sum())} repeated ids got suffixes -2, -3 …"
    return ids.tolist(), how


def _key_text(value: object, prefix: str) -> str | None:
    """A source key as id text: whole numbers without '.0', prefixed when ``prefix`` is set."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    text = str(value).strip()
    if not text or text.lower() in ("nan", "none"):
        return None
    return f"{prefix}{text}" if prefix and text.isdigit() else text


def _content_hashes(frame: pd.DataFrame, conformed: pd.DataFrame, rows: list[int]) -> list[str]:
    """12 hex digits of SHA-1 over each row's conformed fields and its geometry's WKB."""
    import geopandas as gpd

    fields = [c for c in conformed.columns if c != "id"]
    cells = conformed.iloc[rows][fields].to_numpy(dtype=object)
    values = ["\x1f".join("" if pd.isna(v) else str(v) for v in row) for row in cells]
    if isinstance(frame, gpd.GeoDataFrame):
        geoms = shapely.transform(frame.geometry.to_numpy()[rows], lambda xy: np.round(xy, 7))
        wkb = shapely.to_wkb(geoms, output_dimension=2)
    else:
        wkb = [b""] * len(rows)
    return [
        hashlib.sha1(v.encode("utf-8") + b"\x1e" + (w or b"")).hexdigest()[:12]
        for v, w in zip(values, wkb, strict=True)
    ]


_POINTS = LayerSpec("points", "point", ())


def find_coordinates(
    columns: Sequence[str], lon: str | None = None, lat: str | None = None
) -> tuple[str, str]:
    """The lon and lat columns of a table: the given names, else found by their usual names
    (经度/lon/lng/x, 纬度/lat/y …); an `InputError` naming the columns when there are none."""
    overrides = {k: v for k, v in (("lon", lon), ("lat", lat)) if v is not None}
    used = match_columns(columns, _POINTS, overrides, extra=("lon", "lat")).used
    if "lon" not in used or "lat" not in used:
        from geo.io import InputError

        lacking = [k for k in ("lon", "lat") if k not in used]
        raise InputError(
            f"no {'/'.join(lacking)} column among {', '.join(map(str, columns))}; name the "
            "coordinate columns with --lon-col and --lat-col"
        )
    return used["lon"], used["lat"]
