"""Load shedding: heavy requests are limited per client and in total, so light ones stay fast.

A *heavy* request is one that keeps a core busy for a long time: ``POST /locate`` with a body
over ``heavy_body_bytes`` (64 KiB, about 2,000 points; or a body of unknown length), and the
planner's ``POST /boundaries/build``, ``POST /communities/{id}/boundary/preview`` and
``POST /communities/{id}/grids/split``. Every other request is light and never waits here.

`Shedding`, a pure-ASGI middleware, admits a heavy request in two steps, before its body is
read:

1. **Per client** (`Clients`): the client is the user of a valid bearer token, else the
   address the request came from. It may run ``heavy_per_client`` heavy requests at once and
   start ``heavy_rate`` a second (a token bucket holding ``heavy_burst``). Over either limit
   the answer is ``429 Too Many Requests`` (`geo.errors.TooManyRequests`) with ``Retry-After``
   (seconds) and what to do. A token's user (an officer or planner: known, audited) gets
   ``heavy_user_factor`` times those limits (0: none); admins are exempt.
2. **In total** (one semaphore per process): at most ``heavy_concurrency`` heavy requests run
   at once (default: one less than the cores, at least one), so the event loop and the thread
   pool keep time for light requests. An admitted request waits up to
   ``heavy_queue_seconds`` for its turn, then gets ``503`` with ``Retry-After``.

The limits are per serving process (``geo serve --workers N`` multiplies them by N); each is a
``GEO_`` setting (`geo.settings.Settings`), 0 turning a per-client limit off.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from geo.api.auth import authenticate
from geo.api.errors import response_for
from geo.errors import GeoError, TooManyRequests, Unavailable
from geo.settings import Settings

_HEAVY_ROUTES = re.compile(
    r"/boundaries/build|/communities/[^/]+/boundary/preview|/communities/[^/]+/grids/split"
)
_MAX_CLIENTS = 10_000  # idle clients with full buckets are forgotten past this many


def is_heavy(method: str, path: str, headers: list[tuple[bytes, bytes]], body_bytes: int) -> bool:
    """Whether a request is heavy: a large (or unsized) ``POST /locate``, a build, preview or
    split.

    >>> is_heavy("POST", "/locate", [(b"content-length", b"300000")], 65536)
    True
    >>> is_heavy("POST", "/locate", [(b"content-length", b"60")], 65536)
    False
    >>> is_heavy("GET", "/locate", [], 65536), is_heavy("POST", "/boundaries/build", [], 65536)
    (False, True)
    """
    if method != "POST":
        return False
    if path == "/locate":
        for key, value in headers:
            if key == b"content-length":
                return not value.isdigit() or int(value) > body_bytes
        return True  # chunked: its size is unknown
    return _HEAVY_ROUTES.fullmatch(path) is not None


@dataclass
class _Bucket:
    """One client: heavy requests running, and its token bucket."""

    tokens: float
    stamp: float
    active: int = 0


class Clients:
    """Per-client limits on heavy requests: ``per_client`` at once, ``rate`` a second.

    >>> c = Clients(per_client=1, rate=1.0, burst=2)
    >>> done = c.admit("1.2.3.4", now=0.0)
    >>> c.admit("1.2.3.4", now=0.0)
    Traceback (most recent call last):
    ...
    geo.errors.TooManyRequests: 1 heavy request of this client is running already; at most 1 \
at once (GEO_HEAVY_PER_CLIENT): wait for it to finish, then retry
    >>> done(); _ = c.admit("1.2.3.4", now=0.0)
    """

    def __init__(self, per_client: int, rate: float, burst: int) -> None:
        self.per_client = per_client
        self.rate = rate
        self.burst = max(1, burst)
        self._d: dict[str, _Bucket] = {}

    def admit(self, client: str, now: float | None = None, factor: int = 1) -> Callable[[], None]:
        """Count a heavy request of ``client`` (the returned function ends it), or raise
        `TooManyRequests` with ``Retry-After``; ``factor`` multiplies the limits."""
        now = time.monotonic() if now is None else now
        bucket = self._d.get(client)
        if bucket is None:
            self._forget_idle(now)
            bucket = self._d[client] = _Bucket(tokens=self.burst * factor, stamp=now)
        per_client = self.per_client * factor
        if per_client and bucket.active >= per_client:
            n = bucket.active
            raise _too_many(
                f"{n} heavy request{'s' if n > 1 else ''} of this client "
                f"{'are' if n > 1 else 'is'} running already; at most {per_client} at "
                f"once (GEO_HEAVY_PER_CLIENT): wait for {'one' if n > 1 else 'it'} to finish, "
                "then retry",
                1,
            )
        if self.rate > 0:
            self._take(bucket, now, self.rate * factor, self.burst * factor)
        bucket.active += 1

        def done() -> None:
            bucket.active -= 1

        return done

    @staticmethod
    def _take(bucket: _Bucket, now: float, rate: float, burst: int) -> None:
        """Take a token from ``bucket`` (refilled at ``rate`` up to ``burst``), or raise."""
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.tokens < 1:
            wait = max(1, math.ceil((1 - bucket.tokens) / rate))
            raise _too_many(
                f"this client started more than {rate:g} heavy requests a second "
                f"(GEO_HEAVY_RATE, bursts of {burst}): retry in {wait} s, or send "
                "fewer, larger requests",
                wait,
            )
        bucket.tokens -= 1

    def _forget_idle(self, now: float) -> None:
        """Past `_MAX_CLIENTS`, forget the clients with nothing running and a full bucket."""
        if len(self._d) < _MAX_CLIENTS:
            return
        full = self.burst / self.rate if self.rate > 0 else 0.0
        for key in [k for k, b in self._d.items() if not b.active and now - b.stamp >= full]:
            del self._d[key]


def _too_many(message: str, retry_after: int) -> TooManyRequests:
    exc = TooManyRequests(message)
    exc.headers = {"Retry-After": str(retry_after)}
    return exc


def heavy_slots(setting: int) -> int:
    """Heavy requests one process runs at once: ``setting``, or one less than the cores.

    >>> heavy_slots(3)
    3
    >>> heavy_slots(0) >= 1
    True
    """
    return setting if setting > 0 else max(1, (os.cpu_count() or 2) - 1)


class Shedding:
    """Per-client (429) and total (503) limits on heavy requests; light ones pass untouched."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.body_bytes = settings.heavy_body_bytes
        self.clients = Clients(settings.heavy_per_client, settings.heavy_rate, settings.heavy_burst)
        self.user_factor = settings.heavy_user_factor
        self.slots = heavy_slots(settings.heavy_concurrency)
        self.queue_seconds = settings.heavy_queue_seconds
        self._turns: asyncio.Semaphore | None = None  # made on the serving loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass light requests on; admit a heavy one per client, then in total."""
        if scope["type"] != "http" or not is_heavy(
            scope["method"], scope["path"], scope.get("headers", []), self.body_bytes
        ):
            await self.app(scope, receive, send)
            return
        try:
            done = await self._admit(scope)
        except GeoError as exc:
            await response_for(exc)(scope, receive, send)
            return
        try:
            await self._run(scope, receive, send)
        finally:
            done()

    async def _admit(self, scope: Scope) -> Callable[[], None]:
        """Count the request against its client (401 for a bad token, 429 over a limit)."""
        user = await authenticate(Request(scope))  # remembered for the route's own check
        if user is None:
            return self.clients.admit(f"addr:{(scope.get('client') or ('?',))[0]}")
        if user.role == "admin" or not self.user_factor:
            return lambda: None
        return self.clients.admit(f"user:{user.name}", factor=self.user_factor)

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request in its turn, or 503 when none comes within ``queue_seconds``."""
        if self._turns is None:
            self._turns = asyncio.Semaphore(self.slots)
        try:
            async with asyncio.timeout(self.queue_seconds):
                await self._turns.acquire()
        except TimeoutError:
            busy = Unavailable(
                f"the server is busy with {self.slots} heavy request"
                f"{'s' if self.slots > 1 else ''} (GEO_HEAVY_CONCURRENCY) and this one "
                f"waited {self.queue_seconds:g} s (GEO_HEAVY_QUEUE_SECONDS): retry later"
            )
            await response_for(busy, {"Retry-After": "5"})(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._turns.release()


def install(app, settings: Settings) -> None:
    """Add the `Shedding` middleware with the limits of ``settings``."""
    app.add_middleware(Shedding, settings=settings)
