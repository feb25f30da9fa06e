"""The serving process's view of the store: the current atlas, swapped whole on new versions.

Readers never wait for a rebuild: `AtlasHolder.current` hands out the atlas in place, and a new
version's atlas is built aside (by the watcher thread, or by the writer after its own commit)
and swapped in with one assignment. Read-after-write across processes: every server records in
the store the version it answers from (`geo.store.serving`), and a write's 2xx waits until every
live server answers from the committed version (`AtlasHolder.publish`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from geo.atlas import Atlas
from geo.store import serving
from geo.store.base import Store

log = logging.getLogger("geo.api")


@dataclass(frozen=True)
class Published:
    """The atlas a write answers from, and the servers that did not catch up in time."""

    atlas: Atlas
    behind: list[serving.Server]

    def warnings(self, timeout: float) -> list[str]:
        if not self.behind:
            return []
        return [
            f"{len(self.behind)} server process(es) still answered from an older version "
            f"{timeout:g} s after the commit (GEO_PUBLISH_TIMEOUT_SECONDS); they will catch up"
        ]


class AtlasHolder:
    """Holds the atlas of the latest committed store version.

    Readers take `current()` once per request and use that atlas throughout, so a request never
    mixes two versions. With ``refresh_seconds`` > 0 and the watcher running (`start`, from the
    app's lifespan), a background thread polls the store that often, builds a newer version's
    atlas aside and swaps it in; requests never wait for it. With ``refresh_seconds`` = 0 every
    `current()` checks the store first (strict read-after-write, for tests and tools).
    """

    def __init__(
        self, store: Store, refresh_seconds: float = 0.05, publish_timeout: float = 10.0
    ) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.publish_timeout = publish_timeout
        self.worker = serving.new_worker_id()
        self._build = threading.Lock()
        self._snapshot = store.snapshot()
        self._atlas = Atlas(self._snapshot)
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        # called with (old, new) atlas in the building thread, just before new is served
        self.on_swap: list[Callable[[Atlas, Atlas], None]] = []

    # -- readers

    def fresh(self) -> Atlas | None:
        """The atlas when no store check is needed first (no I/O, safe on the event loop)."""
        return self._atlas if self.refresh_seconds > 0 else None

    def current(self) -> Atlas:
        """The atlas to answer from (after a store check in strict mode)."""
        return self._atlas if self.refresh_seconds > 0 else self.check()

    # -- keeping up with the store

    def check(self) -> Atlas:
        """Build and swap in the store's latest version if it is not the one held."""
        if self.store.version() == self._atlas.version:
            return self._atlas
        with self._build:
            snapshot = self.store.snapshot(reuse=self._snapshot)  # reads changed tables only
            if snapshot.version != self._atlas.version:  # newer, or older after a restore
                old, new = self._atlas, Atlas(snapshot, previous=self._atlas)
                for hook in self.on_swap:  # e.g. carry unchanged tiles over to the new version
                    hook(old, new)
                self._snapshot, self._atlas = snapshot, new
                if self._watcher is not None:
                    serving.mark(self.store, self.worker, snapshot.version)
            return self._atlas

    def publish(self, version: int) -> Published:
        """After a commit of ``version`` by this process: swap it in here, then wait (at most
        ``publish_timeout`` s) until every live server answers from it."""
        atlas = self.check()
        if self._watcher is None:  # strict mode or no lifespan: this process is the only reader
            return Published(atlas, [])
        return Published(atlas, serving.wait_served(self.store, version, self.publish_timeout))

    def start(self) -> None:
        """Register this server in the store and watch for new versions (app startup)."""
        if self.refresh_seconds <= 0 or self._watcher is not None:
            return
        serving.mark(self.store, self.worker, 0)  # writers wait for us from now on …
        self._watcher = threading.Thread(target=self._watch, name="geo-atlas-watch", daemon=True)
        self.check()  # … and we catch up with any commit made before we registered
        serving.mark(self.store, self.worker, self._atlas.version)
        self._watcher.start()

    def stop(self) -> None:
        """Stop watching and leave the registry (app shutdown)."""
        watcher, self._watcher = self._watcher, None
        if watcher is None:
            return
        self._stop.set()
        watcher.join(timeout=30)
        try:
            serving.unregister(self.store, self.worker)
        except Exception:  # the store may be gone already; a dead pid is dropped by writers
            log.warning("could not leave the serving registry", exc_info=True)

    def _watch(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.check()
            except Exception:  # a locked or replaced file: try again at the next poll
                log.exception("atlas refresh failed; serving version %s", self._atlas.version)
                time.sleep(1.0)
