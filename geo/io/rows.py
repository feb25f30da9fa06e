"""The load's vocabulary (layers, files, `Issue`, `LoadResult`, `InputError`) and the
row-level checks shared by every reader: fields coerced to a `geo.model.LayerSpec`, bad and
repeated rows rejected, tables finished as the store expects them.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.errors import InvalidInput
from geo.ids import hostile, id_problem, shown
from geo.model import PARENT, Field, LayerSpec

GEOJSON_LAYERS = ("roads", "streets", "communities", "grids", "parks", "buildings")
OPTIONAL_FILES = {"areas": "areas.geojson"}  # named areas cited by four-to text (…地界)
FILES = {
    **{name: f"{name}.geojson" for name in GEOJSON_LAYERS},
    "enterprises": "enterprises.csv",
    "officers": "officers.csv",
}

WGS84 = "EPSG:4326"
_SINGULAR = {
    "roads": "road",
    "streets": "street",
    "communities": "community",
    "grids": "grid",
    "parks": "park",
    "buildings": "building",
    "enterprises": "enterprise",
    "officers": "officer",
}

# Foreign keys checked after every table is read: (table, field, referenced table).
_REFERENCES = (
    *((child, key, parent) for child, (parent, key) in PARENT.items()),
    ("buildings", "park_id", "parks"),
)

_GEOMETRY_TYPES = {
    "line": ("LineString", "MultiLineString"),
    "polygon": ("Polygon", "MultiPolygon"),
    "point": ("Point",),
}

_TRUE = ("true", "1", "是", "yes", "y", "t")
_FALSE = ("false", "0", "否", "no", "n", "f")
_EXPECTED = {
    "str": "text",
    "int": "a whole number",
    "float": "a finite number",
    "bool": "true/false (also 1/0, 是/否)",
}

_VALIDITY_HINTS = {
    "Self-intersection": "fix the ring so that it does not cross itself",
    "Ring Self-intersection": "fix the ring so that it does not touch itself",
    "Too few points": "a ring needs at least 3 distinct positions",
    "Hole lies outside shell": "move the hole inside the outer ring",
    "Nested shells": "make the polygons of a MultiPolygon disjoint",
    "Interior is disconnected": "holes must not split the polygon",
}

_PARSE_HINTS = {
    "closed linestring": "repeat the first position of each ring at its end",
    "0 or >1 elements": "a line needs at least two positions",
    "Unknown geometry type": "use a GeoJSON geometry type such as Polygon",
}

_ENTERPRISE_COMPUTED = ("credit_code_valid", "source_crs")
_LON = Field("lon", "float")
_LAT = Field("lat", "float")


@dataclass(frozen=True)
class Issue:
    """One problem in an input file: which table and row, which id, what is wrong and the fix."""

    table: str
    row: int
    id: str | None
    reason: str


@dataclass
class LoadResult:
    """Validated tables ready for the store, with the rows that were rejected and the warnings."""

    tables: dict[str, pd.DataFrame]
    rejected: list[Issue]
    warnings: list[Issue]
    notes: list[str] = dataclasses.field(default_factory=list)  # what was detected, per file


class InputError(InvalidInput):
    """A whole file cannot be read: the message names the file and the fix."""


def _coerce_record(
    values: Mapping[str, Any], fields: Iterable[Field]
) -> tuple[dict[str, Any], list[str]]:
    """The spec's fields coerced from raw values, and the problems found."""
    record: dict[str, Any] = {}
    problems = []
    for field in fields:
        record[field.name], problem = _coerce(field, values.get(field.name))
        if problem:
            problems.append(problem)
    return record, problems


def _coerce(field: Field, value: Any) -> tuple[Any, str | None]:
    """One value as the field's type, or None and the reason it cannot be."""
    if (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, float) and math.isnan(value))
    ):
        return None, (f"field '{field.name}' is required; fill it in" if field.required else None)
    try:
        out = _CONVERTERS[field.type](value)
    except (TypeError, ValueError):
        return None, f"field '{field.name}' must be {_EXPECTED[field.type]}, got {value!r}"
    if field.choices is not None and out not in field.choices:
        return None, (
            f"field '{field.name}' must be one of {', '.join(field.choices)}, got {out!r}"
        )
    return out, None


def _to_str(value: Any) -> str:
    """Text from text or a number (whole floats lose their '.0')."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _to_int(value: Any) -> int:
    """A whole number from an int, a whole float or digits."""
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise ValueError(value)


def _to_float(value: Any) -> float:
    """A finite float from a number or numeric text."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(value)
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(value)
    return out


def _to_bool(value: Any) -> bool:
    """A bool from true/false, 1/0, 是/否 (and yes/no)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(value)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "str": _to_str,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
}


def _frame(
    records: list[dict[str, Any]], spec: LayerSpec, extra: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Records as a DataFrame with the spec's columns (plus ``extra`` and ``_row``), as objects."""
    columns = [*spec.field_names, *extra, "_row"]
    frame = pd.DataFrame.from_records(records, columns=columns).astype(object)
    return frame.where(frame.notna(), None)


def _keep_valid(
    frame: pd.DataFrame, problems: list[list[str]], table: str, result: LoadResult
) -> pd.DataFrame:
    """Reject rows with problems, ids that are no ids (`geo.ids`) and repeated ids; return the
    rest."""
    bad = np.array([bool(p) for p in problems], dtype=bool)
    first: dict[str, int] = {}
    for k, (fid, row) in enumerate(zip(frame["id"], frame["_row"], strict=True)):
        if fid is None:
            continue
        if (problem := id_problem(fid)) is not None:
            problems[k].append(f"id {shown(fid)} {problem}")
            bad[k] = True
        elif fid in first:
            problems[k].append(
                f"id {fid!r} is already used by row {first[fid]}; ids must be unique within a table"
            )
            bad[k] = True
        else:
            first[fid] = row
    for k in np.flatnonzero(bad):
        fid = frame["id"].iloc[k]
        fid = shown(fid) if isinstance(fid, str) and hostile(fid) else fid  # a NUL, a bidi …
        result.rejected.append(
            Issue(table, int(frame["_row"].iloc[k]), fid, "; ".join(problems[k]))
        )
    return frame[~bad].reset_index(drop=True)


def _empty(spec: LayerSpec) -> gpd.GeoDataFrame:
    """A layer with no features (an optional file that is absent)."""
    return gpd.GeoDataFrame({name: [] for name in spec.field_names}, geometry=[], crs=WGS84)


def _finish(frame: pd.DataFrame, spec: LayerSpec) -> pd.DataFrame:
    """The table as the store expects it: spec columns with their dtypes, sorted by id."""
    frame = frame.sort_values("id", kind="stable").reset_index(drop=True)
    columns = {}
    for field in spec.fields:
        values = frame[field.name]
        if field.type == "str":
            columns[field.name] = values.astype(object).where(values.notna(), None)
        elif field.type == "int":
            columns[field.name] = values.astype("Int64" if not field.required else "int64")
        elif field.type == "float":
            columns[field.name] = values.astype("float64")
        else:
            columns[field.name] = values.astype("boolean" if not field.required else bool)
    out = pd.DataFrame(columns, index=frame.index)
    if spec.geometry is None:
        return out
    return gpd.GeoDataFrame(
        out, geometry=gpd.GeoSeries(frame.geometry.to_numpy(), crs=WGS84), crs=WGS84
    )


def _plain_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values, None for missing."""
    plain = frame.astype(object)
    return plain.where(plain.notna(), None).to_dict("records")
