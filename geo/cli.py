"""The `geo` command line: load, serve, locate, assign, export.

Errors in the input end the command with exit code 2 and a message that says what to fix.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TimeRemainingColumn,
)

from geo import crs as crs_mod
from geo import io as geo_io
from geo.model import LAYERS, TABLES
from geo.settings import Settings

app = typer.Typer(
    help="Industrial communities (产业社区): boundaries, grids, enterprise ownership.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

_WARNINGS_SHOWN = 10
DbOption = Annotated[str | None, typer.Option("--db", help="store: a .gpkg path (env GEO_DB)")]


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(2)


def _settings(db: str | None) -> Settings:
    settings = Settings()
    return settings.model_copy(update={"db": db}) if db else settings


def _open(db: str):
    from geo.store import open_store

    try:
        return open_store(db)
    except (ValueError, NotImplementedError) as exc:
        raise _fail(str(exc)) from exc


def _atlas(db: str):
    from geo.atlas import Atlas

    if not Path(db).exists():
        raise _fail(f"no store at {db}: run `geo load DIR --db {db}` (or `geo serve`) first")
    store = _open(db)
    try:
        return Atlas(store.snapshot())
    finally:
        store.close()


def _issue(issue: geo_io.Issue) -> str:
    where = f"row {issue.row}" if issue.row else "file"
    return f"{issue.table} {where}" + (f" ({issue.id})" if issue.id else "") + f": {issue.reason}"


def load_into(
    db: str, data: Path, *, strict: bool = False, verbose: bool = False, author: str = "geo load"
) -> int:
    """Validate every file in ``data`` and replace the store's contents in one transaction."""
    try:
        result = geo_io.read_directory(data)
    except geo_io.InputError as exc:
        raise _fail(str(exc)) from exc
    shown = result.warnings if verbose else result.warnings[:_WARNINGS_SHOWN]
    for issue in shown:
        err.print(f"[yellow]warning[/yellow] {_issue(issue)}", highlight=False)
    if len(shown) < len(result.warnings):
        err.print(f"… and {len(result.warnings) - len(shown)} more warnings (--verbose lists all)")
    for issue in result.rejected:
        err.print(f"[red]rejected[/red] {_issue(issue)}", highlight=False)
    if result.rejected and strict:
        raise _fail(f"{len(result.rejected)} rows rejected; nothing was loaded (--strict)")
    store = _open(db)
    try:
        version = store.replace_all(result.tables, author=author, reason=f"load {data}")
    finally:
        store.close()
    counts = ", ".join(f"{len(result.tables[name])} {name}" for name in TABLES)
    out.print(
        f"loaded {counts} into {db} (version {version}); "
        f"{len(result.rejected)} rejected, {len(result.warnings)} warnings",
        highlight=False,
    )
    return version


@app.command()
def load(
    data: Annotated[Path, typer.Argument(help="folder with the layers' GeoJSON and CSV files")],
    db: DbOption = None,
    strict: Annotated[bool, typer.Option(help="load nothing if any row is rejected")] = False,
    verbose: Annotated[bool, typer.Option(help="list every warning")] = False,
) -> None:
    """Replace the store's contents with a folder of layers, atomically."""
    load_into(_settings(db).db, data, strict=strict, verbose=verbose)


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str | None, typer.Option(help="address to bind (env GEO_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (env GEO_PORT)")] = None,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
    data: Annotated[
        Path | None, typer.Option(help="folder loaded when the store is missing")
    ] = None,
) -> None:
    """Serve the API; a missing store is first loaded from the sample district (or --data)."""
    import uvicorn

    settings = _settings(db)
    if not Path(settings.db).exists():
        source = data or settings.data
        out.print(f"{settings.db} does not exist: loading {source}", highlight=False)
        load_into(settings.db, source)
    os.environ["GEO_DB"] = settings.db  # the workers build their app from the environment
    uvicorn.run(
        "geo.api.app:app_from_env",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
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

    atlas = _atlas(_settings(db).db)
    try:
        reason = atlas.diagnose(np.array([lon]), np.array([lat]), crs)[0]
    except crs_mod.UnknownCRSError as exc:
        raise _fail(str(exc)) from exc
    if reason:
        raise _fail(reason)
    x, y = crs_mod.to_wgs84(lon, lat, crs)
    owners = atlas.locate_indices(x, y)
    answer = {"point": {"lon": float(x[0]), "lat": float(y[0])}, **atlas.describe_point(owners, 0)}
    out.print_json(json.dumps(answer, ensure_ascii=False))


@app.command()
def assign(
    src: Annotated[Path, typer.Argument(help="CSV with a lon and a lat column")],
    output: Annotated[Path, typer.Option("-o", "--output", help="CSV to write")],
    crs: Annotated[
        str | None, typer.Option(help="CRS of all rows (default: the crs column, else wgs84)")
    ] = None,
    lon_col: Annotated[str, typer.Option(help="longitude column")] = "lon",
    lat_col: Annotated[str, typer.Option(help="latitude column")] = "lat",
    chunk_rows: Annotated[int, typer.Option(help="rows per chunk")] = 100_000,
    db: DbOption = None,
) -> None:
    """Add street_id, community_id, grid_id, microgrid_id, status and reason to every row."""
    from geo.batch import BatchError, assign_csv

    if not src.is_file():
        raise _fail(f"{src} is not a file")
    atlas = _atlas(_settings(db).db)
    columns = (BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("assign", total=src.stat().st_size)
        try:
            summary = assign_csv(
                atlas,
                src,
                output,
                crs=crs,
                lon_col=lon_col,
                lat_col=lat_col,
                chunk_rows=chunk_rows,
                progress=lambda done: bar.update(task, completed=done),
            )
        except (BatchError, crs_mod.UnknownCRSError) as exc:
            raise _fail(str(exc)) from exc
    counts = ", ".join(f"{v} {k}" for k, v in summary.status.items())
    out.print(f"{summary.rows} rows → {output}: {counts}", highlight=False)


def _export_tiles(db: str, output: Path, minzoom: int, maxzoom: int, layers: str | None) -> None:
    """Write the vector tiles of ``layers`` (default all) as a PMTiles archive."""
    from geo import tiles

    atlas = _atlas(db)
    names = [n.strip() for n in layers.split(",")] if layers else None
    columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err) as bar:
        task = bar.add_task("tiles")
        try:
            summary = tiles.write_pmtiles(
                atlas,
                output,
                minzoom,
                maxzoom,
                names,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        except tiles.TileError as exc:
            raise _fail(str(exc)) from exc
    out.print(f"{summary['tiles']} tiles ({summary['bytes']:,} bytes) → {output}", highlight=False)


@app.command()
def export(
    layer: Annotated[str, typer.Argument(help=f"one of: {', '.join(TABLES)}, or tiles")],
    output: Annotated[Path, typer.Option("-o", "--output", help=".geojson, .csv or .pmtiles")],
    minzoom: Annotated[int, typer.Option(help="tiles: lowest zoom")] = 10,
    maxzoom: Annotated[int, typer.Option(help="tiles: highest zoom")] = 16,
    layers: Annotated[str | None, typer.Option(help="tiles: comma-separated layers")] = None,
    db: DbOption = None,
) -> None:
    """Write one layer as GeoJSON (RFC 7946) or CSV, or every layer's tiles as PMTiles."""
    if layer == "tiles":
        _export_tiles(_settings(db).db, output, minzoom, maxzoom, layers)
        return
    if layer not in TABLES:
        raise _fail(f"unknown layer {layer!r}: use one of {', '.join(TABLES)}")
    store = _open(_settings(db).db)
    try:
        frame = store.snapshot().tables[layer]
    finally:
        store.close()
    if output.suffix.lower() == ".csv":
        geo_io.write_csv(frame, output)
    elif layer in LAYERS and output.suffix.lower() in (".geojson", ".json"):
        geo_io.write_geojson(frame, output)
    else:
        raise _fail(
            f"cannot write {layer} as {output.suffix or 'a file without suffix'}: "
            "use .geojson for layers or .csv"
        )
    out.print(f"{len(frame)} {layer} → {output}", highlight=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
