"""Grids: read one (`GET /grids/{id}`, open), split a community into grids: propose
(`/grids/split`) and store (`/grids/commit`).

Both take ``{"count": K}`` or ``{"per_grid": N}`` (old name ``enterprises_per_grid``), and
optionally ``"weight"`` (``enterprises`` | ``employees`` | ``floor_area``). The split is
deterministic, so a commit recomputes exactly the proposal of the same store version. A commit sends
``If-Match: <store version>`` (the ``version`` of the proposal, also its ``ETag``): without it
the answer is 428, and when the store has moved on it is 412 instead of committing a split you
have not seen.
The split and the commit need a ``planner`` token (`geo.api.auth`); the commit's author is the
token's user.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Header, Path, Request, Response
from pydantic import BaseModel, Field, model_validator
from starlette.concurrency import run_in_threadpool

from geo import crs
from geo.api.auth import Planner, Role, audit_context, require
from geo.api.deps import atlas
from geo.api.people import (
    PARK_TEAM_NOTE,
    Limit,
    Offset,
    People,
    enterprise_items,
    officer_view,
    page_of,
    parents,
    people_index,
    position,
    team_fields,
)
from geo.api.versions import Publisher, if_match
from geo.atlas import Atlas
from geo.errors import NotFound
from geo.service import grids as grid_actions

router = APIRouter(tags=["grids"])
_PLANNER = [Depends(require("planner"))]  # the split tools; reading a grid is open


class SplitBody(BaseModel):
    """How to split: a grid count or a weight per grid, and what to balance."""

    count: int | None = Field(None, ge=1, le=999, description="number of grids")
    per_grid: float | None = Field(
        None, gt=0, description="about this much of `weight` per grid (the count follows)"
    )
    enterprises_per_grid: float | None = Field(
        None, gt=0, description="the old name of per_grid", json_schema_extra={"deprecated": True}
    )
    weight: Literal["enterprises", "employees", "floor_area"] = "enterprises"

    @model_validator(mode="after")
    def _one_of(self) -> SplitBody:
        given = [self.count, self.per_grid, self.enterprises_per_grid]
        if sum(v is not None for v in given) != 1:
            raise ValueError('give exactly one of "count" or "per_grid"')
        return self

    @property
    def weight_per_grid(self) -> float | None:
        """``per_grid`` under either of its names."""
        return self.per_grid if self.per_grid is not None else self.enterprises_per_grid


class Balance(BaseModel):
    """How even the grids' weights are."""

    ratio: float | None = Field(description="max/min of the grids' weights (null: a grid has 0)")
    max: float | None
    min: float | None


class CurrentGrid(BaseModel):
    """A grid the community has now."""

    id: str
    code: str
    weight: float


class Current(BaseModel):
    """The community's grids now, to compare the proposal with."""

    count: int
    balance: Balance
    grids: list[CurrentGrid]


class ProposedGrid(BaseModel):
    """One grid of the proposal."""

    id: str
    name: str
    code: str
    status: Literal["kept", "new"]
    replaces: str | None = Field(description="the old grid whose code (and id) it keeps")
    weight: float
    enterprises: int
    area_m2: float
    blocks: int
    geometry: dict[str, Any] = Field(description="GeoJSON geometry, WGS84")


class SplitResult(BaseModel):
    """A proposed (or committed) split and the store version it belongs to."""

    community: str
    version: int = Field(description="the store version the split was computed on")
    committed: bool
    weight: str
    count: int
    blocks: int = Field(description="street blocks of the community")
    units: int = Field(description="blocks after merging those a park or building straddles")
    balance: Balance
    current: Current
    grids: list[ProposedGrid]
    retired: list[str] = Field(description="grid codes retired in this community (never reused)")
    seconds: float
    notes: list[str] = Field(
        default_factory=list,
        description="why the split differs from what was asked (e.g. fewer grids than the "
        "weight per grid asks for: a community has at most one grid per unit)",
    )
    warnings: list[str] = Field(
        default_factory=list, description="after a commit: servers that did not catch up in time"
    )


@router.post(
    "/communities/{community_id}/grids/split",
    dependencies=_PLANNER,
    response_model=SplitResult,
    summary="Propose grids for a community: street blocks, parks whole, balanced",
)
async def propose(
    community_id: str,
    body: SplitBody,
    response: Response,
    current: Annotated[Atlas, Depends(atlas)],
) -> dict[str, Any]:
    """Propose a split on the serving atlas's version (also the answer's ``ETag``)."""
    split = await run_in_threadpool(
        grid_actions.propose_split, current.tables, current.version, community_id,
        count=body.count, per_grid=body.weight_per_grid, weight=body.weight,
    )  # fmt: skip
    response.headers["ETag"] = f'"{split.version}"'
    return split.summary()


@router.post(
    "/communities/{community_id}/grids/commit",
    dependencies=_PLANNER,
    response_model=SplitResult,
    summary="Split a community into grids and store them (micro-grids re-pointed and re-coded)",
)
def commit(
    community_id: str,
    body: SplitBody,
    request: Request,
    response: Response,
    user: Planner,
    current: Annotated[Atlas, Depends(atlas)],
    if_match_header: Annotated[
        str | None,
        Header(alias="If-Match", description="the store version of the proposal you reviewed"),
    ] = None,
) -> dict[str, Any]:
    """Commit the split if ``If-Match`` is the store version of the proposal (428 without it);
    every server answers from the new version before the 2xx."""
    grid_actions.check_community(current.tables, community_id)  # an unknown one: 404, not 428
    expected = if_match(
        if_match_header,
        f"the store version of the split you reviewed (POST /communities/{community_id}/grids/"
        "split returns it as version and ETag)",
    )
    split = grid_actions.commit_split(
        request.app.state.atlas.store, community_id,
        count=body.count, per_grid=body.weight_per_grid, weight=body.weight,
        author=user.name, expected_version=expected,
        audit=audit_context(request, target=community_id),
        publish=Publisher(request),
    )  # fmt: skip
    response.headers["ETag"] = f'"{split.version}"'
    return {**split.summary(), "warnings": split.publish_warnings}


# -- reading a grid (GET /grids/{grid_id}, open to every caller) ------------------------------
def _microgrid_items(
    current: Atlas, people: People, mpos: np.ndarray, per_micro: np.ndarray, role: str
) -> tuple[list[dict[str, Any]], dict[str, None]]:
    """The grid's micro-grids with their teams and enterprise counts, and their officers' ids."""
    micro = current.levels["microgrid"].table
    microgrids = []
    officer_ids: dict[str, None] = {}
    for m in mpos:
        row = micro.iloc[m]
        item = {**current.levels["microgrid"].describe(int(m)), "enterprise_count": 0}
        item["enterprise_count"] = int(per_micro[m])
        if row["kind"] == "park":
            item |= {"team": [], "team_complete": None, "missing_roles": []}
            item["team_note"] = PARK_TEAM_NOTE
        else:
            item |= team_fields(people, row["id"], role)
            officer_ids.update(dict.fromkeys(o["id"] for o in item["team"]))
        microgrids.append(item)
    return microgrids, officer_ids


def _grid_officers(
    people: People, grid_id: str, officer_ids: dict[str, None], role: str
) -> list[dict[str, Any]]:
    """The officers of the grid's micro-grids and of the buildings inside its parks."""
    grid_buildings = people.buildings.loc[people.buildings["grid_id"] == grid_id, "id"]
    extra = people.pairs.loc[people.pairs["building_id"].isin(grid_buildings), "officer_id"]
    officer_ids = officer_ids | dict.fromkeys(extra)
    return [
        officer_view(people.officers.loc[i].to_dict() | {"id": i}, role)
        for i in sorted(officer_ids)
    ]


@router.get("/grids/{grid_id}", summary="A grid: its micro-grids, teams, officers, enterprises")
def get_grid(
    current: Annotated[Atlas, Depends(atlas)],
    role: Role,
    grid_id: Annotated[str, Path(description="grid id (C01-G01) or 15-digit grid code")],
    limit: Limit = 1000,
    offset: Offset = 0,
) -> dict[str, Any]:
    """A grid: its micro-grids with their teams, its officers and a page of its enterprises."""
    pos = position(current, "grid", grid_id)
    if pos is None:
        raise NotFound(f"no grid with id or code {grid_id!r} (ids look like C01-G01)")
    people = people_index(current)
    g = current.levels["grid"].table.iloc[pos]
    micro = current.levels["microgrid"].table
    mpos = np.flatnonzero((micro["grid_id"] == g["id"]).to_numpy())
    ent = current.enterprises
    in_grid = np.flatnonzero(ent["_grid"].to_numpy() == pos)
    per_micro = np.bincount(ent["_microgrid"].to_numpy()[in_grid] + 1, minlength=len(micro) + 1)[1:]
    microgrids, officer_ids = _microgrid_items(current, people, mpos, per_micro, role)
    items = enterprise_items(current, in_grid)
    in_micro = int((ent["_microgrid"].to_numpy()[in_grid] >= 0).sum())
    return {
        **parents(current, g["id"]),
        "area_m2": round(float(crs.to_metric(g.geometry).area), 1),
        "microgrids": microgrids,
        "officers": _grid_officers(people, g["id"], officer_ids, role),
        "enterprises": {
            "total": len(in_grid),
            "in_microgrids": in_micro,
            "outside_microgrids": len(in_grid) - in_micro,
            "offset": offset,
            "items": page_of(items, offset, limit),
        },
    }
