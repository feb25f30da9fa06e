"""The one place where errors become HTTP answers: a `GeoError` is ``{"detail": message}`` with
the status (and headers) its class carries (`geo.errors`)."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from geo.errors import GeoError

# Messages written for the command line name its options; over HTTP they are body fields.
_API_WORDS = (("--extend-m ", "extend_m="), ("--within ", "within="))


def api_words(message: str) -> str:
    """A message in the API's terms: the body fields, not the CLI's options.

    >>> api_words("give --extend-m 200 to run the road on")
    'give extend_m=200 to run the road on'
    """
    for cli, api in _API_WORDS:
        message = message.replace(cli, api)
    return message


def response_for(exc: GeoError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The answer to ``exc``: ``{"detail": message}`` (in the API's words) with its status and
    headers (and ``headers``), for a route's handler or an ASGI middleware to send.

    >>> from geo.errors import PayloadTooLarge
    >>> r = response_for(PayloadTooLarge("too big"), {"connection": "close"})
    >>> r.status_code, r.body, r.headers["connection"]
    (413, b'{"detail":"too big"}', 'close')
    """
    merged = {**(exc.headers or {}), **(headers or {})}
    return JSONResponse({"detail": api_words(exc.detail)}, exc.status, headers=merged or None)


async def _answer(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GeoError)
    return response_for(exc)


def install(app: FastAPI) -> None:
    """Answer every `GeoError` a route (or a dependency) raises by its class."""
    app.add_exception_handler(GeoError, _answer)
