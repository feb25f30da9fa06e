"""Create, replace, update and delete one feature of a layer (OGC API – Features Part 4).

One action per write, framework-neutral, for the layers planners maintain besides communities
(``roads grids parks buildings``) and for ``enterprises`` (admins): the feature is read as an
import reads a row (`geo.io`: fields coerced to the layer's spec, geometry parsed, checked and
wound as RFC 7946 says, ids checked), the references between layers are checked as an import
checks them (a building's grid and park must exist; a grid that buildings, parks or officers
still refer to cannot be deleted), and the layer is written as one new store version with its
author, reason and audit row, then published (read after write). A refused write stores
nothing. Communities are written by `geo.service.boundaries` (validation, overlaps, history,
impact warnings); `write_community` maps a Part 4 body onto it.

Versions: a community's version is its history version (`Store.community_version`); every
other feature's version is a digest of its stored fields and geometry (`feature_tag`), so a
write based on an older copy of the feature (``if_match``) is a `StaleFeature` (412) while
writes to other features do not disturb it. Without ``if_match`` a write applies to whatever
the feature is now: the store serialises writes, so none is lost half-way, and the history and
audit log keep every version.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import crs as crs_mod
from geo.errors import Conflict, Forbidden, InvalidInput, NotFound, PreconditionFailed
from geo.ids import check_reason, id_problem, shown
from geo.io import dangling_references, load_layer_frame, read_layer_doc
from geo.model import LAYERS, LayerSpec
from geo.service import boundaries
from geo.store.base import StaleVersionError, Store

#: After the write: wait until the servers answer from the new version; the warnings to report.
Publish = Callable[[int], list[str]]

#: the role each editable layer's writes need (streets are not edited through features)
WRITE_ROLES = {
    "communities": "planner",
    "grids": "planner",
    "parks": "planner",
    "buildings": "planner",
    "roads": "planner",
    "enterprises": "admin",
}
#: fields the service computes: sent values are ignored (a client echoes what it read)
COMPUTED = {"enterprises": ("credit_code_valid", "source_crs")}
#: prefixes of the ids the service gives a new feature sent without one
_ID_PREFIX = {"roads": "R", "parks": "P", "buildings": "B", "enterprises": "E"}
_WRITE_ATTEMPTS = 3  # a write that meets another writer's commit is applied again on top


class FeatureRefused(InvalidInput):
    """A feature the layer's checks refuse (422): a bad field, geometry or reference."""


class FeatureExists(Conflict):
    """A new feature whose id the layer holds already (409)."""


class NoSuchFeature(NotFound):
    """A feature the layer does not hold (404)."""


class StaleFeature(PreconditionFailed):
    """``If-Match`` names a version of the feature that is no longer the current one (412)."""


class NotEditable(Forbidden):
    """A layer that is not edited through features (streets), or a caller without the role."""


@dataclass(frozen=True)
class BodyCrs:
    """The CRS a body's coordinates are in: a `geo.crs` name, and whether its first axis is
    latitude or northing (EPSG:4326, EPSG:4490, EPSG:4549), so the pairs are swapped first."""

    name: str = "wgs84"
    swap: bool = False


@dataclass(frozen=True)
class FeatureWrite:
    """A write done (or found to change nothing): the feature, the store version that holds
    it, what the checks and the publish reported, and for communities their history version."""

    layer: str
    feature_id: str
    action: str  # create | replace | update | delete
    store_version: int
    warnings: list[str] = field(default_factory=list)
    unchanged: bool = False
    note: str = ""
    community_version: int | None = None


# ------------------------------------------------------------------------------- versions


def _plain(value: Any) -> Any:
    """A cell as a plain JSON value (None for every kind of missing)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def feature_tag(row: pd.Series, spec: LayerSpec) -> str:
    """The version of a stored feature other than a community: a digest of the fields of
    ``spec`` (the caller's view of the layer) and the geometry's WKB.

    >>> import shapely
    >>> from geo.model import PARKS
    >>> row = pd.Series({"id": "P1", "name": "园", "grid_id": None, "code": None,
    ...                  "address": None, "geometry": shapely.box(0, 0, 1, 1)})
    >>> len(feature_tag(row, PARKS)), feature_tag(row, PARKS) == feature_tag(row.copy(), PARKS)
    (16, True)
    """
    values = [_plain(row.get(name)) for name in spec.field_names]
    digest = hashlib.sha256(json.dumps(values, ensure_ascii=False, default=str).encode())
    geometry = row.get("geometry")
    if geometry is not None:
        digest.update(shapely.to_wkb(geometry, output_dimension=2))
    return digest.hexdigest()[:16]


def tag_of(value: str) -> str | None:
    """The entity tag an ``If-Match`` header names (``"x"``, ``W/"x"`` or ``x``); None for
    ``*`` (any current version).

    >>> tag_of('W/"3"'), tag_of("ab12"), tag_of("*") is None
    ('3', 'ab12', True)
    """
    text = value.strip()
    if text == "*":
        return None
    return text.removeprefix("W/").strip('"')


def _row_position(table: pd.DataFrame, spec: LayerSpec, fid: str) -> int:
    """The position of feature ``fid`` in ``table``; `NoSuchFeature` if there is none."""
    problem = id_problem(fid)
    if problem is not None:
        raise NoSuchFeature(f"no feature {shown(fid)} in {spec.name}: the id {problem}")
    hits = np.flatnonzero((table["id"] == fid).to_numpy(dtype=bool))
    if not len(hits):
        raise NoSuchFeature(
            f"no feature {fid!r} in collection {spec.name!r}; list them at "
            f"/collections/{spec.name}/items"
        )
    return int(hits[0])


def _check_tag(spec: LayerSpec, fid: str, current: str, if_match: str | None) -> None:
    """`StaleFeature` unless ``if_match`` (None: no header) names the current version."""
    if if_match is None:
        return
    wanted = tag_of(if_match)
    if wanted is not None and wanted != current:
        raise StaleFeature(
            f"{spec.name} {fid} has changed since you read it (If-Match {shown(if_match)}, "
            f'current ETag "{current}"): GET it again, check the change and resend with '
            f'If-Match: "{current}"'
        )


# ------------------------------------------------------------------------------ the body


def to_lonlat(geometry: Any, crs: BodyCrs) -> Any:
    """A GeoJSON geometry in ``crs`` as a GeoJSON geometry in WGS84 lon/lat; a geometry that
    cannot be read is returned as is, for the layer's reader to explain."""
    if crs == BodyCrs() or not isinstance(geometry, dict):
        return geometry
    try:
        geom = shapely.from_geojson(json.dumps(geometry))
    except (shapely.errors.GEOSException, ValueError, TypeError):
        return geometry
    if geom is None or geom.is_empty:
        return geometry

    def convert(xy: np.ndarray) -> np.ndarray:
        x, y = (xy[:, 1], xy[:, 0]) if crs.swap else (xy[:, 0], xy[:, 1])
        return np.column_stack(crs_mod.to_wgs84(x, y, crs.name))

    with np.errstate(all="ignore"):
        moved = shapely.transform(shapely.force_2d(geom), convert)
    return json.loads(shapely.to_geojson(moved))


def _check_body(spec: LayerSpec, feature: Any, path_id: str | None) -> tuple[dict, Any]:
    """A Part 4 body's properties (computed fields dropped) and its id (top level or in the
    properties; None when it has none); 422 for anything that is not such a Feature."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        kind = feature.get("type") if isinstance(feature, dict) else type(feature).__name__
        raise FeatureRefused(
            f"the body must be a GeoJSON Feature, got {kind!r}; send "
            '{"type": "Feature", "geometry": {...}, "properties": {...}}'
        )
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise FeatureRefused(f"properties must be an object, got {type(props).__name__}")
    unknown = sorted(set(props) - set(spec.field_names))
    if unknown:
        raise FeatureRefused(
            f"{spec.name} has no field {', '.join(map(repr, unknown))}; its fields are "
            f"{', '.join(spec.field_names)}"
        )
    fid = feature.get("id", props.get("id"))
    if "id" in props and feature.get("id") not in (None, props["id"]):
        raise FeatureRefused(
            f"the feature's id {shown(feature['id'])} and its properties' id "
            f"{shown(props['id'])} differ; send one id"
        )
    if path_id is not None and fid is not None and fid != path_id:
        raise FeatureRefused(
            f"the body's id {shown(fid)} is not the id in the path ({path_id}); ids do not "
            "change: create a new feature instead"
        )
    computed = COMPUTED.get(spec.name, ())
    return {k: v for k, v in props.items() if k not in computed and k != "id"}, fid


def _next_id(table: pd.DataFrame, layer: str, props: Mapping[str, Any]) -> str:
    """The id of a new feature sent without one: the layer's prefix and the number after the
    highest (a grid: ``<community>-G`` and two digits).

    >>> _next_id(pd.DataFrame({"id": ["C01-G01", "C01-G03"]}), "grids", {"community_id": "C01"})
    'C01-G04'
    >>> _next_id(pd.DataFrame({"id": ["E000009", "X"]}), "enterprises", {})
    'E000010'
    """
    prefix = _ID_PREFIX.get(layer, layer[:1].upper())
    if layer == "grids":
        community = props.get("community_id")
        if not isinstance(community, str) or id_problem(community) is not None:
            raise FeatureRefused(
                "a new grid needs its community_id (the community it divides); fill it in"
            )
        prefix = f"{community}-G"
    pattern = re.compile(re.escape(prefix) + r"([0-9]+)")
    found = [m[1] for i in table["id"].astype(str) if (m := pattern.fullmatch(i))]
    width = max((len(n) for n in found), default=2)
    return f"{prefix}{max((int(n) for n in found), default=0) + 1:0{width}d}"


def _read_row(
    spec: LayerSpec, fid: str, props: Mapping[str, Any], geometry: Any, crs: BodyCrs
) -> tuple[pd.DataFrame, list[str]]:
    """The feature read as an import reads a row: a one-row frame as the store expects it
    and the warnings; `FeatureRefused` with the reader's reasons when it rejects the row."""
    lonlat = to_lonlat(geometry, crs)
    if spec.name == "enterprises":
        frame, issues = _read_enterprise(fid, props, lonlat)
        if len(frame):
            frame["source_crs"] = crs.name
    else:
        doc = {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "id": fid, "properties": dict(props), "geometry": lonlat}
            ],
        }
        frame, found = read_layer_doc(doc, spec.name, "the request")
        issues = [i.reason for i in found]
    if not len(frame):
        raise FeatureRefused(f"{spec.name} {fid}: " + "; ".join(issues))
    return frame, issues


def _read_enterprise(
    fid: str, props: Mapping[str, Any], geometry: Any
) -> tuple[pd.DataFrame, list[str]]:
    """An enterprise from a Point feature (in WGS84 by now): fields checked, credit code
    flagged, as `geo import enterprises` reads a point layer."""
    point = None
    if isinstance(geometry, dict) and geometry.get("type") == "Point":
        coords = geometry.get("coordinates")
        if (
            isinstance(coords, list)
            and len(coords) >= 2
            and all(isinstance(c, int | float) and not isinstance(c, bool) for c in coords[:2])
        ):
            point = shapely.Point(float(coords[0]), float(coords[1]))
    if point is None:
        raise FeatureRefused(
            f"enterprises {fid}: an enterprise is a point; send "
            '"geometry": {"type": "Point", "coordinates": [lon, lat]}'
        )
    row = {name: props.get(name) for name in LAYERS["enterprises"].field_names}
    row["id"] = fid
    for name in COMPUTED["enterprises"]:
        row.pop(name, None)
    source = gpd.GeoDataFrame([row], geometry=[point], crs="EPSG:4326")
    loaded = load_layer_frame(source, "enterprises", name="the request")
    return loaded.frame, [i.reason for i in loaded.rejected + loaded.warnings]


# ------------------------------------------------------------------------------ the write


def _references(tables: Mapping[str, pd.DataFrame], layer: str, fid: str, action: str) -> None:
    """`FeatureRefused` when, after the change, a row refers to a row no table holds."""
    dangling = dangling_references(tables)
    if not dangling:
        return
    own = [d for d in dangling if d[0] == layer and d[1] == fid]
    if own:
        reasons = "; ".join(
            f"{key} {ref!r} refers to no row of the store" for _, _, key, ref in own
        )
        raise FeatureRefused(f"{layer} {fid}: {reasons}; create that first or fix the id")
    shown_rows = ", ".join(f"{t} {i} ({k})" for t, i, k, _ in dangling[:5])
    more = f" and {len(dangling) - 5} more" if len(dangling) > 5 else ""
    verb = "deleting" if action == "delete" else "changing"
    raise FeatureRefused(
        f"{verb} {layer} {fid} is refused: {len(dangling)} row(s) refer to it ({shown_rows}"
        f"{more}); move or delete them first"
    )


def _replace_row(table: pd.DataFrame, pos: int | None, row: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the row at ``pos`` replaced by ``row`` (None: ``row`` added), by id."""
    kept = table if pos is None else table.drop(index=table.index[pos])
    merged = pd.concat([kept, row.astype(kept.dtypes.to_dict(), errors="ignore")])
    merged = merged.sort_values("id", kind="stable").reset_index(drop=True)
    if isinstance(table, gpd.GeoDataFrame):
        return gpd.GeoDataFrame(merged, geometry="geometry", crs=table.crs)
    return merged


@dataclass(frozen=True)
class _Change:
    """What a write does to one layer, worked out on a snapshot's tables."""

    table: pd.DataFrame  # the layer after the change
    feature_id: str
    warnings: list[str]
    unchanged: bool = False


def _commit(
    store: Store,
    layer: str,
    action: str,
    work: Callable[[Mapping[str, pd.DataFrame]], _Change],
    *,
    author: str,
    reason: str,
    audit: Mapping[str, Any] | None,
    publish: Publish | None,
) -> FeatureWrite:
    """Apply ``work`` to the latest snapshot and write the layer as one new store version;
    a commit by someone else in between is met by applying ``work`` again on top of it."""
    check_reason(reason)
    for attempt in range(_WRITE_ATTEMPTS):
        snapshot = store.snapshot()
        change = work(snapshot.tables)
        if change.unchanged:
            note = f"unchanged: {layer} {change.feature_id} already is what was sent"
            return FeatureWrite(
                layer, change.feature_id, action, snapshot.version, change.warnings, True, note
            )
        tables = {**snapshot.tables, layer: change.table}
        _references(tables, layer, change.feature_id, action)
        try:
            version = store.replace_tables(
                {layer: change.table},  # (the other tables, and what servers made of them, stay)
                author=author,
                reason=reason or f"{action} {layer} {change.feature_id} (OGC API – Features)",
                expected_version=snapshot.version,
                audit={**(audit or {}), "target": change.feature_id},
            )
        except StaleVersionError:
            if attempt + 1 == _WRITE_ATTEMPTS:
                raise
            continue
        warnings = change.warnings + (publish(version) if publish else [])
        return FeatureWrite(layer, change.feature_id, action, version, warnings)
    raise AssertionError("unreachable")  # pragma: no cover


def _layer(layer: str) -> LayerSpec:
    """The spec of a layer this module writes (`NotEditable` for streets, communities)."""
    if layer not in WRITE_ROLES or layer == "communities":
        raise NotEditable(
            f"{layer} is not edited through features; editable collections are "
            f"{', '.join(WRITE_ROLES)}"
        )
    return LAYERS[layer]


# ------------------------------------------------------------------------------ actions


def save_feature(
    store: Store,
    layer: str,
    feature: Any,
    *,
    feature_id: str | None = None,
    crs: BodyCrs = BodyCrs(),
    if_match: str | None = None,
    author: str,
    reason: str = "",
    audit: Mapping[str, Any] | None = None,
    publish: Publish | None = None,
) -> FeatureWrite:
    """Create (``feature_id`` None: POST) or replace (PUT) one feature of ``layer`` with the
    GeoJSON Feature ``feature`` in ``crs``. A create without an id gets the layer's next id;
    a replace of a feature the layer does not hold is `NoSuchFeature`, of one changed since
    ``if_match`` a `StaleFeature`; a feature equal to the stored one is not written."""
    spec = _layer(layer)
    props, body_id = _check_body(spec, feature, feature_id)
    geometry = feature.get("geometry")

    def work(tables: Mapping[str, pd.DataFrame]) -> _Change:
        table = tables[layer]
        if feature_id is None:
            fid = body_id if body_id is not None else _next_id(table, layer, props)
            if not isinstance(fid, str):
                raise FeatureRefused(f"the feature's id must be text, got {shown(fid)}")
            if (table["id"] == fid).any():
                raise FeatureExists(
                    f"{layer} {fid} exists already: PUT /collections/{layer}/items/{fid} "
                    "replaces it, or send another id (or none: the service picks the next)"
                )
            pos = None
        else:
            fid = feature_id
            pos = _row_position(table, spec, fid)
            _check_tag(spec, fid, feature_tag(table.iloc[pos], spec), if_match)
        row, warnings = _read_row(spec, fid, props, geometry, crs)
        if pos is not None and feature_tag(row.iloc[0], spec) == feature_tag(table.iloc[pos], spec):
            return _Change(table, fid, warnings, unchanged=True)
        return _Change(_replace_row(table, pos, row), fid, warnings)

    action = "create" if feature_id is None else "replace"
    return _commit(
        store, layer, action, work, author=author, reason=reason, audit=audit, publish=publish
    )


def merge_patch(current: Mapping[str, Any], patch: Any) -> dict[str, Any]:
    """``current`` (a GeoJSON Feature) with a JSON Merge Patch (RFC 7396) applied: members of
    ``properties`` replace (null removes), ``geometry`` replaces the geometry.

    >>> merge_patch({"type": "Feature", "properties": {"a": 1, "b": 2}, "geometry": None},
    ...             {"properties": {"b": None, "c": 3}})["properties"]
    {'a': 1, 'c': 3}
    """
    if not isinstance(patch, dict):
        raise FeatureRefused(
            f"the patch must be a JSON object, got {type(patch).__name__}; send e.g. "
            '{"properties": {"name": "…"}} or {"geometry": {...}}'
        )
    unknown = sorted(set(patch) - {"type", "id", "properties", "geometry"})
    if unknown:
        raise FeatureRefused(
            f"the patch has member(s) {', '.join(map(repr, unknown))}; a feature has "
            "properties and geometry"
        )
    merged = dict(current)
    props = dict(current.get("properties") or {})
    changes = patch.get("properties") or {}
    if not isinstance(changes, dict):
        raise FeatureRefused(f"properties must be an object, got {type(changes).__name__}")
    for name, value in changes.items():
        if value is None:
            props.pop(name, None)
        else:
            props[name] = value
    merged["properties"] = props
    if "geometry" in patch:
        merged["geometry"] = patch["geometry"]
    if "id" in patch:
        merged["id"] = patch["id"]
    return merged


def stored_feature(row: pd.Series, spec: LayerSpec) -> dict[str, Any]:
    """A stored row as a GeoJSON Feature in WGS84 (every field of ``spec`` but the id)."""
    geometry = row.get("geometry")
    return {
        "type": "Feature",
        "id": row["id"],
        "properties": {n: _plain(row.get(n)) for n in spec.field_names if n != "id"},
        "geometry": None if geometry is None else json.loads(shapely.to_geojson(geometry)),
    }


def update_feature(
    store: Store,
    layer: str,
    feature_id: str,
    patch: Any,
    *,
    crs: BodyCrs = BodyCrs(),
    if_match: str | None = None,
    author: str,
    reason: str = "",
    audit: Mapping[str, Any] | None = None,
    publish: Publish | None = None,
) -> FeatureWrite:
    """Change some properties and/or the geometry of one feature (PATCH, a JSON Merge Patch
    whose geometry is in ``crs``); checked and written as `save_feature` writes."""
    spec = _layer(layer)
    if isinstance(patch, dict) and "geometry" in patch:
        patch = {**patch, "geometry": to_lonlat(patch["geometry"], crs)}
    store_crs = BodyCrs()
    if layer == "enterprises":  # the coordinates' CRS is kept unless a geometry is sent
        store_crs = crs if isinstance(patch, dict) and "geometry" in patch else store_crs

    def work(tables: Mapping[str, pd.DataFrame]) -> _Change:
        table = tables[layer]
        pos = _row_position(table, spec, feature_id)
        stored = table.iloc[pos]
        _check_tag(spec, feature_id, feature_tag(stored, spec), if_match)
        merged = merge_patch(stored_feature(stored, spec), patch)
        props, _ = _check_body(spec, merged, feature_id)
        row, warnings = _read_row(spec, feature_id, props, merged["geometry"], BodyCrs())
        if layer == "enterprises":
            row["source_crs"] = store_crs.name if store_crs != BodyCrs() else stored["source_crs"]
        if feature_tag(row.iloc[0], spec) == feature_tag(stored, spec):
            return _Change(table, feature_id, warnings, unchanged=True)
        return _Change(_replace_row(table, pos, row), feature_id, warnings)

    return _commit(
        store, layer, "update", work, author=author, reason=reason, audit=audit, publish=publish
    )


def delete_feature(
    store: Store,
    layer: str,
    feature_id: str,
    *,
    if_match: str | None = None,
    author: str,
    reason: str = "",
    audit: Mapping[str, Any] | None = None,
    publish: Publish | None = None,
) -> FeatureWrite:
    """Delete one feature; refused (nothing written) while other rows refer to it (a grid
    with buildings or parks, a building its officers serve), with the rows that do."""
    spec = LAYERS[layer] if layer == "communities" else _layer(layer)

    def work(tables: Mapping[str, pd.DataFrame]) -> _Change:
        table = tables[layer]
        pos = _row_position(table, spec, feature_id)
        if layer == "communities":
            _check_community_tag(store, feature_id, if_match)
        else:
            _check_tag(spec, feature_id, feature_tag(table.iloc[pos], spec), if_match)
        kept = table.drop(index=table.index[pos]).reset_index(drop=True)
        return _Change(kept, feature_id, [])

    return _commit(
        store, layer, "delete", work, author=author, reason=reason, audit=audit, publish=publish
    )


def _check_community_tag(store: Store, community_id: str, if_match: str | None) -> None:
    """`StaleFeature` unless ``if_match`` names the community's current history version."""
    if if_match is None:
        return
    current = str(store.community_version(community_id))
    wanted = tag_of(if_match)
    if wanted is not None and wanted != current:
        raise StaleFeature(
            f"community {community_id} is at version {current}, not {shown(wanted)}: someone "
            f'else changed it; GET it again and resend with If-Match: "{current}"'
        )


# ---------------------------------------------------------------------------- communities


def _community_fields(spec: LayerSpec, row: pd.Series | None, props: Mapping[str, Any]) -> dict:
    """The attributes of a community body that `boundaries.edit_community` takes: the
    editable ones (absent optional ones are None), and the fixed ones only when they differ
    from the stored row (so it can refuse them)."""
    out: dict[str, Any] = {
        name: props.get(name) for name in boundaries.EDITABLE_FIELDS if name != "four_to"
    }
    out["four_to"] = props.get("four_to", None if row is None else row["four_to"])
    for name in spec.field_names:
        if name in out or name == "id" or name not in props or row is None:
            continue
        if not boundaries.same_value(row[name], props[name]):
            out[name] = props[name]
    return out


def create_community(
    store: Store,
    tables: Mapping[str, pd.DataFrame],
    feature: Any,
    *,
    crs: BodyCrs = BodyCrs(),
    author: str,
    reason: str = "",
    roads: Any = None,
    audit: Mapping[str, Any] | None = None,
    publish: Publish | None = None,
) -> FeatureWrite:
    """A new community from a Feature (POST): its drawn boundary (not snapped: what was sent
    is stored) checked as `boundaries.create_community` checks it, version 1 in its history."""
    spec = LAYERS["communities"]
    props, body_id = _check_body(spec, feature, None)
    missing = [n for n in ("name", "street_id", "type", "mode") if not props.get(n)]
    if missing:
        raise FeatureRefused(f"a new community needs {', '.join(missing)}; fill them in")
    new = boundaries.NewCommunity(
        name=props["name"], street_id=props["street_id"], type=props["type"],
        mode=props["mode"], id=body_id, code=props.get("code"), founded=props.get("founded"),
    )  # fmt: skip
    draft = _draft(feature.get("geometry"), crs)
    done = boundaries.create_community(
        store, tables, new, draft, author=author, reason=reason or "created (OGC API – Features)",
        roads=roads, audit=audit,
        publish=publish, four_to=props.get("four_to"),
    )  # fmt: skip
    return _community_write(done, "create")


def _draft(geometry: Any, crs: BodyCrs) -> boundaries.BoundaryDraft:
    """A drawn boundary in WGS84, never snapped (the client snaps as it draws)."""
    if geometry is None:
        raise FeatureRefused("a community needs its boundary: send a Polygon or MultiPolygon")
    return boundaries.BoundaryDraft(geometry=to_lonlat(geometry, crs), snap_tolerance_m=0.0)


def _community_write(done: boundaries.BoundaryCommit, action: str) -> FeatureWrite:
    return FeatureWrite(
        "communities", done.community_id, action, done.store_version, list(done.warnings),
        done.unchanged, done.note, done.version,
    )  # fmt: skip


def _expected(if_match: str | None, community_id: str, have: int) -> int | None:
    """The community version ``If-Match`` names (None: any); 412 for one that is no version."""
    wanted = None if if_match is None else tag_of(if_match)
    if wanted is None:
        return None
    if not wanted.isdigit() or len(wanted) > 18:
        raise StaleFeature(
            f"community {community_id} is at version {have}, not {shown(wanted)}: GET it "
            f'again and resend with If-Match: "{have}"'
        )
    return int(wanted)


def edit_community(
    store: Store,
    tables: Mapping[str, pd.DataFrame],
    community_id: str,
    body: Any,
    *,
    patch: bool = False,
    crs: BodyCrs = BodyCrs(),
    if_match: str | None = None,
    author: str,
    reason: str = "",
    roads: Any = None,
    audit: Mapping[str, Any] | None = None,
    publish: Publish | None = None,
) -> FeatureWrite:
    """Replace (PUT) or patch (PATCH, a JSON Merge Patch) a community: its attributes and, if
    the body has a geometry, its boundary, through `boundaries.edit_community` (validation,
    overlaps, history, impact warnings)."""
    spec = LAYERS["communities"]
    row = boundaries.community(tables, community_id)
    if patch:
        if isinstance(body, dict) and "geometry" in body:
            body = {**body, "geometry": to_lonlat(body["geometry"], crs)}
            crs = BodyCrs()
        body = merge_patch(stored_feature(row, spec), body)
        body["type"] = "Feature"
    props, _ = _check_body(spec, body, community_id)
    same = patch and body.get("geometry") == stored_feature(row, spec)["geometry"]
    draft = None if same else _draft(body.get("geometry"), crs)
    have = store.community_version(community_id)
    done = boundaries.edit_community(
        store, tables, community_id, draft, _community_fields(spec, row, props),
        expected_version=_expected(if_match, community_id, have), author=author,
        reason=reason or f"{'update' if patch else 'replace'} (OGC API – Features)",
        roads=roads, audit=audit, publish=publish,
    )  # fmt: skip
    return _community_write(done, "update" if patch else "replace")
