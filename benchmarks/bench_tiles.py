"""Vector tiles: uncached generation per zoom and layer against PostGIS ``ST_AsMVT``, bytes per
tile, the first tile of each layer after start, and cached tiles/s over HTTP.

On a GeoPackage store (``--db``, or the sample district at ``--scale`` generated with
``python -m geo.sample`` and loaded with ``geo load`` into ``--work``):

1. **uncached**, in this process: per layer and zoom (z12–z16), up to ``--tiles`` tiles that
   hold data for the layer are encoded by the atlas's tile source (what `geo serve` prepared
   when the version was built: attributes and per-zoom geometry; no tile cache), and, when
   ``GEO_BENCH_PG=postgresql://…`` is reachable, by PostGIS ``ST_AsMVT(ST_AsMVTGeom(…))`` for
   the same tiles with the same attributes (the layers copied into a database of their own,
   ``bench_tiles``, in Web Mercator with a GiST index: PostGIS's best case). Ours and the peer
   are interleaved in ``--rounds`` rounds (order alternating); each prints min/median/max ms
   per tile over the rounds, and the ratio ours ÷ PostGIS per round;
2. **bytes** per tile of each layer and zoom, raw, gzip and brotli, ours and PostGIS's;
3. **first tile after start**: a real ``geo serve --db …`` is started; once ``/health``
   answers, the time until it says the tiles are prepared (in the background, after start),
   then one request that is no tile (``/collections``: the HTTP stack's own first-request
   cost, apart), then the first tile of each layer (z12): ms each (over HTTP);
4. **cached**: every tile of step 1 is asked once (fills the server's cache), then a keep-alive
   asyncio client (``--connections``) asks them again and again for ``--seconds``: tiles/s.

    python benchmarks/bench_tiles.py --scale 10
    GEO_BENCH_PG=postgresql://geo:geo@127.0.0.1:5432/geo python benchmarks/bench_tiles.py \\
        --db /tmp/s10.gpkg
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import brotli
import numpy as np
import shapely

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))  # this checkout's geo, installed or not
_PATH = [str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in _PATH if p)}

from common import stop  # noqa: E402 - benchmarks/common.py, beside this script

from geo import tiles  # noqa: E402
from geo.atlas import Atlas, keep_out_of_collector  # noqa: E402
from geo.store import open_store  # noqa: E402
from geo.tiles import encoding_small  # noqa: E402

ZOOMS = (12, 13, 14, 15, 16)
PG_DB = "bench_tiles"


# -- data -------------------------------------------------------------------------------------
def make_store(scale: int, work: Path) -> Path:
    """The sample district ×``scale`` generated and loaded with ``geo load`` (kept in ``work``)."""
    db = work / f"district-x{scale}.gpkg"
    if db.exists():
        return db
    data = work / f"district-x{scale}"
    run = [sys.executable, "-m", "geo.sample", "-o", str(data), "--scale", str(scale)]
    subprocess.run(run, check=True, env=ENV)
    load = [sys.executable, "-m", "geo.cli", "load", str(data), "--db", str(db)]
    subprocess.run(load, check=True, env=ENV, stdout=subprocess.DEVNULL)
    return db


def data_tiles(src: tiles.TileSource, name: str, z: int, limit: int, seed: int) -> list:
    """Up to ``limit`` tiles at zoom z holding features of layer ``name``, sampled evenly."""
    candidates = tiles.tiles_covering(src.bounds([name]), [z])
    if not candidates:
        return []
    boxes = np.array([src.clip_box(*t) for t in candidates])
    idx, _ = src.layer(name, z).tree.query(shapely.box(*boxes.T), predicate="intersects")
    chosen = [candidates[i] for i in np.unique(idx)]
    if len(chosen) > limit:
        rng = np.random.default_rng(seed)
        chosen = [chosen[i] for i in np.sort(rng.choice(len(chosen), limit, replace=False))]
    return chosen


# -- PostGIS -------------------------------------------------------------------------------------
_PG_TYPES = {"String": "text", "Number": "double precision", "Boolean": "boolean"}


def pg_connect(url: str):
    """A connection to database ``bench_tiles`` beside ``url``'s (made afresh), or None."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {PG_DB}")
    except psycopg.Error as exc:
        print(f"PostGIS not reachable at GEO_BENCH_PG ({exc.__class__.__name__}): no peer")
        return None
    info = conninfo_to_dict(url) | {"dbname": PG_DB}
    conn = psycopg.connect(make_conninfo(**info), autocommit=True)
    conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    return conn


def pg_load(conn, src: tiles.TileSource, name: str) -> None:
    """Layer ``name`` into table ``name``: feature id, the tile attributes, Web Mercator geometry
    (as stored, not simplified), GiST index."""
    frame = src.attribute_frame(name)
    fields = src.fields(name)
    cols = ", ".join(f'"{k}" {_PG_TYPES[t]}' for k, t in fields.items())
    conn.execute(f'DROP TABLE IF EXISTS "{name}"')
    conn.execute(f'CREATE TABLE "{name}" (fid bigint, {cols}, geom geometry(Geometry, 3857))')
    wkb = shapely.to_wkb(shapely.set_srid(src.projected(name), 3857), hex=True, include_srid=True)
    keys = list(fields)
    names = ", ".join(f'"{k}"' for k in keys)
    with conn.cursor() as cur, cur.copy(f'COPY "{name}" (fid, {names}, geom) FROM STDIN') as copy:
        values = [frame[k].tolist() for k in keys]
        for i in range(len(frame)):
            copy.write_row([i + 1, *(_pg_value(v[i]) for v in values), wkb[i]])
    conn.execute(f'CREATE INDEX ON "{name}" USING gist (geom)')
    conn.execute(f'ANALYZE "{name}"')


def _pg_value(v):
    if v is None or (isinstance(v, float) and np.isnan(v)) or v == "":
        return None
    return v.item() if hasattr(v, "item") else v


def pg_query(src: tiles.TileSource, name: str) -> str:
    """The ``ST_AsMVT`` query of one tile of layer ``name`` (parameters z, x, y)."""
    cols = ", ".join(f'"{k}"' for k in src.fields(name))
    margin = tiles.BUFFER / tiles.EXTENT
    return (
        f"SELECT ST_AsMVT(q, '{name}', {tiles.EXTENT}, 'geom', 'fid') FROM ("
        f"SELECT fid, {cols}, ST_AsMVTGeom(geom, ST_TileEnvelope(%(z)s, %(x)s, %(y)s), "
        f'{tiles.EXTENT}, {tiles.BUFFER}, true) AS geom FROM "{name}" '
        f"WHERE geom && ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => {margin})) q"
    )


# -- uncached ----------------------------------------------------------------------------------
def _ours(src: tiles.TileSource, name: str, chosen: list) -> tuple[float, list[bytes]]:
    t = time.perf_counter()
    out = [src.layer_bytes(name, *zxy) for zxy in chosen]
    return (time.perf_counter() - t) * 1000 / len(chosen), out


def _theirs(conn, sql: str, chosen: list) -> tuple[float, list[bytes]]:
    t = time.perf_counter()
    out = []
    with conn.cursor() as cur:
        for z, x, y in chosen:
            cur.execute(sql, {"z": z, "x": x, "y": y}, prepare=True)
            out.append(bytes(cur.fetchone()[0] or b""))
    return (time.perf_counter() - t) * 1000 / len(chosen), out


def mmm(values: list[float]) -> str:
    """min/median/max."""
    return f"{min(values):.2f}/{statistics.median(values):.2f}/{max(values):.2f}"


def uncached(src, conn, chosen: dict, rounds: int) -> tuple[list, dict]:
    """Rows of (layer, zoom, tiles, ours ms, peer ms, ratios) and the tiles' bytes."""
    rows, made = [], {}
    for (name, z), tl in chosen.items():
        sql = pg_query(src, name) if conn is not None else None
        ours, theirs = [], []
        for r in range(rounds):
            order = (0, 1) if r % 2 == 0 else (1, 0)
            for who in order:
                if who == 0:
                    ms, data_ours = _ours(src, name, tl)
                    ours.append(ms)
                elif conn is not None:
                    ms, data_pg = _theirs(conn, sql, tl)
                    theirs.append(ms)
        made[(name, z)] = (data_ours, data_pg if conn is not None else None)
        ratios = [a / b for a, b in zip(ours, theirs, strict=True)] if theirs else []
        rows.append((name, z, len(tl), ours, theirs, ratios))
    return rows, made


def print_uncached(rows: list) -> None:
    print("\nuncached, ms per tile (min/median/max over rounds); ratio = ours ÷ PostGIS per round")
    print(f"{'layer':<12}{'z':>3}{'tiles':>6}  {'ours':>17}  {'PostGIS':>17}  {'ratio':>17}")
    for name, z, n, ours, theirs, ratios in rows:
        pg = mmm(theirs) if theirs else "-"
        ratio = mmm(ratios) if ratios else "-"
        print(f"{name:<12}{z:>3}{n:>6}  {mmm(ours):>17}  {pg:>17}  {ratio:>17}")


def print_bytes(made: dict) -> None:
    print("\nbytes per tile (mean over the tiles): raw / gzip / brotli; ratio = ours ÷ PostGIS")
    print(f"{'layer':<12}{'z':>3}  {'ours':>22}  {'PostGIS':>22}  {'ratio raw/gz/br':>16}")
    for (name, z), (ours, theirs) in made.items():
        a = _sizes(ours)
        b = _sizes(theirs) if theirs is not None else None
        bs = "/".join(f"{v:.0f}" for v in b) if b else "-"
        ratio = "/".join(f"{x / y:.2f}" for x, y in zip(a, b, strict=True)) if b else "-"
        print(f"{name:<12}{z:>3}  {'/'.join(f'{v:.0f}' for v in a):>22}  {bs:>22}  {ratio:>16}")


def _sizes(blobs: list[bytes]) -> tuple[float, float, float]:
    raw = np.mean([len(b) for b in blobs])
    gz = np.mean([len(gzip.compress(b, 6)) if b else 0 for b in blobs])
    br = np.mean([len(brotli.compress(b, quality=5)) if b else 0 for b in blobs])
    return float(raw), float(gz), float(br)


def check_same_features(made: dict) -> None:
    """Ours and PostGIS's tiles hold the same feature ids (a sanity check of the comparison)."""
    import mapbox_vector_tile

    bad = 0
    for (name, _z), (ours, theirs) in made.items():
        if theirs is None:
            return
        for a, b in zip(ours, theirs, strict=True):
            fa = {f["id"] for f in mapbox_vector_tile.decode(a).get(name, {}).get("features", [])}
            fb = {f["id"] for f in mapbox_vector_tile.decode(b).get(name, {}).get("features", [])}
            bad += fa != fb
    print(f"\ntiles whose feature ids differ between ours and PostGIS: {bad}")


# -- HTTP ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def geo_serve(db: Path):
    """A real ``geo serve --db DB`` (its own process group); yields (port, seconds to ready)."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "geo.cli", "serve", "--db", str(db), "--port", str(port)]
    t = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            if proc.poll() is not None:
                raise RuntimeError("geo serve exited")
            time.sleep(0.1)
        yield port, time.perf_counter() - t
    finally:
        stop(proc)


def tiles_prepared_after(port: int, timeout: float = 600) -> float:
    """Seconds until ``/health`` says the served version's tiles are prepared."""
    import httpx

    t = time.perf_counter()
    while not httpx.get(f"http://127.0.0.1:{port}/health").json()["tiles_prepared"]:
        if time.perf_counter() - t > timeout:
            raise RuntimeError("tiles not prepared")
        time.sleep(0.02)
    return time.perf_counter() - t


async def _get(reader, writer, path: str) -> int:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return int(head[9:12])


async def first_tiles(port: int, paths: list[str]) -> list[tuple[str, float, int]]:
    """Each path asked once, in order: (path, ms, status)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = []
    for path in paths:
        t = time.perf_counter()
        status = await _get(reader, writer, path)
        out.append((path, (time.perf_counter() - t) * 1000, status))
    writer.close()
    return out


async def hammer(port: int, paths: list[str], connections: int, seconds: float) -> tuple:
    """Keep-alive GETs on ``connections`` connections for ``seconds``: (done, statuses)."""
    done, statuses = 0, {}
    stop = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = k
        while time.perf_counter() < stop:
            status = await _get(reader, writer, paths[i % len(paths)])
            statuses[status] = statuses.get(status, 0) + 1
            i += connections
            done += 1
        writer.close()

    await asyncio.gather(*(worker(k) for k in range(connections)))
    return done, statuses


def over_http(db: Path, chosen: dict, args) -> None:
    """Steps 3 and 4 against a real ``geo serve``."""
    firsts = []
    for name in tiles.LAYER_NAMES:
        tl = chosen.get((name, 12)) or next((v for (n, _), v in chosen.items() if n == name), [])
        if tl:
            firsts.append(f"/tiles/{name}/{'/'.join(map(str, tl[0]))}.mvt")
    paths = [f"/tiles/{n}/{z}/{x}/{y}.mvt" for (n, _), tl in chosen.items() for z, x, y in tl]
    with geo_serve(db) as (port, ready):
        print(f"\ngeo serve --db {db.name}: /health 200 after {ready:.1f} s")
        prepared = tiles_prepared_after(port)
        print(f"tiles prepared in the background {prepared:.1f} s later (/health tiles_prepared)")
        print("then, over HTTP, one keep-alive connection: a first request that is no tile (the")
        print("HTTP stack's own first-request cost), then the first tile of each layer:")
        for path, ms, status in asyncio.run(first_tiles(port, ["/collections", *firsts])):
            print(f"  {path:<40} {ms:8.1f} ms  ({status})")
        asyncio.run(first_tiles(port, paths))  # fills the server's tile cache
        done, statuses = asyncio.run(hammer(port, paths, args.connections, args.seconds))
        print(
            f"cached, HTTP: {len(paths)} distinct tiles, {args.connections} keep-alive "
            f"connections, {args.seconds:g} s: {done / args.seconds:.0f} tiles/s "
            f"(statuses {statuses}; the client shares the machine)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="a GeoPackage store (default: make one)")
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench_tiles")
    parser.add_argument("--zooms", type=int, nargs="+", default=list(ZOOMS))
    parser.add_argument("--layers", default=",".join(tiles.LAYER_NAMES))
    parser.add_argument("--tiles", type=int, default=40, help="tiles per layer and zoom at most")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-http", action="store_true", help="skip steps 3 and 4")
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    db = args.db or make_store(args.scale, args.work)
    with open_store(str(db)) as store:
        atlas = Atlas(store.snapshot())
    src = tiles.source_for(atlas)
    encoding_small.load()  # the compiled loops, as `geo serve` loads them before preparing
    t = time.process_time()
    for _ in src.prepare_all():  # what a version build does (geo.api.tiles)
        pass
    keep_out_of_collector()  # as `geo serve` does: no full collection over the atlas mid-tile
    counts = ", ".join(f"{len(atlas.tables[n])} {n}" for n in tiles.LAYER_NAMES)
    print(f"{db.name}: {counts}; tile preparation {time.process_time() - t:.1f} s CPU")
    names = tiles.normalise_layers(args.layers)
    chosen = {
        (n, z): tl
        for n in names
        for z in args.zooms
        if (tl := data_tiles(src, n, z, args.tiles, args.seed))
    }
    url = os.environ.get("GEO_BENCH_PG")
    conn = pg_connect(url) if url else None
    if conn is not None:
        for n in names:
            pg_load(conn, src, n)
    elif not url:
        print("GEO_BENCH_PG not set: no PostGIS peer")
    rows, made = uncached(src, conn, chosen, args.rounds)
    print_uncached(rows)
    print_bytes(made)
    check_same_features(made)
    if not args.no_http:
        over_http(Path(db), chosen, args)


if __name__ == "__main__":
    main()
