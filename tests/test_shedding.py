"""Load shedding: a deadline for request headers (a real `geo serve`), and per-client and total
limits on heavy requests (429 with Retry-After, 503 past the queue), light requests untouched."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from support import free_port, stop

from geo import errors
from geo.api import errors as api_errors
from geo.api.shedding import Shedding
from geo.settings import Settings
from geo.store import open_store

POINT = (120.2032, 30.2090)
SERVED_ENV: dict[str, str] = {}  # more environment for the served process (none: defaults)


# ----------------------------------------------------------------- header deadline (real server)


@pytest.fixture()
def served(sample_db: str, tmp_path: Path):
    """A real `geo serve` on a copy of the sample store, with a 2 s header deadline (and the
    environment of ``served.env``)."""
    db = str(tmp_path / "served.gpkg")
    shutil.copy(sample_db, db)
    port = free_port()
    env = {**os.environ, "GEO_HEADER_TIMEOUT_SECONDS": "2", **SERVED_ENV}
    server = subprocess.Popen(
        [sys.executable, "-c", "from geo.cli import main; main()", "serve", "--db", db,
         "--port", str(port), "--no-access-log"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "geo serve did not start"
                time.sleep(0.2)
        yield port
    finally:
        stop(server)


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closes ``sock`` within ``seconds``, and what it sent before."""
    sock.settimeout(seconds)
    got = b""
    try:
        while chunk := sock.recv(4096):
            got += chunk
        return True, got
    except TimeoutError:
        return False, got
    except ConnectionResetError:
        return True, got


@pytest.mark.slow  # a real `geo serve`
def test_connections_that_never_finish_their_headers_are_closed(served: int) -> None:
    """500 connections each send part of a request line and stop (slowloris); one sends
    nothing, one dribbles a byte every 0.4 s. All are answered 408 and closed within the 2 s
    deadline (plus slack), and a normal request is answered meanwhile."""
    started = time.monotonic()
    held = []
    for i in range(500):
        s = socket.create_connection(("127.0.0.1", served))
        s.sendall(f"GET /locate?lon={i}".encode())
        held.append(s)
    silent = socket.create_connection(("127.0.0.1", served))
    dribbler = socket.create_connection(("127.0.0.1", served))
    r = httpx.get(f"http://127.0.0.1:{served}/locate", params={"lon": POINT[0], "lat": POINT[1]})
    assert r.status_code == 200 and r.json()["community"] is not None  # served meanwhile
    dribbled = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: "
    dribbler.settimeout(0.4)
    for byte in dribbled:  # a byte every 0.4 s: no idle gap, but headers never complete
        try:
            dribbler.sendall(bytes([byte]))
            if dribbler.recv(4096) == b"":
                break
        except TimeoutError:
            continue
        except OSError:
            break
    for s in [*held, silent, dribbler]:
        left = max(0.1, started + 2 + 8 - time.monotonic())
        closed, got = _closed_within(s, left)
        s.close()
        assert closed, "a connection with unfinished headers was still open after 10 s"
        assert got == b"" or got.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 12
    # the server still answers after shedding them
    assert httpx.get(f"http://127.0.0.1:{served}/health").status_code == 200


@pytest.mark.slow  # a real `geo serve`
def test_light_requests_stay_fast_while_eight_clients_send_100k_point_batches(served) -> None:
    """A real `geo serve`: 8 threads send anonymous 100,000-point POST /locate (honouring
    Retry-After) while GET /locate is asked 20 times: the excess batches get 429 and GET
    /locate keeps answering (median under 0.5 s; the open-loop comparison with the limits off
    is benchmarks/bench_shedding.py)."""
    import random
    import threading

    base = f"http://127.0.0.1:{served}"
    rng = random.Random(1)
    points = [[rng.uniform(120.14, 120.24), rng.uniform(30.17, 30.22)] for _ in range(100_000)]
    body = json.dumps({"points": points}).encode()
    statuses: list[int] = []
    stop = time.monotonic() + 12

    head = (
        f"POST /locate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()

    def heavy() -> None:  # raw sockets: the GIL stays free for the server's sake, not ours
        while time.monotonic() < stop:
            answer = b""
            try:
                with socket.create_connection(("127.0.0.1", served)) as s:
                    s.sendall(head + body)
                    while chunk := s.recv(1 << 20):
                        answer += chunk[:4096] if len(answer) < 4096 else b""
            except OSError:  # refused early (a 429) and reset mid-upload
                answer = answer or b"HTTP/1.1 429 \r\nretry-after: 1\r\n"
            status = int(answer[9:12])
            statuses.append(status)
            if status in (429, 503):
                time.sleep(float(answer.split(b"retry-after: ")[1].split(b"\r\n")[0]))

    threads = [threading.Thread(target=heavy) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(2)  # the batches are running
    light = []
    with httpx.Client(timeout=60) as c:
        for _ in range(20):
            t0 = time.perf_counter()
            r = c.get(f"{base}/locate", params={"lon": POINT[0], "lat": POINT[1]})
            light.append(time.perf_counter() - t0)
            assert r.status_code == 200
            time.sleep(0.2)
    for t in threads:
        t.join()
    light.sort()
    assert light[len(light) // 2] < 0.5, [round(x, 3) for x in light]
    assert 429 in statuses and 200 in statuses, statuses


# ------------------------------------------------------- heavy requests: the real app, rates


@pytest.fixture()
def limited(sample_db: str):
    """The app with a tight rate: 2 heavy requests, then one every 1,000 s, per client (twice
    that for a token's user)."""
    from geo.api.app import create_app

    settings = Settings(
        db=sample_db, max_batch_points=100_000, heavy_rate=0.001, heavy_burst=2,
        heavy_body_bytes=1024, heavy_user_factor=2,
    )  # fmt: skip
    with TestClient(create_app(open_store(sample_db), settings)) as c:
        yield c


def _batch(n: int) -> dict:
    return {"points": [list(POINT)] * n}


def test_a_client_over_its_heavy_rate_gets_429_with_retry_after(limited, issue_headers) -> None:
    db = limited.app.state.settings.db
    planner = issue_headers(db, "planner", "shed-planner")
    admin = issue_headers(db, "admin", "shed-admin")
    for _ in range(2):  # the burst
        assert limited.post("/locate", json=_batch(2000)).status_code == 200
    r = limited.post("/locate", json=_batch(2000))
    assert r.status_code == 429, r.text[:200]
    assert int(r.headers["retry-after"]) >= 1
    assert "GEO_HEAVY_RATE" in r.json()["detail"] and "fewer, larger" in r.json()["detail"]
    # light requests are not counted: a small batch and GET /locate still answer
    assert limited.post("/locate", json=_batch(3)).status_code == 200
    g = limited.get("/locate", params={"lon": POINT[0], "lat": POINT[1]})
    assert g.status_code == 200 and g.json()["community"] is not None
    # another client (a token's user) has its own bucket, twice as big; an admin has none
    for _ in range(4):
        assert limited.post("/locate", json=_batch(2000), headers=planner).status_code == 200
    assert limited.post("/locate", json=_batch(2000), headers=planner).status_code == 429
    for _ in range(4):
        assert limited.post("/locate", json=_batch(2000), headers=admin).status_code == 200
    # a bad token on a heavy request is the usual 401, not a new client
    bad = {"Authorization": "Bearer nope.nope"}
    assert limited.post("/locate", json=_batch(2000), headers=bad).status_code == 401


def test_the_default_limits_let_the_test_suite_and_a_batch_user_through(client) -> None:
    """Defaults: sequential heavy requests within the burst pass (no 429 in normal use)."""
    for _ in range(5):
        assert client.post("/locate", json=_batch(1000)).status_code == 200


# ------------------------------------------------- heavy requests: concurrency (a stub app)


def _stub(settings: Settings):
    """`Shedding` around an app whose heavy route blocks until released."""
    gate = asyncio.Event()
    running = []

    async def app(scope, receive, send):
        running.append(scope["path"])
        await gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return Shedding(app, settings), gate, running


def _run(coro):
    """Run ``coro`` on a fresh event loop in its own thread: a worker of the parallel suite may
    hold Playwright's running loop in this thread (the session's Chromium)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_a_client_over_its_heavy_concurrency_gets_429_light_requests_pass() -> None:
    settings = Settings(heavy_per_client=1, heavy_concurrency=2, heavy_rate=0)

    async def scenario():
        shed, gate, running = _stub(settings)

        def client(addr: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=shed, client=(addr, 1234))
            return httpx.AsyncClient(transport=transport, base_url="http://t")

        a, b = client("10.0.0.1"), client("10.0.0.2")
        first = asyncio.create_task(a.post("/locate", content=b"x" * 200_000))
        while not running:
            await asyncio.sleep(0.01)
        second = await a.post("/boundaries/build", json={})
        assert second.status_code == 429
        assert second.headers["retry-after"] == "1"
        assert "GEO_HEAVY_PER_CLIENT" in second.json()["detail"]
        other = asyncio.create_task(b.post("/communities/C01/grids/split", json={}))
        light = asyncio.create_task(a.get("/locate?lon=1&lat=2"))
        while len(running) < 3:
            await asyncio.sleep(0.01)
        gate.set()
        assert [t.status_code for t in await asyncio.gather(first, other, light)] == [200] * 3
        assert (await a.post("/boundaries/build", json={})).status_code == 200  # freed

    _run(scenario())


def test_heavy_requests_past_the_total_wait_in_turn_then_get_503() -> None:
    settings = Settings(heavy_concurrency=1, heavy_queue_seconds=0.3, heavy_rate=0)

    async def scenario():
        shed, gate, running = _stub(settings)
        transport = httpx.ASGITransport(app=shed, client=("10.0.0.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            first = asyncio.create_task(c.post("/boundaries/build", json={}))
            while not running:
                await asyncio.sleep(0.01)
            late = await c.post("/boundaries/build", json={})  # waits 0.3 s: no turn
            assert late.status_code == 503 and late.headers["retry-after"] == "5"
            assert "GEO_HEAVY_QUEUE_SECONDS" in late.json()["detail"]
            waiting = asyncio.create_task(c.post("/boundaries/build", json={}))
            await asyncio.sleep(0.1)
            assert len(running) == 1  # it waits for the turn
            gate.set()
            assert (await first).status_code == 200 and (await waiting).status_code == 200

    _run(scenario())


def test_too_many_requests_is_a_429_and_exit_1() -> None:
    assert errors.TooManyRequests.status == 429 and errors.TooManyRequests.exit_code == 1
    r = api_errors.response_for(errors.TooManyRequests("slow down"), {"Retry-After": "3"})
    assert r.status_code == 429 and r.headers["retry-after"] == "3"


def test_the_limits_are_settings(monkeypatch) -> None:
    monkeypatch.setenv("GEO_HEAVY_PER_CLIENT", "7")
    monkeypatch.setenv("GEO_HEAVY_RATE", "0.5")
    monkeypatch.setenv("GEO_HEADER_TIMEOUT_SECONDS", "3")
    s = Settings()
    assert (s.heavy_per_client, s.heavy_rate, s.header_timeout_seconds) == (7, 0.5, 3.0)


@pytest.mark.parametrize("raw", [b"\x80", b"", b"{", b"null", b'{"points": [[1]]}'])
def test_post_locate_parsed_off_the_loop_answers_bad_bodies_422(client, raw: bytes) -> None:
    """POST /locate parses its body in the route's thread: a bad one is still FastAPI's 422
    (located in ``body``), never a 500, and never echoes bytes that are not text."""
    r = client.post("/locate", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"][0] == "body"
