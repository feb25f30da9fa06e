"""Locate a million points: the atlas against geopandas.sjoin(predicate="within") and, when a
PostgreSQL with PostGIS is reachable, PostGIS's ``ST_Within`` join.

Each answers the same question on the same polygons of a `--scale`d sample district: which
street, community, grid and micro-grid hold each point. Two point sets, reported apart: points
inside communities (every level answers) and points anywhere in the district (inside its
streets; most fall outside every community). After one warm-up run each (geopandas builds its
spatial index then; PostGIS fills its buffers), the sides run in `--rounds` interleaved rounds
(the order rotating), so load on the machine hits all alike; prints min/median/max points/s of
each and of each ratio (the peer's time over ours), and how many answers differ from ours
(points exactly on a shared edge are counted apart: "within" gives them no owner, the ownership
rule gives them one).

PostGIS: with ``GEO_BENCH_PG=postgresql://user:pass@host/db`` (a role with CREATEDB), a database
``bench_locate`` is made afresh beside ``db`` (dropped at the end, unless ``--keep-pg``), the four
levels' polygons copied into it (one table per level, GiST index, ANALYZE), and each point set
copied into a table of points with its own GiST index (built before the rounds, its time
printed; the planner then walks polygon by polygon, reusing each prepared polygon — ten times
faster than point by point). A PostGIS run is one statement — per level, the points joined to
the polygons that hold them (``ST_Within``), the four joins ``UNION ALL`` — whose rows are
streamed back (``COPY … TO STDOUT``) and read into the same frame of ids as ours: the answer in
the caller's hands, as ``atlas.locate`` gives it. The server's parallel workers may use both
cores (ours and sjoin use one).

    python benchmarks/bench_locate.py --scale 10 --points 1000000
    GEO_BENCH_PG=postgresql://geo:geo@127.0.0.1:5432/geo python benchmarks/bench_locate.py \
        --scale 10 --points 200000 --rounds 3
"""

from __future__ import annotations

import argparse
import io
import os
import sys
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Spread, interleave, rates, ratios

PG_DATABASE = "bench_locate"

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


class PostGIS:
    """The PostGIS peer: a fresh database holding the atlas's four levels, GiST-indexed."""

    def __init__(self, url: str, atlas: Atlas) -> None:
        import psycopg
        from psycopg import conninfo

        self.admin = url
        info = conninfo.conninfo_to_dict(url)
        info["dbname"] = PG_DATABASE
        self._drop()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {PG_DATABASE}")
        self.conn = psycopg.connect(conninfo.make_conninfo(**info), autocommit=True)
        self.conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        for name in LEVELS:
            table = atlas.levels[name].table
            self._copy_in(name, "id text", table["id"], np.asarray(table.geometry))
            self.conn.execute(f"CREATE INDEX ON {name} USING gist (geom)")
            self.conn.execute(f"ANALYZE {name}")
        self.version = self.conn.execute("SELECT postgis_full_version()").fetchone()[0]

    def _copy_in(self, table: str, key: str, keys, geoms: np.ndarray) -> None:
        """A new table ``table`` (``key``, geom) with these rows (COPY, hex EWKB)."""
        self.conn.execute(f"DROP TABLE IF EXISTS {table}")
        self.conn.execute(f"CREATE UNLOGGED TABLE {table} ({key}, geom geometry(Geometry, 4326))")
        wkb = shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True)
        text = "".join(f"{k}\t{g}\n" for k, g in zip(keys, wkb, strict=True))
        with self.conn.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN") as copy:
            copy.write(text.encode())

    def load_points(self, xy: np.ndarray) -> float:
        """Make ``xy`` the point set the next `locate` answers for (GiST-indexed too, so the
        planner may run each join polygon by polygon); the seconds the index took."""
        self._copy_in("points", "i integer", range(len(xy)), shapely.points(xy))
        t = time.perf_counter()
        self.conn.execute("CREATE INDEX ON points USING gist (geom)")
        self.conn.execute("ANALYZE points")
        self.count = len(xy)
        return time.perf_counter() - t

    def locate(self) -> pd.DataFrame:
        """The id of the polygon holding each point, per level (None: none), in point order."""
        joins = " UNION ALL ".join(
            f"SELECT {k}, p.i, a.id FROM {name} a JOIN points p ON ST_Within(p.geom, a.geom)"
            for k, name in enumerate(LEVELS)
        )
        buf = io.BytesIO()
        with self.conn.cursor() as cur, cur.copy(f"COPY ({joins}) TO STDOUT") as copy:
            for block in copy:
                buf.write(block)
        buf.seek(0)
        rows = pd.read_csv(buf, sep="\t", header=None, names=["k", "i", "id"], dtype={"id": str})
        out = {}
        for k, name in enumerate(LEVELS):
            ids = np.full(self.count, None, dtype=object)
            mine = rows[rows["k"].to_numpy() == k]
            ids[mine["i"].to_numpy()] = mine["id"].to_numpy(dtype=object)
            out[f"{name}_id"] = ids
        return pd.DataFrame(out)

    def _drop(self) -> None:
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")

    def close(self, keep: bool = False) -> None:
        """Disconnect, and drop the database unless ``keep``."""
        self.conn.close()
        if not keep:
            self._drop()


LABELS = {
    "ours": "atlas.locate points/s",
    "sjoin": "geopandas.sjoin points/s",
    "postgis": "PostGIS ST_Within points/s",
}


def compare(atlas: Atlas, label: str, xy: np.ndarray, count: int, pg: PostGIS | None) -> None:
    """Warm up every side, run the rounds, print min/median/max and the differences."""
    points = gpd.GeoDataFrame(geometry=shapely.points(xy), crs="EPSG:4326")
    runs = {
        "ours": lambda: atlas.locate(xy[:, 0], xy[:, 1])[[f"{n}_id" for n in LEVELS]],
        "sjoin": lambda: pd.DataFrame(
            {f"{name}_id": sjoin_owner(points, atlas.levels[name].table) for name in LEVELS}
        ),
    }
    if pg is not None:
        indexed = pg.load_points(xy)
        print(f"  (PostGIS: points copied in, GiST index on them built in {indexed:.1f} s)")
        runs["postgis"] = pg.locate
    answers = {name: run() for name, run in runs.items()}  # the warm-up
    inside = answers["ours"]["community_id"].notna().mean()
    print(f"{label}: {len(xy):,} points, {inside:.0%} inside a community")
    took = interleave(runs, count)
    for name in runs:
        print(Spread.of(rates(took[name], len(xy))).line(LABELS[name]))
    for name, values in ratios(took, "ours").items():
        print(Spread.of(values).line(f"ratio ({name} time / ours)", ".2f"))
    for name in runs:
        if name != "ours":
            print(f"  {name}: {differing(atlas, xy, answers['ours'], answers[name])}")


def main() -> None:
    """Parse the options, build the atlas, compare on both point sets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds")
    parser.add_argument(
        "--keep-pg", action="store_true", help=f"keep the {PG_DATABASE} database afterwards"
    )
    args = parser.parse_args()

    t = time.perf_counter()
    atlas = build_atlas(args.scale)
    print(
        f"district ×{args.scale}: "
        + ", ".join(f"{len(level.table)} {PLURAL[name]}" for name, level in atlas.levels.items())
        + f" (generated, loaded and indexed in {time.perf_counter() - t:.1f} s)"
    )
    pg = None
    if url := os.environ.get("GEO_BENCH_PG"):
        t = time.perf_counter()
        pg = PostGIS(url, atlas)
        took = time.perf_counter() - t
        print(f"PostGIS peer: {pg.version.split(' GEOS')[0]} (polygons copied in {took:.1f} s)")
    else:
        print("PostGIS peer: not run (set GEO_BENCH_PG=postgresql://… to add it)")
    rng = np.random.default_rng(args.seed)
    try:
        for label, layer in (("inside communities", "community"), ("district-wide", "street")):
            polygons = np.asarray(atlas.levels[layer].table.geometry)
            compare(atlas, label, random_inside(polygons, args.points, rng), args.rounds, pg)
    finally:
        if pg is not None:
            pg.close(keep=args.keep_pg)


if __name__ == "__main__":
    main()
