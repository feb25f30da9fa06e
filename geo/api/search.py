"""Search: officers, parks, buildings and enterprises by Chinese name, pinyin or initials.

Results are the same for every caller, so they show public fields only: the index is built
from the columns `geo.visibility.public` admits (an officer's role, never its phone).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from geo import visibility
from geo.api.deps import atlas
from geo.api.people import per_atlas
from geo.atlas import Atlas
from geo.errors import InvalidInput
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
) -> dict[str, Any]:
    """The best matches of ``q``, best first."""
    if not q.strip():
        raise InvalidInput("q is blank: type a name, its pinyin or its initials")
    hits = search_index(current).search(q, kinds=kind, limit=limit)
    return {"query": q, "count": len(hits), "results": hits}
