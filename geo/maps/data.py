"""What the maps show: per-atlas derived data, GeoJSON of frames, popup properties."""

from __future__ import annotations

import json
import math
import weakref
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import shapely

from geo import crs as crs_mod
from geo.atlas import Atlas
from geo.maps.options import KIND_LABEL, MapOptions
from geo.ownership import NONE

# --------------------------------------------------------------------------------------------
# Per-atlas derived data (computed once per atlas version)

_DERIVED: weakref.WeakKeyDictionary[Atlas, Derived] = weakref.WeakKeyDictionary()


@dataclass
class Derived:
    """What the maps derive from one atlas version (computed once, cached per atlas)."""

    ent: pd.DataFrame  # atlas.enterprises + building_id, park_id, grid_id, community_id
    officers_by_building: dict[str, list[tuple[str, str, str]]]  # id, name, role


def derived(atlas: Atlas) -> Derived:
    """The derived data of ``atlas``, computed on first use."""
    hit = _DERIVED.get(atlas)
    if hit is None:
        hit = _DERIVED[atlas] = _derive(atlas)
    return hit


def _derive(atlas: Atlas) -> Derived:
    """Enterprises with their building, park, grid and community; officers by building."""
    ent = atlas.enterprises.reset_index(drop=True).copy()
    buildings = atlas.tables["buildings"].reset_index(drop=True)
    pts = shapely.points(ent["lon"].to_numpy(), ent["lat"].to_numpy())
    pos = np.full(len(ent), NONE, dtype=np.int64)
    if len(buildings) and len(ent):
        tree = shapely.STRtree(np.asarray(buildings.geometry, dtype=object))
        e_i, b_i = tree.query(pts, predicate="within")
        pos[e_i[::-1]] = b_i[::-1]  # first hit wins
    ids = np.append(buildings["id"].to_numpy(dtype=object), None)
    ent["building_id"] = ids[pos]
    parks = np.append(buildings["park_id"].fillna("").to_numpy(dtype=object), "")
    ent["park_id"] = [p or None for p in parks[pos]]
    ent["grid_id"] = atlas.ids_of("grid", ent["_grid"].to_numpy())
    ent["community_id"] = atlas.ids_of("community", ent["_community"].to_numpy())
    by_building: dict[str, list[tuple[str, str, str]]] = {}
    for row in atlas.tables["officers"].itertuples(index=False):
        for b in str(row.building_ids or "").split(";"):
            if b.strip():
                by_building.setdefault(b.strip(), []).append((row.id, row.name, row.role))
    return Derived(ent, by_building)


@lru_cache(maxsize=65536)
def pinyin_keys(name: str) -> tuple[str, str]:
    """Full pinyin (no spaces, lower case) and initials of a Chinese name, for search."""
    from pypinyin import lazy_pinyin  # ~0.3 s to import: on first use

    syllables = [s.lower() for s in lazy_pinyin(name, errors="default") if s.strip()]
    full = "".join(syllables).replace(" ", "")
    initials = "".join(s[0] for s in syllables if s and s[0].isalnum())
    return full, initials


# --------------------------------------------------------------------------------------------
# Geometry helpers


def _shift_fn(opts: MapOptions):
    """The coordinate shift to GCJ-02 for the amap base map, None otherwise."""
    if not opts.gcj02:
        return None

    def fn(xy: np.ndarray) -> np.ndarray:
        x, y = crs_mod.from_wgs84(xy[:, 0], xy[:, 1], "gcj02")
        return np.round(np.column_stack([x, y]), 7)

    return fn


def _geoms(frame: pd.DataFrame, opts: MapOptions) -> np.ndarray:
    """The frame's geometries as the base map draws them (shifted for amap)."""
    geoms = np.asarray(frame.geometry, dtype=object)
    fn = _shift_fn(opts)
    return shapely.transform(geoms, fn) if fn is not None and len(geoms) else geoms


def lonlat(lon: Any, lat: Any, opts: MapOptions) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates as the base map draws them (shifted for amap), rounded to 7 decimals."""
    x, y = crs_mod.as_arrays(lon, lat)
    if opts.gcj02:
        x, y = crs_mod.from_wgs84(x, y, "gcj02")
    return np.round(x, 7), np.round(y, 7)


def plain(v: Any) -> Any:
    """A JSON-ready Python value: None for NaN, numpy scalars unwrapped."""
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def collection(frame: pd.DataFrame, props: pd.DataFrame | None, opts: MapOptions) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of ``frame`` with ``props`` (default: id, name, code)."""
    props = frame[[c for c in ("id", "name", "code") if c in frame]] if props is None else props
    records = props.to_dict("records")
    geoms = _geoms(frame, opts)
    features = []
    for rec, g in zip(records, shapely.to_geojson(geoms) if len(geoms) else [], strict=True):
        clean = {k: plain(v) for k, v in rec.items()}
        features.append(
            {"type": "Feature", "id": clean["id"], "properties": clean, "geometry": json.loads(g)}
        )
    return {"type": "FeatureCollection", "features": features}


def fit(frame: pd.DataFrame, opts: MapOptions) -> list[list[float]]:
    """[[south, west], [north, east]] of the frame (the district's when empty)."""
    w, s, e, n = frame.total_bounds if len(frame) else (120.12, 30.13, 120.23, 30.24)
    x, y = lonlat([w, e], [s, n], opts)
    return [[float(y[0]), float(x[0])], [float(y[1]), float(x[1])]]


# --------------------------------------------------------------------------------------------
# Layer data


def grid_lookup(atlas: Atlas) -> dict[str, list[str]]:
    """grid id -> [name, code, community name]."""
    g = atlas.tables["grids"]
    names = dict(
        zip(atlas.tables["communities"]["id"], atlas.tables["communities"]["name"], strict=True)
    )
    return {
        r.id: [r.name, r.code, names.get(r.community_id, "")] for r in g.itertuples(index=False)
    }


def building_props(atlas: Atlas, frame: pd.DataFrame, d: Derived) -> pd.DataFrame:
    """Popup properties of buildings: kind, address, park, grid, team, enterprises."""
    parks = dict(zip(atlas.tables["parks"]["id"], atlas.tables["parks"]["name"], strict=True))
    grids = grid_lookup(atlas)
    counts = d.ent["building_id"].value_counts()
    out = pd.DataFrame(
        {
            "id": frame["id"].to_numpy(),
            "name": frame["name"].to_numpy(),
            "kind": frame["kind"].to_numpy(),
            "kind_label": [KIND_LABEL.get(k, k) for k in frame["kind"]],
            "address": frame["address"].fillna("").to_numpy(),
            "park": [parks.get(p, "") for p in frame["park_id"].fillna("")],
            "grid": [" ".join(grids.get(g, ["", ""])[:2]) for g in frame["grid_id"]],
            "team": [
                "、".join(f"{n}（{r}）" for _i, n, r in d.officers_by_building.get(b, [])) or "—"
                for b in frame["id"]
            ],
            "enterprises": [int(counts.get(b, 0)) for b in frame["id"]],
        }
    )
    return out


def park_props(atlas: Atlas, frame: pd.DataFrame, d: Derived) -> pd.DataFrame:
    """Popup properties of parks: code, grid, address, enterprises."""
    grids = grid_lookup(atlas)
    counts = d.ent["park_id"].value_counts()
    return pd.DataFrame(
        {
            "id": frame["id"].to_numpy(),
            "name": frame["name"].to_numpy(),
            "code": frame["code"].to_numpy(),
            "grid": [" ".join(grids.get(g, ["", ""])[:2]) for g in frame["grid_id"]],
            "address": frame["address"].fillna("").to_numpy(),
            "enterprises": [int(counts.get(p, 0)) for p in frame["id"]],
        }
    )


def grid_props(atlas: Atlas, frame: pd.DataFrame, d: Derived) -> pd.DataFrame:
    """Popup properties of grids: code, community, enterprises."""
    names = dict(
        zip(atlas.tables["communities"]["id"], atlas.tables["communities"]["name"], strict=True)
    )
    counts = d.ent["grid_id"].value_counts()
    return pd.DataFrame(
        {
            "id": frame["id"].to_numpy(),
            "name": frame["name"].to_numpy(),
            "code": frame["code"].to_numpy(),
            "community": [names.get(c, "") for c in frame["community_id"]],
            "enterprises": [int(counts.get(g, 0)) for g in frame["id"]],
        }
    )


def road_labels(roads: pd.DataFrame, opts: MapOptions) -> list[list[Any]]:
    """One label per road name: ``[name, lat, lon, angle°, class]`` at the middle of its
    longest piece, turned along the road (never upside down)."""
    named = roads[roads["name"].fillna("") != ""]
    out: list[list[Any]] = []
    for name, group in named.groupby("name", sort=True):
        geoms = np.asarray(group.geometry, dtype=object)
        longest = int(np.argmax(shapely.length(geoms)))
        g = geoms[longest]
        if g.geom_type == "MultiLineString":
            g = max(g.geoms, key=lambda p: p.length)
        a, mid, b = (g.interpolate(f, normalized=True) for f in (0.45, 0.5, 0.55))
        dx = (b.x - a.x) * math.cos(math.radians(mid.y))
        angle = -math.degrees(math.atan2(b.y - a.y, dx))
        angle = angle - 180 if angle > 90 else angle + 180 if angle < -90 else angle
        x, y = lonlat([mid.x], [mid.y], opts)
        kind = group["class"].iloc[longest]
        out.append([name, float(y[0]), float(x[0]), round(angle, 1), kind])
    return out
