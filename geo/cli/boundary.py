"""`geo boundary`: build from four-to text, preview, set, history, revert."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from geo.cli.common import (
    DbOption,
    atlas_at,
    err,
    existing_store,
    fail,
    out,
    print_json,
    read_layer,
    served,
    settings_for,
    show_warnings,
)
from geo.cli.root import app
from geo.errors import BadRequest

if TYPE_CHECKING:  # the actions import the geometry stack: loaded when a command runs
    from geo.service.boundaries import BoundaryCommit, BoundaryDraft, Publish
    from geo.store.base import Store

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
    from geo.service import boundaries

    store_db = settings_for(db).db
    have_store = Path(store_db).exists()
    if roads is None and not have_store:
        raise fail("give --roads ROADS (any source), or --db a store that holds the roads")
    if within is not None and not have_store:
        raise fail(f"--within {within} names a street of the store: no store at {store_db}")
    use_store = roads is None or (areas is None and have_store) or within is not None
    tables = atlas_at(store_db).tables if use_store else {}
    prop = boundaries.build(
        four_to,
        tables,
        roads=read_layer(roads, "roads", layer) if roads is not None else None,
        areas=read_layer(areas, "areas") if areas is not None else None,
        extend_m=extend_m,
        within=within,
    )
    print_json(prop.feature())


def _open(db: str | None) -> tuple[Store, dict]:
    """The store at ``--db`` and the tables of its latest version (exit 2 if there is none)."""
    store = existing_store(settings_for(db).db)
    return store, store.snapshot().tables


def _draft(
    four_to: str | None, geometry: Path | None, crs: str, snap: float, extend_m: float
) -> BoundaryDraft:
    """The boundary the options ask for; ``--geometry`` is a GeoJSON file."""
    from geo.service.boundaries import BoundaryDraft

    drawn = None
    if geometry is not None:
        try:
            drawn = json.loads(geometry.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(f"cannot read {geometry}: {exc}") from exc
    return BoundaryDraft(four_to, drawn, crs, snap, extend_m)


def _served(store: Store) -> Publish:
    """Publishing for the command line: wait until every running `geo serve` answers from the
    new version (it says so if some do not)."""

    def publish(store_version: int) -> list[str]:
        show_warnings(served(store, store_version))
        return []

    return publish


def _report(done: BoundaryCommit) -> None:
    """What a boundary write did: the warnings the HTTP answer gives (repairs, a kept four-to
    text, grids that no longer tile, parks that change community) and the gaps, snapped
    edges, the new version (or that nothing changed)."""
    prop = done.prop
    for message in [*done.warnings, *(gap.message for gap in done.check.gaps)]:
        err.print(f"[yellow]warning[/yellow] {message}", highlight=False)
    for v in prop.snapped.edges:
        err.print(f"snapped edge {v['edge']} onto {v['road']} ({v['length_m']} m)")
    if done.unchanged:
        out.print(
            f"{done.community_id} is unchanged at version {done.version} (store version "
            f"{done.store_version}): {done.note}",
            highlight=False,
        )
        return
    out.print(
        f"{done.community_id} is at version {done.version} (store version "
        f"{done.store_version}); area {prop.area_m2:,.0f} m²",
        highlight=False,
    )


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
    from geo.service import boundaries

    store, tables = _open(db)
    store.close()
    draft = _draft(four_to, geometry, crs, snap_tolerance_m, extend_m)
    print_json(boundaries.preview(tables, community_id, draft).to_dict())


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
    from geo.service import boundaries

    store, tables = _open(db)
    try:
        draft = _draft(four_to, geometry, crs, snap_tolerance_m, extend_m)
        done = boundaries.set_boundary(
            store, tables, community_id, draft, expected_version=if_version, author=author,
            reason=reason, publish=_served(store),
        )  # fmt: skip
    finally:
        store.close()
    _report(done)


@boundary_app.command("history")
def boundary_history(
    community_id: Annotated[str, typer.Argument(help="community id, e.g. C01")],
    db: DbOption = None,
) -> None:
    """List a community's versions, newest first."""
    from geo.crs import to_metric
    from geo.service import boundaries

    store, tables = _open(db)
    try:
        versions = boundaries.history(store, tables, community_id)
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
    from geo.service import boundaries

    store, tables = _open(db)
    try:
        done = boundaries.revert(
            store, tables, community_id, version, expected_version=if_version, author=author,
            reason=reason, publish=_served(store),
        )  # fmt: skip
    finally:
        store.close()
    _report(done)
