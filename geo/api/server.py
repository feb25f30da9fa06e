"""The HTTP protocol `geo serve` runs: uvicorn's, plus a deadline for a request's headers.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but nothing bounds
the time a client takes to *send* a request's line and headers: a client that opens a
connection and sends ``GET /loc`` and nothing more (slowloris) holds a connection, a file
descriptor and a protocol object for as long as it likes. `HeaderTimeoutProtocol` arms a timer
when a connection opens and whenever a new request starts to arrive on it, and disarms it when
that request's headers are complete; when the timer fires first, it answers ``408 Request
Timeout`` and closes the connection. The deadline is ``GEO_HEADER_TIMEOUT_SECONDS``
(`geo.settings.Settings.header_timeout_seconds`; 0 turns it off).

The body is not covered here: once the headers are in, the app runs, and the request timeout
(`geo.api.limits.Timeout`) bounds the rest.

`geo serve` passes it to uvicorn by name, so every worker process imports it
(``uvicorn.run(..., http=PROTOCOL)``). It subclasses uvicorn's httptools protocol (uvicorn's
default: ``uvicorn[standard]`` brings httptools).
"""

from __future__ import annotations

import asyncio
from functools import cache

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from geo.settings import Settings

PROTOCOL = "geo.api.server:HeaderTimeoutProtocol"  # for uvicorn.run(http=...)

_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s"
)


@cache
def header_timeout() -> float:
    """Seconds a client has to send a request's line and headers (read once per process)."""
    return Settings().header_timeout_seconds


def _timed_out_answer(seconds: float) -> bytes:
    """The 408 sent before closing a connection whose headers did not arrive in time.

    >>> _timed_out_answer(10).split(b"\\r\\n")[0]
    b'HTTP/1.1 408 Request Timeout'
    """
    body = (
        f"the request's headers did not arrive within {seconds:g} s "
        "(GEO_HEADER_TIMEOUT_SECONDS): send the whole request at once"
    ).encode()
    return _TIMED_OUT % (len(body), body)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request's line and headers."""

    header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """A new connection: its first request's headers are due within the deadline."""
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        """The first byte of a request (after the first): its headers are due in time too."""
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        """The headers are in: no deadline until the next request begins."""
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Closed (by either side): drop the timer."""
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        seconds = header_timeout()
        if seconds > 0 and self.header_timer is None:
            self.header_timer = self.loop.call_later(seconds, self._expired, seconds)

    def _disarm(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _expired(self, seconds: float) -> None:
        """The deadline passed with the headers incomplete: answer 408 and close."""
        self.header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # a pipelined request arriving while the one before is answered: never cut that
            # answer short; the next request's deadline starts again (the request timeout
            # bounds the answer)
            self._arm()
            return
        self.transport.write(_timed_out_answer(seconds))
        self.transport.close()
