"""Features of a layer as OGC API – Features serves them: selected, then encoded as GeoJSON.

Selection is vectorised (pandas masks for property equality, the layer's STRtree for ``bbox``);
geometry is serialised with `shapely.to_geojson` and coordinates are transformed with
`shapely.transform` and `geo.crs`, into the axis order of the output CRS.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
import shapely

from geo import crs as crs_mod
from geo.api.dependencies import OutputCRS
from geo.errors import NotFound
from geo.model import LayerSpec

CoordFn = Callable[[np.ndarray], np.ndarray]
_CAST: dict[str, Callable[[Any], Any]] = {"int": int, "float": float, "bool": bool, "str": str}


def coord_fn(out: OutputCRS, shift: str) -> CoordFn | None:
    """The function shapely.transform applies to WGS84 lon/lat to write ``out`` (None: as is)."""
    name = shift if shift != "wgs84" else out.name
    if name in ("wgs84", "cgcs2000") and not out.swap:
        return None

    def fn(xy: np.ndarray) -> np.ndarray:
        x, y = crs_mod.from_wgs84(xy[:, 0], xy[:, 1], name)
        return np.column_stack((y, x) if out.swap else (x, y))

    return fn


def matching_rows(
    table: pd.DataFrame, filters: dict[str, list[Any]], area: shapely.Geometry | None
) -> np.ndarray:
    """Positions of the rows that match every property filter and intersect ``area``."""
    mask = np.ones(len(table), dtype=bool)
    for name, wanted in filters.items():
        mask &= np.asarray(table[name].isin(wanted).fillna(False), dtype=bool)
    if area is not None:
        inside = np.zeros(len(table), dtype=bool)
        inside[table.sindex.query(area, predicate="intersects")] = True
        mask &= inside
    return np.flatnonzero(mask)


def feature_row(table: pd.DataFrame, spec: LayerSpec, fid: str) -> int:
    """The position of feature ``fid`` (404 when the layer has none)."""
    ids = table["id"].to_numpy()
    pos = int(np.searchsorted(ids, fid)) if len(ids) else 0
    if pos < len(ids) and ids[pos] == fid:
        return pos
    hits = np.flatnonzero(ids == fid)  # in case a table is not sorted
    if not len(hits):
        example = f" (ids look like {ids[0]!r})" if len(ids) else ""
        raise NotFound(
            f"no feature {fid!r} in collection {spec.name!r}{example}; "
            f"list them at /collections/{spec.name}/items"
        )
    return int(hits[0])


def _properties(page: pd.DataFrame, spec: LayerSpec) -> list[str]:
    """Each row's properties (every field but ``id``) as a JSON object, nulls as null."""
    names, cols = [], []
    for f in spec.fields:
        if f.name == "id" or f.name not in page.columns:
            continue
        col = page[f.name]
        null = col.isna().to_numpy()
        to = _CAST[f.type]
        names.append(f.name)
        cols.append(
            [None if n else to(v) for v, n in zip(col.to_numpy(dtype=object), null, strict=True)]
        )
    if not cols:
        return ["{}"] * len(page)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    return [dumps(dict(zip(names, row, strict=True))) for row in zip(*cols, strict=True)]


def features_json(
    page: pd.DataFrame, spec: LayerSpec, fn: CoordFn | None, extra: Iterable[str] = ()
) -> list[str]:
    """Each row as a GeoJSON Feature (text), coordinates through ``fn``, ``extra`` members
    appended."""
    geoms = page.geometry.to_numpy()
    if fn is not None:
        geoms = shapely.transform(geoms, fn)
    geo = shapely.to_geojson(geoms)
    ids = [json.dumps(str(i), ensure_ascii=False) for i in page["id"].to_numpy()]
    props = _properties(page, spec)
    tail = "".join(extra)
    return [
        f'{{"type":"Feature","id":{i},"geometry":{g if g is not None else "null"},'
        f'"properties":{p}{tail}}}'
        for i, g, p in zip(ids, geo, props, strict=True)
    ]


def feature_collection_json(head: dict[str, Any], features: list[str]) -> bytes:
    """A FeatureCollection: the members of ``head``, then the (already encoded) features."""
    body = json.dumps(head, ensure_ascii=False)[:-1] + ',"features":[' + ",".join(features) + "]}"
    return body.encode()
