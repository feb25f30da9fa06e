"""Who may see which field: the one table every surface derives its fields from.

Roles, in increasing trust: ``anonymous`` < ``officer`` < ``planner`` < ``admin``
(`geo.store.users.ROLES`). A field of a layer (`geo.model.TABLES`) is public unless
`RESTRICTED` names the least role that may see it; a caller of that role or a more trusted one
sees it, anyone else gets answers *without* it (the key is absent, not null) and may not filter
or sort by it (a filter on a hidden field would leak its values).

Every surface asks here: the OGC items (JSON, HTML, schema, queryables and property filters,
`geo.api.features`), the vector tiles and PMTiles exports (`geo.tiles.attributes`: tiles are
the same for every caller, so they carry public fields only unless an operator's export asks
for more), the owner look-up and the people views (`geo.api.enterprises`, `geo.api.people`,
`geo.api.grids`), search and the maps (which show public fields only). `geo export LAYER` on
the command line is run by the operator on the store itself and writes every field.

>>> visible_fields("enterprises", "anonymous")[-2:]
('chain', 'source_crs')
>>> "employees" in visible_fields("enterprises", "officer")
True
>>> hidden_fields("officers", "anonymous")
('phone',)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from functools import cache

from geo.model import TABLES, LayerSpec
from geo.store.users import ROLES

RANK = {role: i for i, role in enumerate(ROLES)}
PUBLIC = ROLES[0]  # anonymous: what tiles, maps and anonymous answers carry

# layer -> field -> the least role that may see it. Every field not listed is public.
RESTRICTED: dict[str, dict[str, str]] = {
    "enterprises": {"employees": "officer"},  # enterprise details (从业人数)
    "officers": {"phone": "officer"},  # personal data
}


def _check_role(role: str) -> str:
    if role not in RANK:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return role


def may_see(layer: str, field: str, role: str) -> bool:
    """Whether a caller with ``role`` may see ``field`` of ``layer``."""
    least = RESTRICTED.get(layer, {}).get(field, PUBLIC)
    return RANK[_check_role(role)] >= RANK[least]


@cache
def visible_fields(layer: str, role: str) -> tuple[str, ...]:
    """The fields of ``layer`` (in the spec's order, ``id`` first) a ``role`` may see."""
    return tuple(f for f in TABLES[layer].field_names if may_see(layer, f, role))


@cache
def hidden_fields(layer: str, role: str) -> tuple[str, ...]:
    """The restricted fields of ``layer`` that ``role`` may not see."""
    return tuple(f for f in RESTRICTED.get(layer, {}) if not may_see(layer, f, role))


@cache
def visible_spec(spec: LayerSpec, role: str) -> LayerSpec:
    """``spec`` with only the fields ``role`` may see (the same object when it sees all)."""
    hidden = hidden_fields(spec.name, role)
    if not hidden:
        return spec
    return replace(spec, fields=tuple(f for f in spec.fields if f.name not in hidden))


def least_role(layer: str, field: str) -> str:
    """The least role that may see ``field`` of ``layer`` (``anonymous`` when it is public)."""
    return RESTRICTED.get(layer, {}).get(field, PUBLIC)


def only_visible(layer: str, names: Iterable[str], role: str = PUBLIC) -> list[str]:
    """``names`` without those ``role`` may not see (columns of a view; order kept)."""
    return [n for n in names if may_see(layer, n, role)]


def public(layer: str, names: Iterable[str]) -> list[str]:
    """``names``, checked to be public fields of ``layer`` (for views every caller gets:
    search, maps, the enterprise lists of officers, grids and micro-grids).

    >>> public("enterprises", ["id", "name", "employees"])
    Traceback (most recent call last):
    ...
    ValueError: enterprises.employees is for officer+ callers, not a public view
    """
    names = list(names)
    for n in names:
        if not may_see(layer, n, PUBLIC):
            raise ValueError(
                f"{layer}.{n} is for {least_role(layer, n)}+ callers, not a public view"
            )
    return names
