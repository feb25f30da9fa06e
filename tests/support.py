"""What several test modules share: free ports, a real `geo serve` process, store versions."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from geo.store import open_store, serving


def free_port() -> int:
    """A TCP port on loopback nobody listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def store_version(db: str | Path) -> int:
    """The store's committed version."""
    store = open_store(db)
    try:
        return store.version()
    finally:
        store.close()


@contextlib.contextmanager
def geo_serve(
    db: str | Path,
    *args: str,
    servers: int = 1,
    log: IO[bytes] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 90,
) -> Iterator[str]:
    """A real `geo serve --db DB ARGS…` (its own process group) until ``servers`` processes are
    registered in the store; yields its base URL, then stops it (SIGTERM, else SIGKILL)."""
    port = free_port()
    out = log if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-c", "from geo.cli import main; main()", "serve", "--db", str(db),
         "--port", str(port), *args],
        stdout=out, stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
        env={**os.environ, **(env or {})}, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            time.sleep(0.2)
        with open_store(db) as store:
            while len(serving.servers(store)) < servers and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(serving.servers(store)) >= servers, "the server never registered"
        yield base
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """End a server started in its own session: SIGTERM to its group, SIGKILL after 20 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# -- the browser tests: the system Chromium, driven by Playwright ------------------------------
CHROMIUM = os.environ.get("GEO_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here (None: they can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install playwright)"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set GEO_CHROMIUM)"
    return None


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium; skips on a laptop without one, FAILS when ``CI=true``."""
    reason = chromium_missing()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser tests cannot run on CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()
