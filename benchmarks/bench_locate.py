"""Locate a million points: the atlas against geopandas.sjoin(predicate="within").

Both answer the same question on the same polygons of a `--scale`d sample district, in one
process: which street, community, grid and micro-grid hold each point. Each side runs once to
warm up (geopandas builds its spatial index then), then the best of `--repeat` runs counts.
Prints points/s for
both, the ratio, and how many answers differ (points exactly on a shared edge are counted
apart: sjoin's "within" gives them no owner, the ownership rule gives them one).

    python benchmarks/bench_locate.py --scale 10 --points 1000000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import io as geo_io
from geo import sample
from geo.atlas import LEVELS, Atlas
from geo.store.base import Snapshot

PLURAL = {
    "street": "streets",
    "community": "communities",
    "grid": "grids",
    "microgrid": "micro-grids",
}


def build_atlas(scale: int) -> Atlas:
    """Generate the district, read it back through the loader, and build its atlas."""
    with tempfile.TemporaryDirectory() as tmp:
        sample.write_district(Path(tmp), sample.make_district(scale=scale))
        loaded = geo_io.read_directory(Path(tmp))
    return Atlas(Snapshot(version=1, tables=loaded.tables))


def sjoin_owner(points: gpd.GeoDataFrame, polygons: gpd.GeoDataFrame) -> np.ndarray:
    """geopandas' answer: the id of a polygon that holds each point within it (None: none)."""
    joined = gpd.sjoin(points, polygons[["id", "geometry"]], predicate="within", how="left")
    joined = joined[~joined.index.duplicated(keep="first")]
    return joined["id"].to_numpy(dtype=object)


def best_of(run, repeat: int) -> tuple[pd.DataFrame, float]:
    """The answer and the best wall time of ``repeat`` runs (after one warm-up run)."""
    result = run()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return result, min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs each (best counts)")
    args = parser.parse_args()

    t = time.perf_counter()
    atlas = build_atlas(args.scale)
    print(
        f"district ×{args.scale}: "
        + ", ".join(f"{len(level.table)} {PLURAL[name]}" for name, level in atlas.levels.items())
        + f" (generated, loaded and indexed in {time.perf_counter() - t:.1f} s)"
    )

    minx, miny, maxx, maxy = atlas.levels["community"].table.total_bounds
    rng = np.random.default_rng(args.seed)
    lon = rng.uniform(minx, maxx, args.points)
    lat = rng.uniform(miny, maxy, args.points)

    points = gpd.GeoDataFrame(geometry=shapely.points(lon, lat), crs="EPSG:4326")

    def ours_run() -> pd.DataFrame:
        return atlas.locate(lon, lat)

    def theirs_run() -> pd.DataFrame:
        return pd.DataFrame(
            {f"{name}_id": sjoin_owner(points, atlas.levels[name].table) for name in LEVELS}
        )

    ours, t_ours = best_of(ours_run, args.repeat)
    theirs, t_theirs = best_of(theirs_run, args.repeat)

    edges = np.concatenate(
        [shapely.boundary(np.asarray(level.table.geometry)) for level in atlas.levels.values()]
    )
    edge_tree = shapely.STRtree(edges)
    on_edge = np.zeros(len(points), dtype=bool)
    on_edge[edge_tree.query(points.geometry.values, predicate="intersects")[0]] = True
    differ = (ours.fillna("∅") != theirs.fillna("∅")).any(axis=1).to_numpy()

    n = args.points
    print(f"atlas.locate       {n / t_ours:>14,.0f} points/s  ({t_ours:.3f} s, 4 levels)")
    print(f"geopandas.sjoin    {n / t_theirs:>14,.0f} points/s  ({t_theirs:.3f} s, 4 levels)")
    print(f"ratio              {t_theirs / t_ours:>14.1f} ×")
    print(
        f"differing answers  {int((differ & ~on_edge).sum()):>14d} off shared edges "
        f"({int((differ & on_edge).sum())} on edges, {int(on_edge.sum())} points on edges)"
    )


if __name__ == "__main__":
    main()
