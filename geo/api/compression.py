"""Compressed responses: brotli or gzip, as the client's ``Accept-Encoding`` allows.

* **Negotiation** (`choose`): the codings the client accepts with a q-value above 0 (``*``
  stands for any coding not named; no header: identity); brotli (``br``) is preferred to gzip
  at an equal q-value, a higher q-value wins.
* **What is compressed**: text and structured data — HTML, CSS, JavaScript, JSON and GeoJSON,
  vector tiles (``application/vnd.mapbox-vector-tile``, ``application/x-protobuf``), SVG, XML —
  of at least `MIN_BYTES` (a tiny body gains less than its headers cost). Not a response that
  already has a ``Content-Encoding``, carries ``Cache-Control: no-transform``, or is a partial
  (206), empty (204) or not-modified (304) one.
* **Headers**: every response of a compressible type says ``Vary: Accept-Encoding`` (added to
  any ``Vary`` already there), compressed or not, so caches keep the encodings apart. A
  compressed response is another representation: its ``ETag`` is made weak (``W/"…"``, as
  nginx does), so it never shares a strong ETag with the identity bytes; ``If-None-Match``
  compares weakly (RFC 9110), so 304s still work, and ``If-Match`` accepts ``W/"3"`` (see
  `geo.api.versions`). ``Content-Length`` is the compressed length; ``Accept-Ranges`` is
  dropped (ranges address the identity bytes).
* **Streaming**: a response sent in several parts is compressed part by part, each part
  flushed, so it still streams. A ``HEAD`` answer says what ``GET`` would (the encoding, the
  weak ETag) without a body.
* **Work**: a body over `THREAD_BYTES` is compressed in a worker thread, not on the event loop.
  Vector tiles and the vendored static files are compressed once and kept (`Encoded`), not per
  request: their routes answer with the stored bytes, and this middleware passes them on.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import brotli
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MIN_BYTES = 1024  # smaller bodies are sent as they are
THREAD_BYTES = 64 * 1024  # larger bodies are compressed in a worker thread
BR_QUALITY = 5  # per-request brotli: near gzip's speed, smaller output
GZIP_LEVEL = 6
BEST_MAX_BYTES = 512 * 1024  # stored bodies up to this size get brotli's level 9
CODINGS = ("br", "gzip")  # in order of preference at an equal q-value

_TYPES = (
    "text/",
    "application/json",
    "application/geo+json",
    "application/problem+json",
    "application/schema+json",
    "application/ld+json",
    "application/javascript",
    "application/x-javascript",
    "application/ecmascript",
    "application/xml",
    "application/vnd.mapbox-vector-tile",
    "application/x-protobuf",
    "application/vnd.oai.openapi",
    "image/svg+xml",
)


def compressible(content_type: str) -> bool:
    """Whether a body of ``content_type`` is worth compressing.

    >>> compressible("application/geo+json; charset=utf-8"), compressible("image/png")
    (True, False)
    """
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith(_TYPES) or media.endswith(("+json", "+xml"))


def _q(param: str) -> float:
    """The q-value of ``q=0.5`` (1 for anything unreadable that is not a q-value)."""
    name, _, value = param.partition("=")
    if name.strip().lower() != "q":
        return 1.0
    try:
        q = float(value.strip())
    except ValueError:
        return 0.0
    return q if 0.0 <= q <= 1.0 else 0.0


def choose(accept_encoding: str | None) -> str | None:
    """The coding to send: ``"br"``, ``"gzip"`` or None (identity).

    >>> choose("gzip, deflate, br"), choose("gzip;q=1, br;q=0.5"), choose("br;q=0, *")
    ('br', 'gzip', 'gzip')
    >>> choose(None), choose("identity"), choose("*;q=0")
    (None, None, None)
    """
    if not accept_encoding:
        return None
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, *params = item.split(";")
        name = name.strip().lower()
        if name == "x-gzip":
            name = "gzip"
        if name:
            weights[name] = min((_q(p) for p in params), default=1.0)
    star = weights.get("*", 0.0)
    best: tuple[float, int, str] | None = None
    for rank, coding in enumerate(CODINGS):
        q = weights.get(coding, star)
        if q > 0 and (best is None or (q, -rank) > best[:2]):
            best = (q, -rank, coding)
    return best[2] if best else None


def compress(data: bytes, coding: str, *, best: bool = False) -> bytes:
    """``data`` compressed with ``coding`` (``best``: a higher level, for bodies compressed once
    and kept; brotli's level 9, not 11, which takes seconds on a megabyte)."""
    if coding == "br":
        quality = 9 if best and len(data) <= BEST_MAX_BYTES else BR_QUALITY
        return brotli.compress(data, quality=quality)
    return gzip.compress(data, compresslevel=9 if best else GZIP_LEVEL, mtime=0)


def weak(etag: str) -> str:
    """``etag`` as a weak validator (unchanged if already weak).

    >>> weak('"abc"'), weak('W/"abc"')
    ('W/"abc"', 'W/"abc"')
    """
    etag = etag.strip()
    return etag if etag.startswith("W/") or not etag else f"W/{etag}"


def vary(existing: str | None) -> str:
    """A ``Vary`` value naming ``Accept-Encoding`` besides what ``existing`` names.

    >>> vary(None), vary("Origin"), vary("accept-encoding"), vary("*")
    ('Accept-Encoding', 'Origin, Accept-Encoding', 'accept-encoding', '*')
    """
    if not existing:
        return "Accept-Encoding"
    names = [v.strip().lower() for v in existing.split(",")]
    if "accept-encoding" in names or "*" in names:
        return existing
    return f"{existing}, Accept-Encoding"


@dataclass
class Encoded:
    """A body kept with its compressed forms, each made once (on first demand) and kept."""

    data: bytes
    etag: str
    best: bool = False  # compress at the highest level (static files: compressed once)
    forms: dict[str, bytes] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def body(self, coding: str | None) -> bytes:
        """The body in ``coding`` (None: identity); compressed now if not yet."""
        if coding is None or len(self.data) < MIN_BYTES:
            return self.data
        form = self.forms.get(coding)
        if form is None:
            with self._lock:
                form = self.forms.get(coding)
                if form is None:
                    form = self.forms[coding] = compress(self.data, coding, best=self.best)
        return form

    def has(self, coding: str | None) -> bool:
        """Whether ``body(coding)`` needs no work."""
        return coding is None or len(self.data) < MIN_BYTES or coding in self.forms

    def size(self) -> int:
        """The bytes held: the body and every compressed form made so far."""
        return len(self.data) + sum(len(f) for f in self.forms.values())

    def headers(self, coding: str | None) -> dict[str, str]:
        """``ETag`` (weak when compressed), ``Vary``, ``Content-Encoding`` of ``body(coding)``."""
        if coding is None or len(self.data) < MIN_BYTES:
            return {"ETag": self.etag, "Vary": "Accept-Encoding"}
        return {"ETag": weak(self.etag), "Vary": "Accept-Encoding", "Content-Encoding": coding}


async def encoded_body(item: Encoded, coding: str | None) -> bytes:
    """``item.body(coding)``, compressed in a worker thread when that takes work."""
    if item.has(coding):
        return item.body(coding)
    return await run_in_threadpool(item.body, coding)


def request_coding(scope: Scope) -> str | None:
    """The coding the request's ``Accept-Encoding`` allows (see `choose`)."""
    for key, value in scope.get("headers", ()):
        if key == b"accept-encoding":
            return choose(value.decode("latin-1"))
    return None


# ------------------------------------------------------------------------------- middleware


def _stream(coding: str) -> tuple[Callable[[bytes], bytes], Callable[[], bytes]]:
    """``(add, finish)`` of a streaming compressor: ``add`` returns flushed output."""
    if coding == "br":
        c = brotli.Compressor(quality=BR_QUALITY)
        return (lambda b: c.process(b) + c.flush()), c.finish
    z = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    return (lambda b: z.compress(b) + z.flush(zlib.Z_SYNC_FLUSH)), z.flush


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _without(headers: list[tuple[bytes, bytes]], *names: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.lower() not in names]


def _set(headers: list[tuple[bytes, bytes]], name: bytes, value: str) -> None:
    headers[:] = _without(headers, name)
    headers.append((name, value.encode("latin-1")))


def _eligible(start: Message) -> bool:
    """Whether a response (its start message) may be compressed at all."""
    headers = start.get("headers", [])
    if start["status"] in (204, 206, 304) or start["status"] < 200:
        return False
    if _header(headers, b"content-encoding") is not None:
        return False
    if "no-transform" in (_header(headers, b"cache-control") or "").lower():
        return False
    return compressible(_header(headers, b"content-type") or "")


def _encoded_headers(start: Message, coding: str, length: int | None) -> Message:
    """``start`` re-headed for a body in ``coding`` (``length``: None when streamed)."""
    headers = _without(list(start.get("headers", [])), b"content-length", b"accept-ranges")
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    headers.append((b"content-encoding", coding.encode()))
    etag = _header(headers, b"etag")
    if etag:
        _set(headers, b"etag", weak(etag))
    return {**start, "headers": headers}


class Compression:
    """Compress eligible responses with the coding the client prefers (pure ASGI)."""

    def __init__(self, app: ASGIApp, min_bytes: int = MIN_BYTES) -> None:
        self.app = app
        self.min_bytes = min_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; compress its answer on the way out when it is worth it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _Response(self, scope, send).run(receive)


class _Response:
    """One response on its way through `Compression`."""

    def __init__(self, owner: Compression, scope: Scope, send: Send) -> None:
        self.owner = owner
        self.scope = scope
        self.send = send
        self.coding = request_coding(scope)
        self.head = scope.get("method") == "HEAD"
        self.start: Message | None = None
        self.stream: tuple[Callable[[bytes], bytes], Callable[[], bytes]] | None = None
        self.passing = False

    async def run(self, receive: Receive) -> None:
        """Run the app with this response's `on_send` in place of ``send``."""
        await self.owner.app(self.scope, receive, self.on_send)

    async def on_send(self, message: Message) -> None:
        """Hold the start until the first body part says how to send it."""
        kind = message["type"]
        if kind == "http.response.start":
            start = dict(message)
            eligible = _eligible(start)
            if eligible:
                headers = list(start.get("headers", []))
                _set(headers, b"vary", vary(_header(headers, b"vary")))
                start["headers"] = headers
            if not eligible or self.coding is None:
                self.passing = True
                await self.send(start)
            else:
                self.start = start
            return
        if kind != "http.response.body" or self.passing:
            await self.send(message)
            return
        if self.stream is not None:
            await self._more(message)
        else:
            await self._first(message)

    async def _first(self, message: Message) -> None:
        """The first body part: send it whole (compressed if worth it) or start a stream."""
        assert self.start is not None and self.coding is not None
        body: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        declared = _header(self.start["headers"], b"content-length")
        if self.head:
            size = int(declared) if declared and declared.isdigit() else len(body)
            if size >= self.owner.min_bytes:
                self.start = _encoded_headers(self.start, self.coding, None)
            await self._pass(message)
            return
        if not more:
            if len(body) < self.owner.min_bytes:
                await self._pass(message)
                return
            packed = await self._compress(body)
            await self.send(_encoded_headers(self.start, self.coding, len(packed)))
            await self.send({"type": "http.response.body", "body": packed})
            return
        if declared and declared.isdigit() and int(declared) < self.owner.min_bytes:
            await self._pass(message)
            return
        self.stream = _stream(self.coding)
        await self.send(_encoded_headers(self.start, self.coding, None))
        await self._more(message)

    async def _compress(self, body: bytes) -> bytes:
        assert self.coding is not None
        if len(body) > THREAD_BYTES:
            return await run_in_threadpool(compress, body, self.coding)
        return compress(body, self.coding)

    async def _more(self, message: Message) -> None:
        """A part of a streamed body, compressed and flushed (the last one finishes)."""
        assert self.stream is not None
        add, finish = self.stream
        out = add(message.get("body", b""))
        more = message.get("more_body", False)
        if not more:
            out += finish()
        await self.send({"type": "http.response.body", "body": out, "more_body": more})

    async def _pass(self, message: Message) -> None:
        """Send the held start and ``message`` as they are (identity)."""
        assert self.start is not None
        self.passing = True
        await self.send(self.start)
        await self.send(message)
