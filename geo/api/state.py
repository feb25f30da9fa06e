"""The serving process's view of the store: the current atlas, swapped whole on new versions.

Readers never wait for a rebuild: `AtlasHolder.current` hands out the atlas in place. A new
version's atlas is built beside it *on the event loop, a step of a few milliseconds at a time*
between requests (`Atlas.in_steps`, the tile cache's carry-over), readied for its first
requests (`ready_steps`: what a request would otherwise make on first use, on the event loop,
in front of every other request), then swapped in with one assignment. (A build in a second
thread would compete with the loop for the GIL and stall every request for as long as it
runs.) Read-after-write across processes and hosts: every
server registers in the store the version it answers from, with a heartbeat
(`geo.store.serving`), and a write's 2xx waits until every live server answers from the
committed version (`AtlasHolder.publish`); a server silent for longer than the heartbeat TTL
is not waited for, and the answer's warnings say so. A server learns of a new version from
the store (`Store.wait_for_change`: LISTEN/NOTIFY on PostGIS, with polling beside it; polling
on a GeoPackage file).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from geo import ready
from geo.atlas import Atlas
from geo.store import serving
from geo.store.base import Snapshot, Store

log = logging.getLogger("geo.api")

# called with (old, new) before new is served; may yield to spread its work over loop turns
SwapHook = Callable[[Atlas, Atlas], Iterator[None]]


def ready_steps(atlas: Atlas) -> Iterator[None]:
    """Make, a level per step, what an atlas otherwise makes on its first request: each level's
    ids and its cells' descriptions (``GET /locate`` answers with them). At ×10 that is 76 ms
    of CPU, which the first ``/locate`` after every edit used to spend on the event loop while
    every other request waited (bench_edits: about 200 ms after each edit's 2xx on the loaded
    development machine)."""
    for level in atlas.levels.values():
        level.ids_or_none  # noqa: B018 - made and kept by the cached property
        level.descriptions  # noqa: B018
        yield


@dataclass(frozen=True)
class Published:
    """The atlas a write answers from, and the servers that did not catch up in time."""

    atlas: Atlas
    behind: list[serving.Server]
    stale: list[serving.Server] = field(default_factory=list)  # silent: not waited for

    def warnings(self, timeout: float) -> list[str]:
        """What to tell the writer about servers behind or not waited for (`serving.Waited`)."""
        return serving.Waited(self.behind, self.stale).warnings(timeout)


class AtlasHolder:
    """Holds the atlas of the latest committed store version.

    Readers take `current()` once per request and use that atlas throughout, so a request never
    mixes two versions. With ``refresh_seconds`` > 0 and the watcher running (`start`, from the
    app's lifespan, on the server's event loop), the store is polled that often and a newer
    version is built in steps between requests and swapped in. With ``refresh_seconds`` = 0
    every `current()` checks the store first (strict read-after-write, for tests and tools).
    """

    def __init__(
        self,
        store: Store,
        refresh_seconds: float = 0.05,
        publish_timeout: float = 10.0,
        heartbeat_ttl: float = 15.0,
    ) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.publish_timeout = publish_timeout
        self.heartbeat_ttl = heartbeat_ttl
        self._beat = 0.0  # monotonic time of the last heartbeat
        self.worker = serving.new_worker_id()
        self._build = threading.Lock()  # for `check` without a watcher
        self._snapshot = store.snapshot()
        # the first atlas's index from the store's ready file when it has one (`geo.ready`)
        self._atlas = ready.atlas(self._snapshot, ready.location_of(store))
        for _ in ready_steps(self._atlas):
            pass
        self._loop: asyncio.AbstractEventLoop | None = None
        self._refreshing = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        self.on_swap: list[SwapHook] = []  # e.g. carry unchanged tiles over to the new version

    # -- readers

    def fresh(self) -> Atlas | None:
        """The atlas when no store check is needed first (no I/O, safe on the event loop)."""
        return self._atlas if self.refresh_seconds > 0 else None

    def current(self) -> Atlas:
        """The atlas to answer from (after a store check in strict mode)."""
        return self._atlas if self.refresh_seconds > 0 else self.check()

    # -- keeping up with the store

    def _latest(self) -> Snapshot | None:
        """The store's latest version when it is not the one served (store I/O: a database
        store reads over the network, so the event loop runs this in a thread)."""
        if self.store.version() == self._atlas.version:
            return None
        snapshot = self.store.snapshot(reuse=self._snapshot)  # reads changed tables only
        return None if snapshot.version == self._atlas.version else snapshot

    def _steps(self, snapshot: Snapshot | None) -> Iterator[None]:
        """Build ``snapshot`` beside the current atlas and swap it in, yielding between steps;
        nothing when there is no newer snapshot."""
        if snapshot is None or snapshot.version == self._atlas.version:
            return
        yield
        old, new = self._atlas, None
        for new in Atlas.in_steps(snapshot, previous=old):  # noqa: B007 - the last is the atlas
            yield
        assert isinstance(new, Atlas)
        yield from ready_steps(new)
        for hook in self.on_swap:
            yield from hook(old, new)
        self._snapshot, self._atlas = snapshot, new

    def check(self) -> Atlas:
        """Build and swap in the store's latest version now, in this thread."""
        with self._build:
            for _ in self._steps(self._latest()):
                pass
            return self._atlas

    async def refresh(self) -> Atlas:
        """Build and swap in the store's latest version on this event loop, a step per turn,
        and record it in the registry."""
        async with self._refreshing:  # the watcher and a writer's publish: one build
            before = self._atlas.version
            snapshot = await asyncio.to_thread(self._latest)
            for _ in self._steps(snapshot):
                await asyncio.sleep(0)  # let waiting requests run between steps
            if self._atlas.version != before:
                await self._mark()
            return self._atlas

    @property
    def heartbeat_age(self) -> float | None:
        """Seconds since this server last wrote its heartbeat (None: it keeps none, as
        without a watcher)."""
        return time.monotonic() - self._beat if self._beat else None

    async def _mark(self) -> None:
        """Register (or refresh) this server's version and heartbeat in the store."""
        self._beat = time.monotonic()
        await asyncio.to_thread(serving.mark, self.store, self.worker, self._atlas.version)

    def publish(self, version: int) -> Published:
        """After a commit of ``version`` by this process (called from a worker thread): swap it
        in here, then wait (at most ``publish_timeout`` s) until every live server answers
        from it."""
        loop = self._loop
        if loop is None:  # strict mode or no lifespan: this process is the only reader
            return Published(self.check(), [])
        try:
            atlas = asyncio.run_coroutine_threadsafe(self.refresh(), loop).result(
                self.publish_timeout
            )
        except FutureTimeout:
            atlas = self._atlas
        waited = serving.wait_published(
            self.store, version, self.publish_timeout, ttl=self.heartbeat_ttl
        )
        return Published(atlas, waited.behind, waited.stale)

    async def start(self) -> None:
        """Register this server in the store and watch for new versions (app startup)."""
        if self.refresh_seconds <= 0 or self._watcher is not None:
            return
        await asyncio.to_thread(serving.mark, self.store, self.worker, 0)  # writers wait for us
        await self.refresh()  # … and we catch up with any commit made before we registered
        await self._mark()
        self._loop = asyncio.get_running_loop()
        self._watcher = self._loop.create_task(self._watch())

    async def stop(self) -> None:
        """Stop watching and leave the registry (app shutdown)."""
        watcher, self._watcher, self._loop = self._watcher, None, None
        if watcher is None:
            return
        watcher.cancel()
        try:  # in this thread: at shutdown the loop's executor may be gone already
            serving.unregister(self.store, self.worker)
        except Exception:  # the store may be gone already; a dead pid is dropped by writers
            log.warning("could not leave the serving registry", exc_info=True)

    async def _watch(self) -> None:
        """Wait for a new version (a notification or the poll), build it; beat the heart."""
        every = serving.heartbeat_interval(self.heartbeat_ttl)
        while True:
            try:
                await asyncio.to_thread(self.store.wait_for_change, self.refresh_seconds)
                await self.refresh()
                if time.monotonic() - self._beat >= every:
                    await self._mark()
            except asyncio.CancelledError:
                raise
            except Exception:  # a locked or replaced file: try again at the next poll
                log.exception("atlas refresh failed; serving version %s", self._atlas.version)
                await asyncio.sleep(1.0)
