"""Data in and out: `geo load`, `geo import`, `geo export`, `geo backup`, `geo restore`."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from geo.cli.common import (
    DbOption,
    FieldOption,
    SourceCrsOption,
    SourceLayerOption,
    atlas_at,
    err,
    fail,
    open_store_at,
    out,
    parse_fields,
    report,
    served,
    settings_for,
    show_warnings,
)
from geo.cli.root import app
from geo.errors import InvalidInput
from geo.model import TABLES

if TYPE_CHECKING:
    import pandas as pd


def load_reported(
    db: str,
    data: Path,
    *,
    strict: bool = False,
    verbose: bool = False,
    crs: str | None = None,
    fields: dict[str, str] | None = None,
) -> int:
    """`load_directory` into the store at ``db``, reported as `geo load` does; the new version."""
    from geo.service.load import LoadRefused, load_directory

    try:
        result = load_directory(db, data, strict=strict, crs=crs, fields=fields, publish=served)
    except LoadRefused as refused:
        _report_read(refused.read.notes, refused.read.warnings, refused.read.rejected, verbose)
        raise
    _report_read(result.notes, result.warnings, result.rejected, verbose)
    show_warnings([f"communities: {built.message()}" for built in result.four_to])
    show_warnings(result.publish_warnings)
    counts = ", ".join(f"{n} {name}" for name, n in result.counts.items())
    out.print(
        f"loaded {counts} into {db} (version {result.version}); "
        f"{len(result.rejected)} rejected, {len(result.warnings)} warnings",
        highlight=False,
    )
    return result.version


def _report_read(notes: list[str], warnings: list, rejected: list, verbose: bool) -> None:
    """What reading the input found: the detection notes, then the per-row report."""
    for note in notes:
        err.print(f"[cyan]detected[/cyan] {note}", highlight=False)
    report(warnings, rejected, verbose)


@app.command()
def load(
    data: Annotated[
        Path, typer.Argument(help="folder with one file per layer: roads.shp, enterprises.xlsx …")
    ],
    db: DbOption = None,
    strict: Annotated[bool, typer.Option(help="load nothing if any row is rejected")] = False,
    verbose: Annotated[bool, typer.Option(help="list every warning")] = False,
    field: FieldOption = None,
    crs: SourceCrsOption = None,
) -> None:
    """Replace the store's contents with a folder of layers, atomically."""
    load_reported(
        settings_for(db).db,
        data,
        strict=strict,
        verbose=verbose,
        crs=crs,
        fields=parse_fields(field),
    )


@app.command("import")
def import_cmd(
    layer: Annotated[str, typer.Argument(help="roads, streets, …, enterprises, officers, or osm")],
    source: Annotated[str, typer.Argument(help="any file: .shp .gpkg .geojson .xlsx .csv …")],
    layer_name: SourceLayerOption = None,
    crs: SourceCrsOption = None,
    field: FieldOption = None,
    mode: Annotated[str, typer.Option(help="replace the layer, or add (upsert by id)")] = "replace",
    strict: Annotated[bool, typer.Option(help="import nothing if any row is rejected")] = False,
    verbose: Annotated[bool, typer.Option(help="list every warning")] = False,
    db: DbOption = None,
) -> None:
    """Replace (or add to) one layer of the store from any source, in one new version."""
    from geo.service.imports import import_layer

    store_db = settings_for(db).db
    store = open_store_at(store_db)
    try:
        result = import_layer(
            store, layer, source, source_layer=layer_name, crs=crs, fields=parse_fields(field),
            mode=mode, strict=strict, publish=partial(served, store),  # type: ignore[arg-type]
        )  # fmt: skip
    finally:
        store.close()
    _report_read(result.notes, result.warnings, result.rejected, verbose)
    if result.version is None:
        raise InvalidInput(f"{len(result.rejected)} rows rejected; nothing was imported (--strict)")
    show_warnings(result.publish_warnings)
    changes = "; ".join(
        f"{c.layer}: {c.rows} rows ({c.added} added, {c.updated} updated, {c.removed} removed)"
        for c in result.changes
    )
    out.print(
        f"imported {changes} into {store_db} (version {result.version}); "
        f"{len(result.rejected)} rejected, {len(result.warnings)} warnings",
        highlight=False,
    )


def _export_tiles(
    db: str, output: Path, minzoom: int, maxzoom: int, layers: str | None, role: str
) -> None:
    """Write the vector tiles of ``layers`` (default all) as a PMTiles archive, with the
    fields ``role`` may see (`geo.visibility`; anonymous: public, as the service's tiles)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from geo import tiles

    atlas = atlas_at(db)
    names = [n.strip() for n in layers.split(",")] if layers else None
    columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err) as bar:
        task = bar.add_task("tiles")
        summary = tiles.write_pmtiles(
            atlas,
            output,
            minzoom,
            maxzoom,
            names,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            role=role,
        )
    out.print(f"{summary['tiles']} tiles ({summary['bytes']:,} bytes) → {output}", highlight=False)


@app.command()
def export(
    layer: Annotated[str, typer.Argument(help=f"one of: {', '.join(TABLES)}, or tiles")],
    output: Annotated[Path, typer.Option("-o", "--output", help=".geojson, .csv or .pmtiles")],
    minzoom: Annotated[int, typer.Option(help="tiles: lowest zoom")] = 10,
    maxzoom: Annotated[int, typer.Option(help="tiles: highest zoom")] = 16,
    layers: Annotated[str | None, typer.Option(help="tiles: comma-separated layers")] = None,
    role: Annotated[
        str,
        typer.Option(
            help="tiles: the fields of this role (anonymous: public only, e.g. no employees; "
            "officer and up: every field). Layers are always written whole"
        ),
    ] = "anonymous",
    db: DbOption = None,
) -> None:
    """Write one layer as GeoJSON (RFC 7946) or CSV, or every layer's tiles as PMTiles.

    A layer is written whole (every field, employees and phones included): the operator runs
    this on the store itself. Tiles carry public fields only unless ``--role`` says otherwise,
    since a PMTiles archive is usually published."""
    from geo import visibility

    if layer == "tiles":
        if role not in visibility.RANK:
            raise fail(f"unknown role {role!r}: use one of {', '.join(visibility.RANK)}")
        _export_tiles(settings_for(db).db, output, minzoom, maxzoom, layers, role)
        return
    if layer not in TABLES:
        raise fail(f"unknown layer {layer!r}: use one of {', '.join(TABLES)}")
    store = open_store_at(settings_for(db).db)
    try:
        frame = store.snapshot().tables[layer]
    finally:
        store.close()
    _write_table(layer, frame, output)
    out.print(f"{len(frame)} {layer} → {output}", highlight=False)


def _write_table(layer: str, frame: pd.DataFrame, output: Path) -> None:
    """Write ``frame`` as ``output``'s suffix says: .csv for any table, .geojson (or .json)
    for the tables with geometry (every one but officers); exit 2 naming what works."""
    from geo import io as geo_io

    suffix = output.suffix.lower()
    spatial = TABLES[layer].geometry is not None
    if suffix == ".csv":
        geo_io.write_csv(frame, output)
    elif suffix in (".geojson", ".json") and spatial:
        geo_io.write_geojson(frame, output)
    elif suffix in (".geojson", ".json"):
        raise fail(f"{layer} has no geometry, so it cannot be GeoJSON: write it as .csv")
    else:
        geo = ", ".join(n for n, spec in TABLES.items() if spec.geometry is not None)
        raise fail(
            f"cannot write {layer} as {output.suffix or 'a file without suffix'}: use .csv "
            f"(any table) or .geojson ({geo}); tiles: `geo export tiles -o x.pmtiles`"
        )


@app.command()
def backup(
    output: Annotated[Path, typer.Argument(help="the backup GeoPackage to write (replaced)")],
    db: DbOption = None,
) -> None:
    """Copy the store to OUTPUT while it serves: one committed version, one file."""
    from geo.service.backup import backup as backup_store
    from geo.store import describe

    done = backup_store(settings_for(db).db, output)
    out.print(
        f"backed up {describe(settings_for(db).db)} (version {done.version}, {done.communities} "
        f"communities) → {output}",
        highlight=False,
    )


@app.command()
def restore(
    source: Annotated[Path, typer.Argument(help="a GeoPackage written by `geo backup`")],
    db: DbOption = None,
) -> None:
    """Replace the store with a backup, atomically (checked first: a geo GeoPackage only);
    returns once every running `geo serve` answers from the restored version (it says so)."""
    from geo.service.backup import restore as restore_store
    from geo.store import describe

    target = settings_for(db).db
    done = restore_store(source, target)
    out.print(
        f"restored {source} (its version {done.source_version}, {done.communities} "
        f"communities) into {describe(target)} as version {done.version}",
        highlight=False,
    )
    _report_served(target, done.version)


def _report_served(db: str, version: int) -> None:
    """Wait (at most GEO_PUBLISH_TIMEOUT_SECONDS) until every running server answers from
    ``version``, and say how long that took, or which are still behind."""
    import time

    from geo.store import serving

    store = open_store_at(db)
    try:
        running = serving.live(store)
        start = time.monotonic()
        behind = served(store, version)
        waited = time.monotonic() - start
    finally:
        store.close()
    if behind:
        show_warnings(behind)
    elif running:
        out.print(
            f"{len(running)} running server process(es) answer from version {version} "
            f"(after {waited:.2f} s)",
            highlight=False,
        )
