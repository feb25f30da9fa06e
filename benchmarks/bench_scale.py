"""City scale: how building the atlas, starting `geo serve`, /locate and uncached tiles grow with
the data (issue 13 §4).

For each scale of ``--scales`` (default 1,10,50) the sample district is generated once
(``python -m geo.sample --scale N``) into a temporary directory and loaded into a temporary
GeoPackage store with ``geo load``; then, each in a fresh process:

* **atlas**: the store's snapshot read and the atlas built from it (time, peak RSS);
* **serve**: ``geo serve`` started until ``GET /health`` answers 200 (time, RSS when ready);
* **locate**: ``--points`` sequential ``GET /locate`` over one keep-alive connection, for
  points inside communities (p50/p99);
* **tiles**: ``--tiles`` tiles that intersect data per zoom (12, 14, 16) for the grids and
  enterprises layers, each asked once of the fresh server (uncached): p95, and apart the first
  tile of each layer and zoom (it prepares the layer's geometry for that zoom).

Then, for each step between scales, time (and memory) ratio ÷ data ratio: above 1 a step grows
faster than the data. ``--profile`` writes a cProfile of the atlas step at the largest scale.

With ``--rounds N`` (default 1) the atlas and HTTP steps run N times per scale, in interleaved
rounds (each round visits every scale, the order rotating, so load on the machine hits every
scale alike); every cell is then min / median / max over the rounds, and each growth cell the
min / median / max of the per-round growth. Generating and loading run once per scale (one
figure: min = median = max).

    python benchmarks/bench_scale.py --scales 1,10,50
    python benchmarks/bench_scale.py --scales 1,10 --rounds 3
    python benchmarks/bench_scale.py --scales 1,10 --work /tmp/scale   # keep data and stores
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import itertools
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import Spread, interleave, stop  # benchmarks/common.py, beside this script

ZOOMS = (12, 14, 16)
TILE_LAYERS = ("grids", "enterprises")
HERE = Path(__file__).resolve()
# the children import this checkout's geo, installed or not
_PATH = [str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in _PATH if p)}


def peak_mb() -> float:
    """This process's peak resident set size, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    """CPU seconds (user + system) this process has used: less sensitive to a loaded machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of process ``pid``, MB, from /proc."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def run_child(*args: str, out: Path) -> dict:
    """``bench_scale.py --child …`` in a fresh process; its JSON result (with wall time)."""
    t = time.perf_counter()
    subprocess.run([sys.executable, str(HERE), "--child", str(out), *args], check=True, env=ENV)
    result = json.loads(out.read_text())
    result.setdefault("seconds", time.perf_counter() - t)
    return result


# ------------------------------------------------------------------------- in the child process


def child_cli(out: Path, argv: list[str]) -> None:
    """A `geo` command (``geo load DIR --db …``) run here; its wall time and peak RSS."""
    from geo.cli import main

    t = time.perf_counter()
    atexit.register(
        lambda: out.write_text(
            json.dumps({"seconds": time.perf_counter() - t, "mb": peak_mb(), "cpu": cpu_s()})
        )
    )
    sys.argv = ["geo", *argv]
    main()


def child_generate(out: Path, scale: int, target: str) -> None:
    """``python -m geo.sample --scale N -o DIR`` run here; its wall time and peak RSS."""
    from geo import sample

    t = time.perf_counter()
    sample.main(["-o", target, "--scale", str(scale)])
    out.write_text(
        json.dumps({"seconds": time.perf_counter() - t, "mb": peak_mb(), "cpu": cpu_s()})
    )


def child_atlas(out: Path, db: str, plan: str, points: int, tiles: int, profile: str) -> None:
    """Read the store's snapshot and build its atlas (timed, peak RSS); then pick the points
    and tiles the HTTP steps ask for and write them to ``plan``."""
    import cProfile

    from geo.atlas import Atlas
    from geo.store import open_store

    base = peak_mb()
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    t0, c0 = time.perf_counter(), cpu_s()
    store = open_store(db)
    snapshot = store.snapshot()
    t1, c1 = time.perf_counter(), cpu_s()
    atlas = Atlas(snapshot)
    t2, c2 = time.perf_counter(), cpu_s()
    if prof:
        prof.disable()
        prof.dump_stats(profile)
    mb = peak_mb()
    rows = {name: len(table) for name, table in atlas.tables.items()}
    Path(plan).write_text(json.dumps(make_plan(atlas, points, tiles)))
    store.close()
    out.write_text(
        json.dumps(
            {
                **{"snapshot": t1 - t0, "atlas": t2 - t1, "mb": mb, "base_mb": base},
                **{"snapshot_cpu": c1 - c0, "atlas_cpu": c2 - c1, "rows": rows},
            }
        )
    )


def inside_points(communities, n: int, rng: np.random.Generator) -> list[list[float]]:
    """``n`` random points inside communities (uniform over their area)."""
    import shapely

    geoms = communities.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    found: list[np.ndarray] = []
    while sum(len(f) for f in found) < n:
        xy = rng.uniform([minx, miny], [maxx, maxy], (20 * n, 2))
        hit = np.unique(tree.query(shapely.points(xy), predicate="within")[0])
        found.append(xy[hit])
    return np.concatenate(found)[:n].round(7).tolist()


def data_tiles(table, z: int, n: int, rng: np.random.Generator) -> list[list[int]]:
    """Up to ``n`` tiles at zoom ``z`` that intersect ``table``'s geometries, sampled evenly."""
    import shapely

    from geo.tiles import tile_math

    geoms = table.geometry.to_numpy()
    candidates = np.array(tile_math.tiles_covering(shapely.total_bounds(geoms), [z]))
    merc = np.array([tile_math.tile_bounds(*t) for t in candidates])
    w, s = tile_math.to_lonlat(merc[:, 0], merc[:, 1])
    e, nn = tile_math.to_lonlat(merc[:, 2], merc[:, 3])
    hit = np.unique(
        shapely.STRtree(geoms).query(shapely.box(w, s, e, nn), predicate="intersects")[0]
    )
    pick = np.sort(rng.choice(hit, min(n, len(hit)), replace=False))
    return candidates[pick].tolist()


def make_plan(atlas, points: int, tiles: int) -> dict:
    """The /locate points (inside communities) and, per layer and zoom, the tiles to ask."""
    rng = np.random.default_rng(13)
    return {
        "points": inside_points(atlas.tables["communities"], points, rng),
        "tiles": {
            layer: {str(z): data_tiles(atlas.tables[layer], z, tiles, rng) for z in ZOOMS}
            for layer in TILE_LAYERS
        },
    }


# ------------------------------------------------------------------------ the server, over HTTP


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(db: str, log: Path):
    """``geo serve`` on a free port; yields (base URL, process, seconds until /health is 200)."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-c", "from geo.cli import main; main()", "serve", "--db", db]
    cmd += ["--port", str(port), "--no-access-log"]
    t = time.perf_counter()
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            cmd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True, env=ENV
        )
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            if proc.poll() is not None:
                raise RuntimeError(f"geo serve exited with {proc.returncode}: see {log}")
            time.sleep(0.02)
        yield base, proc, time.perf_counter() - t
    finally:
        stop(proc, timeout=30)


def timed_gets(client, paths: list[str], strict: bool = True) -> tuple[np.ndarray, int]:
    """Each path asked once in turn: the latencies (ms) and how many answers were not 2xx
    (printed; with ``strict`` the first stops the run)."""
    took, failed = np.empty(len(paths)), 0
    for i, path in enumerate(paths):
        t = time.perf_counter()
        r = client.get(path)
        took[i] = (time.perf_counter() - t) * 1000
        if r.status_code >= 300:
            failed += 1
            print(f"GET {path}: {r.status_code} {r.text[:200]}", file=sys.stderr, flush=True)
            if strict:
                raise RuntimeError(f"GET {path}: {r.status_code}")
    return took, failed


def http_steps(db: str, plan: dict, log: Path) -> dict:
    """Start `geo serve`, then /locate and uncached tiles over HTTP; times and the server's RSS."""
    import httpx

    out: dict = {}
    with serving(db, log) as (base, proc, ready), httpx.Client(base_url=base, timeout=600) as c:
        out["serve"], (out["serve_mb"], _) = ready, rss_mb(proc.pid)
        out["serve_cpu"] = proc_cpu_s(proc.pid)
        paths = [f"/locate?lon={lon}&lat={lat}" for lon, lat in plan["points"]]
        timed_gets(c, paths[:50])  # warm the connection and the route
        took, _ = timed_gets(c, paths)
        out["locate_p50"], out["locate_p99"] = np.percentile(took, [50, 99]).tolist()
        for layer, zooms in plan["tiles"].items():
            for z, addresses in zooms.items():
                paths = [f"/tiles/{layer}/{z}/{x}/{y}.mvt" for _, x, y in addresses]
                took, out[f"{layer}_z{z}_failed"] = timed_gets(c, paths, strict=False)
                out[f"{layer}_z{z}_first"] = float(took[0])
                out[f"{layer}_z{z}_p95"] = float(np.percentile(took[1:], 95))
        out["served_mb"], out["served_peak_mb"] = rss_mb(proc.pid)
    return out


# --------------------------------------------------------------------------------- the driver

# (key, label, unit) of each figure; the growth columns divide its ratio by the data's
FIGURES = (
    ("generate", "generate (python -m geo.sample)", "s"),
    ("generate_cpu", "  CPU", "s"),
    ("generate_mb", "  peak RSS", "MB"),
    ("load", "geo load", "s"),
    ("load_cpu", "  CPU", "s"),
    ("load_mb", "  peak RSS", "MB"),
    ("snapshot", "atlas: read the store's snapshot", "s"),
    ("snapshot_cpu", "  CPU", "s"),
    ("atlas", "atlas: build (indexes, shortcuts)", "s"),
    ("atlas_cpu", "  CPU", "s"),
    ("atlas_mb", "  peak RSS above imports", "MB"),
    ("serve", "geo serve until /health is 200", "s"),
    ("serve_cpu", "  CPU", "s"),
    ("serve_mb", "  RSS when ready", "MB"),
    ("locate_p50", "GET /locate p50 (inside communities)", "ms"),
    ("locate_p99", "GET /locate p99", "ms"),
    *(
        (f"{layer}_z{z}_{what}", f"{layer} z{z} {label}", unit)
        for layer in TILE_LAYERS
        for z in ZOOMS
        for what, label, unit in (
            ("p95", "uncached p95", "ms"),
            ("first", "first tile", "ms"),
            ("failed", "  not 2xx", "tiles"),
        )
    ),
    ("served_peak_mb", "server peak RSS after the run", "MB"),
)


def prepare(scale: int, work: Path) -> dict:
    """Generate the district and load it into a store at one scale, unless ``work`` holds them;
    the figures of the steps that ran (now or when they were made)."""
    data, db, tmp = work / "data", str(work / "store.gpkg"), work / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    if not (data / "enterprises.csv").exists():
        run_child("generate", str(scale), str(data), out=tmp / "generate.json")
    if not Path(db).exists():
        run_child("cli", "load", str(data), "--db", db, out=tmp / "load.json")
    out: dict = {}
    for step in ("generate", "load"):  # measured when the data or the store was made
        with contextlib.suppress(FileNotFoundError):
            done = json.loads((tmp / f"{step}.json").read_text())
            out[step], out[f"{step}_mb"] = done["seconds"], done["mb"]
            if "cpu" in done:
                out[f"{step}_cpu"] = done["cpu"]
    return out


def measure(work: Path, args: argparse.Namespace) -> dict:
    """One round at one scale (prepared in ``work``): the atlas in a fresh process, then a
    fresh `geo serve` over HTTP."""
    db, tmp = str(work / "store.gpkg"), work / "tmp"
    profile = str(work / "atlas.prof") if args.profile else ""
    plan = tmp / "plan.json"
    built = run_child(
        "atlas", db, str(plan), str(args.points), str(args.tiles), profile, out=tmp / "atlas.json"
    )
    out = {k: v for k, v in built.items() if k not in ("mb", "base_mb")}
    out["atlas_mb"] = built["mb"] - built["base_mb"]
    out.update(http_steps(db, json.loads(plan.read_text()), tmp / "serve.log"))
    return out


def _cell(values: list[float], fmt: str, width: int, spread: bool) -> str:
    """One value, or (``spread``) min / median / max of the values."""
    if not spread:
        return f"{values[0]:>{width}{fmt}}"
    spread = Spread.of(values)
    return "".join(f"{v:>{width}{fmt}}" for v in (spread.min, spread.median, spread.max))


def report(scales: list[int], results: dict[int, list[dict]]) -> None:
    """The table: each figure per scale, then ratio ÷ data ratio for each step between scales
    (with several rounds: min / median / max of each, the growth per round)."""
    size = {s: sum(results[s][0]["rows"].values()) for s in scales}
    steps = list(itertools.pairwise(scales))
    rounds = max(len(results[s]) for s in scales)
    w, g = (10, 12) if rounds == 1 else (8, 7)
    span = (1 if rounds == 1 else 3) * w
    gspan = (1 if rounds == 1 else 3) * (g - 1) + 1
    head = f"{'':42}" + "".join(f"{'×' + str(s):>{span}}" for s in scales)
    head += "".join(f"{f'×{a}→×{b}':>{gspan}}" for a, b in steps)
    if rounds > 1:
        print(f"{rounds} interleaved rounds; each cell: min, median, max")
    print(head)
    print(f"{'rows (all layers)':42}" + "".join(f"{size[s]:>{span},}" for s in scales))
    for key, label, unit in FIGURES:
        values = {s: [r[key] for r in results[s] if key in r] for s in scales}
        if not all(values.values()):
            continue
        line = f"{label + ' (' + unit + ')':42}"
        line += "".join(_cell(values[s], ".3g", w, rounds > 1) for s in scales)
        for a, b in steps:
            pairs = list(zip(values[a], values[b], strict=False))
            if not all(x for x, _ in pairs):
                line += f"{'-':>{gspan}}"
                continue
            growth = [(y / x) / (size[b] / size[a]) for x, y in pairs]
            faster = Spread.of(growth).median > 1
            line += _cell(growth, ".2f", g - 1, rounds > 1) + ("!" if faster else " ")
        print(line)
    print(
        "growth columns: (figure ratio) ÷ (data ratio); above 1 (marked !, on the median) the "
        "figure grows faster than the data."
    )


def run_rounds(scales: list[int], root: Path, args: argparse.Namespace) -> dict[int, list[dict]]:
    """Prepare every scale, then ``--rounds`` interleaved rounds (saved as each ends)."""
    results: dict[int, list[dict]] = {}
    todo = []
    for scale in scales:
        saved = root / f"x{scale}" / "result.json"
        if args.reuse and saved.exists():
            got = json.loads(saved.read_text())
            results[scale] = got if isinstance(got, list) else [got]
        else:
            todo.append(scale)
    once = {scale: prepare(scale, root / f"x{scale}") for scale in todo}

    def one(scale: int) -> None:
        got = measure(root / f"x{scale}", args)
        if scale not in results:  # generate and load: measured once, in the first round
            got.update(once[scale])
        results.setdefault(scale, []).append(got)
        (root / f"x{scale}" / "result.json").write_text(json.dumps(results[scale]))
        print(f"×{scale} done: {json.dumps(got)}", file=sys.stderr, flush=True)

    interleave({str(s): (lambda s=s: one(s)) for s in todo}, args.rounds)
    return results


def main(argv: list[str] | None = None) -> None:
    """Parse the options, measure every scale, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,10,50", help="comma-separated (default 1,10,50)")
    parser.add_argument("--points", type=int, default=1000, help="GET /locate requests")
    parser.add_argument("--tiles", type=int, default=40, help="tiles per layer and zoom")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds per scale")
    parser.add_argument("--work", type=Path, help="keep data and stores here (reused if there)")
    parser.add_argument("--profile", action="store_true", help="cProfile the atlas step")
    parser.add_argument(
        "--reuse", action="store_true", help="with --work: take a scale's saved result.json"
    )
    args = parser.parse_args(argv)
    scales = sorted({int(s) for s in args.scales.split(",")})
    root = args.work or Path(tempfile.mkdtemp(prefix="bench_scale_"))
    try:
        results = run_rounds(scales, root, args)
    finally:
        if args.work is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine)")
    report(scales, results)


def child(argv: list[str]) -> None:
    """``--child OUT KIND ARGS…``: one measured step in this fresh process."""
    out, kind, rest = Path(argv[0]), argv[1], argv[2:]
    if kind == "cli":
        child_cli(out, rest)
    elif kind == "generate":
        child_generate(out, int(rest[0]), rest[1])
    else:
        child_atlas(out, rest[0], rest[1], int(rest[2]), int(rest[3]), rest[4])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
    else:
        main()
