"""Sustained mixed traffic against `geo serve --workers 2` while a planner edits a boundary.

Starts ``geo serve`` on 127.0.0.1 (a free port, a temporary store loaded from the sample
district), then for ``--seconds``:

* ``--clients`` processes, each with ``--concurrency`` keep-alive connections (raw asyncio
  streams, HTTP/1.1), send 70 % ``GET /locate`` (random enterprise positions), 20 % vector tiles
  (z 13-15 over the district) and 10 % ``GET /enterprises/{id}/owner``;
* a planner (bearer token) toggles Torch's (C01) northern edge between two four-to texts every
  ``--edit-every`` seconds with ``PUT /communities/C01/boundary``;
* a prober asks ``GET /locate`` for a point in the strip that edge moves across, back to back.
  A *torn* answer is an owner that belongs to neither state (e.g. none, or a third community);
  a *stale* answer is one started after an edit's 2xx that still shows the old owner.

Prints throughput and p50/p99 latency per kind, errors, torn and stale probe answers.

    python benchmarks/load.py --seconds 20
    python benchmarks/load.py --seconds 20 --refresh-seconds 0   # strict read-after-write
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TORCH = "东至信诚路、南至南环路、西至东信大道、北至江南大道沿联庄路至汇智地界北"
NORTH = "东至信诚路、南至南环路、西至东信大道、北至江南大道"
KINDS = ("locate", "tile", "owner")


# ------------------------------------------------------------------------------ tiny client


class Conn:
    """One keep-alive HTTP/1.1 connection (Content-Length or chunked answers)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        for attempt in (0, 1):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            for k, v in (headers or {}).items():
                head += f"{k}: {v}\r\n"
            if body or method in ("POST", "PUT"):
                head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            try:
                self.writer.write(head.encode() + b"\r\n" + body)
                return await self._response()
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _response(self) -> tuple[int, dict[str, str], bytes]:
        assert self.reader is not None
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                body += await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            body = b""
        if headers.get("connection") == "close":
            self.close()
        return status, headers, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# ---------------------------------------------------------------------------- load clients


def _paths(plan: dict, rng: random.Random) -> tuple[str, str]:
    r = rng.random()
    if r < 0.7:
        lon, lat = rng.choice(plan["points"])
        return "locate", f"/locate?lon={lon:.6f}&lat={lat:.6f}"
    if r < 0.9:
        layer, z, x, y = rng.choice(plan["tiles"])
        return "tile", f"/tiles/{layer}/{z}/{x}/{y}.mvt"
    return "owner", f"/enterprises/{rng.choice(plan['enterprises'])}/owner"


async def _client_main(port: int, plan: dict, seconds: float, concurrency: int, seed: int):
    stats = {k: [] for k in KINDS}
    errors: dict[str, int] = {}
    end = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        conn = Conn("127.0.0.1", port)
        while time.perf_counter() < end:
            kind, path = _paths(plan, rng)
            t = time.perf_counter()
            try:
                status, _, _ = await conn.request("GET", path)
            except Exception as exc:  # counted and reported
                errors[f"{kind} {type(exc).__name__}"] = errors.get(kind, 0) + 1
                conn.close()
                continue
            stats[kind].append(time.perf_counter() - t)
            if status >= 400:
                key = f"{kind} {status}"
                errors[key] = errors.get(key, 0) + 1
        conn.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return stats, errors


def _client_process(args: tuple) -> tuple[dict, dict]:
    return asyncio.run(_client_main(*args))


# ----------------------------------------------------------------------- planner and prober


async def _locate_owner(conn: Conn, probe: tuple[float, float]) -> str | None:
    status, _, body = await conn.request("GET", f"/locate?lon={probe[0]}&lat={probe[1]}")
    if status != 200:
        return f"HTTP {status}"
    community = json.loads(body)["community"]
    return community["id"] if community else None


async def _edit(conn: Conn, token: str, text: str) -> tuple[int, float]:
    auth = {"Authorization": f"Bearer {token}"}
    status, headers, _ = await conn.request("GET", "/communities/C01", headers=auth)
    body = json.dumps({"four_to": text, "reason": "load benchmark"}).encode()
    t = time.perf_counter()
    status, _, out = await conn.request(
        "PUT", "/communities/C01/boundary", body, {**auth, "If-Match": headers["etag"]}
    )
    if status != 200:
        raise RuntimeError(f"edit failed: {status} {out[:300]!r}")
    return status, time.perf_counter() - t


async def _settle(port: int, probe, want: str | None, timeout: float = 10) -> None:
    conns = [Conn("127.0.0.1", port) for _ in range(8)]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await asyncio.gather(*(_locate_owner(c, probe) for c in conns))
        if all(g == want for g in got):
            break
        await asyncio.sleep(0.05)
    for c in conns:
        c.close()


async def _planner_and_prober(
    port: int, token: str, probe, owners: dict[str, str | None], seconds: float, every: float
) -> dict:
    """Toggle C01 every ``every`` s; probe the moved strip back to back from 4 connections."""
    end = time.perf_counter() + seconds
    state = {"text": TORCH, "since": 0.0, "previous": TORCH}
    out = {"edits": 0, "edit_latency": [], "probes": 0, "torn": [], "stale": [], "lag": 0.0}

    async def planner() -> None:
        conn = Conn("127.0.0.1", port)
        while every > 0 and time.perf_counter() + every < end:
            await asyncio.sleep(every)
            text = NORTH if state["text"] == TORCH else TORCH
            _, latency = await _edit(conn, token, text)
            state["previous"], state["text"], state["since"] = (
                state["text"],
                text,
                time.perf_counter(),
            )
            out["edits"] += 1
            out["edit_latency"].append(latency)
        conn.close()

    async def prober() -> None:
        conn = Conn("127.0.0.1", port)
        while time.perf_counter() < end:
            t0, text, since, previous = (
                time.perf_counter(),
                state["text"],
                state["since"],
                state["previous"],
            )
            got = await _locate_owner(conn, probe)
            out["probes"] += 1
            if got not in (owners[TORCH], owners[NORTH]):
                out["torn"].append((round(t0, 3), got))
            elif since and t0 > since and got != owners[text] and state["text"] == text:
                out["stale"].append(round(t0 - since, 3))  # started after the 2xx, old answer
                out["lag"] = max(out["lag"], time.perf_counter() - since)
            _ = previous
        conn.close()

    await asyncio.gather(planner(), *(prober() for _ in range(4)))
    return out


# ------------------------------------------------------------------------------------ setup


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _targets(db: str, seed: int) -> tuple[dict, tuple[float, float]]:
    import math

    import shapely

    from geo.boundaries.edit import propose
    from geo.boundaries.roads import RoadNetwork
    from geo.store import open_store

    store = open_store(db)
    try:
        tables = store.snapshot().tables
    finally:
        store.close()
    ents = tables["enterprises"]
    rng = random.Random(seed)
    pts = [(g.x, g.y) for g in ents.geometry.sample(5000, random_state=seed)]
    minx, miny, maxx, maxy = tables["streets"].total_bounds

    def tile(lon: float, lat: float, z: int) -> tuple[int, int]:
        n = 2**z
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        return x, y

    tiles = set()
    for z in (13, 14, 15):
        x0, y1 = tile(minx, miny, z)
        x1, y0 = tile(maxx, maxy, z)
        for layer in ("communities", "grids", "enterprises"):
            tiles |= {(layer, z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)}
    network = RoadNetwork.from_frame(tables["roads"])
    a = propose(four_to=TORCH, roads=network, areas=tables["areas"]).polygon
    b = propose(four_to=NORTH, roads=network, areas=tables["areas"]).polygon
    strip = shapely.get_parts(shapely.symmetric_difference(a, b))
    piece = max(strip, key=lambda g: g.area)
    probe = piece.point_on_surface()
    plan = {
        "points": pts,
        "tiles": sorted(tiles),
        "enterprises": rng.sample(list(ents["id"]), 2000),
    }
    return plan, (round(probe.x, 7), round(probe.y, 7))


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--workers", type=int, default=2, help="geo serve worker processes")
    ap.add_argument("--clients", type=int, default=2, help="load-generating processes")
    ap.add_argument("--concurrency", type=int, default=32, help="connections per client")
    ap.add_argument(
        "--edit-every", type=float, default=3.0, help="seconds between edits (0: no edits)"
    )
    ap.add_argument("--refresh-seconds", type=float, default=None, help="GEO_REFRESH_SECONDS")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="geo-load-"))
    db = str(tmp / "store.gpkg")
    from geo.cli import load_into
    from geo.settings import SAMPLE_DIR
    from geo.store import open_store, users

    load_into(db, SAMPLE_DIR)
    store = open_store(db)
    try:
        token = users.add_user(store, "load-planner", "planner")
    finally:
        store.close()
    plan, probe = _targets(db, args.seed)
    port = _free_port()
    env = {**os.environ, "GEO_DB": db}
    if args.refresh_seconds is not None:
        env["GEO_REFRESH_SECONDS"] = str(args.refresh_seconds)
    cmd = [sys.executable, "-c", "from geo.cli import main; main()", "serve", "--db", db,
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)]  # fmt: skip
    log = (tmp / "serve.log").open("wb")
    server = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
    )
    try:
        asyncio.run(_wait_up(port, server))
        owners = asyncio.run(_owners(port, token, probe))
        print(
            f"geo serve --workers {args.workers} on 127.0.0.1:{port}; probe {probe}: "
            f"owner {owners[TORCH]} (Torch edge north of 江南大道) / {owners[NORTH]} (on it)"
        )
        with mp.get_context("spawn").Pool(args.clients) as pool:
            jobs = pool.map_async(
                _client_process,
                [
                    (port, plan, args.seconds, args.concurrency, args.seed + i)
                    for i in range(args.clients)
                ],
            )
            edits = asyncio.run(
                _planner_and_prober(port, token, probe, owners, args.seconds, args.edit_every)
            )
            results = jobs.get(timeout=args.seconds * 3 + 60)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
    _report(args, results, edits)
    shutil.rmtree(tmp, ignore_errors=True)


async def _wait_up(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"geo serve exited with {server.returncode}")
        try:
            conn = Conn("127.0.0.1", port)
            status, _, _ = await conn.request("GET", "/health")
            conn.close()
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("geo serve did not come up")


async def _owners(port: int, token: str, probe) -> dict[str, str | None]:
    """The probe's owner under each four-to text (every worker agreeing), ending on Torch."""
    conn = Conn("127.0.0.1", port)
    first = await _locate_owner(conn, probe)
    await _edit(conn, token, NORTH)
    await asyncio.sleep(2.5)
    second = await _locate_owner(conn, probe)
    await _settle(port, probe, second)
    await _edit(conn, token, TORCH)
    await _settle(port, probe, first)
    conn.close()
    if first == second:
        raise SystemExit(f"the probe {probe} does not change owner ({first}); pick another")
    return {TORCH: first, NORTH: second}


def _report(args, results, edits) -> None:
    stats = {k: [x for s, _ in results for x in s[k]] for k in KINDS}
    errors: dict[str, int] = {}
    for _, e in results:
        for k, v in e.items():
            errors[k] = errors.get(k, 0) + v
    total = sum(len(v) for v in stats.values())
    print(
        f"{args.seconds:g} s, {args.clients} clients x {args.concurrency} connections: "
        f"{total} requests, {total / args.seconds:,.0f} req/s"
    )
    print(f"{'kind':8} {'requests':>9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    for k in KINDS:
        xs = stats[k]
        print(
            f"{k:8} {len(xs):9} {len(xs) / args.seconds:8,.0f} {_pct(xs, 0.5):7.1f} "
            f"{_pct(xs, 0.99):7.1f} {_pct(xs, 1.0):7.1f}"
        )
    print(f"errors: {errors or 'none'}")
    lat = edits["edit_latency"]
    print(
        f"edits: {edits['edits']} boundary commits (PUT p50 {_pct(lat, 0.5):.0f} ms, "
        f"max {_pct(lat, 1.0):.0f} ms); probes: {edits['probes']}, torn: {len(edits['torn'])} "
        f"{edits['torn'][:5]}, stale after a 2xx: {len(edits['stale'])}"
        + (f" (up to {edits['lag'] * 1000:.0f} ms after the 2xx)" if edits["stale"] else "")
    )


if __name__ == "__main__":
    main()
