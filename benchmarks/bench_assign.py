"""`geo assign` end to end against the pandas + geopandas pipeline, and at registry scale.

Part 1 (``--rows``, default 1,000,000): one CSV of enterprises (id, name, lon, lat: half on
the sample's enterprise points, half anywhere over the district), assigned by

- ours: ``python -m geo.cli assign IN.csv -o OUT.csv --db STORE`` (opens the store, loads
  its ready atlas, reads, locates, writes; the first run, timed apart as "cold", builds the
  ready atlas and writes it, as the first command after any write does);
- the peer: ``pd.read_csv``, ``gpd.points_from_xy``, ``gpd.sjoin(predicate="within")`` per
  level (street, community, grid, micro-grid: the same polygons, given to it as GeoParquet
  files), ``to_csv``.

Each is a fresh subprocess, timed end to end, alternating in ``--rounds`` rounds; min, median
and max of each and of the ratio (peer / ours) are printed, and the answers are compared.

Part 2 (``--registry``, default 20,000,000 rows; 0 skips it): a registry generated in chunks
into a folder of Parquet files, assigned to Parquet by one process and by ``--engine dask
--workers 2``: rows/s, and the peak memory of the process tree (sampled with psutil; every
Dask worker counted).

    python benchmarks/bench_assign.py --rows 1000000 --rounds 3 --registry 20000000
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from geo.atlas import LEVELS, Atlas
from geo.service.load import load_into
from geo.settings import SAMPLE_DIR
from geo.store import open_store

PEER = textwrap.dedent(
    """
    import sys
    import geopandas as gpd
    import pandas as pd

    src, dst, folder = sys.argv[1:4]
    frame = pd.read_csv(src, dtype={"id": str, "name": str})
    points = gpd.GeoDataFrame(
        frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs="EPSG:4326"
    )
    for level in ("street", "community", "grid", "microgrid"):
        cells = gpd.read_parquet(f"{folder}/{level}.parquet")[["id", "geometry"]]
        joined = gpd.sjoin(points[["geometry"]], cells, predicate="within", how="left")
        joined = joined[~joined.index.duplicated(keep="first")]
        frame[f"{level}_id"] = joined["id"].reindex(frame.index)
    frame.to_csv(dst, index=False)
    """
)


def make_store(folder: Path) -> tuple[str, Atlas]:
    db = str(folder / "sample.gpkg")
    load_into(db, SAMPLE_DIR)
    store = open_store(db)
    try:
        return db, Atlas(store.snapshot())
    finally:
        store.close()


def points(atlas: Atlas, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ent = atlas.enterprises
    minx, miny, maxx, maxy = atlas.bounds
    pick = rng.integers(0, len(ent), n // 2)
    lon = np.concatenate([ent["lon"].to_numpy()[pick], rng.uniform(minx, maxx, n - n // 2)])
    lat = np.concatenate([ent["lat"].to_numpy()[pick], rng.uniform(miny, maxy, n - n // 2)])
    order = rng.permutation(n)
    return lon[order].round(7), lat[order].round(7)


def chunk_table(atlas: Atlas, start: int, n: int, seed: int) -> pa.Table:
    lon, lat = points(atlas, n, seed)
    ids = pc.cast(pa.array(np.arange(start, start + n)), pa.string())
    return pa.table(
        {
            "id": pc.binary_join_element_wise("E", ids, ""),
            "name": pc.binary_join_element_wise("企业", ids, ""),
            "lon": lon,
            "lat": lat,
        }
    )


def run_timed(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and the peak summed RSS (bytes) of the process tree of ``cmd``."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            stop.wait(0.1)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    _, err = proc.communicate()
    stop.set()
    watcher.join()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err.decode()[-2000:]}")
    return seconds, peak


def children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stats(values: list[float]) -> str:
    return f"min {min(values):.2f}  median {statistics.median(values):.2f}  max {max(values):.2f}"


def compare(atlas_dir: Path, db: str, atlas: Atlas, rows: int, rounds: int) -> None:
    src = atlas_dir / "enterprises.csv"
    pacsv.write_csv(chunk_table(atlas, 0, rows, 1), src)
    for level in LEVELS:
        atlas.levels[level].table[["id", "geometry"]].to_parquet(atlas_dir / f"{level}.parquet")
    peer_py = atlas_dir / "peer.py"
    peer_py.write_text(PEER)
    ours_cmd = [
        sys.executable,
        "-m",
        "geo.cli",
        "assign",
        str(src),
        "-o",
        str(atlas_dir / "ours.csv"),
        "--db",
        db,
    ]
    peer_cmd = [sys.executable, str(peer_py), str(src), str(atlas_dir / "peer.csv"), str(atlas_dir)]
    # the first command after a write builds the store's ready atlas (geo.ready) and writes it;
    # every later one loads it: timed once here, cold, then the rounds (warm)
    shutil.rmtree(db + ".ready", ignore_errors=True)
    cold, _ = run_timed(ours_cmd)
    print(f"ours, cold (no ready atlas yet: built and written): {cold:.2f} s", flush=True)
    ours: list[float] = []
    peer: list[float] = []
    cpu: dict[str, list[float]] = {"ours": [], "peer": []}
    for i in range(rounds):
        for name, cmd, times in (("ours", ours_cmd, ours), ("peer", peer_cmd, peer))[
            :: 1 if i % 2 == 0 else -1
        ]:
            before = children_cpu()
            seconds, _ = run_timed(cmd)
            cpu[name].append(children_cpu() - before)
            times.append(seconds)
            print(f"round {i + 1}: {name} {seconds:.2f} s ({cpu[name][-1]:.2f} CPU s)", flush=True)
    ratios = [p / o for p, o in zip(peer, ours, strict=True)]
    cpu_ratios = [p / o for p, o in zip(cpu["peer"], cpu["ours"], strict=True)]
    print(f"\n{rows:,} rows, CSV to CSV, end to end, {rounds} interleaved rounds (s):")
    print(f"  load average now           {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  ours (geo assign)          {stats(ours)}")
    print(f"  pandas + geopandas sjoin   {stats(peer)}")
    print(f"  ratio peer/ours            {stats(ratios)}  (x faster)")
    print("CPU seconds (user + system of the process tree; a shared machine disturbs them less):")
    print(f"  ours (geo assign)          {stats(cpu['ours'])}")
    print(f"  pandas + geopandas sjoin   {stats(cpu['peer'])}")
    print(f"  ratio peer/ours            {stats(cpu_ratios)}")
    agree(atlas_dir / "ours.csv", atlas_dir / "peer.csv")


def agree(ours_csv: Path, peer_csv: Path) -> None:
    text = {c: pa.string() for c in ("id", *(f"{lv}_id" for lv in LEVELS))}
    opts = pacsv.ConvertOptions(column_types=text, strings_can_be_null=True)
    a = pacsv.read_csv(ours_csv, convert_options=opts)
    b = pacsv.read_csv(peer_csv, convert_options=opts)
    for level in LEVELS:
        col = f"{level}_id"
        x = pc.fill_null(a.column(col), "").to_pylist()
        y = pc.fill_null(b.column(col), "").to_pylist()
        differ = sum(1 for u, v in zip(x, y, strict=True) if u != v)
        print(f"  {col}: {differ} of {len(x):,} answers differ (points on a shared edge)")


def registry(folder: Path, db: str, atlas: Atlas, rows: int, per_file: int) -> None:
    data = folder / "registry"
    data.mkdir()
    start = time.perf_counter()
    for i, first in enumerate(range(0, rows, per_file)):
        n = min(per_file, rows - first)
        pq.write_table(
            chunk_table(atlas, first, n, 100 + i),
            data / f"part-{i:04d}.parquet",
            row_group_size=250_000,
        )
    print(
        f"\nregistry: {rows:,} rows in {len(list(data.iterdir()))} Parquet files, "
        f"generated in {time.perf_counter() - start:.1f} s"
    )
    base = [sys.executable, "-m", "geo.cli", "assign", str(data), "--db", db]
    runs = (
        ("one process", ["-o", str(folder / "one.parquet")]),
        (
            "dask, 2 workers",
            ["-o", str(folder / "dask.parquet"), "--engine", "dask", "--workers", "2"],
        ),
    )
    for name, extra in runs:
        seconds, peak = run_timed(base + extra)
        print(
            f"  {name:16s} {seconds:7.1f} s  {rows / seconds:>12,.0f} rows/s  "
            f"peak memory (process tree) {peak / 2**20:,.0f} MiB",
            flush=True,
        )
    same = pq.read_table(folder / "one.parquet").equals(pq.read_table(folder / "dask.parquet"))
    print(f"  identical outputs: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--registry", type=int, default=20_000_000)
    parser.add_argument("--per-file", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp)")
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        db, atlas = make_store(folder)
        if args.rows:
            compare(folder, db, atlas, args.rows, args.rounds)
        if args.registry:
            registry(folder, db, atlas, args.registry, args.per_file)


if __name__ == "__main__":
    main()
