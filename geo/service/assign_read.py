"""The inputs of `geo assign` as Arrow record batches, in order and in bounded memory.

- CSV: Arrow's streaming CSV reader, block by block (``block_bytes`` of text at a time), every
  cell kept as text. UTF-8 (with or without BOM) unless the first megabyte says GBK; a file that
  turns out not to be UTF-8 further on is read again as GB18030 (`Retry`). Rows with more or
  fewer cells than the header are not dropped: they come back beside the batch with their
  position, and are written ``invalid`` where they stood.
- Parquet: one file or a folder of ``.parquet`` files (a dataset, read file by file in name
  order, each by batches of row groups); GeoParquet's WKB point geometry gives the points.
- Excel ``.xlsx``: one sheet, read whole (a sheet holds at most 1,048,576 rows).
"""

from __future__ import annotations

import csv
import io
import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from geo import crs as crs_mod
from geo.errors import InvalidInput
from geo.service.assign_core import Layout

BLOCK_BYTES = 4 << 20  # CSV text parsed at a time
FIELD_LIMIT = 1 << 24  # bytes of one CSV row at most (the block grows to this for long rows)
_BOM = b"\xef\xbb\xbf"


class BatchError(InvalidInput):
    """The file as a whole cannot be processed (missing columns, unreadable)."""


class Retry(Exception):
    """Read the CSV again from the start with another encoding or block size."""

    def __init__(self, encoding: str, block_bytes: int) -> None:
        super().__init__(encoding, block_bytes)
        self.encoding = encoding
        self.block_bytes = block_bytes


@dataclass
class Piece:
    """One unit of work: a batch (with its ragged rows), or a Parquet row group to read."""

    batch: pa.RecordBatch | None = None
    ragged: list[tuple[int, list[str]]] = field(default_factory=list)
    path: str | None = None
    row_groups: list[int] | None = None
    size: int = 0  # progress units this piece accounts for (bytes or rows)


@dataclass(frozen=True)
class Options:
    """What `geo assign` was asked: CRS and columns, sheet, chunk and block sizes."""

    crs: str | None = None
    lon_col: str | None = None
    lat_col: str | None = None
    crs_col: str = "crs"
    sheet: str | None = None
    chunk_rows: int = 100_000
    block_bytes: int = BLOCK_BYTES


def detect_encoding(path: Path, probe_bytes: int = 1 << 20) -> str:
    """A first guess from the file's first ``probe_bytes``: ``utf-8`` when they decode as
    UTF-8, else ``gb18030`` (GBK). An ASCII start proves nothing: a later byte that is not
    UTF-8 makes the reader start over in GB18030 (`Retry`)."""
    with path.open("rb") as f:
        head = f.read(probe_bytes)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the probe's end
            return "gb18030"
    return "utf-8"


def layout_for(names: list[str], options: Options, src: Path, untyped: bool) -> Layout:
    """Find the coordinate (and crs) columns among ``names``; a BatchError naming them if not."""
    from geo.columns import find_coordinates

    try:
        lon, lat = find_coordinates(names, options.lon_col, options.lat_col)
    except InvalidInput as exc:  # geo.io's InputError: no such columns
        raise BatchError(f"{src}: {exc}") from exc
    crs_col = None
    if options.crs is None and options.crs_col in names:
        crs_col = names.index(options.crs_col)
    return Layout(
        tuple(names), names.index(lon), names.index(lat), crs_col, options.crs, None, untyped
    )


# ------------------------------------------------------------------------------------------ CSV


class CsvInput:
    """A CSV file read by Arrow's streaming reader, every cell as text (see the module doc)."""

    def __init__(self, src: Path, options: Options, encoding: str, block_bytes: int) -> None:
        self.src = src
        self.options = options
        self.encoding = encoding
        self.block_bytes = block_bytes
        self.total = src.stat().st_size
        if csv.field_size_limit() < FIELD_LIMIT:  # ragged rows are split by Python's csv
            csv.field_size_limit(FIELD_LIMIT)
        self.names = self._header()
        self.layout = layout_for(self.names, options, src, untyped=True)
        self.schema = pa.schema([pa.field(n, pa.string()) for n in self.names])

    def _open(self, column_types: dict[str, Any] | None, handler: Any = None) -> Any:
        stream = pa.OSFile(str(self.src))
        if self.encoding != "utf-8" and stream.read(3) != _BOM:
            stream.seek(0)  # Arrow skips a UTF-8 BOM itself; GB18030 would read it as text
        return pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                block_size=self.block_bytes, use_threads=False, encoding=self.encoding
            ),
            parse_options=pacsv.ParseOptions(
                newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=handler
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=column_types,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        ), stream

    def _header(self) -> list[str]:
        """The column names: the first record, as Python's csv module reads it."""
        with self.src.open("rb") as f:
            head = f.read(min(self.block_bytes, FIELD_LIMIT))
        if self.encoding == "utf-8" or head.startswith(_BOM):
            head = head.removeprefix(_BOM)
        text = head.decode(self.encoding, errors="replace")
        if len(head) == min(self.block_bytes, FIELD_LIMIT):
            text = text[:-1]  # a character may be cut at the end of the probe
        rows = csv.reader(io.StringIO(text, newline=""))
        names = next(rows, None)
        if not names:
            raise BatchError(f"{self.src} is empty: expected a header row with lon/lat columns")
        if next(rows, None) is None and len(head) == min(self.block_bytes, FIELD_LIMIT):
            raise (
                Retry(self.encoding, FIELD_LIMIT)
                if self.block_bytes < FIELD_LIMIT
                else (BatchError(f"{self.src}: a header longer than {FIELD_LIMIT:,} bytes"))
            )
        return names

    def _failure(self, exc: pa.ArrowInvalid) -> Exception:
        """What an Arrow error means: read again (encoding, block size) or give up."""
        text = str(exc)
        if "Empty CSV file" in text:
            return BatchError(f"{self.src} is empty: expected a header row with lon/lat columns")
        if "invalid UTF8" in text and self.encoding == "utf-8":
            return Retry("gb18030", self.block_bytes)  # an ASCII start, GBK further on
        if "straddl" in text:
            if self.block_bytes < FIELD_LIMIT:
                return Retry(self.encoding, FIELD_LIMIT)
            return BatchError(
                f"{self.src}: a row is longer than {FIELD_LIMIT:,} bytes (a field may hold at "
                f"most {FIELD_LIMIT:,} bytes); shorten the longest cells"
            )
        return BatchError(f"{self.src}: not a readable CSV file ({text}); save it as CSV")

    def pieces(self) -> Iterator[Piece]:
        """The batches in order (cut to ``chunk_rows``), each with its ragged rows."""
        pending: deque[tuple[int, list[str]]] = deque()

        def ragged(row: Any) -> str:
            cells = next(csv.reader(io.StringIO(row.text, newline="")), [])
            pending.append((row.number - 2, cells))  # row 1 is the header
            return "skip"

        try:
            reader, stream = self._open(dict.fromkeys(self.names, pa.string()), ragged)
        except pa.ArrowInvalid as exc:
            raise self._failure(exc) from exc
        except UnicodeDecodeError as exc:
            raise self._undecodable(exc) from exc
        step = max(1, self.options.chunk_rows)
        placed = read = 0  # rows given out (valid and ragged); bytes read
        with stream:
            for batch in self._batches(reader):
                self._check_fields(batch)
                size, read = stream.tell() - read, stream.tell()
                for start in range(0, max(batch.num_rows, 1), step):
                    part = batch.slice(start, step)
                    mine: list[tuple[int, list[str]]] = []
                    while pending and pending[0][0] - placed <= part.num_rows + len(mine):
                        pos, cells = pending.popleft()
                        mine.append((max(pos - placed, 0), cells))
                    yield Piece(part, mine, size=size if start == 0 else 0)
                    placed += part.num_rows + len(mine)
        if pending:
            rest = [(max(pos - placed, 0), cells) for pos, cells in pending]
            yield Piece(_empty(self.schema), rest, size=max(self.total - read, 0))

    def _check_fields(self, batch: pa.RecordBatch) -> None:
        """A BatchError when a cell holds more than `FIELD_LIMIT` bytes."""
        for column in batch.columns:
            if len(column) and pc.max(pc.binary_length(column)).as_py() > FIELD_LIMIT:
                raise BatchError(
                    f"{self.src}: a field holds more than {FIELD_LIMIT:,} bytes (fields may "
                    f"hold at most {FIELD_LIMIT:,}); shorten the longest cells"
                )

    def _batches(self, reader: Any) -> Iterator[pa.RecordBatch]:
        while True:
            try:
                yield reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                raise self._failure(exc) from exc
            except UnicodeDecodeError as exc:
                raise self._undecodable(exc) from exc

    def _undecodable(self, exc: UnicodeDecodeError) -> BatchError:
        return BatchError(
            f"{self.src}: not UTF-8 nor GBK/GB18030 text (byte {exc.start} of a block: "
            f"{exc.reason}); save it as CSV in UTF-8"
        )


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema)


# -------------------------------------------------------------------------------------- Parquet


class ParquetInput:
    """A Parquet file, or a folder of them (a dataset), by row groups; GeoParquet points."""

    def __init__(self, src: Path, options: Options) -> None:
        self.src = src
        self.options = options
        self.files = _parquet_files(src)
        try:
            metas = [pq.read_metadata(f) for f in self.files]
            self.schema = pa.unify_schemas([m.schema.to_arrow_schema() for m in metas])
        except (OSError, pa.ArrowException) as exc:
            raise BatchError(
                f"{src}: not readable Parquet ({_first_line(exc)}); re-export it"
            ) from exc
        self.groups = [
            (str(f), i, m.row_group(i).num_rows)
            for f, m in zip(self.files, metas, strict=True)
            for i in range(m.num_row_groups)
        ]
        self.total = sum(rows for _, _, rows in self.groups)
        names = list(self.schema.names)
        self.geo = _geo_metadata(self.schema)
        self.layout = self._layout(names)

    def _layout(self, names: list[str]) -> Layout:
        options = self.options
        if self.geo is None or options.lon_col or options.lat_col:
            return layout_for(names, options, self.src, untyped=False)
        column = self.geo.get("primary_column", "geometry")
        spec = self.geo.get("columns", {}).get(column, {})
        if column not in names or spec.get("encoding", "WKB").upper() != "WKB":
            raise BatchError(
                f"{self.src}: GeoParquet geometry {column!r} is not WKB; write it with WKB "
                "encoding, or give --lon-col and --lat-col"
            )
        crs = options.crs or _geoparquet_crs(spec.get("crs", None), self.src)
        return Layout(tuple(names), None, None, None, crs, names.index(column), False)

    def pieces(self) -> Iterator[Piece]:
        """Batches of at most ``chunk_rows`` rows, file by file, row group by row group."""
        for path, group, rows in self.groups:
            yield from read_group(path, group, self.schema, self.options.chunk_rows, rows)

    def group_pieces(self) -> Iterator[Piece]:
        """One piece per row group, to be read where it is processed (a Dask worker)."""
        for path, group, rows in self.groups:
            yield Piece(path=path, row_groups=[group], size=rows)


def read_group(
    path: str, group: int, schema: pa.Schema, chunk_rows: int, rows: int = 0
) -> Iterator[Piece]:
    """The batches of one row group, conformed to the dataset's ``schema``."""
    file = pq.ParquetFile(path)
    first = True
    for batch in file.iter_batches(batch_size=max(1, chunk_rows), row_groups=[group]):
        yield Piece(_conform(batch, schema), size=rows if first else 0)
        first = False


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with the dataset's columns in its order (null where a file lacks one)."""
    if batch.schema.equals(schema):
        return batch
    columns = [
        batch.column(name).cast(f.type)
        if name in batch.schema.names
        else pa.nulls(batch.num_rows, f.type)
        for name, f in zip(schema.names, schema, strict=True)
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _parquet_files(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    files = sorted(
        p
        for p in src.rglob("*")
        if p.is_file()
        and p.suffix.lower() in (".parquet", ".geoparquet")
        and not any(part.startswith((".", "_")) for part in p.relative_to(src).parts)
    )
    if not files:
        raise BatchError(f"{src}: a folder without .parquet files; give a file or a dataset folder")
    return files


def _geo_metadata(schema: pa.Schema) -> dict[str, Any] | None:
    raw = (schema.metadata or {}).get(b"geo")
    if raw is None:
        return None
    try:
        found = json.loads(raw)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _geoparquet_crs(crs: Any, src: Path) -> str:
    """Our name for a GeoParquet column's CRS (PROJJSON; absent means OGC:CRS84)."""
    if crs is None:
        return "wgs84"
    from pyproj import CRS

    try:
        found = CRS.from_user_input(crs)
        code = found.to_epsg()
        if code is None and found.is_geographic and "84" in (found.name or ""):
            code = 4326
    except Exception as exc:  # pyproj raises several kinds
        raise BatchError(f"{src}: GeoParquet CRS not understood ({exc}); give --crs") from exc
    if code is None:
        raise BatchError(f"{src}: GeoParquet CRS {found.name!r} has no EPSG code; give --crs")
    return crs_mod.normalize_crs(f"EPSG:{code}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# ---------------------------------------------------------------------------------------- Excel


class ExcelInput:
    """One sheet of a workbook, read whole (bounded by the sheet), every cell as its text."""

    def __init__(self, src: Path, options: Options) -> None:
        from geo.sources import read_source

        source = read_source(src, layer=options.sheet)
        frame = source.frame.reset_index(drop=True)
        names = [str(c) for c in frame.columns]
        cells = frame.astype(object).where(frame.notna(), "").astype(str)
        self.schema = pa.schema([pa.field(n, pa.string()) for n in names])
        self.table = pa.Table.from_arrays(
            [pa.array(cells.iloc[:, i].tolist(), pa.string()) for i in range(len(names))],
            schema=self.schema,
        )
        self.total = self.table.num_rows
        self.options = options
        self.layout = layout_for(names, options, src, untyped=True)

    def pieces(self) -> Iterator[Piece]:
        """The sheet in batches of ``chunk_rows``."""
        for batch in self.table.to_batches(max_chunksize=max(1, self.options.chunk_rows)):
            yield Piece(batch, size=batch.num_rows)
