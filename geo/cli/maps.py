"""`geo maps build`: every map as standalone HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geo.cli.common import DbOption, atlas_at, err, out, settings_for
from geo.cli.root import app

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

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from geo import maps

    settings = settings_for(db)
    atlas = atlas_at(settings.db)
    opts = maps.MapOptions(
        basemap=basemap, tianditu_key=settings.tianditu_key, static_url="static",
        tiles_url=None, link="{kind}-{id}.html", district_link="index.html",
        data_attribution=settings.data_attribution,
    )  # fmt: skip
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
