"""`geo assign --engine dask`: the same pieces, processed on a dask.distributed cluster.

The client opens the input as `geo.service.assign` does. Parquet row groups are read by the
workers themselves (the path must be readable there: a shared or identical file system); CSV
and sheet batches are read here and sent. Each worker builds the atlas once, from a snapshot of
the store scattered to every worker once per run, and keeps it (`_atlas_for`). Workers send back
the finished output (CSV text, or the Arrow table for Parquet and sheets); the client writes it
in input order, with a bounded number of pieces in flight, so memory stays bounded on both
sides. The answers are those of `geo.service.assign.process_piece`, row for row.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from geo.atlas import Atlas
from geo.errors import BadRequest
from geo.service.assign import (
    BatchSummary,
    Input,
    Options,
    Progress,
    process_piece,
    run,
)
from geo.service.assign_core import Layout
from geo.service.assign_read import ParquetInput, Piece, read_group
from geo.service.assign_write import Writer, encode_csv
from geo.store.base import Snapshot

_ATLASES: dict[str, Atlas] = {}  # per worker process: the atlas of the current run
_LOCK = threading.Lock()


class DaskUnavailable(BadRequest):
    """dask.distributed is not installed, or the scheduler cannot be reached."""


def assign_on_dask(
    snapshot: Snapshot,
    src: Path,
    dst: Path,
    options: Options | None = None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    client: Any = None,
    progress: Progress | None = None,
) -> BatchSummary:
    """`geo.service.assign.assign_table` on a Dask cluster: ``client`` (a connected
    ``distributed.Client``), else the scheduler at ``scheduler`` (``tcp://host:8786``), else a
    local cluster of ``workers`` processes (default 2)."""
    with _client(client, scheduler, workers) as connected:
        engine = DaskEngine(connected, snapshot)
        return run(src, dst, options or Options(), engine, progress)


@contextmanager
def _client(client: Any, scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """A connected client (closed at the end when made here)."""
    if client is not None:
        yield client
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise DaskUnavailable(
            "--engine dask needs dask.distributed: pip install 'geo[dask]'"
        ) from exc
    if scheduler:
        try:
            made = Client(scheduler, timeout="10s")
        except OSError as exc:
            raise DaskUnavailable(f"no Dask scheduler answers at {scheduler} ({exc})") from exc
        with made:
            yield made
        return
    cluster = LocalCluster(
        n_workers=workers or 2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with cluster, Client(cluster) as made:
        yield made


class DaskEngine:
    """Pieces processed by the workers of ``client``, written here in input order."""

    def __init__(self, client: Any, snapshot: Snapshot) -> None:
        self.client = client
        self.token = uuid.uuid4().hex
        self.snapshot = client.scatter(snapshot, broadcast=True, hash=False)
        threads = sum(client.nthreads().values()) or 1
        self.in_flight = 2 * threads

    def process(self, source: Input, writer: Writer, progress: Progress | None) -> BatchSummary:
        """Submit the pieces, at most `in_flight` at once; write the results in order."""
        summary = BatchSummary()
        queue: deque[tuple[Any, int]] = deque()
        done = 0
        for piece in self._pieces(source):
            batch = None if piece.batch is None else self.client.scatter(piece.batch, hash=False)
            ref = None if piece.path is None else (piece.path, piece.row_groups or [])
            task = self.client.submit(
                work,
                self.snapshot,
                self.token,
                source.layout,
                batch,
                piece.ragged,
                ref,
                _schema(source),
                writer.kind,
                source.options.chunk_rows,
                pure=False,
            )
            queue.append((task, piece.size))
            while len(queue) >= self.in_flight:
                done += self._take(queue, writer, summary)
                if progress:
                    progress(done, source.total)
        while queue:
            done += self._take(queue, writer, summary)
            if progress:
                progress(done, source.total)
        return summary

    @staticmethod
    def _pieces(source: Input) -> Iterator[Piece]:
        if isinstance(source, ParquetInput):
            return source.group_pieces()
        return source.pieces()

    @staticmethod
    def _take(queue: deque[tuple[Any, int]], writer: Writer, summary: BatchSummary) -> int:
        """Wait for the oldest piece and write it; its progress units."""
        task, size = queue.popleft()
        payload, rows, counts = task.result()
        if isinstance(payload, bytes):
            writer.write_encoded(payload, rows)
        else:
            writer.write(payload)
        summary.add(counts)
        return size


def _schema(source: Input) -> pa.Schema | None:
    return source.schema if isinstance(source, ParquetInput) else None


def _atlas_for(token: str, snapshot: Snapshot) -> Atlas:
    """The worker's atlas for this run, built on first use (once per worker process)."""
    with _LOCK:
        atlas = _ATLASES.get(token)
        if atlas is None:
            _ATLASES.clear()
            atlas = _ATLASES[token] = Atlas(snapshot)
        return atlas


def work(
    snapshot: Snapshot,
    token: str,
    layout: Layout,
    batch: pa.RecordBatch | None,
    ragged: list[tuple[int, list[str]]],
    ref: tuple[str, list[int]] | None,
    schema: pa.Schema | None,
    kind: str,
    chunk_rows: int,
) -> tuple[bytes | pa.Table, int, np.ndarray]:
    """On a worker: one piece's output (CSV text, else an Arrow table), rows and counts.

    The piece is ``batch`` (with its ``ragged`` rows), or the row groups ``ref`` of a Parquet
    file, read here in batches of ``chunk_rows`` conformed to the dataset's ``schema``.
    """
    atlas = _atlas_for(token, snapshot)
    if batch is not None:
        parts = [Piece(batch, ragged)]
    elif ref is not None and schema is not None:
        path, groups = ref
        parts = [part for g in groups for part in read_group(path, g, schema, chunk_rows)]
    else:
        raise ValueError("a piece is a batch or a Parquet file's row groups")
    tables = []
    counts = np.zeros(3, dtype=np.int64)
    for part in parts:
        out, found = process_piece(atlas, part, layout)
        tables.append(out)
        counts += found
    rows = int(counts.sum())
    if kind == ".csv":
        return b"".join(encode_csv(t, layout) for t in tables), rows, counts
    return pa.concat_tables(tables), rows, counts
