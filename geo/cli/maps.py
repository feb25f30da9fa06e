"""`geo maps build`: every map as standalone HTML."""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from geo.cli.common import DbOption, atlas_at, err, out, settings_for
from geo.cli.root import app

if TYPE_CHECKING:
    from geo.atlas import Atlas
    from geo.maps import MapOptions

Job = tuple[str, Callable[..., str], tuple[Any, ...]]  # file name, map builder, its arguments

maps_app = typer.Typer(help="HTML maps (folium/Leaflet, in Chinese).", no_args_is_help=True)
app.add_typer(maps_app, name="maps")


@maps_app.command("build")
def maps_build(
    output: Annotated[Path, typer.Option("-o", "--output", help="folder to write")] = Path("maps"),
    basemap: Annotated[str, typer.Option(help="osm, tianditu, amap or none")] = "osm",
    db: DbOption = None,
    processes: Annotated[
        int, typer.Option("-j", "--jobs", min=1, help="processes drawing maps (default: cores)")
    ] = os.cpu_count() or 1,
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
    jobs: list[Job] = [("index.html", maps.district_map, ())]
    jobs += [(f"community-{i}.html", maps.community_map, (i,)) for i in ids["community"]]
    jobs += [(f"officer-{i}.html", maps.officer_map, (i,)) for i in ids["officer"]]
    output.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        maps.STATIC_DIR, output / "static", dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", "*.py"),
    )  # fmt: skip
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())  # fmt: skip
    drawing = _drawing(atlas, opts, output, jobs, processes)
    with drawing as draw, Progress(*columns, console=err) as bar:
        task = bar.add_task("maps", total=len(jobs))
        for name in draw:
            bar.update(task, description=name)
            bar.advance(task)
    out.print(f"{len(jobs)} maps → {output} (open {output / 'index.html'})", highlight=False)


# what forked workers draw: set in the parent before they start, inherited (one snapshot for
# every map, none read again)
_DRAWN: tuple[Atlas, MapOptions, Path] | None = None


def _draw(job: Job) -> str:
    """Write one map; its file name."""
    assert _DRAWN is not None
    atlas, opts, output = _DRAWN
    name, builder, args = job
    (output / name).write_text(builder(atlas, *args, opts=opts), encoding="utf-8")
    return name


@contextlib.contextmanager
def _drawing(
    atlas: Atlas, opts: MapOptions, output: Path, jobs: list[Job], processes: int
) -> Iterator[Iterator[str]]:
    """The maps written, a file name each as it is done (in order): by ``processes`` forked
    workers sharing the parent's atlas, or in this process (one process, few maps, or no fork
    on this platform)."""
    global _DRAWN
    _DRAWN = (atlas, opts, output)
    try:
        forks = "fork" in multiprocessing.get_all_start_methods()
        if processes < 2 or len(jobs) < 2 * processes or not forks:
            yield map(_draw, jobs)
            return
        # the first map here: what drawing imports on first use is imported before the fork
        first = _draw(jobs[0])
        pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork"))
        try:
            # the workers start now, before the progress bar's thread (a fork copies no thread)
            list(pool.map(abs, range(processes)))
            yield itertools.chain([first], pool.map(_draw, jobs[1:], chunksize=8))
        finally:  # (an interrupted build does not wait for the maps still queued)
            pool.shutdown(cancel_futures=True)
    finally:
        _DRAWN = None
