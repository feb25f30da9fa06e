"""Which serving processes are up, and which store version each one answers from.

A write's 2xx promises that every later answer reflects it, from every replica of `geo serve`
on any host that shares the store. Each serving process therefore registers in the store
(`geo.store.base.Store.serving_mark`: worker id, host, pid, the version its atlas holds, a
heartbeat time) and refreshes that row every `heartbeat_interval` seconds; a writer waits
(`wait_published`) until every *live* server answers from the version it committed.

A server is live while its heartbeat is younger than the TTL (``GEO_HEARTBEAT_TTL_SECONDS``,
by the store's clock). On a file store every process runs on this host, so a registered pid
that no longer exists is dead at once (and its row removed). A server past the TTL is not
waited for, and the writer is told (`Waited.stale`); its row is removed once it has been
silent for `FORGET_AFTER_TTLS` TTLs (and at least a minute).
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from dataclasses import dataclass, field

from geo.store.base import Server, Store

__all__ = [
    "FORGET_AFTER_TTLS",
    "Server",
    "Waited",
    "heartbeat_interval",
    "lagging",
    "mark",
    "new_worker_id",
    "servers",
    "unregister",
    "wait_published",
    "wait_served",
]

HOST = socket.gethostname()
FORGET_AFTER_TTLS = 20


def default_ttl() -> float:
    """``GEO_HEARTBEAT_TTL_SECONDS`` (geo.settings)."""
    from geo.settings import Settings

    return Settings().heartbeat_ttl_seconds


def heartbeat_interval(ttl: float) -> float:
    """How often a server refreshes its heartbeat: three beats per TTL."""
    return max(ttl / 3.0, 0.05)


def new_worker_id() -> str:
    """A worker id unique to this process: pid and a random suffix."""
    return f"{os.getpid()}:{secrets.token_hex(4)}"


def mark(store: Store, worker: str, version: int) -> None:
    """Record (or refresh, with a heartbeat) that ``worker`` answers from ``version``."""
    store.serving_mark(worker, version)


def unregister(store: Store, worker: str) -> None:
    """Forget ``worker`` (a server shutting down)."""
    store.serving_leave([worker])


def servers(store: Store) -> list[Server]:
    """Every registered server, alive or not."""
    return store.serving_list()


def live(store: Store, ttl: float | None = None) -> list[Server]:
    """Registered servers that still run and beat within ``ttl`` seconds."""
    ttl = default_ttl() if ttl is None else ttl
    return [s for s in servers(store) if not _pid_gone(store, s) and s.age <= ttl]


def _pid_gone(store: Store, server: Server) -> bool:
    """A server of a file store (this host) whose process no longer exists."""
    if not store.same_host or server.host not in ("", HOST):
        return False
    try:
        os.kill(server.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by another user
        return False
    return False


@dataclass(frozen=True)
class Waited:
    """After a write: the live servers still behind, and those not waited for (silent)."""

    behind: list[Server] = field(default_factory=list)
    stale: list[Server] = field(default_factory=list)

    def warnings(self, timeout: float) -> list[str]:
        """What to tell the writer about servers still behind after ``timeout`` seconds, and
        about servers that were not waited for (no heartbeat within the TTL)."""
        out = []
        if self.behind:
            out.append(
                f"{len(self.behind)} server process(es) still answered from an older version "
                f"{timeout:g} s after the commit (GEO_PUBLISH_TIMEOUT_SECONDS); they will catch up"
            )
        if self.stale:
            names = ", ".join(f"{s.worker}@{s.host}" for s in self.stale[:5])
            out.append(
                f"{len(self.stale)} replica(s) sent no heartbeat for longer than "
                f"GEO_HEARTBEAT_TTL_SECONDS and were not waited for ({names}): they may answer "
                "from an older version until they catch up or are stopped"
            )
        return out


def _check(store: Store, version: int, ttl: float) -> Waited:
    """Live servers behind ``version`` and silent ones behind it; dead rows removed."""
    rows = servers(store)
    forget = max(ttl * FORGET_AFTER_TTLS, 60.0)
    dead = [s for s in rows if _pid_gone(store, s) or s.age > forget]
    if dead:
        store.serving_leave([s.worker for s in dead])
    gone = {s.worker for s in dead}
    rest = [s for s in rows if s.worker not in gone and s.version < version]
    return Waited(behind=[s for s in rest if s.age <= ttl], stale=[s for s in rest if s.age > ttl])


def lagging(store: Store, version: int, ttl: float | None = None) -> list[Server]:
    """Live servers still answering from a version older than ``version``; dead rows removed."""
    return _check(store, version, default_ttl() if ttl is None else ttl).behind


def wait_published(
    store: Store, version: int, timeout: float, *, ttl: float | None = None, poll: float = 0.01
) -> Waited:
    """Block until every live server answers from ``version`` (or newer), at most ``timeout``
    seconds. A server whose heartbeat grows older than ``ttl`` meanwhile stops being waited for
    and is reported in `Waited.stale`."""
    ttl = default_ttl() if ttl is None else ttl
    deadline = time.monotonic() + timeout
    while True:
        waited = _check(store, version, ttl)
        if not waited.behind or time.monotonic() >= deadline:
            return waited
        time.sleep(poll)


def wait_served(
    store: Store, version: int, timeout: float, poll: float = 0.01, *, ttl: float | None = None
) -> list[Server]:
    """`wait_published`, the live servers still behind (empty: all caught up)."""
    return wait_published(store, version, timeout, ttl=ttl, poll=poll).behind
