"""Sustained mixed traffic against `geo serve --workers 2` while a planner edits a boundary.

Starts ``geo serve`` on 127.0.0.1 (a free port, a temporary store loaded from the sample
district), then for ``--seconds``:

* ``--clients`` processes send ``--rate`` requests/s between them, open loop: each request is
  due at a fixed time and its latency counts from then, so queueing in the server (or in the
  client's pool of ``--concurrency`` keep-alive connections) shows in p99 instead of slowing
  the load down. ``--rate 0`` runs closed loop instead (every connection sends its next
  request when the last is answered: the maximum throughput). The mix: 70 % ``GET /locate``
  (random enterprise positions), 20 % vector tiles (z 13-15 over the district) and 10 %
  ``GET /enterprises/{id}/owner``, over lean HTTP/1.1 keep-alive connections;
* a planner (bearer token) toggles Torch's (C01) western edge between two four-to texts every
  ``--edit-every`` seconds with ``PUT /communities/C01/boundary``;
* four probers ask ``GET /locate`` for a point in the strip that edge moves across, every
  20 ms each (on top of ``--rate``). A *torn* answer is an owner that belongs to neither
  state (e.g. none, or a third community); a *stale* answer is one started after an edit's
  2xx (and ended before the next edit was sent) that still shows the owner from before it.

Prints the offered rate beside the completed one (answers under 400 received within the
measured seconds, per second) and p50/p99 latency per kind, errors, torn and stale probe
answers, and the CPU seconds the server and the load generator used (they share the machine).
When the server completed less than 95 % of the offered rate, or its median latency is above
``--p50-limit-ms``, it says so plainly: THE SERVER COULD NOT KEEP UP (the latencies then
measure a queue, not the server).

With ``--rounds N`` (default 1) the whole load (warm-up and measured seconds, edits and probes)
runs N times on the same server, one round after the other (there is no peer to interleave
with); each round's headline and verdict are printed, then min / median / max over the rounds
of the completed requests/s, the p50 and the p99 (the table per kind pools every round).

    python benchmarks/load.py --seconds 20                 # 1,500 req/s offered
    python benchmarks/load.py --seconds 10 --rounds 3      # the spread over three runs
    python benchmarks/load.py --seconds 20 --rate 0        # closed loop: the most it serves
    python benchmarks/load.py --seconds 20 --refresh-seconds 0   # every request checks the store
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import KeepUp, Spread, group_cpu_seconds, percentile, start, stop, wait_healthy
from common import free_port as _free_port  # noqa: F401 - bench_shedding imports it

TORCH = "东至信诚路、南至南环路、西至东信大道、北至江南大道"
WEST = "东至信诚路、南至南环路、西至伟业路、北至江南大道"  # the edit: the western edge on 伟业路
KINDS = ("locate", "tile", "owner")
PROBERS, PROBE_GAP_S = 4, 0.02  # four probers, each asking every 20 ms (about 200 req/s)
DRAIN_S = 10.0  # after the measured seconds, how long answers still due are waited for


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


class FastConn(asyncio.Protocol):
    """A lean keep-alive HTTP/1.1 connection for the load: GET only, status and Content-Length
    parsed, the body skipped (the load generator shares the CPUs with the server)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None

    @classmethod
    async def open(cls, port: int) -> FastConn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(cls, "127.0.0.1", port)
        return conn

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        head = bytes(self.buf[:end]).lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 : head.find(b"\r\n", at) % (len(head) + 1)]) if at >= 0 else 0
        if len(self.buf) < end + 4 + length:
            return
        del self.buf[: end + 4 + length]
        if not self.waiter.done():  # a request cancelled at the end of a run has no waiter
            self.waiter.set_result(int(head[9:12]))

    async def get(self, path: str) -> int:
        if self.transport is None:
            raise ConnectionError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(f"GET {path} HTTP/1.1\r\nHost: load\r\n\r\n".encode())
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


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


async def _open_loop(one, plan: dict, rng, start: float, end: float, rate: float) -> int:
    """Start every request at its own scheduled time, ``rate`` per second, answered or not;
    afterwards wait `DRAIN_S` at most for the answers still due (a server far behind would
    keep the benchmark waiting for its whole queue), cancel the rest and return their count."""
    tasks: set[asyncio.Task] = set()
    sent = 0
    while (now := time.perf_counter()) < end:
        due = int((now - start) * rate) + 1
        for i in range(sent, due):  # every request due by now, each at its own time
            task = asyncio.create_task(one(*_paths(plan, rng), start + i / rate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        sent = due
        # until the next one is due; at least 1 ms (the event loop's timer resolution)
        await asyncio.sleep(max(0.001, start + sent / rate - time.perf_counter()))
    if not tasks:
        return 0
    _, pending = await asyncio.wait(tasks, timeout=DRAIN_S)
    for task in pending:
        task.cancel()
    return len(pending)


async def _closed_loop(one, plan: dict, rng, end: float, concurrency: int) -> None:
    """Each of ``concurrency`` connections sends its next request when answered."""

    async def loop() -> None:
        while time.perf_counter() < end:
            await one(*_paths(plan, rng), time.perf_counter())

    await asyncio.gather(*(loop() for _ in range(concurrency)))


async def _client_main(
    port: int, plan: dict, warmup: float, seconds: float, concurrency: int, rate: float, seed: int
) -> tuple[dict, dict, float, dict]:
    """Send requests for ``warmup`` + ``seconds``, recording those due after the warm-up: open
    loop at ``rate`` requests/s (latency counted from each request's scheduled start, so a slow
    server cannot hide its queue), or closed loop (``rate`` 0: each of ``concurrency``
    connections sends its next request on an answer). Also counts, per kind, the answers under
    400 *received* within the measured seconds (what the server completed, whenever due)."""
    stats: dict[str, list[float]] = {k: [] for k in KINDS}
    completed = dict.fromkeys(KINDS, 0)
    errors: dict[str, int] = {}
    rng = random.Random(seed)
    start = time.perf_counter()
    measured = start + warmup
    end = measured + seconds
    pool: asyncio.Queue[FastConn] = asyncio.Queue()
    for _ in range(concurrency):
        pool.put_nowait(await FastConn.open(port))

    async def one(kind: str, path: str, scheduled: float) -> None:
        conn = await pool.get()
        try:
            status = await conn.get(path)
        except Exception as exc:  # counted and reported; the connection is replaced
            key = f"{kind} {type(exc).__name__}"
            errors[key] = errors.get(key, 0) + 1
            conn.close()
            pool.put_nowait(await FastConn.open(port))
            return
        pool.put_nowait(conn)
        done = time.perf_counter()
        if measured <= done < end and status < 400:
            completed[kind] += 1
        if scheduled < measured:
            return
        stats[kind].append(done - scheduled)
        if status >= 400:
            key = f"{kind} {status}"
            errors[key] = errors.get(key, 0) + 1

    if rate > 0:
        unanswered = await _open_loop(one, plan, rng, start, end, rate)
        if unanswered:
            errors[f"unanswered {DRAIN_S:g} s after the end"] = unanswered
    else:
        await _closed_loop(one, plan, rng, end, concurrency)
    while not pool.empty():
        pool.get_nowait().close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return stats, errors, usage.ru_utime + usage.ru_stime, completed


def _client_process(args: tuple) -> tuple[dict, dict, float, dict]:
    try:
        import uvloop

        return uvloop.run(_client_main(*args))
    except ImportError:
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
    port: int,
    token: str,
    probe,
    owners: dict[str, str | None],
    warmup: float,
    seconds: float,
    every: float,
) -> dict:
    """Toggle C01 every ``every`` s; probe the moved strip from `PROBERS` connections.

    A probe is *stale* when it started after an edit's 2xx, ended before the next edit was
    sent, and still shows the owner from before that edit; *torn* when its owner belongs to
    neither boundary.
    """
    await asyncio.sleep(warmup)
    end = time.perf_counter() + seconds
    state = {"text": TORCH, "since": 0.0, "sent": None}
    out = {"edits": 0, "edit_latency": [], "probes": 0, "torn": [], "stale": [], "lag": 0.0}

    async def planner() -> None:
        conn = Conn("127.0.0.1", port)
        while every > 0 and time.perf_counter() + every < end:
            await asyncio.sleep(every)
            text = WEST if state["text"] == TORCH else TORCH
            state["sent"] = time.perf_counter()
            _, latency = await _edit(conn, token, text)
            state["text"], state["since"], state["sent"] = text, time.perf_counter(), None
            out["edits"] += 1
            out["edit_latency"].append(latency)
        conn.close()

    async def prober() -> None:
        conn = Conn("127.0.0.1", port)
        while time.perf_counter() < end:
            t0, text, since = time.perf_counter(), state["text"], state["since"]
            got = await _locate_owner(conn, probe)
            out["probes"] += 1
            await asyncio.sleep(PROBE_GAP_S)
            quiet = state["sent"] is None and state["text"] == text  # no newer edit meanwhile
            if got not in (owners[TORCH], owners[WEST]):
                out["torn"].append((round(t0, 3), got))
            elif since and quiet and got != owners[text]:
                out["stale"].append(round(t0 - since, 3))
                out["lag"] = max(out["lag"], time.perf_counter() - since)
        conn.close()

    await asyncio.gather(planner(), *(prober() for _ in range(PROBERS)))
    return out


# ------------------------------------------------------------------------------------ setup


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
    b = propose(four_to=WEST, roads=network, areas=tables["areas"]).polygon
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
    """The ``q`` quantile of ``xs`` (seconds) in ms (nearest rank; NaN for none)."""
    return percentile(xs, q) * 1000


def _sample_store(db: str) -> str:
    """Load the sample district into a new store at ``db``; a planner's token for it."""
    from geo.service.load import load_into
    from geo.settings import SAMPLE_DIR
    from geo.store import open_store, users

    load_into(db, SAMPLE_DIR)
    store = open_store(db)
    try:
        return users.add_user(store, "load-planner", "planner")
    finally:
        store.close()


def _options(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20, help="measured seconds")
    ap.add_argument(
        "--warmup", type=float, default=10, help="seconds of the same load first, not measured"
    )
    ap.add_argument("--rounds", type=int, default=1, help="runs of the whole load, in turn")
    ap.add_argument("--workers", type=int, default=2, help="geo serve worker processes")
    ap.add_argument("--clients", type=int, default=2, help="load-generating processes")
    ap.add_argument("--concurrency", type=int, default=32, help="connections per client")
    ap.add_argument(
        "--rate", type=float, default=1500, help="requests/s offered, all clients (0: closed loop)"
    )
    ap.add_argument(
        "--edit-every", type=float, default=3.0, help="seconds between edits (0: no edits)"
    )
    ap.add_argument("--refresh-seconds", type=float, default=None, help="GEO_REFRESH_SECONDS")
    ap.add_argument(
        "--p50-limit-ms",
        type=float,
        default=KeepUp.p50_limit_ms,
        help="a median latency above this means the server did not keep up",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--log", type=Path, help="keep the server's log (stderr) here")
    return ap.parse_args(argv)


def _round(pool, port: int, plan: dict, token: str, probe, owners, args, r: int) -> tuple:
    """One run of the load: the clients' results and the planner's and probers' figures; the
    boundary is left as it started (Torch)."""
    jobs = pool.map_async(
        _client_process,
        [
            (port, plan, args.warmup, args.seconds, args.concurrency, args.rate / args.clients,
             args.seed + 1000 * r + i)
            for i in range(args.clients)
        ],
    )  # fmt: skip
    edits = asyncio.run(
        _planner_and_prober(port, token, probe, owners, args.warmup, args.seconds, args.edit_every)
    )
    results = jobs.get(timeout=args.seconds * 3 + 60)
    if edits["edits"] % 2:  # back to Torch, so the next round's planner starts from it
        asyncio.run(_back_to_torch(port, token, probe, owners[TORCH]))
    return results, edits


async def _back_to_torch(port: int, token: str, probe, owner: str | None) -> None:
    conn = Conn("127.0.0.1", port)
    await _edit(conn, token, TORCH)
    conn.close()
    await _settle(port, probe, owner)


def main(argv: list[str] | None = None) -> None:
    """Load the store, start the server, run the rounds, print the report."""
    args = _options(argv)
    tmp = Path(tempfile.mkdtemp(prefix="geo-load-"))
    db = str(tmp / "store.gpkg")
    token = _sample_store(db)
    plan, probe = _targets(db, args.seed)
    env = {}
    if args.refresh_seconds is not None:
        env["GEO_REFRESH_SECONDS"] = str(args.refresh_seconds)
    log = (tmp / "serve.log").open("wb")
    server = start(db, "--workers", str(args.workers), env=env, log=log)
    port = server.port
    try:
        wait_healthy(server)
        owners = asyncio.run(_owners(port, token, probe))
        print(
            f"geo serve --workers {args.workers} on 127.0.0.1:{port}; probe {probe}: "
            f"owner {owners[TORCH]} (Torch west to 东信大道) / {owners[WEST]} (west to 伟业路)"
        )
        with mp.get_context("spawn").Pool(args.clients) as pool:
            rounds = [
                _round(pool, port, plan, token, probe, owners, args, r) for r in range(args.rounds)
            ]
        server_cpu = group_cpu_seconds(server.pid)
    finally:
        stop(server.proc)
        log.close()
    _report(args, rounds, server_cpu)
    if args.log:
        shutil.copy(tmp / "serve.log", args.log)
    shutil.rmtree(tmp, ignore_errors=True)


async def _wait_up(port: int, server) -> None:
    """Wait until the server on ``port`` (a Popen) answers /health (bench_shedding uses it)."""
    from common import Server

    await asyncio.to_thread(wait_healthy, Server(server, port))


async def _owners(port: int, token: str, probe) -> dict[str, str | None]:
    """The probe's owner under each four-to text (every worker agreeing), ending on Torch."""
    conn = Conn("127.0.0.1", port)
    first = await _locate_owner(conn, probe)
    await _edit(conn, token, WEST)
    await asyncio.sleep(2.5)
    second = await _locate_owner(conn, probe)
    await _settle(port, probe, second)
    await _edit(conn, token, TORCH)
    await _settle(port, probe, first)
    conn.close()
    if first == second:
        raise SystemExit(f"the probe {probe} does not change owner ({first}); pick another")
    return {TORCH: first, WEST: second}


def merge(results: list[tuple]) -> tuple[dict, dict, float, dict]:
    """The clients' results as one: latencies per kind, errors, CPU seconds, completed per
    kind."""
    stats = {k: [x for r in results for x in r[0][k]] for k in KINDS}
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r[1].items():
            errors[k] = errors.get(k, 0) + v
    completed = {k: sum(r[3][k] for r in results) for k in KINDS}
    return stats, errors, sum(r[2] for r in results), completed


def throughput(
    stats: dict, completed: dict, seconds: float, rate: float, keep_up: KeepUp
) -> tuple[str, str | None]:
    """The headline (offered and completed requests/s, median latency) and, for an open loop,
    the keep-up verdict (None: the server kept up)."""
    done = sum(completed.values()) / seconds
    p50 = _pct([x for k in KINDS for x in stats[k]], 0.5)
    median = "p50 n/a (no request due then was answered)" if p50 != p50 else f"p50 {p50:.1f} ms"
    if rate <= 0:
        return f"closed loop: {done:,.0f} req/s completed, {median}", None
    line = f"{rate:,.0f} req/s offered, {done:,.0f} req/s completed ({done / rate:.0%}), {median}"
    return line, keep_up.verdict(rate, done, p50)


def merge_edits(edits: list[dict]) -> dict:
    """The planner's and probers' figures of several rounds as one."""
    return {
        "edits": sum(e["edits"] for e in edits),
        "edit_latency": [x for e in edits for x in e["edit_latency"]],
        "probes": sum(e["probes"] for e in edits),
        "torn": [x for e in edits for x in e["torn"]],
        "stale": [x for e in edits for x in e["stale"]],
        "lag": max(e["lag"] for e in edits),
    }


def spreads(args, rounds: list[tuple]) -> list[str]:
    """Each round's headline and verdict, then (several rounds) min / median / max over the
    rounds of the completed requests/s, the p50 and the p99."""
    keep_up = KeepUp(p50_limit_ms=args.p50_limit_ms)
    lines, done, p50, p99, missed = [], [], [], [], 0
    for r, (results, _) in enumerate(rounds):
        stats, _, _, completed = merge(results)
        line, verdict = throughput(stats, completed, args.seconds, args.rate, keep_up)
        kept = "" if args.rate <= 0 else f"; {verdict or 'the server kept up'}"
        missed += verdict is not None
        lines.append(f"round {r + 1}: {line}{kept}")
        every = [x for k in KINDS for x in stats[k]]
        done.append(sum(completed.values()) / args.seconds)
        p50.append(_pct(every, 0.5))
        p99.append(_pct(every, 0.99))
    if len(rounds) > 1:
        if missed:
            lines.append(f"THE SERVER COULD NOT KEEP UP in {missed} of {len(rounds)} rounds.")
        elif args.rate > 0:
            lines.append(f"the server kept up with the offered rate in all {len(rounds)} rounds")
        lines.append(f"over {len(rounds)} rounds (one after the other, same server):")
        lines.append(Spread.of(done).line("completed req/s", ",.0f"))
        lines.append(Spread.of(p50).line("p50 ms (every kind)", ",.1f"))
        lines.append(Spread.of(p99).line("p99 ms (every kind)", ",.1f"))
    return lines


def _report(args, rounds: list[tuple], server_cpu: float) -> None:
    results = [r for got, _ in rounds for r in got]
    edits = merge_edits([e for _, e in rounds])
    stats, errors, client_cpu, completed = merge(results)
    seconds = args.seconds * len(rounds)
    line, verdict = throughput(
        stats, completed, seconds, args.rate, KeepUp(p50_limit_ms=args.p50_limit_ms)
    )
    print(
        f"{args.seconds:g} s after {args.warmup:g} s of warm-up"
        + (f" (x {len(rounds)} rounds, pooled)" if len(rounds) > 1 else "")
        + f", {args.clients} clients x {args.concurrency} connections: {line}"
    )
    if len(rounds) > 1:  # the verdict per round, never on the pooled figures
        print("\n".join(spreads(args, rounds)))
    elif verdict:
        print(verdict)
    elif args.rate > 0:
        print("the server kept up with the offered rate")
    print(
        f"CPU seconds: server {server_cpu:.1f}, load clients {client_cpu:.1f} "
        f"({os.cpu_count()} CPUs)"
    )
    print(f"{'kind':8} {'due':>9} {'done/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    for k in KINDS:
        xs = stats[k]
        print(
            f"{k:8} {len(xs):9} {completed[k] / seconds:8,.0f} {_pct(xs, 0.5):7.1f} "
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
