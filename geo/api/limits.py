"""Request limits: body size (413), request time (503), vertices and features (422).

Pure-ASGI middlewares, installed by `install`, take their limits from `geo.settings.Settings`:

* `PathGuard`: a path holding a control or format character (``%00``, a bidi control) once
  percent-decoded is a 404 before any route sees it.

* `BodyLimit`: a ``Content-Length`` over ``max_body_bytes`` is answered 413 before the body is
  read; a chunked body is counted as it arrives and cut off with a 413 at the limit.
* `Timeout`: a request that has not started its answer after ``request_timeout_seconds`` gets a
  503 with ``Retry-After`` and the reason, so slow requests do not pile up behind each other on a
  client. (A synchronous endpoint's thread cannot be killed: it finishes in the background and
  its answer is dropped.)

`check_geojson` counts the vertices and features of a GeoJSON document without building it, for
the routers to call before any geometry work: more than ``max_vertices`` vertices or
``max_features`` features is a 422 that names the count and the limit.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo.api.errors import response_for
from geo.errors import (
    BadRequest,
    GeoError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Unavailable,
)
from geo.settings import Settings


def _framing(scope: Scope, limit: int) -> bool:
    """Whether a body follows (``Content-Length`` or ``Transfer-Encoding``); `BadRequest` for a
    ``Content-Length`` that is not a number, `PayloadTooLarge` for one over ``limit``."""
    framed = False
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            framed = True
            try:
                size = int(value)
            except ValueError:
                raise BadRequest("Content-Length is not a number") from None
            if size > limit:
                raise PayloadTooLarge(_too_large(limit, size))
        elif key == b"transfer-encoding":
            framed = True
    return framed


def _too_large(limit: int, size: int | None) -> str:
    got = f"{size:,} bytes" if size is not None else "more"
    return (
        f"request body is {got}; the limit is {limit:,} bytes "
        "(GEO_MAX_BODY_BYTES): split the request"
    )


async def _send(scope: Scope, receive: Receive, send: Send, exc: GeoError) -> None:
    """Answer ``exc`` from a middleware (a 413 also closes the connection)."""
    extra = {"connection": "close"} if isinstance(exc, PayloadTooLarge) else None
    await response_for(exc, extra)(scope, receive, send)


class _BodyCut(Exception):
    """The body went over the limit while the app read it (the 413 is sent already, unless
    the app had started its answer)."""


class BodyLimit:
    """413 for a request body over ``limit`` bytes (declared or streamed)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a declared size over the limit at once; count a body as it arrives."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            framed = _framing(scope, self.limit)
        except GeoError as exc:
            await _send(scope, receive, send, exc)
            return
        if framed:
            await self._counted(scope, receive, send)
        else:  # no body to count (most GETs): no wrappers
            await self.app(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app on a body counted as it arrives: past the limit, answer 413 and cut the
        app's reading short (whatever it answers then is dropped)."""
        seen = 0
        started = answered = False

        async def counted() -> Message:
            nonlocal seen, answered
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    if not started:
                        await _send(
                            scope, receive, send, PayloadTooLarge(_too_large(self.limit, None))
                        )
                        answered = True
                    raise _BodyCut
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the 413 was the answer
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _BodyCut:
            if not answered:
                raise


class PathGuard:
    """404 for a path holding a control or format character (a NUL, a bidi control) once
    percent-decoded: no route, id or file name has one, and lower layers (the file system,
    numpy's text, the store) would each read it differently."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 404 for such a path; pass every other request on."""
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.isprintable():
            await self.app(scope, receive, send)
            return
        bad = next(ch for ch in path if not ch.isprintable())
        await _send(
            scope, receive, send,
            NotFound(
                f"no such path: it holds the control or format character U+{ord(bad):04X}; "
                "ids and file names are printable text"
            ),
        )  # fmt: skip


class Timeout:
    """503 (with ``Retry-After``) for a request that has not started answering in ``seconds``.

    No extra task per request: a timer cancels the request's own task if the answer has not
    started by then (`asyncio.timeout`), and is switched off when it starts.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app under the deadline; answer 503 when it passes before the answer starts."""
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        deadline = asyncio.timeout(self.seconds)

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                deadline.reschedule(None)  # answering: never time out while streaming
            await send(message)

        try:
            async with deadline:
                await self.app(scope, receive, watched)
        except TimeoutError:
            if not deadline.expired():
                raise  # the app's own TimeoutError, not ours
            abandoned = Unavailable(
                f"the request took longer than {self.seconds:g} s (GEO_REQUEST_TIMEOUT_SECONDS) "
                "and was abandoned: send a smaller request or retry later"
            )
            await response_for(abandoned, {"retry-after": "5"})(scope, receive, send)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the path guard, body-size and timeout middlewares (the timeout outermost); request
    validation errors are answered by `geo.api.errors`."""
    app.add_middleware(PathGuard)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(Timeout, seconds=settings.request_timeout_seconds)


# ------------------------------------------------------------------------- GeoJSON counting


class _BadPosition(ValueError):
    pass


# lon/lat are within ±180; projected metres (EPSG:4549, a zoned Gauss-Krüger easting, web
# mercator) within ±1e8: a coordinate beyond this is a mistake, and as an integer of hundreds of
# digits it would overflow the conversion to float
COORDINATE_LIMIT = 1e9


def _short(value: Any) -> str:
    """``repr(value)`` cut to 60 characters (a 400-digit integer, a long position)."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's digit limit
        return f"an integer of {value.bit_length():,} bits"
    return text if len(text) <= 60 else f"{text[:40]}…({len(text):,} characters)"


def _vertices(coords: Any) -> int:
    """Positions in a GeoJSON ``coordinates`` array; `_BadPosition` for a non-number or a
    NaN/Infinity coordinate."""
    count = 0
    stack = [coords]
    while stack:
        item = stack.pop()
        if not isinstance(item, list | tuple):
            continue
        if item and not isinstance(item[0], list | tuple):
            for v in item:  # a position
                if isinstance(v, bool) or not isinstance(v, int | float):
                    raise _BadPosition(f"coordinate {_short(v)} in {_short(item)} is not a number")
                if isinstance(v, float) and not math.isfinite(v):
                    raise _BadPosition(f"coordinate {v} in {_short(item)} is not a finite number")
                if not -COORDINATE_LIMIT <= v <= COORDINATE_LIMIT:  # exact for ints of any size
                    raise _BadPosition(
                        f"coordinate {_short(v)} in {_short(item)} is out of range: no supported "
                        f"CRS has coordinates beyond ±{COORDINATE_LIMIT:g}"
                    )
            count += 1
            continue
        stack.extend(item)
    return count


def geojson_vertices(obj: Any) -> int:
    """Vertices of a GeoJSON geometry, Feature or FeatureCollection (nested collections too)."""
    count = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "FeatureCollection":
            feats = item.get("features")
            stack.extend(feats if isinstance(feats, list) else [])
        elif kind == "Feature":
            stack.append(item.get("geometry"))
        elif kind == "GeometryCollection":
            geoms = item.get("geometries")
            stack.extend(geoms if isinstance(geoms, list) else [])
        else:
            count += _vertices(item.get("coordinates"))
    return count


_CRS84 = ("CRS84", "EPSG::4326", "EPSG:4326", "CRS:84")


def _crs_member(obj: Any) -> str | None:
    """The name in a (pre-RFC 7946) ``crs`` member of ``obj`` or its geometry, if not WGS84."""
    for item in (obj, obj.get("geometry") if isinstance(obj, dict) else None):
        if isinstance(item, dict) and "crs" in item:
            member = item["crs"]
            props = member.get("properties") if isinstance(member, dict) else None
            name = props.get("name") if isinstance(props, dict) else None
            if not (isinstance(name, str) and name.upper().endswith(_CRS84)):
                return repr(name if name is not None else member)
    return None


def check_geojson(obj: Any, settings: Settings, what: str, *, crs_member: bool = True) -> None:
    """422 when ``obj`` has more features or vertices than the settings allow, a coordinate
    that is not a finite number, or (``crs_member=False``) a ``crs`` member other than WGS84."""
    if obj is None:
        return
    if isinstance(obj, dict) and isinstance(obj.get("features"), list):
        n = len(obj["features"])
        if n > settings.max_features:
            raise InvalidInput(
                f"{what} holds {n:,} features; the limit is {settings.max_features:,} "
                "(GEO_MAX_FEATURES): send fewer features"
            )
    if not crs_member and (name := _crs_member(obj)) is not None:
        raise InvalidInput(
            f"{what} has a crs member ({name}); GeoJSON (RFC 7946) has none: remove it and "
            'name the CRS in the request\'s "crs" field (e.g. "crs": "EPSG:4549")'
        )
    try:
        n = geojson_vertices(obj)
    except _BadPosition as exc:
        raise InvalidInput(f"{what}: {exc}; send coordinates as JSON numbers (lon, lat)") from exc
    except RecursionError as exc:  # pragma: no cover - the JSON parser refuses deeper nesting
        raise InvalidInput(f"{what} is nested too deeply") from exc
    if n > settings.max_vertices:
        raise InvalidInput(
            f"{what} has {n:,} vertices; the limit is {settings.max_vertices:,} "
            "(GEO_MAX_VERTICES): simplify it or send it in parts"
        )
