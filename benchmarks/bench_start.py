"""Time to first real work: `geo locate`, `geo assign` and `geo serve`, in fresh processes.

On the sample district (loaded once into a GeoPackage in a temporary folder), in ``--rounds``
interleaved rounds:

- ``locate``: ``python -m geo.cli locate LON LAT --db STORE``, whole (its real work, one
  lookup, is microseconds: the figure is the start);
- ``assign``: ``python -m geo.cli assign one-row.csv -o out.csv --db STORE``, whole (start,
  then one row: the time before the first row is processed, plus a row);
- ``serve``: ``python -m geo.cli serve --db STORE --port P`` until ``GET /health`` answers 200
  (polled every 20 ms: ready), and on until it says ``tiles_prepared`` (``tiles``: every
  layer's tiles prepared in the background after start), then stopped;

each ``cold`` (the store's ready atlas removed first: the index is built and written) and
``warm`` (the ready file from the previous run is loaded). With ``--before DIR`` (another
checkout of geo, e.g. the main branch before the ready atlas) the same commands run from it
too, in the same rounds. Printed: wall seconds min/median/max per case, the CPU seconds of the
process (user + system, which a shared machine disturbs less), and the load average.

    python benchmarks/bench_start.py --rounds 5 [--before /work/main]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
LON, LAT = 120.2065, 30.2107  # inside the sample district


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def env_for(checkout: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    env.pop("GEO_CACHE_DIR", None)
    return env


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of a command run to its end (it must succeed)."""
    cpu = cpu_of_children()
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return wall, cpu_of_children() - cpu


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_ready(db: str, env: dict[str, str], cwd: Path) -> tuple[float, float, float]:
    """Wall seconds from the start of `geo serve` to its first ``/health`` 200 and to the
    first that says its tiles are prepared (made in the background after start; a server
    without the field has made them before answering), and the CPU seconds the server spent
    until it was stopped right after."""
    port = free_port()
    cmd = [sys.executable, "-m", "geo.cli", "serve", "--db", db, "--port", str(port)]
    cmd += ["--no-access-log"]
    cpu = cpu_of_children()
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ready = None
    try:
        while True:
            health = _health(port)
            if health is not None and ready is None:
                ready = time.perf_counter() - start
            if health is not None and health.get("tiles_prepared", True):
                break
            if proc.poll() is not None:
                raise SystemExit(f"geo serve exited with {proc.returncode}")
            time.sleep(0.02)
        prepared = time.perf_counter() - start
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return ready, prepared, cpu_of_children() - cpu


def _health(port: int) -> dict | None:
    """The ``/health`` answer, or None while the server does not answer 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
            return json.loads(r.read()) if r.status == 200 else None
    except OSError:
        return None


def stats(values: list[float]) -> str:
    return f"{min(values):6.2f} {statistics.median(values):6.2f} {max(values):6.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", type=Path, default=None, help="another geo checkout")
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    checkouts = {"ours": HERE}
    if args.before:
        checkouts["before"] = args.before.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sys.path.insert(0, str(HERE))
        from geo.service.load import load_into
        from geo.settings import SAMPLE_DIR

        db = str(folder / "sample.gpkg")
        load_into(db, SAMPLE_DIR)
        src = folder / "one-row.csv"
        src.write_text(f"id,lon,lat\nE1,{LON},{LAT}\n", encoding="utf-8")
        cache = Path(db + ".ready")
        cases = {
            "locate": [sys.executable, "-m", "geo.cli", "locate", str(LON), str(LAT), "--db", db],
            "assign": [sys.executable, "-m", "geo.cli", "assign", str(src), "-o",
                       str(folder / "out.csv"), "--db", db],
        }  # fmt: skip
        walls: dict[str, list[float]] = {}
        cpus: dict[str, list[float]] = {}
        for i in range(args.rounds):
            for who, checkout in checkouts.items():
                env = env_for(checkout)
                for name in ("locate", "assign", "serve"):
                    for state in ("cold", "warm"):
                        if state == "cold":
                            shutil.rmtree(cache, ignore_errors=True)
                        if name == "serve":
                            wall, prepared, cpu = serve_ready(db, env, folder)
                            label = f"{who:6s} tiles  {state}"
                            walls.setdefault(label, []).append(prepared)
                            cpus.setdefault(label, []).append(cpu)
                        else:
                            wall, cpu = timed(cases[name], env, folder)
                        label = f"{who:6s} {name:6s} {state}"
                        walls.setdefault(label, []).append(wall)
                        cpus.setdefault(label, []).append(cpu)
            print(f"round {i + 1} done", flush=True)
        print(f"\nfresh processes, sample district, {args.rounds} interleaved rounds")
        print("case                 wall s: min median max    CPU s: min median max")
        for label in walls:
            print(f"{label:20s} {stats(walls[label]):>26s}    {stats(cpus[label])}")
        print("(serve: until /health answers 200; tiles: until it says tiles_prepared, the same")
        print(" process, whose CPU is counted in both rows;")
        print(" cold: the ready atlas removed first, so built and written; warm: loaded;")
        print(" 'before' has no ready atlas: its cold and warm are the same work)")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
