"""Open any source a district GIS office has and return it in WGS84, saying what was detected.

Vector sources are read through pyogrio (GDAL): Shapefile, GeoPackage, FileGDB, GeoJSON, KML,
GeoParquet and OpenStreetMap ``.osm.pbf``. Tables are read with pandas: CSV (UTF-8, UTF-8 with
BOM, GBK/GB18030), Excel ``.xlsx`` and Parquet; they stay plain DataFrames (their lon/lat
columns are found later by `geo.columns`).

`read_source` returns a `Source`: the frame (a GeoDataFrame in EPSG:4326 for vector sources),
the layer, driver, text encoding and CRS it found, and ``notes``, sentences for the user such as
"attributes decoded as GBK (from .cpg)". A source that cannot be read raises `SourceError`,
whose message names the file and the fix.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import crs as geo_crs
from geo.io import InputError

WGS84 = "EPSG:4326"
VECTOR_SUFFIXES = (".shp", ".gpkg", ".gdb", ".geojson", ".json", ".kml", ".osm.pbf", ".pbf")
TABLE_SUFFIXES = (".csv", ".xlsx", ".parquet", ".geoparquet")
SUPPORTED_SUFFIXES = (*VECTOR_SUFFIXES, *TABLE_SUFFIXES)
_DRIVERS = {
    ".shp": "ESRI Shapefile",
    ".gpkg": "GPKG",
    ".gdb": "OpenFileGDB",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".kml": "KML",
    ".osm.pbf": "OSM",
    ".pbf": "OSM",
}
_MULTI_LAYER = (".gpkg", ".gdb", ".osm.pbf", ".pbf", ".kml")
_OSM_DEFAULT_LAYER = "lines"
_CPG = {
    "936": "GBK",
    "cp936": "GBK",
    "gbk": "GBK",
    "gb2312": "GBK",
    "gb18030": "GB18030",
    "65001": "UTF-8",
    "utf-8": "UTF-8",
    "utf8": "UTF-8",
}
_DEGREE_BOUNDS = (-180.0, -90.0, 180.0, 90.0)


class SourceError(InputError):
    """A source that cannot be read: the message names the file and the fix."""


@dataclass(frozen=True)
class Source:
    """A source read into memory: ``frame`` in WGS84 (vector) or as a plain table, and what was
    found on the way (driver, layer, encoding, CRS as found or declared) in ``notes``."""

    frame: pd.DataFrame
    path: Path
    layer: str | None
    driver: str
    encoding: str | None
    crs: str | None
    notes: list[str] = field(default_factory=list)

    @property
    def is_vector(self) -> bool:
        """Whether the source has geometries (else a table of rows)."""
        return isinstance(self.frame, gpd.GeoDataFrame)


def suffix_of(path: str | os.PathLike[str]) -> str:
    """The format suffix of a path, lower case (``.osm.pbf`` counts as one)."""
    name = Path(path).name.lower()
    return ".osm.pbf" if name.endswith(".osm.pbf") else Path(name).suffix


def split_layer(path: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """``data.gpkg:roads`` → (``data.gpkg``, ``roads``); a path that exists as given is kept."""
    text = os.fspath(path)
    if not Path(text).exists() and ":" in text:
        base, _, layer = text.rpartition(":")
        if base and layer and Path(base).exists():
            return Path(base), layer
    return Path(text), None


def read_source(
    path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    crs: str | None = None,
    override: bool = True,
) -> Source:
    """Read one source; vector sources come back in WGS84 (see the module docstring).

    ``layer`` picks a layer of a GeoPackage / FileGDB / .osm.pbf (or a sheet of a workbook);
    ``path.gpkg:layer`` does the same. ``crs`` declares the coordinates' CRS (``gcj02``,
    ``bd09``, ``EPSG:4549`` …) for a file that has none or a wrong one; with ``override``
    false it applies only where it can (a file without CRS; GCJ-02/BD-09 over lon/lat), as for
    a whole data folder.
    """
    file, named = split_layer(path)
    layer = layer or named
    if not file.exists():
        raise SourceError(f"{file}: no such file or folder; check the path")
    suffix = suffix_of(file)
    if suffix not in SUPPORTED_SUFFIXES:
        raise SourceError(
            f"{file}: unknown format {suffix or '(no extension)'!r}; give one of "
            f"{', '.join(SUPPORTED_SUFFIXES)}"
            + (" (save .xls as .xlsx)" if suffix == ".xls" else "")
        )
    if suffix == ".csv":
        return _read_csv(file)
    if suffix == ".xlsx":
        return _read_excel(file, layer)
    if suffix in (".parquet", ".geoparquet"):
        return _read_parquet(file, crs, override)
    return _read_vector(file, suffix, layer, crs, override)


# --------------------------------------------------------------------------------------- tables


def decode_text(data: bytes, file: Path) -> tuple[str, str]:
    """Text and its encoding's name: UTF-8 (with or without BOM), else GB18030 (GBK)."""
    try:
        text = data.decode("utf-8-sig")
        return text, "UTF-8 with BOM" if data.startswith(b"\xef\xbb\xbf") else "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "GB18030"
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"{file}: neither UTF-8 nor GBK/GB18030 text (undecodable byte at {exc.start}); "
            "save it as UTF-8"
        ) from exc


def _read_csv(file: Path) -> Source:
    """A CSV as text cells (empty cells are empty strings), its encoding detected."""
    text, encoding = decode_text(file.read_bytes(), file)
    if "\x00" in text:
        raise SourceError(f"{file}: binary data, not a CSV text file; export the table as CSV")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SourceError(
            f"{file}: not a readable CSV ({_first_line(exc)}); check the file"
        ) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    note = f"read {file.name} as CSV, text decoded as {encoding}" + (
        " (detected)" if encoding == "GB18030" else ""
    )
    return Source(frame, file, None, "CSV", encoding, None, [note])


def _read_excel(file: Path, sheet: str | None) -> Source:
    """One sheet of a workbook (the first unless ``sheet`` names one)."""
    try:
        book = pd.ExcelFile(file, engine="openpyxl")
    except (zipfile.BadZipFile, ValueError, OSError, KeyError) as exc:
        raise SourceError(
            f"{file}: not a readable .xlsx workbook ({_first_line(exc)}); re-save it from Excel"
        ) from exc
    with book:
        names = [str(n) for n in book.sheet_names]
        if sheet is not None and sheet not in names:
            raise SourceError(
                f"{file}: no sheet {sheet!r}; the sheets are {', '.join(names)} "
                "(pick one with --layer)"
            )
        chosen = sheet if sheet is not None else names[0]
        frame = pd.read_excel(book, sheet_name=chosen, dtype=object)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.dropna(how="all")
    return Source(frame, file, chosen, "XLSX", None, None, [f"read sheet {chosen} of {file.name}"])


def _read_parquet(file: Path, crs: str | None, override: bool) -> Source:
    """GeoParquet (a ``geo`` key in the metadata) as a vector source, else a plain table."""
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(file).metadata or {}
        frame = gpd.read_parquet(file) if b"geo" in metadata else pd.read_parquet(file)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise SourceError(
            f"{file}: not a readable Parquet file ({_first_line(exc)}); re-export it"
        ) from exc
    if not isinstance(frame, gpd.GeoDataFrame):
        return Source(frame, file, None, "Parquet", None, None, [f"read {file.name} as Parquet"])
    frame, found, notes = to_wgs84(frame, file, crs)
    return Source(
        frame, file, None, "GeoParquet", None, found, [f"read {file.name} as GeoParquet", *notes]
    )


# --------------------------------------------------------------------------------------- vector


def _read_vector(
    file: Path, suffix: str, layer: str | None, crs: str | None, override: bool
) -> Source:
    """A vector layer via pyogrio, attributes decoded, geometry in WGS84."""
    import pyogrio

    try:
        layer = _pick_layer(file, suffix, layer)
        encoding, notes = _shapefile_encoding(file) if suffix == ".shp" else (None, [])
        try:
            frame = pyogrio.read_dataframe(file, layer=layer, encoding=_gdal_encoding(encoding))
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
            raise SourceError(f"{file}: cannot be read ({_first_line(exc)}); re-export it") from exc
        except (RuntimeError, ValueError, OSError) as exc:
            raise SourceError(
                f"{file}: unreadable or corrupt ({_first_line(exc)}); re-export it"
            ) from exc
    except SourceError:
        if suffix in (".geojson", ".json"):
            _check_json_syntax(file)  # GDAL's message hides where the syntax breaks
        raise
    frame.columns = [c if c == "geometry" else str(c).strip() for c in frame.columns]
    where = f"layer {layer} of {file.name}" if layer and suffix in _MULTI_LAYER else file.name
    frame, found, crs_notes = to_wgs84(frame, file, crs, override)
    return Source(
        frame, file, layer, _DRIVERS[suffix], encoding, found, [f"read {where}", *notes, *crs_notes]
    )


def _check_json_syntax(file: Path) -> None:
    """Raise a `SourceError` naming the line and column where ``file`` stops being JSON."""
    try:
        json.loads(file.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
            "save the file as UTF-8 (RFC 7946)"
        ) from exc
    except json.JSONDecodeError as exc:
        raise SourceError(
            f"{file}: not valid JSON ({exc.msg} at line {exc.lineno}, column "
            f"{exc.colno}); fix the syntax or re-export the layer"
        ) from exc


def _pick_layer(file: Path, suffix: str, layer: str | None) -> str | None:
    """The layer to read: the given one (checked), the only one, or lines of an OSM extract."""
    import pyogrio

    try:
        names = [str(n) for n in pyogrio.list_layers(file)[:, 0]]
    except (pyogrio.errors.DataSourceError, RuntimeError, ValueError, OSError) as exc:
        raise SourceError(
            f"{file}: unreadable or corrupt ({_first_line(exc)}); re-export it"
        ) from exc
    if layer is not None:
        if layer not in names:
            raise SourceError(
                f"{file}: no layer {layer!r}; the layers are {', '.join(names)} "
                f"(pick one with --layer or {file.name}:LAYER)"
            )
        return layer
    if suffix in (".osm.pbf", ".pbf"):
        return _OSM_DEFAULT_LAYER
    if len(names) > 1 and suffix in _MULTI_LAYER:
        raise SourceError(
            f"{file}: has {len(names)} layers ({', '.join(names)}); pick one with --layer "
            f"or {file.name}:LAYER"
        )
    return names[0] if names else None


def _shapefile_encoding(file: Path) -> tuple[str, list[str]]:
    """The .dbf's text encoding: from the .cpg, else UTF-8 if its bytes decode, else GB18030."""
    cpg = file.with_suffix(".cpg")
    if not cpg.is_file():
        cpg = file.with_suffix(".CPG")
    if cpg.is_file():
        declared = cpg.read_text(encoding="ascii", errors="replace").strip()
        name = _CPG.get(declared.lower(), declared)
        return name, [f"attributes decoded as {name} (from .cpg)"]
    dbf = next(
        (p for p in (file.with_suffix(".dbf"), file.with_suffix(".DBF")) if p.is_file()), None
    )
    if dbf is None:
        raise SourceError(f"{file}: the .dbf beside it is missing; copy all the shapefile's files")
    text = _dbf_text(dbf.read_bytes())
    try:
        text.decode("utf-8")
        return "UTF-8", ["attributes decoded as UTF-8 (no .cpg; detected)"]
    except UnicodeDecodeError:
        pass
    try:
        text.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"{file}: attribute text is neither UTF-8 nor GBK/GB18030; add a .cpg file "
            "naming its code page (e.g. GBK)"
        ) from exc
    return "GB18030", ["attributes decoded as GBK/GB18030 (no .cpg; not UTF-8)"]


def _dbf_text(data: bytes) -> bytes:
    """The text bytes of a dBASE file: field names and records (header numbers left out)."""
    header = int.from_bytes(data[8:10], "little") if len(data) >= 10 else len(data)
    names = b"".join(
        data[i : i + 11].split(b"\x00", 1)[0] for i in range(32, max(header - 32, 32), 32)
    )
    return names + b" " + data[header:].rstrip(b"\x1a")


def _gdal_encoding(name: str | None) -> str | None:
    """The encoding to hand GDAL; None (GDAL reads the .cpg itself) for code pages we do not
    name."""
    return {"GBK": "CP936", "UTF-8": "UTF-8", "GB18030": "GB18030"}.get(name or "")


# ------------------------------------------------------------------------------------------ CRS


def to_wgs84(
    frame: gpd.GeoDataFrame, file: Path, declared: str | None, override: bool = True
) -> tuple[gpd.GeoDataFrame, str | None, list[str]]:
    """The frame in EPSG:4326, the CRS it came in (as found or declared) and notes saying so.

    Without ``override`` a declared CRS applies only to a file without one, or (GCJ-02/BD-09)
    to a file in lon/lat; a file with its own projected CRS keeps it."""
    kind = _declared(declared, file)
    if kind is not None and not override and frame.crs is not None:
        offsets = kind in ("gcj02", "bd09") and frame.crs.to_epsg() in (4326, 4490)
        if not offsets:
            frame, found, own_notes = _reproject(frame, [])
            return (
                frame,
                found,
                [f"--crs {declared} not applied: the file has its own CRS", *own_notes],
            )
    if kind in ("gcj02", "bd09"):
        if frame.crs is not None and not frame.crs.is_geographic:
            raise SourceError(
                f"{file}: --crs {declared} declares lon/lat offsets, but the file's CRS is "
                f"projected ({frame.crs.name}); drop --crs or give the right one"
            )
        label = "GCJ-02" if kind == "gcj02" else "BD-09"
        geoms = shapely.transform(
            frame.geometry.to_numpy(),
            lambda xy: np.column_stack(geo_crs.to_wgs84(xy[:, 0], xy[:, 1], kind)),
        )
        out = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index), crs=WGS84)
        return out, kind, [f"coordinates converted from {label} (declared with --crs) to WGS84"]
    notes: list[str] = []
    if kind is not None:
        epsg = {"wgs84": 4326, "cgcs2000": 4490}.get(kind) or int(kind.split(":")[1])
        if frame.crs is not None and frame.crs.to_epsg() != epsg:
            notes.append(f"the file's own CRS ({_label(frame.crs)}) overridden by --crs {declared}")
        frame = frame.set_crs(epsg, allow_override=True)
    elif frame.crs is None:
        return _assume_degrees(frame, file)
    return _reproject(frame, notes)


def _declared(declared: str | None, file: Path) -> str | None:
    if declared is None:
        return None
    try:
        return geo_crs.normalize_crs(declared)
    except geo_crs.UnknownCRSError as exc:
        raise SourceError(f"{file}: --crs: {exc}") from exc


def _assume_degrees(
    frame: gpd.GeoDataFrame, file: Path
) -> tuple[gpd.GeoDataFrame, str | None, list[str]]:
    """A frame without CRS: WGS84 if its coordinates look like degrees, else a SourceError."""
    minx, miny, maxx, maxy = frame.total_bounds
    lo_x, lo_y, hi_x, hi_y = _DEGREE_BOUNDS
    if len(frame) == 0 or not np.isfinite(minx):
        return frame.set_crs(WGS84), None, ["no CRS in the file and no coordinates; taken as WGS84"]
    if minx >= lo_x and maxx <= hi_x and miny >= lo_y and maxy <= hi_y:
        return (
            frame.set_crs(WGS84),
            None,
            ["no CRS in the file; its coordinates look like degrees, taken as WGS84 lon/lat"],
        )
    raise SourceError(
        f"{file}: the file has no CRS and its coordinates look projected (x={minx:.0f} "
        f"y={miny:.0f}): pass --crs EPSG:4549 (or the CRS the data was drawn in)"
    )


def _reproject(
    frame: gpd.GeoDataFrame, notes: list[str]
) -> tuple[gpd.GeoDataFrame, str | None, list[str]]:
    """A frame with a CRS, in WGS84; CGCS2000 geographic (EPSG:4490) is taken as WGS84."""
    epsg = frame.crs.to_epsg()
    found = f"EPSG:{epsg}" if epsg else frame.crs.name
    if epsg == 4326:
        return frame.set_crs(WGS84, allow_override=True), found, notes
    if epsg == 4490:
        note = "CGCS2000 geographic (EPSG:4490) taken as WGS84 (they differ by centimetres)"
        return frame.set_crs(WGS84, allow_override=True), found, [*notes, note]
    note = f"reprojected from {_label(frame.crs)} to WGS84"
    return frame.to_crs(WGS84), found, [*notes, note]


def _label(crs) -> str:
    """``EPSG:4549 (CGCS2000 / 3-degree Gauss-Kruger CM 120E)``, or the CRS name alone."""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg} ({crs.name})" if epsg else crs.name


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (GDAL's are long)."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
