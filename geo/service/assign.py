"""Assign every row of a table of points to its street, community, grid and micro-grid.

`assign_table` is the action behind `geo assign`: columnar end to end (Arrow in, the atlas's
vectorised lookup, Arrow out) and in bounded memory whatever the input's size: a CSV is read
block by block, Parquet by row groups (a folder of Parquet files is one dataset, its files in
name order), an ``.xlsx`` sheet whole. The output's format follows its extension (``.csv``,
``.parquet``, ``.xlsx``); rows come out in input order with ``street_id, community_id,
grid_id, microgrid_id, status, reason`` appended. A bad row never aborts the file: it is
written ``invalid`` with its reason; ``outside`` rows say so too. `geo.service.assign_dask`
runs the same pieces on a Dask cluster, with the same answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa

from geo import crs as crs_mod
from geo.atlas import Atlas
from geo.service.assign_core import OUTPUT_COLUMNS, STATUSES, Layout, assign_batch
from geo.service.assign_read import (
    BatchError,
    CsvInput,
    ExcelInput,
    Options,
    ParquetInput,
    Piece,
    Retry,
    detect_encoding,
)
from geo.service.assign_write import OUTPUT_SUFFIXES, Writer, check_output

__all__ = [
    "OUTPUT_COLUMNS",
    "OUTPUT_SUFFIXES",
    "BatchError",
    "BatchSummary",
    "Options",
    "assign_table",
    "open_input",
]

#: Called with (work done, total work): bytes for a CSV, rows for Parquet and sheets.
Progress = Callable[[int, int], None]
Input = CsvInput | ParquetInput | ExcelInput


@dataclass
class BatchSummary:
    """What an assignment did: rows written, and rows by status (ok, outside, invalid)."""

    rows: int = 0
    status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))

    def add(self, counts: np.ndarray) -> None:
        """Count one piece's rows by status (``counts`` in the order of `STATUSES`)."""
        for name, count in zip(STATUSES, counts.tolist(), strict=True):
            self.status[name] += count
            self.rows += count


class Engine(Protocol):
    """Where the pieces are processed: here (`LocalEngine`) or on a cluster."""

    def process(self, source: Input, writer: Writer, progress: Progress | None) -> BatchSummary:
        """Assign every piece of ``source`` and write the rows, in order, to ``writer``."""
        ...


class LocalEngine:
    """Every piece in this process, one after the other, with one atlas."""

    def __init__(self, atlas: Atlas) -> None:
        self.atlas = atlas

    def process(self, source: Input, writer: Writer, progress: Progress | None) -> BatchSummary:
        """Assign and write the pieces of ``source`` in order."""
        summary = BatchSummary()
        done = 0
        for piece in source.pieces():
            out, counts = process_piece(self.atlas, piece, source.layout)
            writer.write(out)
            summary.add(counts)
            done += piece.size
            if progress:
                progress(done, source.total)
        return summary


def process_piece(atlas: Atlas, piece: Piece, layout: Layout) -> tuple[pa.Table, np.ndarray]:
    """The output rows of one piece (its batch with owners) and their count by status."""
    if piece.batch is None:
        raise ValueError("a piece to be read where it is processed: use its reader first")
    return assign_batch(atlas, piece.batch, layout, piece.ragged)


def open_input(
    src: Path, options: Options, encoding: str | None = None, block_bytes: int | None = None
) -> Input:
    """The reader for ``src``: a Parquet file or dataset folder, a workbook, else a CSV."""
    if not src.exists():
        raise BatchError(f"{src}: no such file or folder; check the path")
    suffix = src.suffix.lower()
    if src.is_dir() or suffix in (".parquet", ".geoparquet"):
        return ParquetInput(src, options)
    if suffix == ".xlsx":
        return ExcelInput(src, options)
    return CsvInput(
        src, options, encoding or detect_encoding(src), block_bytes or options.block_bytes
    )


def assign_table(
    atlas: Atlas,
    src: Path,
    dst: Path,
    options: Options | None = None,
    progress: Progress | None = None,
) -> BatchSummary:
    """Write ``dst``: every row of ``src`` with its owners (see the module doc).

    Nothing is left at ``dst`` (nor beside it) when this raises.
    """
    return run(src, dst, options or Options(), LocalEngine(atlas), progress)


def run(
    src: Path, dst: Path, options: Options, engine: Engine, progress: Progress | None = None
) -> BatchSummary:
    """`assign_table` with any `Engine`; a CSV is read again when a `Retry` says so (another
    encoding, a larger block): at most three passes."""
    check_output(dst)
    if options.crs is not None:
        options = replace(options, crs=crs_mod.normalize_crs(options.crs))
    encoding: str | None = None
    block: int | None = None
    for _ in range(3):
        try:
            return _write(open_input(src, options, encoding, block), dst, engine, progress)
        except Retry as again:
            encoding, block = again.encoding, again.block_bytes
    raise BatchError(f"{src}: could not be read as CSV; save it as CSV in UTF-8")


def _write(source: Input, dst: Path, engine: Engine, progress: Progress | None) -> BatchSummary:
    """One pass: every piece to a file beside ``dst``, moved into place when complete."""
    writer = Writer(dst, source.layout, source.schema)
    try:
        summary = engine.process(source, writer, progress)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return summary
