"""`geo grids split`: propose grids for a community and, with --commit, store them."""

from __future__ import annotations

import json
from functools import partial
from typing import TYPE_CHECKING, Annotated

import typer

from geo.cli.common import DbOption, existing_store, fail, out, served, settings_for, show_warnings
from geo.cli.root import app

if TYPE_CHECKING:
    from geo.service.grids import GridSplit

grids_app = typer.Typer(help="Grids (网格): split a community into grids.", no_args_is_help=True)
app.add_typer(grids_app, name="grids")


@grids_app.command("split")
def grids_split(
    community: Annotated[str, typer.Argument(help="community id, name or short name (火炬)")],
    count: Annotated[int | None, typer.Option("--count", help="number of grids")] = None,
    per_grid: Annotated[
        float | None,
        typer.Option(
            "--per-grid",
            help="about this much of --weight per grid (enterprises, employees or m²); the "
            "count follows, at most one grid per street block",
        ),
    ] = None,
    old_per_grid: Annotated[
        float | None, typer.Option("--enterprises-per-grid", hidden=True)
    ] = None,  # the old name of --per-grid (it counts --weight, not only enterprises)
    weight: Annotated[
        str, typer.Option(help="enterprises, employees or floor_area (footprint × floors)")
    ] = "enterprises",
    commit: Annotated[bool, typer.Option("--commit", help="store the split")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the proposal as JSON")] = False,
    author: Annotated[str, typer.Option(help="who commits (history)")] = "geo grids split",
    db: DbOption = None,
) -> None:
    """Propose grids for a community (street blocks, parks whole, balanced); --commit stores."""
    from geo.grids.split import find_community
    from geo.service import grids as grid_actions

    if per_grid is not None and old_per_grid is not None:
        raise fail("give --per-grid once (--enterprises-per-grid is its old name)")
    per_grid = per_grid if per_grid is not None else old_per_grid
    if (count is None) == (per_grid is None):
        raise fail("give exactly one of --count K or --per-grid N")
    store = existing_store(settings_for(db).db)
    try:
        snapshot = store.snapshot()
        cid = find_community(snapshot.tables, community)  # an id, a name or a short name
        if commit:
            split = grid_actions.commit_split(
                store, cid, count=count, per_grid=per_grid, weight=weight, author=author,
                expected_version=snapshot.version, publish=partial(served, store), reuse=snapshot,
            )  # fmt: skip
        else:
            split = grid_actions.propose_split(
                snapshot.tables, snapshot.version, cid,
                count=count, per_grid=per_grid, weight=weight,
            )  # fmt: skip
    finally:
        store.close()
    show_warnings([*split.proposal.notes, *split.publish_warnings])
    if as_json:
        out.print_json(json.dumps(split.summary(), ensure_ascii=False))
    else:
        _print_split(split)


def _print_split(split: GridSplit) -> None:
    """The proposed grids as a table, the balance before and after, and whether it was stored."""
    from rich.table import Table

    def ratio(b: dict) -> str:
        return "∞ (a grid has none)" if b["ratio"] is None else f"{b['ratio']:.3f}"

    proposal, summary = split.proposal, split.summary()
    table = Table(
        title=f"{proposal.community_id}: {proposal.count} grids from {proposal.blocks} "
        "street blocks"
    )
    for column in ("code", "id", "name", "status", proposal.weight, "blocks", "area m²"):
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
        f"balance (max/min {proposal.weight}): {ratio(summary['balance'])}; current "
        f"{cur['count']} grids: {ratio(cur['balance'])}; "
        f"retired codes: {', '.join(summary['retired']) or 'none'}; {proposal.seconds:.2f} s",
        highlight=False,
    )
    if split.committed:
        out.print(f"committed as version {split.version}", highlight=False)
    else:
        out.print("not stored: add --commit to store this split", highlight=False)
