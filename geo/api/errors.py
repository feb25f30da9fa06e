"""The one place where errors become HTTP answers: every error is ``{"detail": sentence}``.

A `GeoError` answers with the status (and headers) its class carries (`geo.errors`). A request
FastAPI's validation refuses (a query parameter that is not a number, a body field of the wrong
type) answers 422 in the same shape: ``detail`` is one readable sentence naming the first problem
(and how many more there are); the field-by-field list is kept under ``errors``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
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


async def _answer(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GeoError)
    if _from_qgis(request):
        return _exception_report(type(exc).__name__, api_words(exc.detail), exc.status, exc.headers)
    return response_for(exc)


# -- QGIS: writes through OGC API – Features, refused as an OWS ExceptionReport ----------------

_WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _from_qgis(request: Request) -> bool:
    """A Part 4 write (`geo.api.features_edit`) without ``Accept``: QGIS's OAPIF provider, which
    shows the text of an OWS ExceptionReport and nothing of a JSON body."""
    route = request.scope.get("route")
    return (
        request.method in _WRITES
        and "accept" not in request.headers
        and getattr(route, "name", "").startswith("features_")
    )


def _exception_report(
    code: str, text: str, status: int, headers: Mapping[str, str] | None = None
) -> Response:
    """An OWS 1.1 ExceptionReport of one exception (``code``, ``text``), escaped."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ExceptionReport xmlns="http://www.opengis.net/ows/1.1" version="2.0.0">'
        f"<Exception exceptionCode={quoteattr(code)}>"
        f"<ExceptionText>{escape(text)}</ExceptionText></Exception></ExceptionReport>"
    )
    return Response(body, status, dict(headers or {}), media_type="application/xml")


# -- request validation (FastAPI / pydantic) ---------------------------------------------------

_PLACES = {"query": "query parameter", "path": "path parameter", "header": "header"}
_SHOWN = 60  # characters of a refused value quoted in the sentence


def _finite(obj: Any) -> Any:
    """``obj`` with NaN/Infinity floats as strings (JSON has no such numbers).

    >>> _finite({"a": [float("nan"), 1.0]})
    {'a': ['nan', 1.0]}
    """
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _where(loc: Sequence[Any]) -> str:
    """Where a problem is, as a reader names it.

    >>> _where(["query", "lon"]), _where(["body", "points", 0, 1]), _where(["body"])
    ("query parameter 'lon'", "body field 'points[0][1]'", 'the body')
    """
    place, *path = [*loc] or ["body"]
    if place in _PLACES and path:
        return f"{_PLACES[place]} {str(path[0])!r}"
    if not path:
        return "the body" if place == "body" else f"{place!r}"
    name = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return f"{'body' if place == 'body' else place} field {name!r}"


def _quoted(value: Any) -> str:
    """A refused value for the sentence: short, and only when it is a plain value."""
    if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
        return ""
    text = repr(value) if isinstance(value, str) else str(value)
    return f" (got {text if len(text) <= _SHOWN else text[: _SHOWN - 1] + '…'})"


def validation_sentence(errors: Sequence[Mapping[str, Any]]) -> str:
    """One sentence for a list of pydantic errors: the first problem, and how many more.

    >>> validation_sentence([{"loc": ["query", "lon"], "msg": "Input should be a valid number",
    ...                       "input": "x"}])
    "query parameter 'lon': Input should be a valid number (got 'x')"
    >>> validation_sentence([{"loc": ["body", "points", 0, 0], "msg": "bad", "input": "1"}] * 3)
    "body field 'points[0][0]': bad (got '1'); and 2 more problems (listed under errors)"
    """
    if not errors:
        return "the request is not valid"
    first = errors[0]
    sentence = f"{_where(first.get('loc', ()))}: {first.get('msg', 'not valid')}"
    sentence += _quoted(first.get("input"))
    if len(errors) > 1:
        more = len(errors) - 1
        sentence += f"; and {more} more problem{'s' if more > 1 else ''} (listed under errors)"
    return sentence


async def _invalid_request(request: Request, exc: Exception) -> Response:
    """A request FastAPI's validation refuses: 422 ``{"detail": sentence, "errors": [...]}``
    (NaN/Infinity in an echoed input as strings: the default handler fails on them)."""
    assert isinstance(exc, RequestValidationError)
    listed = _finite(jsonable_encoder(exc.errors()))
    if _from_qgis(request):
        return _exception_report("InvalidRequest", validation_sentence(listed), 422)
    return JSONResponse({"detail": validation_sentence(listed), "errors": listed}, 422)


def _document_422(app: FastAPI) -> None:
    """Say in ``/openapi.json`` what a 422 holds: ``detail`` a sentence, ``errors`` the list
    (present when the request failed validation)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        model = schema.get("components", {}).get("schemas", {}).get("HTTPValidationError")
        if model is not None:
            model["properties"] = {
                "detail": {
                    "title": "Detail",
                    "type": "string",
                    "description": "what is wrong and how to fix it, in one sentence",
                },
                "errors": {
                    "title": "Errors",
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/ValidationError"},
                    "description": "each problem found by request validation",
                },
            }
            model["required"] = ["detail"]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    """Answer every `GeoError` a route (or a dependency) raises by its class, and every request
    validation error as a 422 of the same shape (documented in ``/openapi.json``)."""
    app.add_exception_handler(GeoError, _answer)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    _document_422(app)
