"""Answering: `geo serve` (the API), `geo locate` (one point), `geo assign` (a table)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
)

from geo.cli.common import DbOption, atlas_at, err, fail, out, settings_for
from geo.cli.data import load_reported
from geo.cli.root import app


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str | None, typer.Option(help="address to bind (env GEO_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (env GEO_PORT)")] = None,
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

    settings = settings_for(db)
    if not store_exists(settings.db):
        source = data or settings.data
        out.print(f"{describe(settings.db)} holds no data: loading {source}", highlight=False)
        load_reported(settings.db, source)
    os.environ["GEO_DB"] = settings.db  # the workers build their app from the environment
    uvicorn.run(
        "geo.api.app:app_from_env",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        access_log=settings.access_log if access_log is None else access_log,
        # uvicorn's protocol plus a deadline for request headers (GEO_HEADER_TIMEOUT_SECONDS)
        http="geo.api.server:HeaderTimeoutProtocol",
    )


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

    atlas = atlas_at(settings_for(db).db)
    found = locate_points(atlas, np.array([lon]), np.array([lat]), crs)[0]
    answer = {"point": found.pop("point"), **found}  # the point first, as it is read
    out.print_json(json.dumps(answer, ensure_ascii=False))


@app.command()
def assign(
    src: Annotated[Path, typer.Argument(help="table of points: .csv, .xlsx or .parquet")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="file to write: .csv, .xlsx or .parquet")
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
    db: DbOption = None,
) -> None:
    """Add street_id, community_id, grid_id, microgrid_id, status and reason to every row."""
    from geo.batch import assign_file

    if not src.is_file():
        raise fail(f"{src} is not a file")
    atlas = atlas_at(settings_for(db).db)
    columns = (BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("assign", total=src.stat().st_size)
        try:
            summary = assign_file(
                atlas, src, output, crs=crs, lon_col=lon_col, lat_col=lat_col, sheet=sheet,
                chunk_rows=chunk_rows, progress=lambda done: bar.update(task, completed=done),
            )  # fmt: skip
        except OSError as exc:  # not a GeoError: the file system's own message
            raise fail(str(exc)) from exc
    counts = ", ".join(f"{v} {k}" for k, v in summary.status.items())
    out.print(f"{summary.rows} rows → {output}: {counts}", highlight=False)
