"""The `geo` command line: load, import, serve, locate, assign, export, check, boundary.

Errors in the input end the command with exit code 2 and a message that says what to fix.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
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
out = Console(soft_wrap=True)  # messages are never wrapped: paths stay whole, greppable
err = Console(stderr=True, soft_wrap=True)

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


def check_four_to(tables) -> list:
    """The communities whose four-to text does not build (IoU ≥ 0.99) their digitised polygon."""
    from geo.boundaries.edit import rebuild_check

    return [
        r
        for r in rebuild_check(tables["communities"], tables["roads"], tables["areas"])
        if not r.ok
    ]


def load_into(
    db: str,
    data: Path,
    *,
    strict: bool = False,
    verbose: bool = False,
    author: str = "geo load",
    crs: str | None = None,
    fields: dict[str, str] | None = None,
) -> int:
    """Validate every file in ``data`` and replace the store's contents in one transaction."""
    try:
        result = geo_io.read_directory(data, crs=crs, fields=fields)
    except geo_io.InputError as exc:
        raise _fail(str(exc)) from exc
    for note in result.notes:
        err.print(f"[cyan]detected[/cyan] {note}", highlight=False)
    _report(result.warnings, result.rejected, verbose)
    if result.rejected and strict:
        raise _fail(f"{len(result.rejected)} rows rejected; nothing was loaded (--strict)")
    for built in check_four_to(result.tables):
        err.print(f"[yellow]warning[/yellow] communities: {built.message()}", highlight=False)
    store = _open(db)
    try:
        version = store.replace_all(
            result.tables, author=author, reason=f"load {data}", record_history=True
        )
        _wait_served(store, version)
    finally:
        store.close()
    counts = ", ".join(f"{len(result.tables[name])} {name}" for name in TABLES)
    out.print(
        f"loaded {counts} into {db} (version {version}); "
        f"{len(result.rejected)} rejected, {len(result.warnings)} warnings",
        highlight=False,
    )
    return version


def _report(warnings: list, rejected: list, verbose: bool) -> None:
    """The per-row report: warnings (the first few unless ``verbose``), then rejected rows."""
    shown = warnings if verbose else warnings[:_WARNINGS_SHOWN]
    for issue in shown:
        err.print(f"[yellow]warning[/yellow] {_issue(issue)}", highlight=False)
    if len(shown) < len(warnings):
        err.print(f"… and {len(warnings) - len(shown)} more warnings (--verbose lists all)")
    for issue in rejected:
        err.print(f"[red]rejected[/red] {_issue(issue)}", highlight=False)


def _fields(pairs: list[str] | None) -> dict[str, str] | None:
    """``--field ours=theirs`` options as a mapping (exit 2 on a malformed one)."""
    if not pairs:
        return None
    fields = {}
    for pair in pairs:
        ours, sep, theirs = pair.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise _fail(f"--field {pair!r}: write ours=theirs, e.g. --field name=道路名称")
        fields[ours.strip()] = theirs.strip()
    return fields


FieldOption = Annotated[
    list[str] | None,
    typer.Option("--field", help="ours=theirs: read our field from their column (repeatable)"),
]
SourceCrsOption = Annotated[
    str | None,
    typer.Option("--crs", help="CRS of files that have none (or a wrong one): gcj02, EPSG:4549 …"),
]
SourceLayerOption = Annotated[
    str | None, typer.Option("--layer", help="layer of a GeoPackage/FileGDB, or sheet of a .xlsx")
]


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
    load_into(
        _settings(db).db, data, strict=strict, verbose=verbose, crs=crs, fields=_fields(field)
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
    from geo.store.sqlite import StaleVersionError

    store_db = _settings(db).db
    store = _open(store_db)
    try:
        try:
            result = import_layer(
                store, layer, source, source_layer=layer_name, crs=crs,
                fields=_fields(field), mode=mode, strict=strict,  # type: ignore[arg-type]
            )  # fmt: skip
        except (geo_io.InputError, StaleVersionError) as exc:
            raise _fail(str(exc)) from exc
        for note in result.notes:
            err.print(f"[cyan]detected[/cyan] {note}", highlight=False)
        _report(result.warnings, result.rejected, verbose)
        if result.version is None:
            raise _fail(f"{len(result.rejected)} rows rejected; nothing was imported (--strict)")
        _wait_served(store, result.version)
    finally:
        store.close()
    changes = "; ".join(
        f"{c.layer}: {c.rows} rows ({c.added} added, {c.updated} updated, {c.removed} removed)"
        for c in result.changes
    )
    out.print(
        f"imported {changes} into {store_db} (version {result.version}); "
        f"{len(result.rejected)} rejected, {len(result.warnings)} warnings",
        highlight=False,
    )


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
        access_log=settings.access_log if access_log is None else access_log,
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
    from geo.batch import BatchError, assign_file

    if not src.is_file():
        raise _fail(f"{src} is not a file")
    atlas = _atlas(_settings(db).db)
    columns = (BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("assign", total=src.stat().st_size)
        try:
            summary = assign_file(
                atlas, src, output, crs=crs, lon_col=lon_col, lat_col=lat_col, sheet=sheet,
                chunk_rows=chunk_rows, progress=lambda done: bar.update(task, completed=done),
            )  # fmt: skip
        except (BatchError, geo_io.InputError, crs_mod.UnknownCRSError, OSError) as exc:
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


@app.command()
def backup(
    output: Annotated[Path, typer.Argument(help="the backup GeoPackage to write (replaced)")],
    db: DbOption = None,
) -> None:
    """Copy the store to OUTPUT while it serves: one committed version, one file."""
    from geo import backup as backup_mod

    try:
        done = backup_mod.backup(_settings(db).db, output)
    except backup_mod.BackupError as exc:
        raise _fail(str(exc)) from exc
    out.print(
        f"backed up {_settings(db).db} (version {done.version}, {done.communities} "
        f"communities) → {output}",
        highlight=False,
    )


@app.command()
def restore(
    source: Annotated[Path, typer.Argument(help="a GeoPackage written by `geo backup`")],
    db: DbOption = None,
) -> None:
    """Replace the store with a backup, atomically (checked first: a geo GeoPackage only)."""
    from geo import backup as backup_mod

    target = _settings(db).db
    try:
        done = backup_mod.restore(source, target)
    except backup_mod.BackupError as exc:
        raise _fail(str(exc)) from exc
    out.print(
        f"restored {source} into {target} (version {done.version}, {done.communities} "
        "communities); running servers pick it up within GEO_REFRESH_SECONDS",
        highlight=False,
    )


# ------------------------------------------------------------------------ boundaries, check

boundary_app = typer.Typer(
    help="Community boundaries: build from four-to text, set, preview, history, revert.",
    no_args_is_help=True,
)
app.add_typer(boundary_app, name="boundary")

FourToOption = Annotated[str | None, typer.Option("--four-to", help="four-to (四至) text")]
GeometryOption = Annotated[
    Path | None, typer.Option("--geometry", help="GeoJSON file with the drawn polygon")
]
SnapOption = Annotated[float, typer.Option(help="drawn vertices this close (m) snap to roads")]
CrsOption = Annotated[str, typer.Option(help="CRS of the drawn geometry")]
ReasonOption = Annotated[str, typer.Option(help="why (kept in the history)")]
ExtendOption = Annotated[
    float,
    typer.Option(
        "--extend-m",
        min=0,
        help="run a road that stops short of the next side on along its last direction, by at "
        "most this many metres (the answer lists each extension)",
    ),
]
AuthorOption = Annotated[str, typer.Option(help="who (kept in the history)")]
IfVersionOption = Annotated[
    int | None,
    typer.Option("--if-version", help="the version you edited (default: the current one)"),
]


def _read_layer(path: str, layer: str, source_layer: str | None = None):
    """A layer from any source (columns found, ids derived); its issues printed as warnings."""
    try:
        frame, issues, _ = geo_io.read_layer_source(path, layer, source_layer=source_layer)
    except geo_io.InputError as exc:
        raise _fail(str(exc)) from exc
    for issue in issues:
        err.print(f"[yellow]warning[/yellow] {path}: {_issue(issue)}", highlight=False)
    return frame


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


@boundary_app.command("build")
def boundary_build(
    four_to: Annotated[str, typer.Argument(help="four-to (四至) text")],
    roads: Annotated[
        str | None,
        typer.Option(help="roads: any source, e.g. roads.shp or data.gpkg:roads (default: store)"),
    ] = None,
    areas: Annotated[
        str | None, typer.Option(help="named areas: any source (default: the store's)")
    ] = None,
    layer: Annotated[str | None, typer.Option(help="layer of --roads (GeoPackage …)")] = None,
    extend_m: ExtendOption = 0.0,
    within: Annotated[
        str | None,
        typer.Option(
            help="street id or name (or 'district') of the store whose boundary closes a side "
            "the text leaves open"
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Print the polygon four-to text encloses as one GeoJSON Feature (area_m2, sides; and
    extensions, exceptions, notes, within, resolved names where the build has them)."""
    from geo.boundaries.build import BuildError, build_boundary
    from geo.boundaries.edit import EditError, named_areas, within_polygon
    from geo.boundaries.fourto import FourToError

    store_db = _settings(db).db
    have_store = Path(store_db).exists()
    if roads is None and not have_store:
        raise _fail("give --roads ROADS (any source), or --db a store that holds the roads")
    if within is not None and not have_store:
        raise _fail(f"--within {within} names a street of the store: no store at {store_db}")
    use_store = roads is None or (areas is None and have_store) or within is not None
    tables = _atlas(store_db).tables if use_store else {}
    road_frame = _read_layer(roads, "roads", layer) if roads is not None else tables["roads"]
    area_frame = _read_layer(areas, "areas") if areas is not None else named_areas(tables)
    try:
        closing = within_polygon(tables["streets"], within) if within is not None else None
        result = build_boundary(four_to, road_frame, area_frame, extend_m=extend_m, within=closing)
    except (BuildError, FourToError, EditError) as exc:
        raise _fail(str(exc)) from exc
    _print_json(result.to_feature())


def _edit_context(db: str, community_id: str):
    """The store, its atlas and the community's row (exit 2 if unknown)."""
    from geo.atlas import Atlas

    if not Path(db).exists():
        raise _fail(f"no store at {db}: run `geo load DIR --db {db}` first")
    store = _open(db)
    current = Atlas(store.snapshot())
    comm = current.tables["communities"]
    rows = comm[comm["id"] == community_id]
    if not len(rows):
        store.close()
        raise _fail(f"no community {community_id!r}; communities are {', '.join(comm['id'])}")
    return store, current, rows.iloc[0]


def _proposal(current, row, four_to, geometry, crs, snap, extend_m):
    """The proposed boundary; a side the four-to text leaves open is closed by the street."""
    from geo.boundaries import edit
    from geo.boundaries.build import BuildError
    from geo.boundaries.fourto import FourToError

    drawn = None
    if geometry is not None:
        try:
            drawn = json.loads(geometry.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _fail(f"cannot read {geometry}: {exc}") from exc
    try:
        return edit.propose(
            four_to=four_to,
            geometry=drawn,
            roads=current.tables["roads"],
            areas=edit.named_areas(current.tables),
            crs=crs,
            snap_tolerance_m=snap,
            extend_m=extend_m,
            within=_street_of(current, row) if four_to is not None else None,
        )
    except (edit.EditError, BuildError, FourToError) as exc:
        raise _fail(str(exc)) from exc


def _street_of(current, row):
    streets = current.tables["streets"]
    hit = streets[streets["id"] == row["street_id"]]
    return None if hit.empty else hit.geometry.iloc[0]


@boundary_app.command("preview")
def boundary_preview(
    community_id: Annotated[str, typer.Argument(help="community id, e.g. C01")],
    four_to: FourToOption = None,
    geometry: GeometryOption = None,
    crs: CrsOption = "wgs84",
    snap_tolerance_m: SnapOption = 15.0,
    extend_m: ExtendOption = 0.0,
    db: DbOption = None,
) -> None:
    """Print (JSON) what a new boundary would change: parks, buildings, enterprises, areas."""
    from geo.boundaries import edit

    store, current, row = _edit_context(_settings(db).db, community_id)
    store.close()
    prop = _proposal(current, row, four_to, geometry, crs, snap_tolerance_m, extend_m)
    check = edit.validate(current.tables, community_id, row["street_id"], prop.metric)
    out_ = edit.impact(current.tables, community_id, prop.polygon)
    out_["valid"] = check.ok
    out_["errors"] = [p.to_dict() for p in check.errors]
    out_["gaps"] = [p.to_dict() for p in check.gaps]
    out_["snapped"] = {"vertices": prop.snapped.vertices, "edges": prop.snapped.edges}
    out_["warnings"] = list(prop.warnings)
    _print_json(out_)


def _commit_edit(store, current, row, prop, *, expected, author, reason, action, fields) -> None:
    from geo.boundaries import edit
    from geo.store import StaleVersionError

    cid = row["id"]
    check = edit.validate(current.tables, cid, row["street_id"], prop.metric)
    if not check.ok:
        raise _fail(check.message())
    try:
        version, store_version = store.edit_community(
            cid, prop.polygon, author=author, reason=reason or action,
            expected_version=expected, fields=fields, action=action,
        )  # fmt: skip
    except StaleVersionError as exc:
        raise _fail(str(exc)) from exc
    for message in [*prop.warnings, *(gap.message for gap in check.gaps)]:
        err.print(f"[yellow]warning[/yellow] {message}", highlight=False)
    for v in prop.snapped.edges:
        err.print(f"snapped edge {v['edge']} onto {v['road']} ({v['length_m']} m)")
    out.print(
        f"{cid} is at version {version} (store version {store_version}); "
        f"area {prop.area_m2:,.0f} m²",
        highlight=False,
    )
    _wait_served(store, store_version)


def _wait_served(store, version: int) -> None:
    """Wait until every running `geo serve` process answers from ``version`` (say if not)."""
    from geo.store import serving

    behind = serving.wait_served(store, version, Settings().publish_timeout_seconds)
    if behind:
        err.print(
            f"[yellow]warning[/yellow] {len(behind)} server process(es) still answer from an "
            "older version; they will catch up",
            highlight=False,
        )


@boundary_app.command("set")
def boundary_set(
    community_id: Annotated[str, typer.Argument(help="community id, e.g. C01")],
    four_to: FourToOption = None,
    geometry: GeometryOption = None,
    crs: CrsOption = "wgs84",
    snap_tolerance_m: SnapOption = 15.0,
    extend_m: ExtendOption = 0.0,
    reason: ReasonOption = "",
    author: AuthorOption = "anonymous",
    if_version: IfVersionOption = None,
    db: DbOption = None,
) -> None:
    """Set a community's boundary from four-to text or a drawn polygon (a new version)."""
    store, current, row = _edit_context(_settings(db).db, community_id)
    try:
        expected = store.community_version(community_id) if if_version is None else if_version
        prop = _proposal(current, row, four_to, geometry, crs, snap_tolerance_m, extend_m)
        fields = {"four_to": four_to} if four_to is not None else {}
        _commit_edit(
            store, current, row, prop, expected=expected, author=author, reason=reason,
            action="edit", fields=fields,
        )  # fmt: skip
    finally:
        store.close()


@boundary_app.command("history")
def boundary_history(
    community_id: Annotated[str, typer.Argument(help="community id, e.g. C01")],
    db: DbOption = None,
) -> None:
    """List a community's versions, newest first."""
    from geo.crs import to_metric

    store, _, _ = _edit_context(_settings(db).db, community_id)
    try:
        versions = store.community_history(community_id)
    finally:
        store.close()
    for v in versions:
        area = to_metric(v.geometry).area
        out.print(
            f"{v.version:>3}  {v.time}  {v.action:<8} {area:>12,.0f} m²  {v.author}: {v.reason}",
            highlight=False,
        )


@boundary_app.command("revert")
def boundary_revert(
    community_id: Annotated[str, typer.Argument(help="community id, e.g. C01")],
    version: Annotated[int, typer.Argument(help="the version to go back to")],
    reason: ReasonOption = "",
    author: AuthorOption = "anonymous",
    if_version: IfVersionOption = None,
    db: DbOption = None,
) -> None:
    """Go back to an earlier version of a boundary (recorded as a new version)."""
    from geo.boundaries.edit import Proposal
    from geo.crs import to_metric

    store, current, row = _edit_context(_settings(db).db, community_id)
    try:
        versions = {v.version: v for v in store.community_history(community_id)}
        target = versions.get(version)
        if target is None:
            raise _fail(f"{community_id} has no version {version}; versions: {sorted(versions)}")
        expected = max(versions) if if_version is None else if_version
        prop = Proposal(to_metric(target.geometry), target.geometry, "revert", target.four_to)
        fields = {"four_to": target.four_to} if target.four_to is not None else {}
        _commit_edit(
            store, current, row, prop, expected=expected, author=author,
            reason=reason or f"revert to version {version}", action="revert", fields=fields,
        )  # fmt: skip
    finally:
        store.close()


@app.command()
def check(
    data: Annotated[
        Path | None, typer.Argument(help="a data folder to check instead of the store")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the problems as JSON")] = False,
    db: DbOption = None,
) -> None:
    """Topology report: overlaps, gaps, slivers, invalid rings between the communities of each
    street and the grids of each community. Exit 0 when clean, 1 when problems exist."""
    from geo.boundaries.topology import check_district

    if data is not None:
        try:
            tables = geo_io.read_directory(data).tables
        except geo_io.InputError as exc:
            raise _fail(str(exc)) from exc
    else:
        tables = _atlas(_settings(db).db).tables
    problems = check_district(tables)
    if as_json:
        _print_json({"problems": [p.to_dict() for p in problems]})
    else:
        for p in problems:
            out.print(f"{p.kind:<8} {p.level}/{p.parent}: {p.message}", highlight=False)
        n_c, n_g = len(tables["communities"]), len(tables["grids"])
        verdict = f"{len(problems)} problems" if problems else "clean"
        out.print(f"{n_c} communities, {n_g} grids: {verdict}", highlight=False)
    if problems:
        raise typer.Exit(1)


@app.command()
def coverage(
    area_id: Annotated[
        str | None,
        typer.Argument(help="id or code of a street, community or grid; none: the district"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    geometry: Annotated[bool, typer.Option(help="JSON: add overlap/gap geometries")] = False,
    min_area: Annotated[float, typer.Option(help="ignore pieces under this many m²")] = 1.0,
    db: DbOption = None,
) -> None:
    """Coverage of an area by its children: areas, overlaps, gaps, enterprises, teams."""
    from geo.grids import coverage as cov

    atlas = _atlas(_settings(db).db)
    try:
        level, key = cov.find_any(atlas, area_id)
        report = cov.coverage(atlas, level, key, geometry=geometry, min_area_m2=min_area)
    except cov.UnknownAreaError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        _print_json(report)
        return
    _print_coverage(report)


def _print_coverage(r: dict) -> None:
    from rich.table import Table

    ent, bld, off = r["enterprises"], r["buildings"], r["officers"]
    ratio = r["coverage_ratio"]
    party = "-" if off["party_ratio"] is None else f"{off['party_ratio']:.1%}"
    out.print(
        f"[bold]{r['name']}[/bold] ({r['level']} {r['id']}, code {r['code']}): "
        f"{r['area_m2'] / 1e6:.3f} km², {r['children']['count']} {r['child_level']}s cover "
        f"{r['children']['covered_m2'] / 1e6:.3f} km² ({'-' if ratio is None else f'{ratio:.1%}'})",
        highlight=False,
    )
    out_c = ent["outside_communities"]
    lines = [
        f"overlaps: {r['overlaps']['count']} ({r['overlaps']['area_m2']:,.1f} m²); "
        f"gaps: {r['gaps']['count']} ({r['gaps']['area_m2']:,.1f} m²), "
        f"pieces under {r['min_area_m2']} m² ignored",
        f"enterprises: {ent['total']:,}; in a micro-grid {ent['assigned_microgrid']:,}; "
        f"in a grid outside parks/buildings {ent['in_grid_outside_microgrids']:,}; "
        f"outside every community {out_c['total']:,} (outside {out_c['outside']}, "
        f"no coordinates {out_c['no_coordinates']}, invalid {out_c['invalid']}); "
        f"credit code fails check {ent['credit_code_invalid']}",
        f"building micro-grids: {bld['total']}; complete team {bld['complete_team']}; "
        f"incomplete {bld['incomplete_team']} (buildings in parks: {bld['in_parks']})",
        f"officers: {off['total']}; party members {off['party_members']} "
        f"({party}); "
        f"enterprises per officer {off['enterprises_per_officer']}",
    ]
    for line in lines:
        out.print(line, highlight=False)
    for item in r["overlaps"]["items"][:10]:
        out.print(
            f"  overlap {' × '.join(item['ids'])}: {item['area_m2']:,.1f} m² near "
            f"{item['lon']:.6f}, {item['lat']:.6f}",
            highlight=False,
        )
    for item in r["gaps"]["items"][:10]:
        out.print(
            f"  gap {item['area_m2']:,.1f} m² near {item['lon']:.6f}, {item['lat']:.6f}",
            highlight=False,
        )
    for item in bld["missing"][:20]:
        out.print(
            f"  {item['building_id']} {item['name']} ({item['kind']}) lacks "
            f"{', '.join(item['roles'])}",
            highlight=False,
        )
    if len(bld["missing"]) > 20:
        out.print(f"  … and {len(bld['missing']) - 20} more buildings lacking roles")
    table = Table(title=f"by {r['child_level']}")
    columns = ("id", "name", "area_m2", "enterprises", "unassigned", "buildings")
    for col in (*columns, "incomplete_teams", "officers"):
        table.add_column(col, justify="left" if col in ("id", "name") else "right")
    for row in r["breakdown"]:
        table.add_row(
            row["id"],
            row["name"],
            f"{row['area_m2']:,.0f}",
            *(str(row[k]) for k in ("enterprises", "unassigned", "buildings")),
            str(row["incomplete_teams"]),
            str(row["officers"]),
        )
    out.print(table)


# ------------------------------------------------------------------------------------ grids

grids_app = typer.Typer(help="Grids (网格): split a community into grids.", no_args_is_help=True)
app.add_typer(grids_app, name="grids")


@grids_app.command("split")
def grids_split(
    community: Annotated[str, typer.Argument(help="community id, name or short name (火炬)")],
    count: Annotated[int | None, typer.Option("--count", help="number of grids")] = None,
    per_grid: Annotated[
        float | None,
        typer.Option("--enterprises-per-grid", help="about this much weight per grid"),
    ] = None,
    weight: Annotated[
        str, typer.Option(help="enterprises, employees or floor_area (footprint × floors)")
    ] = "enterprises",
    commit: Annotated[bool, typer.Option("--commit", help="store the split")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the proposal as JSON")] = False,
    author: Annotated[str, typer.Option(help="who commits (history)")] = "geo grids split",
    db: DbOption = None,
) -> None:
    """Propose grids for a community (street blocks, parks whole, balanced); --commit stores."""
    from geo.grids import split as split_mod
    from geo.store import StaleVersionError

    if (count is None) == (per_grid is None):
        raise _fail("give exactly one of --count K or --enterprises-per-grid N")
    path = _settings(db).db
    if not Path(path).exists():
        raise _fail(f"no store at {path}: run `geo load DIR --db {path}` (or `geo serve`) first")
    store = _open(path)
    try:
        snapshot = store.snapshot()
        try:
            cid = split_mod.find_community(snapshot.tables, community)
            proposal = split_mod.propose_split(
                snapshot.tables, cid, count=count, per_grid=per_grid, weight=weight
            )
        except split_mod.SplitError as exc:
            raise _fail(str(exc)) from exc
        version = snapshot.version
        if commit:
            tables = split_mod.apply_split(snapshot.tables, proposal)
            reason = f"split {cid} into {proposal.count} grids by {proposal.weight}"
            try:
                version = store.replace_all(
                    tables, author=author, reason=reason, expected_version=snapshot.version
                )
            except StaleVersionError as exc:
                raise _fail(str(exc)) from exc
            _wait_served(store, version)
    finally:
        store.close()
    summary = {**proposal.summary(), "version": version, "committed": commit}
    if as_json:
        out.print_json(json.dumps(summary, ensure_ascii=False))
        return
    from rich.table import Table

    def ratio(b: dict) -> str:
        return "∞ (a grid has none)" if b["ratio"] is None else f"{b['ratio']:.3f}"

    table = Table(title=f"{cid}: {proposal.count} grids from {proposal.blocks} street blocks")
    for column in ("code", "id", "name", "status", weight, "blocks", "area m²"):
        table.add_column(column, no_wrap=column in ("code", "id"))
    for g in summary["grids"]:
        status = g["status"] + (f" ({g['replaces']})" if g["replaces"] else "")
        table.add_row(
            g["code"], g["id"], g["name"], status, f"{g['weight']:g}", str(g["blocks"]),
            f"{g['area_m2']:,.0f}",
        )  # fmt: skip
    out.print(table)
    cur = summary["current"]
    out.print(
        f"balance (max/min {weight}): {ratio(summary['balance'])}; current "
        f"{cur['count']} grids: {ratio(cur['balance'])}; "
        f"retired codes: {', '.join(summary['retired']) or 'none'}; {proposal.seconds:.2f} s",
        highlight=False,
    )
    if commit:
        out.print(f"committed as version {version}", highlight=False)
    else:
        out.print("not stored: add --commit to store this split", highlight=False)


maps_app = typer.Typer(help="HTML maps (folium/Leaflet, in Chinese).", no_args_is_help=True)
app.add_typer(maps_app, name="maps")


@maps_app.command("build")
def maps_build(
    output: Annotated[Path, typer.Option("-o", "--output", help="folder to write")] = Path("maps"),
    basemap: Annotated[str, typer.Option(help="osm, tianditu, amap or none")] = "osm",
    db: DbOption = None,
) -> None:
    """Write the district, every community and every officer map as standalone HTML.

    The vendored JavaScript/CSS is copied to OUTPUT/static, so the files open without a server
    and without internet (with --basemap none); every layer is inline (no vector tiles).
    """
    import shutil

    from geo import maps

    settings = _settings(db)
    atlas = _atlas(settings.db)
    try:
        opts = maps.MapOptions(
            basemap=basemap, tianditu_key=settings.tianditu_key, static_url="static",
            tiles_url=None, link="{kind}-{id}.html", district_link="index.html",
            data_attribution=settings.data_attribution,
        )  # fmt: skip
    except maps.OptionError as exc:
        raise _fail(str(exc)) from exc
    ids = maps.index_of_maps(atlas)
    jobs = [("index.html", maps.district_map, ())]
    jobs += [(f"community-{i}.html", maps.community_map, (i,)) for i in ids["community"]]
    jobs += [(f"officer-{i}.html", maps.officer_map, (i,)) for i in ids["officer"]]
    output.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        maps.STATIC_DIR, output / "static", dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", "*.py"),
    )  # fmt: skip
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=err) as bar:
        task = bar.add_task("maps", total=len(jobs))
        for name, builder, args in jobs:
            bar.update(task, description=name)
            (output / name).write_text(builder(atlas, *args, opts=opts), encoding="utf-8")
            bar.advance(task)
    out.print(f"{len(jobs)} maps → {output} (open {output / 'index.html'})", highlight=False)


# ------------------------------------------------------------------------ users, audit

users_app = typer.Typer(
    help="API users and their bearer tokens (roles: officer, planner, admin).",
    no_args_is_help=True,
)
app.add_typer(users_app, name="users")


@contextmanager
def _user_store(db: str | None) -> Iterator[Any]:
    """The existing store for a users command; a `UserError` ends the command with exit 2."""
    from geo.store.users import UserError

    path = _settings(db).db
    if not Path(path).exists():
        raise _fail(f"no store at {path}: run `geo load DIR --db {path}` (or `geo serve`) first")
    store = _open(path)
    try:
        yield store
    except UserError as exc:
        raise _fail(str(exc)) from exc
    finally:
        store.close()


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="user name (recorded as the author of edits)")],
    role: Annotated[str, typer.Option(help="officer | planner | admin")] = "officer",
    db: DbOption = None,
) -> None:
    """Create a user and print its bearer token ONCE (the store keeps only a salted hash)."""
    from geo.store.users import add_user

    with _user_store(db) as store:
        token = add_user(store, name, role)
    err.print(f"user {name} ({role}); its token, shown only now:", highlight=False)
    print(token)


@users_app.command("token")
def users_token(
    name: Annotated[str, typer.Argument(help="an active user")], db: DbOption = None
) -> None:
    """Issue another token for an active user and print it ONCE."""
    from geo.store.users import issue_token

    with _user_store(db) as store:
        token = issue_token(store, name)
    print(token)


@users_app.command("list")
def users_list(db: DbOption = None) -> None:
    """Users, roles, when created or revoked, and how many active tokens each has."""
    from geo.store.users import list_users

    with _user_store(db) as store:
        rows = list_users(store)
    for u in rows:
        state = f"revoked {u['revoked']}" if u["revoked"] else f"{u['active_tokens']} token(s)"
        print(f"{u['name']}\t{u['role']}\t{u['created']}\t{state}")


@users_app.command("revoke")
def users_revoke(
    name: Annotated[str, typer.Argument(help="the user to revoke")], db: DbOption = None
) -> None:
    """Revoke a user and every token of theirs at once."""
    from geo.store.users import revoke_user

    with _user_store(db) as store:
        revoke_user(store, name)
    out.print(f"revoked {name}", highlight=False)


@app.command("audit")
def audit_cmd(
    limit: Annotated[int, typer.Option(min=1, help="show this many rows, newest first")] = 50,
    db: DbOption = None,
) -> None:
    """The append-only audit log of writes: time, who, what, store version before → after."""
    from geo.store.users import audit_rows

    with _user_store(db) as store:
        total, rows = audit_rows(store, limit)
    for r in rows:
        target = f" {r['target']}" if r["target"] else ""
        print(
            f"{r['seq']}\t{r['time']}\t{r['actor']} ({r['role'] or '-'})\t{r['method']} "
            f"{r['path']}{target}\tv{r['version_before']}→v{r['version_after']}\t"
            f"{r['request_id'] or '-'}"
        )
    err.print(f"{len(rows)} of {total} audit rows", highlight=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
