"""`geo check` (topology) and `geo coverage` (how children cover an area)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geo.cli.common import DbOption, atlas_at, out, print_json, settings_for
from geo.cli.root import app


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
    from geo import io as geo_io
    from geo.boundaries.topology import check_district

    if data is not None:
        tables = geo_io.read_directory(data).tables
    else:
        tables = atlas_at(settings_for(db).db).tables
    problems = check_district(tables)
    if as_json:
        print_json({"problems": [p.to_dict() for p in problems]})
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

    atlas = atlas_at(settings_for(db).db)
    level, key = cov.find_any(atlas, area_id)
    report = cov.coverage(atlas, level, key, geometry=geometry, min_area_m2=min_area)
    if as_json:
        print_json(report)
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
