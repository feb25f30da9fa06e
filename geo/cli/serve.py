"""Answering: `geo serve` (the API), `geo locate` (one point), `geo assign` (a table)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from geo.cli.common import DbOption, err, fail, locator_at, out, settings_for, store_location
from geo.cli.data import load_reported
from geo.cli.root import app


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[
        str | None, typer.Option(help="address to bind (env GEO_HOST; default 127.0.0.1)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port (env GEO_PORT; default 8000)")] = None,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
    data: Annotated[
        Path | None, typer.Option(help="folder loaded when the store is missing")
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option(help="log every request to stderr (env GEO_ACCESS_LOG; default: on)"),
    ] = None,
) -> None:
    """Serve the API; a missing store is first loaded from the sample district (or --data)."""
    import uvicorn

    from geo.store import describe, store_exists

    # the address and the store's folder first: a port in use or a folder that does not exist
    # is one `error:` line (exit 2) before any data is read
    settings = settings_for(db)
    host, port = host or settings.host, port or settings.port
    check_address(host, port)
    if not store_exists(settings.db):
        if not _is_url(settings.db):
            check_new_store(settings.db)
        source = data or settings.data
        out.print(f"{describe(settings.db)} holds no data: loading {source}", highlight=False)
        load_reported(settings.db, source)
    os.environ["GEO_DB"] = settings.db  # the workers build their app from the environment
    uvicorn.run(
        "geo.api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=settings.access_log if access_log is None else access_log,
        # uvicorn's protocol plus a deadline for request headers (GEO_HEADER_TIMEOUT_SECONDS)
        http="geo.api.server:HeaderTimeoutProtocol",
    )


def _is_url(db: str) -> bool:
    """Whether the store is a server's URL (``postgresql://…``), not a file."""
    return "://" in db


def check_new_store(db: str) -> None:
    """Exit 2 (one line) unless a store can be created at ``db``: a .gpkg path in a folder
    that exists and that this user may write."""
    path = Path(db)
    folder = path.parent
    if path.suffix.lower() != ".gpkg":
        raise fail(f"--db {db}: a store is a GeoPackage path ending in .gpkg (e.g. ./geo.gpkg)")
    if not folder.is_dir():
        raise fail(
            f"no store at {db} and its folder {folder} does not exist: create the folder "
            "(mkdir -p) or give --db a path in an existing one"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise fail(f"no store at {db}, and {folder} is not writable: give --db a writable path")


def check_address(host: str, port: int) -> None:
    """Exit 2 (one line) unless ``host:port`` can be bound now, as uvicorn will bind it (with
    SO_REUSEADDR): a port in use is found before the store is read, not after start-up."""
    import errno
    import socket

    if not 0 < port < 65536:
        raise fail(f"--port {port}: give a port from 1 to 65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        raise fail(f"--host {host}: not an address of this machine ({exc})") from exc
    family, kind, proto, _, address = infos[0]
    try:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise fail(
                f"port {port} on {host} is in use (another geo serve?): stop that server or "
                "give --port another port (env GEO_PORT)"
            ) from exc
        if exc.errno == errno.EACCES:
            raise fail(f"port {port} needs privileges to bind: give --port 1024 or above") from exc
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


@app.command()
def locate(
    lon: Annotated[float, typer.Argument(help="longitude (x)")],
    lat: Annotated[float, typer.Argument(help="latitude (y)")],
    crs: Annotated[str, typer.Option(help="wgs84, cgcs2000, gcj02, bd09 or EPSG:n")] = "wgs84",
    db: DbOption = None,
) -> None:
    """Print the street, community, grid and micro-grid that own a point, as JSON."""
    import numpy as np

    from geo.service.locate import locate_points

    atlas = locator_at(store_location(db))
    found = locate_points(atlas, np.array([lon]), np.array([lat]), crs)[0]
    answer = {"point": found.pop("point"), **found}  # the point first, as it is read
    out.print_json(json.dumps(answer, ensure_ascii=False))


@app.command()
def assign(
    src: Annotated[
        Path, typer.Argument(help="table of points: .csv, .xlsx, .parquet, or a Parquet folder")
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="file to write: .csv, .parquet or .xlsx")
    ],
    crs: Annotated[
        str | None, typer.Option(help="CRS of all rows (default: the crs column, else wgs84)")
    ] = None,
    lon_col: Annotated[
        str | None, typer.Option(help="longitude column (default: found, e.g. 经度/lon/lng/x)")
    ] = None,
    lat_col: Annotated[
        str | None, typer.Option(help="latitude column (default: found, e.g. 纬度/lat/y)")
    ] = None,
    sheet: Annotated[str | None, typer.Option("--layer", help="sheet of a .xlsx")] = None,
    chunk_rows: Annotated[int, typer.Option(help="rows per chunk")] = 100_000,
    engine: Annotated[
        str, typer.Option(help="local (this process) or dask (a dask.distributed cluster)")
    ] = "local",
    scheduler: Annotated[
        str | None, typer.Option(help="with --engine dask: the scheduler, tcp://HOST:8786")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="with --engine dask and no --scheduler: local workers")
    ] = None,
    db: DbOption = None,
) -> None:
    """Add street_id, community_id, grid_id, microgrid_id, status and reason to every row."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

    from geo.service.assign import Options, assign_table

    if engine not in ("local", "dask"):
        raise fail(f"--engine {engine}: use local or dask")
    if engine == "local" and (scheduler or workers):
        raise fail("--scheduler and --workers need --engine dask")
    if not src.exists():
        raise fail(f"{src}: no such file or folder")
    options = Options(crs, lon_col, lat_col, sheet=sheet, chunk_rows=max(1, chunk_rows))
    columns = (BarColumn(), TaskProgressColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("assign", total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            if engine == "dask":
                summary = _assign_on_dask(src, output, options, scheduler, workers, db, report)
            else:
                atlas = locator_at(store_location(db))
                summary = assign_table(atlas, src, output, options, report)
        except OSError as exc:  # not a GeoError: the file system's own message
            raise fail(str(exc)) from exc
    counts = ", ".join(f"{v} {k}" for k, v in summary.status.items())
    out.print(f"{summary.rows} rows → {output}: {counts}", highlight=False)


def _assign_on_dask(src, output, options, scheduler, workers, db, report):
    """`geo assign --engine dask`: the store's snapshot shipped to the cluster's workers."""
    from geo.cli.common import existing_store
    from geo.service.assign_dask import assign_on_dask

    store = existing_store(settings_for(db).db)
    try:
        snapshot = store.snapshot()
    finally:
        store.close()
    return assign_on_dask(
        snapshot, src, output, options, scheduler=scheduler, workers=workers, progress=report
    )
