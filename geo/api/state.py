"""The serving process's view of the store: the current atlas, swapped whole on new versions."""

from __future__ import annotations

import threading
import time

from geo.atlas import Atlas
from geo.store.base import Store


class AtlasHolder:
    """Holds the atlas of the latest committed store version.

    Readers take `current()` once per request and use that atlas throughout, so a request never
    mixes two versions. A newer version (committed by this or another process) is noticed at
    most ``refresh_seconds`` later; the new atlas is built aside and swapped in one assignment.
    """

    def __init__(self, store: Store, refresh_seconds: float = 1.0) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._atlas = Atlas(store.snapshot())
        self._checked = time.monotonic()

    def fresh(self) -> Atlas | None:
        """The atlas when no store check is due (no I/O, safe on the event loop), else None."""
        if time.monotonic() - self._checked < self.refresh_seconds:
            return self._atlas
        return None

    def current(self) -> Atlas:
        now = time.monotonic()
        if now - self._checked >= self.refresh_seconds:
            self._checked = now
            if self.store.version() != self._atlas.version:
                self.refresh()
        return self._atlas

    def refresh(self) -> Atlas:
        """Rebuild from the store now (after a commit by this process)."""
        with self._lock:
            snapshot = self.store.snapshot()
            if snapshot.version != self._atlas.version:
                self._atlas = Atlas(snapshot)
            return self._atlas
