"""Which serving processes are up, and which store version each one answers from.

A write's 2xx promises that every later answer reflects it, from every worker of `geo serve`
(and any other server on the same store). Each serving process therefore records here the
version its atlas holds, and a writer waits (`wait_served`) until every live server has
swapped in the version it committed.

Table ``geo_serving`` (plain SQLite, next to the users and audit tables; GDAL/QGIS ignore it):
``worker`` (``pid:nonce``, primary key), ``pid``, ``version`` (0 while the first atlas is
built), ``seen`` (Unix time of the last change).

A server is *live* while its process exists (``kill(pid, 0)``): every process of a WAL-mode
SQLite store shares its memory map, so they all run on this host. A crashed worker stops
counting at once; the next writer removes its row.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from dataclasses import dataclass

DDL = (
    "CREATE TABLE IF NOT EXISTS geo_serving (worker TEXT NOT NULL PRIMARY KEY, "
    "pid INTEGER NOT NULL, version INTEGER NOT NULL, seen REAL NOT NULL)",
)


@dataclass(frozen=True)
class Server:
    """A serving process (worker id, pid) and the version it answered from when last seen."""

    worker: str
    pid: int
    version: int
    seen: float

    def alive(self) -> bool:
        """Whether the process still runs (on this machine)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, owned by another user
            return True
        return True


def new_worker_id() -> str:
    """A worker id unique to this process: pid and a random suffix."""
    return f"{os.getpid()}:{secrets.token_hex(4)}"


def ensure_schema(cur: sqlite3.Cursor) -> None:
    """Create the serving table if missing."""
    for statement in DDL:
        cur.execute(statement)


def mark(store, worker: str, version: int) -> None:
    """Record (or refresh) that ``worker`` answers from ``version``."""
    with store._write() as cur:
        cur.execute(
            "INSERT INTO geo_serving (worker, pid, version, seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (worker) DO UPDATE SET version = excluded.version, seen = excluded.seen",
            (worker, os.getpid(), int(version), time.time()),
        )


def unregister(store, worker: str) -> None:
    """Forget ``worker`` (a server shutting down)."""
    with store._write() as cur:
        cur.execute("DELETE FROM geo_serving WHERE worker = ?", (worker,))


def servers(store) -> list[Server]:
    """Every registered server, alive or not."""
    with store._read() as cur:
        rows = cur.execute("SELECT worker, pid, version, seen FROM geo_serving").fetchall()
    return [Server(w, int(p), int(v), float(s)) for w, p, v, s in rows]


def lagging(store, version: int) -> list[Server]:
    """Live servers still answering from a version older than ``version``; dead rows removed."""
    rows = servers(store)
    dead = [s.worker for s in rows if not s.alive()]
    if dead:
        with store._write() as cur:
            cur.executemany("DELETE FROM geo_serving WHERE worker = ?", [(w,) for w in dead])
    return [s for s in rows if s.worker not in dead and s.version < version]


def wait_served(store, version: int, timeout: float, poll: float = 0.01) -> list[Server]:
    """Block until every live server answers from ``version`` (or newer), at most ``timeout``
    seconds; the servers still behind (empty: all caught up)."""
    deadline = time.monotonic() + timeout
    while True:
        behind = lagging(store, version)
        if not behind or time.monotonic() >= deadline:
            return behind
        time.sleep(poll)
