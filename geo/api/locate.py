"""Which street, community, grid and micro-grid own a point (GET one, POST many)."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from geo.api.auth import require
from geo.api.deps import atlas
from geo.atlas import Atlas
from geo.errors import PayloadTooLarge
from geo.service.locate import locate_points, locate_points_report

router = APIRouter(tags=["locate"])

CRS_HELP = "CRS of lon/lat: wgs84 (default), cgcs2000, gcj02 (AMap/Tencent), bd09 (Baidu) or EPSG:n"


class Cell(BaseModel):
    """A street, community or grid: id, name and code."""

    id: str
    name: str
    code: str | None = None


class MicroGrid(Cell):
    """A micro-grid: a park, or a building outside every park."""

    kind: Literal["park", "building"]


class Point(BaseModel):
    """The point located, in WGS84."""

    lon: float = Field(description="WGS84 longitude the input was converted to")
    lat: float = Field(description="WGS84 latitude the input was converted to")


class Located(BaseModel):
    """The cells that own a point (null where it lies in none)."""

    point: Point
    street: Cell | None
    community: Cell | None
    grid: Cell | None
    microgrid: MicroGrid | None


class LocateBatch(BaseModel):
    """Points to locate at once, in one CRS. Coordinates are JSON numbers: a string such as
    ``"120.172"`` is refused (422), as is any other value that is not a number."""

    model_config = ConfigDict(strict=True)  # no "120.172" for 120.172, no true for 1

    crs: str = Field("wgs84", description=CRS_HELP)
    points: list[tuple[float, float]] = Field(
        description="[[lon, lat], ...] in the given crs: JSON numbers (not strings)"
    )
    errors: Literal["fail", "report"] = Field(
        "fail",
        description="fail: one bad point fails the batch (422 naming the bad points); report: "
        'every point answers, a bad one with {"error": reason}',
    )


class PointError(BaseModel):
    """A point that cannot be located (``"errors": "report"``): why."""

    error: str = Field(description="what is wrong with this point and how to fix it")


class LocateBatchResult(BaseModel):
    """One result per point, in input order."""

    results: list[Located | PointError] = Field(
        description="the owners of each point; with errors=report, {error} for a bad one"
    )
    failed: int | None = Field(
        None, description='with errors=report: how many points answer {"error": …}'
    )


def _json(obj: Any) -> Response:
    """A JSON answer serialised once (the documented model is not re-validated)."""
    return Response(
        json.dumps(obj, ensure_ascii=False, separators=(",", ":")), media_type="application/json"
    )


_SLICE = 2000  # results serialised per json.dumps call in `_results`


def _results(results: list[dict[str, Any]], failed: int | None = None) -> Response:
    """``{"results": [...]}`` (and ``"failed": n`` when given), serialised ``_SLICE`` results
    at a time: one `json.dumps` call over 100,000 results holds the GIL (and so the event
    loop, and every light request) for hundreds of ms; between slices the thread hands it back.

    >>> _results([{"a": 1}] * 3).body
    b'{"results":[{"a":1},{"a":1},{"a":1}]}'
    >>> _results([]).body
    b'{"results":[]}'
    """
    parts = [
        json.dumps(results[i : i + _SLICE], ensure_ascii=False, separators=(",", ":"))[1:-1]
        for i in range(0, len(results), _SLICE)
    ]
    tail = "]}" if failed is None else f'],"failed":{failed}}}'
    return Response('{"results":[' + ",".join(parts) + tail, media_type="application/json")


@router.get(
    "/locate",
    response_model=None,  # documented below; the hot path skips re-validation
    responses={200: {"model": Located}},
    summary="The street, community, grid and micro-grid that own a point",
)
async def locate_one(
    current: Annotated[Atlas, Depends(atlas)],
    lon: Annotated[float, Query(description="longitude (x)", examples=[120.172])],
    lat: Annotated[float, Query(description="latitude (y)", examples=[30.187])],
    crs: Annotated[str, Query(description=CRS_HELP)] = "wgs84",
) -> Response:
    """The street, community, grid and micro-grid that own one point."""
    # on the event loop: a single point takes tens of microseconds, less than a thread hop
    return _json(locate_points(current, np.array([lon]), np.array([lat]), crs)[0])


async def _raw_body(request: Request) -> bytes:
    """The body as sent (reading it is cheap; parsing 100,000 points is not)."""
    return await request.body()


_NOT_A_NUMBER = "must be a JSON number, not a string: drop the quotes"


def _worded(error: Any) -> Any:
    """A pydantic error, said plainly where a coordinate is a string."""
    if error.get("type") == "float_type" and isinstance(error.get("input"), str):
        return {**error, "msg": f"Input {_NOT_A_NUMBER}"}
    return error


def _batch(raw: bytes) -> tuple[LocateBatch, dict[int, str]]:
    """The body parsed and validated at once by pydantic, in the route's thread rather than on
    the event loop (FastAPI's own parsing would hold the loop, and every light request, for
    hundreds of ms); a bad body is a 422 as FastAPI's. With ``"errors": "report"``, points
    that are not a pair of numbers do not fail the batch: they come back by index with why
    (their place in ``points`` holds NaN)."""
    try:
        return LocateBatch.model_validate_json(raw), {}
    except ValidationError as exc:
        errors = [_worded(e) for e in exc.errors(include_url=False)]
        reported = _reported(raw, errors)
        if reported is None:
            raise RequestValidationError([_in_body(e) for e in errors]) from None
        return reported


def _reported(raw: bytes, errors: list[Any]) -> tuple[LocateBatch, dict[int, str]] | None:
    """The batch without its bad points, when the body asks ``"errors": "report"`` and every
    error is inside one point; else None (the body fails as a whole)."""
    if any(len(e["loc"]) < 2 or e["loc"][0] != "points" for e in errors):
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("errors") != "report":
        return None
    invalid: dict[int, str] = {}
    for e in errors:
        invalid.setdefault(e["loc"][1], _point_error(e))
    points = body["points"]
    for i in invalid:
        points[i] = (math.nan, math.nan)
    crs = body.get("crs", "wgs84")
    return LocateBatch.model_construct(crs=crs, points=points, errors="report"), invalid


def _point_error(error: Any) -> str:
    """Why one point of a batch is refused, for its ``{"error": …}``.

    >>> _point_error({"loc": ("points", 3, 0), "msg": "Input must be a number", "input": "1"})
    "lon: Input must be a number (got '1')"
    >>> _point_error({"loc": ("points", 3), "msg": "Input should be a valid array"})
    'the point: Input should be a valid array (send [lon, lat], two JSON numbers)'
    """
    loc = error["loc"]
    if len(loc) > 2 and loc[2] in (0, 1):
        got = error.get("input")
        shown = f" (got {got!r})" if isinstance(got, str) and len(got) <= 60 else ""
        return f"{('lon', 'lat')[loc[2]]}: {error['msg']}{shown}"
    return f"the point: {error['msg']} (send [lon, lat], two JSON numbers)"


def _in_body(error: Any) -> dict[str, Any]:
    """A pydantic error as FastAPI words a body's: located in ``body``, and not echoing a body
    that is not JSON (raw bytes, perhaps not even text) as FastAPI does not."""
    raw = isinstance(error.get("input"), bytes)
    return {**error, "loc": ("body", *error["loc"]), **({"input": {}} if raw else {})}


@router.post(
    "/locate",
    response_model=None,  # documented below; 100,000 results skip re-validation
    responses={200: {"model": LocateBatchResult}},
    summary="Locate many points at once (results in input order)",
    dependencies=[Depends(require("anonymous"))],  # a read, though a POST
    openapi_extra={  # the body is parsed in `_batch`
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": LocateBatch.model_json_schema()}},
        }
    },
)
def locate_many(
    request: Request,
    raw: Annotated[bytes, Depends(_raw_body)],
    current: Annotated[Atlas, Depends(atlas)],
) -> Response:
    """Locate many points (413 over ``max_batch_points``). With ``"errors": "report"``, a
    bad point answers ``{"error": reason}`` in its place and the others are located."""
    body, invalid = _batch(raw)
    limit = request.app.state.settings.max_batch_points
    if len(body.points) > limit:
        raise PayloadTooLarge(
            f"{len(body.points)} points in one request; send at most {limit} per request"
        )
    pts = np.asarray(body.points, dtype=np.float64).reshape(-1, 2)
    if body.errors == "fail":
        return _results(locate_points(current, pts[:, 0], pts[:, 1], body.crs))
    results, failed = locate_points_report(current, pts[:, 0], pts[:, 1], body.crs, invalid)
    return _results(results, failed)
