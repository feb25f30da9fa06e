"""Search: officers, parks, buildings and enterprises by Chinese name, pinyin or initials.

Results are the same for every caller, so they show public fields only: the index is built
from the columns `geo.visibility.public` admits (an officer's role, never its phone).

Each hit says where a map shows it: ``lon``/``lat`` (an enterprise's point, a building's or
park's point on its surface, an officer's first building; ``coords=gcj02`` shifts them for the
amap base map) and ``ref``, the id of the map feature to open (an officer's building). The maps'
search box asks this endpoint as the user types (``community=`` keeps a community map's search
to its own community), instead of loading every entry up front.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, Depends, Query

from geo import crs, visibility
from geo.api.deps import atlas
from geo.api.people import per_atlas
from geo.atlas import Atlas
from geo.errors import InvalidInput, NotFound
from geo.search import KINDS, SearchIndex

router = APIRouter(tags=["search"])


# kind, table, the column shown as the hit's detail
_SOURCES = (
    ("officer", "officers", "role"),
    ("building", "buildings", "address"),
    ("park", "parks", "address"),
    ("enterprise", "enterprises", "address"),
)


def _build(current: Atlas) -> SearchIndex:
    """The index of the public columns (id, name and detail) of each searched table."""
    return SearchIndex.build(
        (kind, current.tables[table][visibility.public(table, ["id", "name", detail])], detail)
        for kind, table, detail in _SOURCES
    )


def search_index(current: Atlas) -> SearchIndex:
    """The name / pinyin / initials index of this atlas (built once)."""
    return per_atlas(current, "search", _build)


Place = tuple[float, float, str, str | None]  # lon, lat, ref, community id


@dataclass(frozen=True)
class Places:
    """Where each row of the search index is on a map, and its community."""

    by_key: dict[tuple[str, str], Place]  # (kind, id) -> place
    community: np.ndarray  # per index row: its community id (None outside every community)


def _polygon_places(current: Atlas, table: str) -> dict[str, Place]:
    """id -> place of the buildings or parks: a point on the surface, the grid's community."""
    frame = current.tables[table]
    if not len(frame):
        return {}
    grids = current.tables["grids"]
    community = dict(zip(grids["id"], grids["community_id"], strict=True))
    pts = shapely.point_on_surface(np.asarray(frame.geometry, dtype=object))
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    return {
        i: (float(x[k]), float(y[k]), i, community.get(g))
        for k, (i, g) in enumerate(zip(frame["id"], frame["grid_id"], strict=True))
    }


def _build_places(current: Atlas, index: SearchIndex) -> Places:
    """The places of every searchable row of ``index`` (officers at their first building)."""
    buildings = _polygon_places(current, "buildings")
    by_key: dict[tuple[str, str], Place] = {("building", i): p for i, p in buildings.items()}
    by_key.update({("park", i): p for i, p in _polygon_places(current, "parks").items()})
    ent = current.enterprises
    comm = current.ids_of("community", ent["_community"].to_numpy())
    for i, x, y, c in zip(ent["id"], ent["lon"], ent["lat"], comm, strict=True):
        by_key[("enterprise", str(i))] = (float(x), float(y), str(i), c)
    for o in current.tables["officers"].itertuples(index=False):
        first = next((b.strip() for b in str(o.building_ids or "").split(";") if b.strip()), "")
        if first in buildings:
            by_key[("officer", o.id)] = buildings[first]
    t = index.table
    community = np.array(
        [by_key.get((k, i), (0, 0, "", None))[3] for k, i in zip(t["kind"], t["id"], strict=True)],
        dtype=object,
    )
    return Places(by_key, community)


def places(current: Atlas) -> Places:
    """The map places of this atlas's search rows (built once)."""
    index = search_index(current)  # first: per_atlas holds its lock while it builds
    return per_atlas(current, "search-places", lambda a: _build_places(a, index))


def _within(current: Atlas, community: str | None) -> np.ndarray | None:
    """The mask of the rows in ``community`` (None: every row); 404 for an unknown one."""
    if community is None:
        return None
    comms = current.tables["communities"]
    if not (comms["id"] == community).any():
        known = ", ".join(comms["id"]) or "none yet"
        raise NotFound(f"no community {community!r}: known ids are {known}")
    return places(current).community == community


def _located(current: Atlas, hits: list[dict[str, Any]], coords: str) -> list[dict[str, Any]]:
    """``hits`` with ``lon``, ``lat`` and ``ref`` (null for an officer without a building)."""
    found = [places(current).by_key.get((h["kind"], h["id"])) for h in hits]
    lon = np.array([p[0] if p else np.nan for p in found], dtype=float)
    lat = np.array([p[1] if p else np.nan for p in found], dtype=float)
    if coords == "gcj02" and len(hits):
        lon, lat = crs.from_wgs84(lon, lat, "gcj02")
    for h, p, x, y in zip(hits, found, lon, lat, strict=True):
        ok = p is not None and not (pd.isna(x) or pd.isna(y))
        h["lon"] = round(float(x), 7) if ok else None
        h["lat"] = round(float(y), 7) if ok else None
        h["ref"] = p[2] if p else None
    return hits


@router.get("/search", summary="Officers, parks, buildings and enterprises by name or pinyin")
def search(
    current: Annotated[Atlas, Depends(atlas)],
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=100,
            description="Chinese name, pinyin (haikang) or initials (hzhk)",
        ),
    ],
    kind: Annotated[
        list[Literal["officer", "building", "park", "enterprise"]] | None,
        Query(description=f"only these kinds ({', '.join(KINDS)}); repeat for several"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    community: Annotated[
        str | None, Query(max_length=100, description="only hits in this community (an id)")
    ] = None,
    coords: Annotated[
        Literal["wgs84", "gcj02"],
        Query(description="lon/lat of the hits: wgs84, or gcj02 (for the amap base map)"),
    ] = "wgs84",
) -> dict[str, Any]:
    """The best matches of ``q``, best first, each with where a map shows it."""
    if not q.strip():
        raise InvalidInput("q is blank: type a name, its pinyin or its initials")
    within = _within(current, community)
    hits = search_index(current).search(q, kinds=kind, limit=limit, within=within)
    return {"query": q, "count": len(hits), "results": _located(current, hits, coords)}
