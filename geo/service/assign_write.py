"""The outputs of `geo assign`: CSV (for Excel: UTF-8 with BOM, formulas defused), Parquet, .xlsx.

CSV text is made column by column with Arrow compute (no Python loop over rows): a cell is
quoted only when it holds a comma, a quote or a line break, exactly as Python's csv module does
(``QUOTE_MINIMAL``, lines ending in CRLF). A text cell that Excel would run as a formula gets a
leading ``'``: from a CSV or a sheet (untyped text) unless it is a number such as ``-120.5``;
from a typed table (Parquet) always. Headers are defused as untyped text. Parquet keeps the
input's column types (and GeoParquet's ``geo`` metadata). Every output is written beside its
destination and moved into place at the end, so nothing is left half-written.
"""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from geo.cells import FORMULA_START, defuse_formula
from geo.service.assign_core import OUTPUT_COLUMNS, Layout, numbers
from geo.service.assign_read import BatchError

OUTPUT_SUFFIXES = (".csv", ".parquet", ".xlsx")
EXCEL_ROWS = 1_048_575  # a sheet's rows below its header
_FORMULA_BYTES = np.zeros(256, dtype=bool)  # first bytes of cells Excel runs as formulas
_FORMULA_BYTES[np.frombuffer("".join(FORMULA_START).encode(), dtype=np.uint8)] = True


def check_output(dst: Path) -> str:
    """The output format of ``dst`` (by extension); a BatchError for any other."""
    suffix = dst.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise BatchError(
            f"{dst}: cannot write {suffix or 'that'}; use {', '.join(OUTPUT_SUFFIXES)}"
        )
    return suffix


def header_csv(names: list[str]) -> bytes:
    """The CSV header line (BOM first), names defused."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(defuse_formula(str(n)) for n in names)
    return buffer.getvalue().encode("utf-8-sig")


def encode_csv(table: pa.Table, layout: Layout) -> bytes:
    """The rows of ``table`` as CSV lines (UTF-8, CRLF), cells defused and quoted as needed."""
    if table.num_rows == 0:
        return b""
    width = len(layout.names)
    texts = [
        _text(table.column(i), untyped=layout.untyped and i < width, geometry=i == layout.geometry)
        for i in range(table.num_columns)
    ]
    texts[-1] = pc.binary_join_element_wise(texts[-1], "", "\r\n")
    lines = pc.binary_join_element_wise(*texts, ",")
    return b"".join(_data(chunk) for chunk in _chunks(lines))


def _chunks(column: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return column.chunks if isinstance(column, pa.ChunkedArray) else [column]


def _data(array: pa.Array) -> bytes:
    """The concatenated values of a string array, straight from its buffers."""
    if len(array) == 0:
        return b""
    _, offsets, data = array.buffers()[:3]
    kind = np.int64 if pa.types.is_large_string(array.type) else np.int32
    ends = np.frombuffer(offsets, dtype=kind)[array.offset : array.offset + len(array) + 1]
    if data is None:
        return b""
    return data.slice(int(ends[0]), int(ends[-1] - ends[0])).to_pybytes()


def _text(column: pa.ChunkedArray, *, untyped: bool, geometry: bool) -> pa.Array:
    """A column as CSV cells: text (defused, quoted where needed); "" for nulls."""
    kind = column.type
    if pa.types.is_dictionary(kind):  # the owner columns: made once per distinct value
        whole = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        values = _text(pa.chunked_array([whole.dictionary]), untyped=untyped, geometry=False)
        return pc.take(values, whole.indices)
    if geometry:
        import shapely

        wkb = np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
        wkt = shapely.to_wkt(shapely.from_wkb(wkb, on_invalid="ignore"))
        text, typed_text = pa.array(wkt, pa.string()), False
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text, typed_text = pc.cast(column, pa.string()), True
    else:
        text, typed_text = _cast_text(column), False
    if text.null_count:
        text = pc.fill_null(text, "")
    text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    if typed_text:
        text = _defuse(text, untyped)
    need = _needs_quotes(text)
    if need.any():
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
        text = pc.if_else(pa.array(need), quoted, text)
    return text


def _cast_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    try:
        return pc.cast(column, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):  # lists, structs …: Python's text
        values = [None if v is None else str(v) for v in column.to_pylist()]
        return pa.chunked_array([pa.array(values, pa.string())])


def _bytes(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The value offsets and the UTF-8 bytes of a string array (no copy)."""
    _, offsets, data = array.buffers()[:3]
    ends = np.frombuffer(offsets, dtype=np.int32)[array.offset : array.offset + len(array) + 1]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    return ends, raw


def _needs_quotes(array: pa.Array) -> np.ndarray:
    """Which cells hold a comma, a quote, CR or LF (numpy over the bytes, not a regex)."""
    ends, raw = _bytes(array)
    if len(array) == 0:
        return np.zeros(0, dtype=bool)
    seg = raw[ends[0] : ends[-1]]
    hits = np.flatnonzero((seg == 44) | (seg == 34) | (seg == 10) | (seg == 13)) + ends[0]
    need = np.zeros(len(array), dtype=bool)
    need[np.searchsorted(ends, hits, side="right") - 1] = True
    return need


def _formula_start(array: pa.Array) -> np.ndarray:
    """Which cells start with ``= + - @`` TAB or CR."""
    ends, raw = _bytes(array)
    starts = ends[:-1]
    full = ends[1:] > starts
    first = np.zeros(len(array), dtype=np.uint8)
    first[full] = raw[starts[full]]
    return _FORMULA_BYTES[first]


def _defuse(text: pa.Array, untyped: bool) -> pa.Array:
    """Cells that Excel would run as formulas, with a leading quote (see the module doc)."""
    mask = _formula_start(text)
    if not mask.any():
        return text
    rows = np.flatnonzero(mask)
    values = pc.take(text, pa.array(rows))
    if untyped:  # numbers such as -120.5 stay; the rest as `defuse_formula` says
        number = ~np.isnan(numbers(values))
        mask[rows[number]] = False
        values = pc.take(values, pa.array(np.flatnonzero(~number)))
        fixed = [defuse_formula(v) for v in values.to_pylist()]
    else:
        fixed = ["'" + v for v in values.to_pylist()]
    if not mask.any():
        return text
    return pc.replace_with_mask(text, pa.array(mask), pa.array(fixed, pa.string()))


class Writer:
    """An output file being written: CSV lines, Parquet row groups, or a sheet at the end."""

    def __init__(self, dst: Path, layout: Layout, schema: pa.Schema) -> None:
        self.dst = dst
        self.kind = check_output(dst)
        self.layout = layout
        self.tmp = dst.with_name(f".{dst.stem}.part{dst.suffix}")
        names = list(schema.names) + OUTPUT_COLUMNS
        self.schema = pa.schema(
            [*schema, *(pa.field(n, pa.string()) for n in OUTPUT_COLUMNS)],
            metadata=schema.metadata,
        )
        self.rows = 0
        self._sheet: list[pa.Table] = []
        self._file: Any = None
        self._parquet: Any = None
        if self.kind == ".csv":
            self._file = self.tmp.open("wb")
            self._file.write(header_csv(names))
        elif self.kind == ".parquet":
            self._parquet = pq.ParquetWriter(self.tmp, self.schema)

    def write(self, table: pa.Table) -> None:
        """Append the rows of ``table`` (input columns + `OUTPUT_COLUMNS`)."""
        if self.kind == ".csv":
            self.write_encoded(encode_csv(table, self.layout), table.num_rows)
            return
        self.rows += table.num_rows
        if self.kind == ".parquet":
            self._parquet.write_table(table.cast(self.schema))
        else:
            if self.rows > EXCEL_ROWS:
                raise BatchError(
                    f"{self.dst}: more than {EXCEL_ROWS:,} rows do not fit a sheet; "
                    "write .csv or .parquet"
                )
            self._sheet.append(table.cast(self.schema))

    def write_encoded(self, data: bytes, rows: int) -> None:
        """Append CSV lines already made (by `encode_csv`, on a worker)."""
        self._file.write(data)
        self.rows += rows

    def commit(self) -> None:
        """Finish the file and move it into place."""
        if self._file is not None:
            self._file.close()
        if self._parquet is not None:
            self._parquet.close()
        if self.kind == ".xlsx":
            self._write_sheet()
        self.tmp.replace(self.dst)

    def abort(self) -> None:
        """Close and remove what was written."""
        for handle in (self._file, self._parquet):
            if handle is not None:
                with contextlib.suppress(Exception):
                    handle.close()
        self.tmp.unlink(missing_ok=True)

    def _write_sheet(self) -> None:
        table = pa.concat_tables(self._sheet) if self._sheet else self.schema.empty_table()
        frame = table.to_pandas()
        text = frame.select_dtypes(include=["object", "string"]).columns
        frame[text] = frame[text].map(lambda v: defuse_formula(v) if isinstance(v, str) else v)
        frame.columns = [defuse_formula(str(c)) for c in frame.columns]  # headers too
        frame.to_excel(self.tmp, index=False, engine="openpyxl")
