"""Light-request latency while eight clients send 100,000-point ``POST /locate``, with the
load-shedding limits (geo.api.shedding) on and off.

Starts two ``geo serve`` processes (one worker each) on a temporary store loaded from the
sample district: one with the default limits, one with them off (``GEO_HEAVY_PER_CLIENT=0``,
``GEO_HEAVY_RATE=0``, ``GEO_HEAVY_CONCURRENCY=1000``). Each round measures, on each server in
turn (the order alternating between rounds):

* *alone*: light ``GET /locate`` traffic only — ``--rate`` requests/s open loop (each request
  due at a fixed time, its latency counted from then) over 8 keep-alive connections, at
  random enterprise positions;
* *loaded*: the same light traffic while a second process runs 8 concurrent anonymous
  clients, each sending 100,000-point ``POST /locate`` requests back to back (honouring
  ``Retry-After`` on a 429 or 503).

Prints, per server and phase, the light requests' p50 and p95 in ms as min / median / max over
the rounds (and the light errors); per phase, min / median / max of the per-round ratio limits
on ÷ limits off of the p50 and the p95 (below 1: the limits help the light requests); and per
server the heavy requests' answers by status with the points located per second (min / median
/ max over the rounds; "heavy points/s").

    python benchmarks/bench_shedding.py                    # 3 rounds of 8 s phases
    python benchmarks/bench_shedding.py --rounds 5 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Spread, stop
from load import Conn, FastConn, _free_port, _pct, _wait_up

HEAVY_CLIENTS, HEAVY_POINTS = 8, 100_000
OFF = {"GEO_HEAVY_PER_CLIENT": "0", "GEO_HEAVY_RATE": "0", "GEO_HEAVY_CONCURRENCY": "1000"}


# --------------------------------------------------------------------------- light traffic


async def _light(port: int, points: list, rate: float, seconds: float, seed: int) -> tuple:
    """Open-loop ``GET /locate`` for ``seconds``: latencies (s) and errors."""
    rng = random.Random(seed)
    pool: asyncio.Queue[FastConn] = asyncio.Queue()
    for _ in range(8):
        pool.put_nowait(await FastConn.open(port))
    lat: list[float] = []
    errors: dict[str, int] = {}

    async def one(scheduled: float) -> None:
        lon, lat_ = rng.choice(points)
        conn = await pool.get()
        try:
            status = await conn.get(f"/locate?lon={lon:.6f}&lat={lat_:.6f}")
        except Exception as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            conn.close()
            pool.put_nowait(await FastConn.open(port))
            return
        pool.put_nowait(conn)
        lat.append(time.perf_counter() - scheduled)
        if status != 200:
            errors[str(status)] = errors.get(str(status), 0) + 1

    start = time.perf_counter()
    tasks = set()
    sent = 0
    while (now := time.perf_counter()) < start + seconds:
        due = int((now - start) * rate) + 1
        for i in range(sent, due):
            task = asyncio.create_task(one(start + i / rate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        sent = due
        await asyncio.sleep(max(0.001, start + sent / rate - time.perf_counter()))
    if tasks:
        await asyncio.wait(tasks)
    while not pool.empty():
        pool.get_nowait().close()
    return lat, errors


# --------------------------------------------------------------------------- heavy traffic


async def _heavy_main(port: int, body: bytes, seconds: float) -> dict:
    """``HEAVY_CLIENTS`` clients sending ``body`` back to back for ``seconds``."""
    end = time.perf_counter() + seconds
    out: dict[str, int] = {}

    async def client() -> None:
        conn = Conn("127.0.0.1", port)
        while time.perf_counter() < end:
            try:
                status, headers, _ = await conn.request("POST", "/locate", body)
            except (OSError, asyncio.IncompleteReadError) as exc:
                out[type(exc).__name__] = out.get(type(exc).__name__, 0) + 1
                conn.close()
                await asyncio.sleep(0.1)
                continue
            out[str(status)] = out.get(str(status), 0) + 1
            if status in (429, 503):  # a polite client waits as told
                wait = float(headers.get("retry-after", "1"))
                await asyncio.sleep(min(wait, max(0.0, end - time.perf_counter())))
        conn.close()

    await asyncio.gather(*(client() for _ in range(HEAVY_CLIENTS)))
    return out


def _heavy_process(args: tuple) -> dict:
    return asyncio.run(_heavy_main(*args))


# ------------------------------------------------------------------------------------ rounds


def _phase(port: int, points, args, body: bytes | None, pool, seed: int) -> tuple:
    """One measured phase: light traffic (after ``--warmup`` s of heavy load, if any)."""
    job = None
    if body is not None:
        job = pool.apply_async(_heavy_process, ((port, body, args.warmup + args.seconds),))
        time.sleep(args.warmup)
    lat, errors = asyncio.run(_light(port, points, args.rate, args.seconds, seed))
    heavy = job.get(timeout=args.warmup + args.seconds + 120) if job is not None else {}
    return lat, errors, heavy


def _start(db: str, port: int, extra: dict[str, str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "GEO_DB": db, "GEO_ACCESS_LOG": "false", **extra}
    cmd = [sys.executable, "-c", "from geo.cli import main; main()", "serve", "--db", db,
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"), start_new_session=True
    )


def _inputs(db: str, seed: int) -> tuple[list, bytes]:
    from geo.store import open_store

    store = open_store(db)
    try:
        tables = store.snapshot().tables
    finally:
        store.close()
    ents = tables["enterprises"]
    points = [(g.x, g.y) for g in ents.geometry.sample(2000, random_state=seed)]
    minx, miny, maxx, maxy = tables["streets"].total_bounds
    rng = random.Random(seed)
    heavy = [
        [round(rng.uniform(minx, maxx), 6), round(rng.uniform(miny, maxy), 6)]
        for _ in range(HEAVY_POINTS)
    ]
    return points, json.dumps({"points": heavy}).encode()


def _report(results: dict, args) -> None:
    """Light p50/p95 per server and phase, their ratios (on ÷ off), the heavy answers."""
    print(
        f"\nlight GET /locate at {args.rate:g} req/s, {args.seconds:g} s per phase, "
        f"{args.rounds} rounds; with {HEAVY_CLIENTS} clients x {HEAVY_POINTS:,}-point "
        "POST /locate when loaded"
    )
    pct = {
        key: {q: [_pct(lat, q) for lat, _, _ in rounds] for q in (0.5, 0.95)}
        for key, rounds in results.items()
    }
    for (limits, phase), got in pct.items():
        for q, values in got.items():
            print(Spread.of(values).line(f"limits {limits} {phase} p{q * 100:.0f} ms", ".1f"))
    print("ratio limits on / limits off, per round (below 1: the limits help):")
    for phase in ("alone", "loaded"):
        for q in (0.5, 0.95):
            on, off = pct[("on", phase)][q], pct[("off", phase)][q]
            ratio = [a / b for a, b in zip(on, off, strict=True)]
            print(Spread.of(ratio).line(f"{phase} p{q * 100:.0f} on/off", ".3g"))
    span = args.warmup + args.seconds
    for (limits, phase), rounds in results.items():
        errors: dict[str, int] = {}
        heavy: dict[str, int] = {}
        for _, e, h in rounds:
            for k, v in e.items():
                errors[k] = errors.get(k, 0) + v
            for k, v in h.items():
                heavy[k] = heavy.get(k, 0) + v
        if phase == "loaded":
            located = [h.get("200", 0) * HEAVY_POINTS / span for _, _, h in rounds]
            print(Spread.of(located).line(f"limits {limits}: heavy points/s", ",.0f"))
            print(f"  limits {limits}: heavy answers {heavy}; light errors: {errors or 'none'}")


def main(argv: list[str] | None = None) -> None:
    """Start both servers, run the rounds (the order alternating), print the report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8, help="measured seconds per phase")
    ap.add_argument("--warmup", type=float, default=2, help="heavy load before measuring")
    ap.add_argument("--rate", type=float, default=50, help="light requests/s")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="geo-shed-"))
    from geo.service.load import load_into
    from geo.settings import SAMPLE_DIR

    dbs = {name: str(tmp / f"{name}.gpkg") for name in ("on", "off")}
    load_into(dbs["on"], SAMPLE_DIR)
    shutil.copy(dbs["on"], dbs["off"])
    points, body = _inputs(dbs["on"], args.seed)
    ports = {name: _free_port() for name in dbs}
    servers = {
        name: _start(dbs[name], ports[name], {} if name == "on" else OFF, tmp / f"{name}.log")
        for name in dbs
    }
    results: dict[tuple[str, str], list] = {
        (limits, phase): [] for limits in ("off", "on") for phase in ("alone", "loaded")
    }
    try:
        for name in servers:
            asyncio.run(_wait_up(ports[name], servers[name]))
        with mp.get_context("spawn").Pool(1) as pool:
            for r in range(args.rounds):
                order = ("off", "on") if r % 2 == 0 else ("on", "off")
                for limits in order:
                    for phase in ("alone", "loaded"):
                        got = _phase(
                            ports[limits], points, args, body if phase == "loaded" else None,
                            pool, args.seed + r,
                        )  # fmt: skip
                        results[(limits, phase)].append(got)
                        lat = got[0]
                        print(
                            f"round {r + 1} limits {limits:3} {phase:6}: p50 "
                            f"{_pct(lat, 0.5):7.1f} ms, p95 {_pct(lat, 0.95):7.1f} ms, "
                            f"heavy {got[2] or '-'}",
                            flush=True,
                        )
    finally:
        for server in servers.values():
            stop(server)
    _report(results, args)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
