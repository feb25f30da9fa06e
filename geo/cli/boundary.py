"""`geo boundary`: build from four-to text, preview, set, history, revert."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from geo.cli.common import (
    DbOption,
    atlas_at,
    err,
    fail,
    open_store_at,
    out,
    print_json,
    read_layer,
    settings_for,
    wait_served,
)
from geo.cli.root import app

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
    from geo.boundaries.build import BuildError, build_boundary
    from geo.boundaries.edit import EditError, named_areas, within_polygon
    from geo.boundaries.fourto import FourToError

    store_db = settings_for(db).db
    have_store = Path(store_db).exists()
    if roads is None and not have_store:
        raise fail("give --roads ROADS (any source), or --db a store that holds the roads")
    if within is not None and not have_store:
        raise fail(f"--within {within} names a street of the store: no store at {store_db}")
    use_store = roads is None or (areas is None and have_store) or within is not None
    tables = atlas_at(store_db).tables if use_store else {}
    road_frame = read_layer(roads, "roads", layer) if roads is not None else tables["roads"]
    area_frame = read_layer(areas, "areas") if areas is not None else named_areas(tables)
    try:
        closing = within_polygon(tables["streets"], within) if within is not None else None
        result = build_boundary(four_to, road_frame, area_frame, extend_m=extend_m, within=closing)
    except (BuildError, FourToError, EditError) as exc:
        raise fail(str(exc)) from exc
    print_json(result.to_feature())


def _edit_context(db: str, community_id: str):
    """The store, its atlas and the community's row (exit 2 if unknown)."""
    from geo.atlas import Atlas

    if not Path(db).exists():
        raise fail(f"no store at {db}: run `geo load DIR --db {db}` first")
    store = open_store_at(db)
    current = Atlas(store.snapshot())
    comm = current.tables["communities"]
    rows = comm[comm["id"] == community_id]
    if not len(rows):
        store.close()
        raise fail(f"no community {community_id!r}; communities are {', '.join(comm['id'])}")
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
            raise fail(f"cannot read {geometry}: {exc}") from exc
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
        raise fail(str(exc)) from exc


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

    store, current, row = _edit_context(settings_for(db).db, community_id)
    store.close()
    prop = _proposal(current, row, four_to, geometry, crs, snap_tolerance_m, extend_m)
    check = edit.validate(current.tables, community_id, row["street_id"], prop.metric)
    out_ = edit.impact(current.tables, community_id, prop.polygon)
    out_["valid"] = check.ok
    out_["errors"] = [p.to_dict() for p in check.errors]
    out_["gaps"] = [p.to_dict() for p in check.gaps]
    out_["snapped"] = {"vertices": prop.snapped.vertices, "edges": prop.snapped.edges}
    out_["warnings"] = list(prop.warnings)
    print_json(out_)


def _commit_edit(store, current, row, prop, *, expected, author, reason, action, fields) -> None:
    from geo.boundaries import edit
    from geo.store import StaleVersionError

    cid = row["id"]
    check = edit.validate(current.tables, cid, row["street_id"], prop.metric)
    if not check.ok:
        raise fail(check.message())
    try:
        version, store_version = store.edit_community(
            cid, prop.polygon, author=author, reason=reason or action,
            expected_version=expected, fields=fields, action=action,
        )  # fmt: skip
    except StaleVersionError as exc:
        raise fail(str(exc)) from exc
    for message in [*prop.warnings, *(gap.message for gap in check.gaps)]:
        err.print(f"[yellow]warning[/yellow] {message}", highlight=False)
    for v in prop.snapped.edges:
        err.print(f"snapped edge {v['edge']} onto {v['road']} ({v['length_m']} m)")
    out.print(
        f"{cid} is at version {version} (store version {store_version}); "
        f"area {prop.area_m2:,.0f} m²",
        highlight=False,
    )
    wait_served(store, store_version)


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
    store, current, row = _edit_context(settings_for(db).db, community_id)
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

    store, _, _ = _edit_context(settings_for(db).db, community_id)
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

    store, current, row = _edit_context(settings_for(db).db, community_id)
    try:
        versions = {v.version: v for v in store.community_history(community_id)}
        target = versions.get(version)
        if target is None:
            raise fail(f"{community_id} has no version {version}; versions: {sorted(versions)}")
        expected = max(versions) if if_version is None else if_version
        prop = Proposal(to_metric(target.geometry), target.geometry, "revert", target.four_to)
        fields = {"four_to": target.four_to} if target.four_to is not None else {}
        _commit_edit(
            store, current, row, prop, expected=expected, author=author,
            reason=reason or f"revert to version {version}", action="revert", fields=fields,
        )  # fmt: skip
    finally:
        store.close()
