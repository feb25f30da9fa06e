"""Writers: RFC 7946 GeoJSON and Excel-safe CSV (UTF-8 with BOM, formulas defused), both atomic."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.cells import FORMULA_START, defuse_formula
from geo.io.geojson import _orient
from geo.io.rows import WGS84, _plain_records

_CSV_FORMULA_START = FORMULA_START


def write_geojson(frame: gpd.GeoDataFrame, path: str | os.PathLike[str]) -> None:
    """Write an RFC 7946 FeatureCollection (WGS84, Feature ``id`` from the ``id`` column)."""
    if frame.crs is not None and not frame.crs.equals(WGS84):
        frame = frame.to_crs(WGS84)
    geometry_json = shapely.to_geojson(_orient(frame.geometry.to_numpy()))
    props = _plain_records(frame.drop(columns=[frame.geometry.name]))
    features = []
    for record, geometry in zip(props, geometry_json, strict=True):
        fid = record.pop("id", None)
        feature = {
            "type": "Feature",
            **({} if fid is None else {"id": fid}),
            "properties": record,
            "geometry": None if geometry is None else json.loads(geometry),
        }
        features.append(feature)
    text = json.dumps(
        {"type": "FeatureCollection", "features": features},
        ensure_ascii=False,
        default=_json_default,
    )
    _atomic_write(Path(path), text.encode("utf-8"))


def write_csv(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a CSV for Excel: UTF-8 with BOM, formulas defused; points as lon/lat, else WKT."""
    table = frame
    if isinstance(frame, gpd.GeoDataFrame):
        if frame.crs is not None and not frame.crs.equals(WGS84):
            frame = frame.to_crs(WGS84)
        geoms = frame.geometry.to_numpy()
        table = pd.DataFrame(frame.drop(columns=[frame.geometry.name]))
        if (shapely.get_type_id(geoms[~shapely.is_missing(geoms)]) == 0).all():
            table["lon"], table["lat"] = shapely.get_x(geoms), shapely.get_y(geoms)
        else:
            table["geometry"] = shapely.to_wkt(geoms)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(defuse_formula(str(c)) for c in table.columns)  # headers are cells too
    for record in _plain_records(table):
        writer.writerow(_csv_cell(v) for v in record.values())
    _atomic_write(Path(path), buffer.getvalue().encode("utf-8-sig"))


def _csv_cell(value: Any) -> Any:
    """A cell for CSV: text that Excel would run as a formula gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(_CSV_FORMULA_START):
        return "'" + value  # a text column: quote even numeric-looking text (+86…)
    return value


def _json_default(value: Any) -> Any:
    """JSON for numpy scalars the json module does not know."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (other threads may
    create files meanwhile); elsewhere set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and os.replace; the
    file gets the mode a plain ``open`` would give it (a file replaced keeps its mode; a new one
    is 0666 less the umask: 0644 as a rule), not the 0600 of the temporary file."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
