"""Stateless replicas: `geo serve` processes that share nothing but a PostGIS database.

Two replicas start from two empty temporary directories on different ports. After every
write's 2xx through one, the other answers from the new version at once (/locate, a tile, the
community); a replica killed with SIGKILL is not waited for once its heartbeat is older than the
TTL, and the write says so. Skips without PostGIS (fails when ``CI=true``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import mercantile
import pytest
from pg_support import fresh_database
from support import free_port, stop

from geo.service.load import load_into
from geo.settings import SAMPLE_DIR
from geo.store import open_store, serving, users

TORCH = "东至信诚路、南至南环路、西至东信大道、北至江南大道"
WEST = "东至信诚路、南至南环路、西至伟业路、北至江南大道"  # the western edge on 伟业路
PROBE = (120.14966, 30.18376)  # in the strip C01's western edge moves across
TTL = 3.0


@pytest.fixture(scope="module")
def database() -> Iterator[tuple[str, str]]:
    """A fresh PostGIS database holding the sample district; its URL and a planner token."""
    with fresh_database() as url:
        load_into(url, SAMPLE_DIR)
        with open_store(url) as store:
            token = users.add_user(store, "replica-planner", "planner")
        yield url, token


@contextlib.contextmanager
def replica(url: str, workdir: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """`geo serve --db URL` run from ``workdir`` (an empty directory), until it answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "GEO_DB"}
    env.update(GEO_HEARTBEAT_TTL_SECONDS=str(TTL), GEO_PUBLISH_TIMEOUT_SECONDS="20")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from geo.cli import main; main()", "serve", "--db", url,
         "--port", str(port), "--no-access-log"],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the replica exited"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            time.sleep(0.2)
        yield base, proc
    finally:
        stop(proc)


def _registered(url: str, count: int) -> None:
    with open_store(url) as store:
        deadline = time.monotonic() + 30
        while len(serving.servers(store)) < count:
            assert time.monotonic() < deadline, "the replicas never registered"
            time.sleep(0.1)


def _put(base: str, token: str, text: str) -> httpx.Response:
    auth = {"Authorization": f"Bearer {token}"}
    etag = httpx.get(f"{base}/communities/C01", headers=auth).headers["etag"]
    return httpx.put(
        f"{base}/communities/C01/boundary",
        json={"four_to": text, "reason": "replicas"},
        headers={**auth, "If-Match": etag},
        timeout=60,
    )


def _owner(base: str) -> str | None:
    community = httpx.get(f"{base}/locate", params={"lon": PROBE[0], "lat": PROBE[1]}).json()
    return community["community"]["id"] if community["community"] else None


def test_two_replicas_agree_after_every_write(database, tmp_path: Path) -> None:
    url, token = database
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    tile = mercantile.tile(*PROBE, 16)
    tile_path = f"/tiles/communities/{tile.z}/{tile.x}/{tile.y}.mvt"
    with replica(url, tmp_path / "a") as (a, _), replica(url, tmp_path / "b") as (b, _):
        _registered(url, 2)
        owners: dict[str, str | None] = {}
        for i, text in enumerate((WEST, TORCH, WEST, TORCH)):
            writer, reader = (a, b) if i % 2 == 0 else (b, a)
            r = _put(writer, token, text)
            assert r.status_code == 200, r.text
            assert r.json()["warnings"] == [] or not any(
                "replica" in w or "older version" in w for w in r.json()["warnings"]
            ), r.json()["warnings"]
            version = httpx.get(f"{writer}/health").json()["data_version"]
            # immediately after the 2xx, the other replica answers from the new version
            health = httpx.get(f"{reader}/health").json()
            assert health["data_version"] == version
            assert health["worker"] != httpx.get(f"{writer}/health").json()["worker"]
            got = httpx.get(f"{reader}/communities/C01").json()
            assert got["properties"]["four_to"] == text
            assert got == httpx.get(f"{writer}/communities/C01").json()
            assert _owner(reader) == _owner(writer)
            assert (
                httpx.get(f"{reader}{tile_path}").content
                == httpx.get(f"{writer}{tile_path}").content
            )
            assert owners.setdefault(text, _owner(reader)) == _owner(reader)
        assert owners[WEST] != owners[TORCH]  # the edits really move the probe's owner
        assert not list(tmp_path.glob("*/*"))  # nothing written beside either replica


def test_a_killed_replica_is_not_waited_for_after_the_ttl(database, tmp_path: Path) -> None:
    url, token = database
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with replica(url, tmp_path / "a") as (a, _), replica(url, tmp_path / "b") as (_, victim):
        _registered(url, 2)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        started = time.monotonic()
        r = _put(a, token, WEST)
        took = time.monotonic() - started
        assert r.status_code == 200, r.text
        warnings = r.json()["warnings"]
        assert any("were not waited for" in w for w in warnings), warnings
        assert took < 20, took  # not the publish timeout (20 s): the TTL (3 s) ended the wait
        r = _put(a, token, TORCH)  # the next write warns again, and does not wait either
        assert r.status_code == 200 and any("not waited for" in w for w in r.json()["warnings"])
