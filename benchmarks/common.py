"""What the benchmarks share: a real `geo serve` started and stopped, and the arithmetic of the
figures they print (interleaved rounds; min/median/max of each side and of each ratio; whether
a server kept up with the load it was offered).

    with serve(db, "--workers", "2") as server:   # waits for GET /health = 200
        ... server.port, server.base, server.pid ...
    # stopped: SIGTERM to its process group, SIGKILL after 20 s
"""

from __future__ import annotations

import contextlib
import http.client
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# ------------------------------------------------------------------------------- the server


def free_port() -> int:
    """A TCP port on loopback nobody listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running `geo serve` in its own process group."""

    proc: subprocess.Popen
    port: int
    host: str = "127.0.0.1"

    @property
    def base(self) -> str:
        """The server's base URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        """The server's pid (also its process group id)."""
        return self.proc.pid


def health(port: int, host: str = "127.0.0.1") -> int | None:
    """The status of ``GET /health`` (None: nobody answered)."""
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def wait_healthy(server: Server, timeout: float = 120) -> float:
    """Wait until ``GET /health`` answers 200; the seconds it took. SystemExit when the server
    exits or does not come up in time."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if server.proc.poll() is not None:
            raise SystemExit(f"geo serve exited with {server.proc.returncode}")
        if health(server.port, server.host) == 200:
            return time.monotonic() - t0
        time.sleep(0.1)
    stop(server.proc)
    raise SystemExit(f"geo serve did not answer /health within {timeout:g} s")


def start(
    db: str | Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    log: IO[bytes] | None = None,
) -> Server:
    """Start ``geo serve --db DB --host 127.0.0.1 --port <free> ARGS…`` (its own session, so
    `stop` ends its workers too); not waited for (`wait_healthy`)."""
    port = free_port()
    cmd = [sys.executable, "-c", "from geo.cli import main; main()", "serve", "--db", str(db),
           "--host", "127.0.0.1", "--port", str(port), *args]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, "GEO_DB": str(db), **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=log if log is not None else subprocess.DEVNULL,
        start_new_session=True,
    )
    return Server(proc, port)


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """End a server started in its own session: SIGTERM to its group, SIGKILL after
    ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def serve(
    db: str | Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    log: IO[bytes] | None = None,
    timeout: float = 120,
) -> Iterator[Server]:
    """A `geo serve` on ``db`` answering ``/health``, stopped on leaving the block."""
    server = start(db, *args, env=env, log=log)
    try:
        wait_healthy(server, timeout)
        yield server
    finally:
        stop(server.proc)


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes in a process group (Linux /proc)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state ppid pgrp ... utime stime
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def group_rss_mb(pgid: int) -> float:
    """Resident memory (MB) of the live processes in a process group (Linux /proc)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            status = (stat.parent / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])  # kB
    return total / 1024


# ------------------------------------------------------------------------------ the figures


@dataclass(frozen=True)
class Spread:
    """The minimum, median and maximum of some figures."""

    min: float
    median: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """The spread of ``values`` (at least one)."""
        if not values:
            raise ValueError("no figures to summarise")
        return cls(min(values), statistics.median(values), max(values))

    def line(self, label: str, fmt: str = ",.1f", width: int = 30) -> str:
        """``label  min …  median …  max …``, each number in ``fmt``."""
        return (
            f"  {label:{width}} min {self.min:>12{fmt}}  median {self.median:>12{fmt}}"
            f"  max {self.max:>12{fmt}}"
        )


def interleave(runs: Mapping[str, Callable[[], object]], count: int) -> dict[str, list[float]]:
    """Run each of ``runs`` once per round for ``count`` rounds; the seconds each took, per
    round. The order rotates from round to round (with two runs: alternates), so load on the
    machine and any warm cache hit every side alike."""
    names = list(runs)
    took: dict[str, list[float]] = {name: [] for name in names}
    for k in range(count):
        turn = k % len(names)
        for name in names[turn:] + names[:turn]:
            t = time.perf_counter()
            runs[name]()
            took[name].append(time.perf_counter() - t)
    return took


def ratios(took: Mapping[str, Sequence[float]], base: str) -> dict[str, list[float]]:
    """Per round, each other side's time divided by ``base``'s (above 1: ``base`` is faster)."""
    return {
        name: [t / b for t, b in zip(times, took[base], strict=True)]
        for name, times in took.items()
        if name != base
    }


def rates(took: Sequence[float], items: int) -> list[float]:
    """Items per second in each round."""
    return [items / t for t in took]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 … 1) of ``values``, nearest rank (the value at or above it); NaN
    for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass(frozen=True)
class KeepUp:
    """Whether a server kept up with an open-loop load: it must complete at least ``share`` of
    the offered requests/s, with a median latency at most ``p50_limit_ms``."""

    share: float = 0.95
    p50_limit_ms: float = 250.0

    def verdict(self, offered: float, completed: float, p50_ms: float) -> str | None:
        """None when the server kept up; otherwise a plain sentence why not."""
        why = []
        if completed < self.share * offered:
            why.append(
                f"it completed {completed:,.0f} requests/s of the {offered:,.0f} offered "
                f"({completed / offered:.0%}, below {self.share:.0%})"
            )
        if p50_ms > self.p50_limit_ms:
            why.append(
                f"median latency {p50_ms:,.0f} ms is above {self.p50_limit_ms:,.0f} ms "
                "(requests queued)"
            )
        if not why:
            return None
        return "THE SERVER COULD NOT KEEP UP: " + "; ".join(why) + "."
