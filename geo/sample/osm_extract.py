"""Reading the sample's OpenStreetMap extract: the district, its roads and waterways, the
three 街道, the spec's named areas (step 1 of `geo.sample`).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

DISTRICT_MARGIN = 0.004  # degrees: roads this close to the district are kept


def round7(values: np.ndarray) -> np.ndarray:
    """Correctly rounded to 7 decimals (so ``repr`` and ``%.7f`` give the same number)."""
    values = np.asarray(values, dtype=np.float64)
    return np.char.mod("%.7f", values).astype(np.float64).reshape(values.shape)


def _round_geoms(geoms: np.ndarray) -> np.ndarray:
    return shapely.transform(np.asarray(geoms, dtype=object), round7)


def _tag(other: object, key: str) -> str:
    """A value from OSM ``other_tags`` (``"k"=>"v",…``), or ""."""
    if not isinstance(other, str):
        return ""
    needle = f'"{key}"=>"'
    at = other.find(needle)
    if at < 0:
        return ""
    start = at + len(needle)
    return other[start : other.find('"', start)]


def _osm_id(frame: pd.DataFrame) -> pd.Series:
    """The way id of closed ways, else the relation id, as text."""
    way = frame["osm_way_id"].astype(object)
    return way.where(way.notna(), frame["osm_id"]).astype(str)


def read_extract(path: str | Path) -> dict[str, gpd.GeoDataFrame]:
    """The extract's ``lines`` and ``multipolygons`` layers (WGS84)."""
    return {
        layer: pyogrio.read_dataframe(path, layer=layer) for layer in ("lines", "multipolygons")
    }


def _district(polys: gpd.GeoDataFrame, spec: dict) -> shapely.Geometry:
    hit = polys[(polys["name"] == spec["district"]) & (polys["admin_level"] == "6")]
    if len(hit) != 1:
        raise ValueError(f"the extract holds no single admin_level 6 area {spec['district']!r}")
    return hit.geometry.iloc[0]


def _roads(lines: gpd.GeoDataFrame, district: shapely.Geometry, spec: dict) -> pd.DataFrame:
    """Named highways and waterways near the district, ``W<osm id>``, classes mapped."""
    classes = spec["road_class"]
    kind = lines["highway"].fillna(lines["waterway"]).map(classes)
    keep = lines["name"].notna() & kind.notna()
    keep &= lines.intersects(district.buffer(DISTRICT_MARGIN)).to_numpy()
    roads = pd.DataFrame(
        {
            "id": "W" + lines.loc[keep, "osm_id"].astype(str),
            "name": lines.loc[keep, "name"].str.strip(),
            "class": kind[keep],
            "geometry": _round_geoms(lines.loc[keep].geometry.to_numpy()),
        }
    )
    roads["_n"] = roads["id"].str[1:].astype(np.int64)
    return roads.sort_values("_n").drop(columns="_n").reset_index(drop=True)


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """The polygon parts of a geometry (an intersection may add lines or points)."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and p.area > 0]
    return shapely.union_all(parts) if len(parts) != 1 else parts[0]


def _streets(polys: gpd.GeoDataFrame, spec: dict) -> pd.DataFrame:
    rows = []
    for s in spec["streets"]:
        hit = polys[(polys["name"] == s["name"]) & (polys["admin_level"] == "8")]
        if len(hit) != 1:
            raise ValueError(f"the extract holds no single admin_level 8 area {s['name']!r}")
        rows.append({**s, "geometry": _round_geoms([hit.geometry.iloc[0]])[0]})
    return pd.DataFrame(rows)


def _areas(polys: gpd.GeoDataFrame, spec: dict) -> pd.DataFrame:
    """The named areas of the spec (sites four-to text may cite as ``…地界``), ids in order."""
    rows = []
    for k, name in enumerate(spec["areas"], start=1):
        hit = polys[polys["name"] == name]
        if len(hit) == 0:
            raise ValueError(f"the extract holds no area named {name!r}")
        geom = _polygonal(hit.geometry.iloc[0])
        rows.append({"id": f"A{k:02d}", "name": name, "geometry": _round_geoms([geom])[0]})
    return pd.DataFrame(rows)
