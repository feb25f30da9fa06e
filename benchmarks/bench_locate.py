"""Locate a million points: the atlas against geopandas.sjoin(predicate="within").

Both answer the same question on the same polygons of a `--scale`d sample district, in one
process: which street, community, grid and micro-grid hold each point. Two point sets, reported
apart: points inside communities (every level answers) and points anywhere in the district
(inside its streets; most fall outside every community). After one warm-up run each (geopandas
builds its spatial index then), ours and the peer run in `--rounds` interleaved rounds (the
order alternating), so load on the machine hits both alike; prints min/median/max points/s of
each and of the ratio, and how many answers differ (points exactly on a shared edge are
counted apart: sjoin's "within" gives them no owner, the ownership rule gives them one).

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


def random_inside(polygons: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points uniform over the area of ``polygons`` (lon, lat rows)."""
    tree = shapely.STRtree(polygons)
    lo, hi = shapely.total_bounds(polygons).reshape(2, 2)
    found, have = [], 0
    while have < n:
        xy = rng.uniform(lo, hi, (n, 2))
        xy = xy[np.unique(tree.query(shapely.points(xy), predicate="within")[0])]
        found.append(xy)
        have += len(xy)
    return np.concatenate(found)[:n]


def rounds(ours, theirs, n: int, count: int) -> dict[str, list[float]]:
    """Points/s of each side and the ratio, per round; ours first in even rounds."""
    out: dict[str, list[float]] = {"ours": [], "theirs": [], "ratio": []}
    for k in range(count):
        took = {}
        for name, run in sorted({"ours": ours, "theirs": theirs}.items(), reverse=k % 2 == 1):
            t = time.perf_counter()
            run()
            took[name] = time.perf_counter() - t
        out["ours"].append(n / took["ours"])
        out["theirs"].append(n / took["theirs"])
        out["ratio"].append(took["theirs"] / took["ours"])
    return out


def differing(atlas: Atlas, xy: np.ndarray, ours: pd.DataFrame, theirs: pd.DataFrame) -> str:
    """How many answers differ, off and on shared edges."""
    edges = np.concatenate(
        [shapely.boundary(np.asarray(level.table.geometry)) for level in atlas.levels.values()]
    )
    on_edge = np.zeros(len(xy), dtype=bool)
    on_edge[shapely.STRtree(edges).query(shapely.points(xy), predicate="intersects")[0]] = True
    differ = (ours.fillna("∅") != theirs.fillna("∅")).any(axis=1).to_numpy()
    return (
        f"{int((differ & ~on_edge).sum())} differing answers off shared edges "
        f"({int((differ & on_edge).sum())} on edges, {int(on_edge.sum())} points on edges)"
    )


def compare(atlas: Atlas, label: str, xy: np.ndarray, count: int) -> None:
    """Warm up both sides, run the rounds, print min/median/max and the differences."""
    points = gpd.GeoDataFrame(geometry=shapely.points(xy), crs="EPSG:4326")

    def ours_run() -> pd.DataFrame:
        return atlas.locate(xy[:, 0], xy[:, 1])

    def theirs_run() -> pd.DataFrame:
        return pd.DataFrame(
            {f"{name}_id": sjoin_owner(points, atlas.levels[name].table) for name in LEVELS}
        )

    ours, theirs = ours_run(), theirs_run()
    inside = ours["community_id"].notna().mean()
    print(f"{label}: {len(xy):,} points, {inside:.0%} inside a community")
    figures = rounds(ours_run, theirs_run, len(xy), count)
    for name, what in (
        ("ours", "atlas.locate points/s"),
        ("theirs", "geopandas.sjoin points/s"),
        ("ratio", "ratio (sjoin time / ours)"),
    ):
        lo, mid, hi = np.min(figures[name]), np.median(figures[name]), np.max(figures[name])
        print(f"  {what:28} min {lo:>12,.1f}  median {mid:>12,.1f}  max {hi:>12,.1f}")
    print(f"  {differing(atlas, xy, ours, theirs)}")


def main() -> None:
    """Parse the options, build the atlas, compare on both point sets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds")
    args = parser.parse_args()

    t = time.perf_counter()
    atlas = build_atlas(args.scale)
    print(
        f"district ×{args.scale}: "
        + ", ".join(f"{len(level.table)} {PLURAL[name]}" for name, level in atlas.levels.items())
        + f" (generated, loaded and indexed in {time.perf_counter() - t:.1f} s)"
    )
    rng = np.random.default_rng(args.seed)
    for label, layer in (("inside communities", "community"), ("district-wide", "street")):
        polygons = np.asarray(atlas.levels[layer].table.geometry)
        compare(atlas, label, random_inside(polygons, args.points, rng), args.rounds)


if __name__ == "__main__":
    main()
