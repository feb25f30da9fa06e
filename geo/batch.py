"""Assign the rows of a table of points to their owners: the former home of `geo assign`.

The action now lives in `geo.service.assign` (columnar, with Arrow); these names stay for the
scripts and tests that import them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from geo.atlas import Atlas
from geo.service.assign import (
    OUTPUT_COLUMNS,
    OUTPUT_SUFFIXES,
    BatchError,
    BatchSummary,
    Options,
    assign_table,
)
from geo.service.assign_read import FIELD_LIMIT, detect_encoding

__all__ = [
    "FIELD_LIMIT",
    "OUTPUT_COLUMNS",
    "OUTPUT_SUFFIXES",
    "BatchError",
    "BatchSummary",
    "assign_csv",
    "assign_file",
    "detect_encoding",
]


def assign_file(
    atlas: Atlas,
    src: Path,
    dst: Path,
    *,
    crs: str | None = None,
    lon_col: str | None = None,
    lat_col: str | None = None,
    crs_col: str = "crs",
    sheet: str | None = None,
    chunk_rows: int = 100_000,
    progress: Callable[[int], None] | None = None,
) -> BatchSummary:
    """`geo.service.assign.assign_table` with keyword options; ``progress(done)``."""
    options = Options(crs, lon_col, lat_col, crs_col, sheet, chunk_rows)
    report = None if progress is None else (lambda done, total: progress(done))
    return assign_table(atlas, Path(src), Path(dst), options, report)


assign_csv = assign_file
