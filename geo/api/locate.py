"""Which street, community, grid and micro-grid own a point (GET one, POST many)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from geo.api.auth import require
from geo.api.deps import atlas
from geo.atlas import Atlas
from geo.errors import PayloadTooLarge
from geo.service.locate import locate_points

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
    """Points to locate at once, in one CRS."""

    crs: str = Field("wgs84", description=CRS_HELP)
    points: list[tuple[float, float]] = Field(description="[[lon, lat], ...] in the given crs")


class LocateBatchResult(BaseModel):
    """One result per point, in input order."""

    results: list[Located]


def _json(obj: Any) -> Response:
    """A JSON answer serialised once (the documented model is not re-validated)."""
    return Response(
        json.dumps(obj, ensure_ascii=False, separators=(",", ":")), media_type="application/json"
    )


_SLICE = 2000  # results serialised per json.dumps call in `_results`


def _results(results: list[dict[str, Any]]) -> Response:
    """``{"results": [...]}``, serialised ``_SLICE`` results at a time: one `json.dumps` call
    over 100,000 results holds the GIL (and so the event loop, and every light request) for
    hundreds of ms; between slices the thread hands it back.

    >>> _results([{"a": 1}] * 3).body
    b'{"results":[{"a":1},{"a":1},{"a":1}]}'
    >>> _results([]).body
    b'{"results":[]}'
    """
    parts = [
        json.dumps(results[i : i + _SLICE], ensure_ascii=False, separators=(",", ":"))[1:-1]
        for i in range(0, len(results), _SLICE)
    ]
    return Response('{"results":[' + ",".join(parts) + "]}", media_type="application/json")


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


def _batch(raw: bytes) -> LocateBatch:
    """The body parsed and validated at once by pydantic, in the route's thread rather than on
    the event loop (FastAPI's own parsing would hold the loop, and every light request, for
    hundreds of ms); a bad body is the same 422 as FastAPI's."""
    try:
        return LocateBatch.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError([_in_body(e) for e in exc.errors(include_url=False)]) from None


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
    """Locate many points (413 over ``max_batch_points``)."""
    body = _batch(raw)
    limit = request.app.state.settings.max_batch_points
    if len(body.points) > limit:
        raise PayloadTooLarge(
            f"{len(body.points)} points in one request; send at most {limit} per request"
        )
    pts = np.asarray(body.points, dtype=np.float64).reshape(-1, 2)
    return _results(locate_points(current, pts[:, 0], pts[:, 1], body.crs))
