"""Vector tiles: uncached generation time per tile, and cached tiles/s through the HTTP stack.

Over a `--scale`d sample district (generated, written, read back through the loader):

1. per zoom (default 12 14 16 18) the per-(layer, zoom) geometry is built once (simplified,
   thinned, indexed: the "warm-up"), then up to `--tiles` tiles that hold data are encoded
   with every layer and no tile cache: median and p95 ms per tile;
2. the app (`create_app` + the tiles router, one uvicorn worker, httptools) is served on
   127.0.0.1 from a forked process; a minimal asyncio HTTP/1.1 keep-alive client in this
   process (`--connections` connections) requests the same tiles again and again after one
   pass that fills the cache: tiles/s, and the same through `httpx.AsyncClient` for
   comparison (heavier client, so a lower bound).

    python benchmarks/bench_tiles.py --scale 10
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from geo import io as geo_io
from geo import sample, tiles
from geo.store.base import Snapshot


class MemoryStore:
    """A read-only store holding one snapshot (enough for the app)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def version(self) -> int:
        return self._snapshot.version

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def close(self) -> None:
        pass


def load(scale: int) -> Snapshot:
    with tempfile.TemporaryDirectory() as tmp:
        sample.write_district(Path(tmp), sample.make_district(scale=scale))
        loaded = geo_io.read_directory(Path(tmp))
    return Snapshot(version=1, tables=loaded.tables)


def make_app(snapshot: Snapshot):
    from geo.api import tiles as api_tiles
    from geo.api.app import create_app
    from geo.settings import Settings

    app = create_app(MemoryStore(snapshot), Settings(refresh_seconds=3600))  # type: ignore[arg-type]
    if not any(getattr(r, "path", "") == "/tiles/{z}/{x}/{y}.mvt" for r in app.routes):
        app.include_router(api_tiles.router)
    return app


def data_tiles(src: tiles.TileSource, z: int, limit: int, seed: int) -> list[tuple[int, int, int]]:
    """Up to ``limit`` tiles at zoom z that intersect the data (any layer), sampled evenly."""
    candidates = tiles.tiles_covering(src.bounds(), [z])
    boxes = np.array([src.clip_box(*t) for t in candidates])
    import shapely

    hit = np.zeros(len(candidates), dtype=bool)
    for name in tiles.LAYER_NAMES:
        tree = src.layer(name, z).tree
        idx, _ = tree.query(shapely.box(*boxes.T), predicate="intersects")
        hit[idx] = True
    chosen = [t for t, h in zip(candidates, hit, strict=True) if h]
    rng = np.random.default_rng(seed)
    if len(chosen) > limit:
        pick = np.sort(rng.choice(len(chosen), limit, replace=False))
        chosen = [chosen[i] for i in pick]
    return chosen


def serve(app, port: int) -> None:
    import uvicorn

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        http="httptools",
        workers=1,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def raw_client(port: int, paths: list[str], connections: int, seconds: float) -> tuple:
    """Keep-alive GETs on ``connections`` connections for ``seconds``: (done, statuses)."""
    done = 0
    statuses: dict[int, int] = {}
    stop = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = k
        while time.perf_counter() < stop:
            path = paths[i % len(paths)]
            i += connections
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
            statuses[status] = statuses.get(status, 0) + 1
            done += 1
        writer.close()

    await asyncio.gather(*(worker(k) for k in range(connections)))
    return done, statuses


async def httpx_client(port: int, paths: list[str], connections: int, seconds: float) -> int:
    import httpx

    done = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as c:

        async def worker(k: int) -> None:
            nonlocal done
            i = k
            while time.perf_counter() < stop:
                r = await c.get(paths[i % len(paths)])
                r.raise_for_status()
                i += connections
                done += 1

        await asyncio.gather(*(worker(k) for k in range(connections)))
    return done


def wait_for(port: int, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--zooms", type=int, nargs="+", default=[12, 14, 16, 18])
    parser.add_argument("--tiles", type=int, default=300, help="tiles per zoom at most")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    t = time.perf_counter()
    snapshot = load(args.scale)
    app = make_app(snapshot)
    atlas = app.state.atlas.current()
    counts = ", ".join(f"{len(atlas.tables[n])} {n}" for n in tiles.LAYER_NAMES)
    print(f"district ×{args.scale}: {counts} ({time.perf_counter() - t:.1f} s to make and load)")
    src = tiles.source_for(atlas)
    for name in tiles.LAYER_NAMES:
        src.attributes(name)

    rows = []
    paths: list[str] = []
    for z in args.zooms:
        t = time.perf_counter()
        chosen = data_tiles(src, z, args.tiles, args.seed)
        warm = time.perf_counter() - t
        times, sizes = [], []
        for zxy in chosen:
            t = time.perf_counter()
            data = src.tile(*zxy)
            times.append((time.perf_counter() - t) * 1000)
            sizes.append(len(data))
        ms = np.array(times)
        rows.append(
            (
                z,
                len(chosen),
                warm,
                statistics.median(ms),
                np.percentile(ms, 95),
                ms.max(),
                statistics.median(sizes) / 1024,
                max(sizes) / 1024,
            )
        )
        paths += [f"/tiles/{z}/{x}/{y}.mvt" for z, x, y in chosen]

    print("\nuncached generation, every layer in one tile (per-zoom geometry built first):")
    print(
        f"{'zoom':>4} {'tiles':>6} {'warm-up s':>9} {'median ms':>9} {'p95 ms':>7} "
        f"{'max ms':>7} {'median KiB':>10} {'max KiB':>8}"
    )
    for z, n, warm, med, p95, mx, kib, mkib in rows:
        print(
            f"{z:>4} {n:>6} {warm:>9.2f} {med:>9.2f} {p95:>7.2f} {mx:>7.2f} "
            f"{kib:>10.1f} {mkib:>8.1f}"
        )

    port = free_port()
    proc = multiprocessing.get_context("fork").Process(target=serve, args=(app, port), daemon=True)
    proc.start()
    try:
        wait_for(port)
        # one pass fills the server's tile cache (the forked server has the per-zoom layers)
        asyncio.run(_fill(port, paths))
        done, statuses = asyncio.run(raw_client(port, paths, args.connections, args.seconds))
        rate = done / args.seconds
        hx = asyncio.run(httpx_client(port, paths, args.connections, args.seconds))
        print(
            f"\ncached, HTTP: uvicorn (1 worker, httptools) on 127.0.0.1 in a forked process; "
            f"{len(paths)} distinct tiles of zooms {' '.join(map(str, args.zooms))}, "
            f"{args.connections} keep-alive connections, {args.seconds:g} s each"
        )
        print(f"  raw asyncio client : {rate:8.0f} tiles/s  (statuses {statuses})")
        print(f"  httpx.AsyncClient  : {hx / args.seconds:8.0f} tiles/s  (client-bound)")
    finally:
        proc.terminate()
        proc.join(5)


async def _fill(port: int, paths: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for path in paths:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                await reader.readexactly(int(line.split(b":")[1]))
    writer.close()


if __name__ == "__main__":
    main()
