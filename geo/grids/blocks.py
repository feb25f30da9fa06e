"""Street blocks and micro-grids: a community cut by its roads into blocks that tile it
exactly (slivers merged into a neighbour), and the micro-grids (parks, buildings outside
parks) a grid edge must never cut. `SplitError`, the error of every step of a split, is here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geo.boundaries.roads import RoadNetwork, bridge_gaps, node
from geo.crs import to_metric
from geo.errors import InvalidInput
from geo.grids import codes as codes_mod

GAP_TOLERANCE_M = 2.0  # m: loose ends of unnamed roads this close to a line are joined to it
SLIVER_WIDTH_M = 12.0  # m: a face narrower than this on average (2·area/perimeter) is a sliver
SLIVER_AREA_M2 = 500.0
OVERLAP_M2 = 1.0  # m²: a micro-grid overlapping a block by more than this lies (partly) in it


class SplitError(InvalidInput):
    """A split that cannot be made; the message says why and what to change."""


def road_lines(roads: pd.DataFrame) -> list[BaseGeometry]:
    """All roads as metric lines: named ones merged by `RoadNetwork`, unnamed ones bridged."""
    if len(roads) == 0:
        return []
    names = roads["name"].astype(object).where(roads["name"].notna(), "")
    named_mask = names.map(lambda s: isinstance(s, str) and s.strip() != "").to_numpy(dtype=bool)
    net = RoadNetwork.from_frame(roads[named_mask])
    named = [p for g in net.lines.values() for p in shapely.get_parts(g)]
    unnamed_geoms = np.asarray(roads.geometry.to_numpy()[~named_mask], dtype=object)
    unnamed = [
        p
        for g in to_metric(unnamed_geoms)
        if g is not None
        for p in shapely.get_parts(g)
        if not p.is_empty and p.length > 0
    ]
    connectors = bridge_gaps(unnamed, [*unnamed, *named], GAP_TOLERANCE_M)
    return [*named, *unnamed, *connectors]


def street_blocks(boundary: BaseGeometry, lines: Sequence[BaseGeometry]) -> np.ndarray:
    """The street blocks of a metric polygon cut by metric ``lines``, slivers merged away.

    Blocks are returned in reading order (north→south, west→east); they tile ``boundary``.
    """
    if boundary.is_empty:
        raise SplitError("the community has an empty boundary")
    inside: list[BaseGeometry] = []
    if lines:
        # lines run on a little past the boundary so that they cross it, not stop short of it
        frame = boundary.buffer(5.0)
        tree = shapely.STRtree(list(lines))
        hits = tree.query(frame, predicate="intersects")
        clipped = shapely.intersection(np.asarray(lines, dtype=object)[hits], frame)
        inside = [g for g in clipped if not g.is_empty]
    # roads are noded among themselves with 1 mm snap rounding (near-touching ends meet), then
    # exactly with the boundary, so the outer edges keep the community's own vertices
    roads_noded = node(inside) if inside else shapely.MultiLineString()
    noded = shapely.union_all(np.asarray([boundary.boundary, roads_noded], dtype=object))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[shapely.area(faces) > 0]
    faces = faces[shapely.contains(boundary, shapely.point_on_surface(faces))]
    if len(faces) == 0:
        raise SplitError("the community boundary does not enclose an area")
    blocks = _merge_slivers(faces)
    return blocks[codes_mod.reading_order(blocks)]


def _shared_lengths(geoms: np.ndarray) -> dict[tuple[int, int], float]:
    """Length of shared boundary between each pair of touching polygons (i < j)."""
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if len(left) == 0:
        return {}
    common = shapely.intersection(shapely.boundary(geoms[left]), shapely.boundary(geoms[right]))
    lengths = shapely.length(common)
    return {
        (int(i), int(j)): float(n) for i, j, n in zip(left, right, lengths, strict=True) if n > 0
    }


def _merge_slivers(faces: np.ndarray) -> np.ndarray:
    """Merge thin or tiny faces into the neighbour with the longest shared edge."""
    groups = list(range(len(faces)))

    def find(i: int) -> int:
        while groups[i] != i:
            groups[i] = groups[groups[i]]
            i = groups[i]
        return i

    shared = _shared_lengths(faces)
    area = shapely.area(faces)
    width = 2 * area / np.maximum(shapely.length(faces), 1e-9)
    sliver = (width < SLIVER_WIDTH_M) | (area < SLIVER_AREA_M2)
    if sliver.all():
        return np.array([shapely.coverage_union_all(faces)], dtype=object)
    by_face: dict[int, list[tuple[float, int]]] = {}
    for (i, j), n in shared.items():
        by_face.setdefault(i, []).append((n, j))
        by_face.setdefault(j, []).append((n, i))
    # slivers join their best non-sliver neighbour (else their best neighbour), smallest first
    for i in sorted(np.flatnonzero(sliver), key=lambda k: (area[k], k)):
        options = sorted(by_face.get(int(i), []), key=lambda t: (-t[0], t[1]))
        if not options:
            continue
        solid = [j for _, j in options if not sliver[j]]
        target = solid[0] if solid else options[0][1]
        groups[find(int(i))] = find(target)
    labels = np.array([find(i) for i in range(len(faces))])
    return np.array(
        [_union(faces[labels == g]) for g in sorted(set(labels.tolist()))], dtype=object
    )


def _union(polys: np.ndarray) -> BaseGeometry:
    """Coverage union of exactly-noded polygons (falls back to a plain union)."""
    if len(polys) == 1:
        return polys[0]
    out = shapely.coverage_union_all(polys)
    if not out.is_valid:
        out = shapely.make_valid(shapely.union_all(polys), method="structure", keep_collapsed=False)
    return out


def microgrids(tables: Mapping[str, pd.DataFrame]) -> gpd.GeoDataFrame:
    """Micro-grids: every park, and every building outside parks (``id, kind, grid_id, code``).

    Buildings inside a park belong to the park's micro-grid and are not listed.
    """
    parks = tables["parks"]
    buildings = tables["buildings"]
    loose = buildings[buildings["park_id"].fillna("") == ""]
    cols = ["id", "grid_id", "code"]
    frame = pd.concat(
        [
            pd.DataFrame(parks[cols]).assign(kind="park", geometry=parks.geometry.to_numpy()),
            pd.DataFrame(loose[cols]).assign(kind="building", geometry=loose.geometry.to_numpy()),
        ],
        ignore_index=True,
    )
    return gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4326")


def straddling(
    grids: pd.DataFrame, micro: pd.DataFrame, tolerance_m2: float = OVERLAP_M2
) -> list[dict[str, Any]]:
    """Micro-grids that straddle a grid edge: they overlap more than one grid (by more than
    ``tolerance_m2``). Each is ``{"id", "kind", "grids": [grid ids]}``. WGS84 input."""
    if len(grids) == 0 or len(micro) == 0:
        return []
    g = to_metric(np.asarray(grids.geometry.to_numpy(), dtype=object))
    m = to_metric(np.asarray(micro.geometry.to_numpy(), dtype=object))
    tree = shapely.STRtree(g)
    mi, gi = tree.query(m, predicate="intersects")
    areas = shapely.area(shapely.intersection(m[mi], g[gi]))
    hits: dict[int, list[int]] = {}
    for a, b, area in zip(mi, gi, areas, strict=True):
        if area > tolerance_m2:
            hits.setdefault(int(a), []).append(int(b))
    grid_ids = grids["id"].to_numpy()
    return [
        {
            "id": micro["id"].iloc[i],
            "kind": micro["kind"].iloc[i],
            "grids": sorted(grid_ids[js].tolist()),
        }
        for i, js in sorted(hits.items())
        if len(js) > 1
    ]
