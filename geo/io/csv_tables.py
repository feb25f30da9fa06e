"""The two CSV tables: ``enterprises.csv`` (coordinates to WGS84, GB 32100 credit codes
checked) and ``officers.csv``, read as UTF-8 or GB18030 and validated row by row.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from geo import crs as geo_crs
from geo.creditcode import ALPHABET, check_char, valid_mask
from geo.io.geojson import _range_problems
from geo.io.rows import (
    _ENTERPRISE_COMPUTED,
    _LAT,
    _LON,
    WGS84,
    InputError,
    Issue,
    LoadResult,
    _coerce,
    _coerce_record,
    _frame,
    _keep_valid,
)
from geo.model import ENTERPRISES, OFFICERS


def _read_enterprises(path: Path, result: LoadResult) -> gpd.GeoDataFrame:
    """enterprises.csv: fields checked, credit codes flagged, coordinates converted to WGS84."""
    fields = tuple(f for f in ENTERPRISES.fields if f.name not in _ENTERPRISE_COMPUTED)
    required = [f.name for f in fields if f.required] + ["lon", "lat"]
    return _enterprises_from_rows(_read_csv(path, required), result)


def _enterprises_from_rows(
    rows: list[tuple[int, Mapping[str, Any], list[str]]], result: LoadResult
) -> gpd.GeoDataFrame:
    """Enterprise rows (line, values, problems) validated, in WGS84, credit codes flagged."""
    fields = tuple(f for f in ENTERPRISES.fields if f.name not in _ENTERPRISE_COMPUTED)
    records, problems = [], []
    for line, values, found in rows:
        record, field_problems = _coerce_record(values, fields)
        found = found + field_problems
        record["lon"], lon_problem = _coerce(_LON, values.get("lon"))
        record["lat"], lat_problem = _coerce(_LAT, values.get("lat"))
        record["source_crs"], crs_problem = _source_crs(values.get("crs"))
        if record["credit_code"] is not None:
            record["credit_code"] = record["credit_code"].upper()
        found += [p for p in (lon_problem, lat_problem, crs_problem) if p]
        records.append({**record, "_row": line})
        problems.append(found)
    frame = _frame(records, ENTERPRISES, extra=("lon", "lat"))
    lon, lat = _enterprise_wgs84(frame, problems)
    codes = frame["credit_code"].fillna("").astype(str)
    frame["credit_code_valid"] = valid_mask(codes.tolist())
    frame = gpd.GeoDataFrame(
        frame.drop(columns=["lon", "lat"]), geometry=shapely.points(lon, lat), crs=WGS84
    )
    frame = _keep_valid(frame, problems, "enterprises", result)
    _warn_credit_codes(frame, result)
    return frame


def _source_crs(value: str | None) -> tuple[str | None, str | None]:
    """A row's normalised CRS (default wgs84) or the reason it is not understood."""
    if value is None or not value.strip():
        return "wgs84", None
    try:
        return geo_crs.normalize_crs(value), None
    except geo_crs.UnknownCRSError as exc:
        return None, f"field 'crs': {exc}"


def _enterprise_wgs84(
    frame: pd.DataFrame, problems: list[list[str]]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Enterprise coordinates converted to WGS84 per source CRS; range problems recorded."""
    lon = np.full(len(frame), np.nan)
    lat = np.full(len(frame), np.nan)
    usable = frame["lon"].notna() & frame["lat"].notna() & frame["source_crs"].notna()
    for source, group in frame[usable].groupby("source_crs"):
        x, y = geo_crs.to_wgs84(
            group["lon"].to_numpy(float), group["lat"].to_numpy(float), str(source)
        )
        lon[group.index], lat[group.index] = x, y
    index = np.flatnonzero(usable.to_numpy())
    for i, problem in zip(
        index, _range_problems(lon[index], lat[index], lon[index], lat[index]), strict=True
    ):
        if problem:
            problems[i].append(problem)
    return lon, lat


def _warn_credit_codes(frame: pd.DataFrame, result: LoadResult) -> None:
    """Warn about kept enterprises whose credit code fails the check or repeats another's."""
    for row, fid, code in frame.loc[
        ~frame["credit_code_valid"], ["_row", "id", "credit_code"]
    ].itertuples(index=False):
        result.warnings.append(Issue("enterprises", int(row), fid, _credit_code_problem(code)))
    repeated = frame["credit_code"].duplicated(keep="first")
    first_row = frame.drop_duplicates("credit_code").set_index("credit_code")["_row"]
    for row, fid, code in frame.loc[repeated, ["_row", "id", "credit_code"]].itertuples(
        index=False
    ):
        result.warnings.append(
            Issue(
                "enterprises",
                int(row),
                fid,
                f"credit_code {code!r} is also used by line {first_row[code]}; "
                "each enterprise has its own code, check both rows",
            )
        )


def _credit_code_problem(code: str) -> str:
    """Why a credit code fails GB 32100, with the expected check character when computable."""
    kept = "kept with credit_code_valid=false; check the business licence"
    if len(code) != 18:
        return f"credit_code {code!r} has {len(code)} characters, not 18; {kept}"
    wrong = sorted({c for c in code if c not in ALPHABET})
    if wrong:
        return (
            f"credit_code {code!r} contains {', '.join(wrong)}, not allowed in GB 32100 "
            f"codes (I, O, S, V, Z never occur); {kept}"
        )
    return (
        f"credit_code {code!r} fails the GB 32100 check: the last character should be "
        f"{check_char(code[:17])!r}; {kept}"
    )


def _read_officers(path: Path, result: LoadResult) -> pd.DataFrame:
    """officers.csv: fields checked; building_ids normalised to ';'-separated ids."""
    return _officers_from_rows(_read_csv(path, list(OFFICERS.required)), result)


def _officers_from_rows(
    rows: list[tuple[int, Mapping[str, Any], list[str]]], result: LoadResult
) -> pd.DataFrame:
    """Officer rows (line, values, problems) validated."""
    records, problems = [], []
    for line, values, found in rows:
        record, field_problems = _coerce_record(values, OFFICERS.fields)
        found = found + field_problems
        if record["building_ids"] is not None:
            ids = [s.strip() for s in re.split(r"[;；,，]", record["building_ids"]) if s.strip()]
            record["building_ids"] = ";".join(ids) or None
        records.append({**record, "_row": line})
        problems.append(found)
    return _keep_valid(_frame(records, OFFICERS), problems, "officers", result)


def _read_csv(path: Path, required: list[str]) -> list[tuple[int, dict[str, str], list[str]]]:
    """A CSV's rows as (line, {column: text}, problems); UTF-8 (BOM or not) or GB18030/GBK."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{path}: neither UTF-8 nor GBK/GB18030 text; save it as UTF-8"
            ) from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in next(reader, [])]
    lacking = [name for name in required if name not in header]
    if lacking:
        raise InputError(
            f"{path}: missing column(s) {', '.join(lacking)}; the header line must "
            f"name at least {','.join(required)}"
        )
    rows = []
    start = reader.line_num + 1
    for cells in reader:
        if any(cell.strip() for cell in cells):
            extra = (
                [
                    f"has {len(cells)} cells but the header has {len(header)} columns; "
                    "quote cells that contain commas"
                ]
                if len(cells) > len(header)
                else []
            )
            rows.append((start, dict(zip(header, cells, strict=False)), extra))
        start = reader.line_num + 1
    return rows
