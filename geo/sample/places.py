"""The sample's communities (built from their four-to text), parks (named sites) and
buildings (footprints, with fillers where the extract has none), with synthetic names and
addresses (steps 2–3 of `geo.sample`).
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import crs
from geo.boundaries.build import build_boundary
from geo.boundaries.roads import RoadNetwork
from geo.sample.osm_extract import _osm_id, _polygonal, _round_geoms, _tag

MIN_PARK_M2 = 800.0  # m²: smaller pieces of a site inside a community are dropped
MIN_BUILDING_M2 = 40.0
SNAP = 1e-7  # degrees (~1 cm): neighbouring communities share their vertices within this


def _communities(roads: pd.DataFrame, streets: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Each community built from its four-to text, trimmed to its street."""
    frame = gpd.GeoDataFrame(roads[["name"]], geometry=roads["geometry"].to_numpy(), crs=4326)
    network = RoadNetwork.from_frame(frame)
    street_geom = dict(zip(streets["id"], streets["geometry"], strict=True))
    rows = []
    for c in spec["communities"]:
        built = build_boundary(c["four_to"], network).polygon
        geom = _polygonal(shapely.intersection(built, street_geom[c["street_id"]]))
        keys = ("id", "name", "street_id", "code", "type", "mode", "four_to", "founded")
        rows.append({**{k: c[k] for k in keys}, "geometry": _round_geoms([geom])[0]})
    frame = pd.DataFrame(rows)
    geoms = frame["geometry"].to_numpy()
    # a neighbour's vertex on a shared edge becomes a vertex of both (no T-junctions)
    frame["geometry"] = [
        shapely.snap(g, shapely.multipoints(shapely.get_coordinates(np.delete(geoms, k))), SNAP)
        for k, g in enumerate(geoms)
    ]
    return frame


def _owner(points: np.ndarray, polys: np.ndarray) -> np.ndarray:
    """Index of the polygon holding each point, -1 for none (first match)."""
    out = np.full(len(points), -1)
    pi, gi = shapely.STRtree(polys).query(points, predicate="within")
    first = np.unique(pi, return_index=True)
    out[first[0]] = gi[first[1]]
    return out


def _parks(polys: gpd.GeoDataFrame, comms: pd.DataFrame) -> pd.DataFrame:
    """Named industrial/commercial sites, clipped to the community that holds them."""
    sel = polys[polys["landuse"].isin(["industrial", "commercial"]) & polys["name"].notna()]
    sel = sel.assign(_id="P" + _osm_id(sel).to_numpy())
    geoms = sel.geometry.to_numpy()
    owner = _owner(shapely.point_on_surface(geoms), comms["geometry"].to_numpy())
    clipped = shapely.intersection(geoms, comms["geometry"].to_numpy()[np.maximum(owner, 0)])
    clipped = np.asarray([_polygonal(g) for g in clipped], dtype=object)
    frame = pd.DataFrame(
        {
            "id": sel["_id"].to_numpy(),
            "name": sel["name"].str.strip().to_numpy(),
            "_comm": owner,
            "geometry": clipped,
            "_m2": shapely.area(crs.to_metric(clipped)),
        }
    )
    frame = frame[(frame["_comm"] >= 0) & (frame["_m2"] >= MIN_PARK_M2)]
    frame = frame.sort_values(["_m2", "id"], ascending=[False, True]).reset_index(drop=True)
    kept: list[int] = []
    for i, geom in enumerate(frame["geometry"]):  # nested or overlapping sites: the larger wins
        if not any(shapely.intersection(geom, frame["geometry"][k]).area > 0 for k in kept):
            kept.append(i)
    frame = frame.iloc[kept].copy()
    frame["geometry"] = _round_geoms(frame["geometry"].to_numpy())
    frame = frame[shapely.is_valid(frame["geometry"].to_numpy())]
    frame = frame.assign(grid_id="", code="", address="")
    return frame.sort_values("id").drop(columns="_m2").reset_index(drop=True)


def _footprints(polys: gpd.GeoDataFrame, district: shapely.Geometry) -> pd.DataFrame:
    """Building footprints inside the district, with OSM name, levels and building tag."""
    sel = polys[polys["building"].notna()]
    sel = sel[shapely.contains(district, sel.geometry.representative_point())]
    geoms = np.asarray([_polygonal(g) for g in sel.geometry.to_numpy()], dtype=object)
    frame = pd.DataFrame(
        {
            "id": "B" + _osm_id(sel).to_numpy(),
            "osm_name": sel["name"].fillna("").str.strip().to_numpy(),
            "tag": sel["building"].to_numpy(),
            "levels": [_tag(o, "building:levels") for o in sel["other_tags"]],
            "geometry": _round_geoms(geoms),
        }
    )
    ok = shapely.is_valid(frame["geometry"].to_numpy())
    ok &= shapely.get_type_id(frame["geometry"].to_numpy()) == 3
    ok &= shapely.area(crs.to_metric(frame["geometry"].to_numpy())) >= MIN_BUILDING_M2
    return frame[ok].sort_values("id").reset_index(drop=True)


class _Names:
    """Unique synthetic Chinese names, drawn deterministically from one generator."""

    def __init__(self, rng: np.random.Generator, pools: dict, taken: Sequence[str] = ()):
        self.rng = rng
        self.pools = pools
        self.used: set[str] = set(taken)

    def _draw(self, make) -> str:
        while True:
            name = make()
            if name not in self.used:
                self.used.add(name)
                return name

    def brand(self, k: int) -> str:
        return "".join(self.rng.choice(list(self.pools["brand"]), size=k, replace=False))

    def tower(self, mixed: bool) -> str:
        suffix = self.pools["mixed_suffix" if mixed else "tower_suffix"]
        return self._draw(lambda: self.brand(2) + str(self.rng.choice(suffix)))

    def company(self, chain: str) -> str:
        def make() -> str:
            city = "杭州" if self.rng.random() < 0.92 else "浙江"
            brand = self.brand(int(self.rng.choice([2, 2, 2, 3, 4])))
            form = "股份有限公司" if self.rng.random() < 0.1 else "有限公司"
            return f"{city}{brand}{self.rng.choice(self.pools['industry'][chain])}{form}"

        return self._draw(make)

    def person(self) -> str:
        def make() -> str:
            k = int(self.rng.choice([1, 2, 2]))
            given = "".join(self.rng.choice(list(self.pools["given"]), size=k))
            return str(self.rng.choice(list(self.pools["surnames"]))) + given

        return self._draw(make)


def _filler(comms: pd.DataFrame, prints: pd.DataFrame, minimum: int) -> pd.DataFrame:
    """Synthetic footprints (30 × 20 m on an 80 m lattice, 25 m inside the boundary, clear of
    real ones) in communities where the extract has fewer than ``minimum`` buildings.
    Their names end in 示意 (illustrative); their ids are ``BS…``."""
    real = crs.to_metric(prints["geometry"].to_numpy())
    tree = shapely.STRtree(real)
    rows = []
    for k, geom in enumerate(crs.to_metric(comms["geometry"].to_numpy())):
        if len(tree.query(geom, predicate="contains")) >= minimum:
            continue
        x0, y0, x1, y1 = geom.bounds
        xs, ys = np.meshgrid(np.arange(x0 + 40, x1, 80.0), np.arange(y0 + 40, y1, 80.0))
        boxes = shapely.box(xs.ravel() - 15, ys.ravel() - 10, xs.ravel() + 15, ys.ravel() + 10)
        ok = shapely.contains(geom.buffer(-25.0), boxes)
        clear = np.ones(len(boxes), dtype=bool)
        clear[tree.query(shapely.buffer(boxes, 5.0), predicate="intersects")[0]] = False
        rows += [{"comm": k, "geometry": b} for b in boxes[ok & clear]]
    frame = pd.DataFrame(rows, columns=["comm", "geometry"])
    return pd.DataFrame(
        {
            "id": [f"BS{i:04d}" for i in range(1, len(frame) + 1)],
            "osm_name": "",
            "tag": "yes",
            "levels": "",
            "geometry": _round_geoms(crs.to_lonlat(frame["geometry"].to_numpy())),
        }
    )


def _clear(geoms: np.ndarray, parks: np.ndarray) -> np.ndarray:
    """Mask of footprints that are micro-grid material: wholly inside a park or clear of every
    park, and overlapping no larger footprint (OSM draws some building parts twice)."""
    metric = crs.to_metric(geoms)
    ok = np.ones(len(geoms), dtype=bool)
    bi, pi = shapely.STRtree(parks).query(geoms, predicate="intersects")
    partly = ~shapely.covered_by(geoms[bi], parks[pi])
    partly &= shapely.area(crs.to_metric(shapely.intersection(geoms[bi], parks[pi]))) > 0.01
    ok[bi[partly]] = False
    i, j = shapely.STRtree(metric).query(metric, predicate="intersects")
    pair = (i != j) & (shapely.area(shapely.intersection(metric[i], metric[j])) > 0.01)
    area = shapely.area(metric)
    smaller = (area[i] < area[j]) | ((area[i] == area[j]) & (i > j))
    ok[i[pair & smaller]] = False
    return ok


def _buildings(
    prints: pd.DataFrame,
    comms: pd.DataFrame,
    parks: pd.DataFrame,
    spec: dict,
    rng: np.random.Generator,
    names: _Names,
) -> pd.DataFrame:
    """Footprints wholly inside a community, with park, kind, name and floors."""
    geoms = prints["geometry"].to_numpy()
    comm = _owner(shapely.point_on_surface(geoms), comms["geometry"].to_numpy())
    inside = comm >= 0
    inside[inside] = shapely.covered_by(geoms[inside], comms["geometry"].to_numpy()[comm[inside]])
    b = prints[inside].assign(_comm=comm[inside])
    b = b[_clear(b["geometry"].to_numpy(), parks["geometry"].to_numpy())].copy()
    park = _owner(shapely.point_on_surface(b["geometry"].to_numpy()), parks["geometry"].to_numpy())
    b["park_id"] = np.where(park >= 0, parks["id"].to_numpy()[np.maximum(park, 0)], "")
    mixed = b["tag"].isin(spec["mixed_building_tags"]).to_numpy()
    b["kind"] = np.where(mixed, "mixed-use", "enterprise")
    levels = pd.to_numeric(b["levels"], errors="coerce").to_numpy()
    synthetic = np.where(mixed, rng.integers(18, 34, len(b)), rng.integers(4, 25, len(b)))
    b["floors"] = np.where(np.isfinite(levels) & (levels >= 1), levels, synthetic).astype(int)
    park_name = dict(zip(parks["id"], parks["name"], strict=True))
    seq: dict[str, int] = {}
    out = []
    for osm, pid, is_mixed in zip(b["osm_name"], b["park_id"], mixed, strict=True):
        if osm:
            out.append(osm)
        elif pid:
            seq[pid] = seq.get(pid, 0) + 1
            out.append(f"{park_name[pid]}{seq[pid]}号楼")
        else:
            out.append(names.tower(bool(is_mixed)))
    b["name"] = out
    b.loc[b["id"].str.startswith("BS"), "name"] += "（示意）"
    b["grid_id"] = ""
    b["code"] = ""
    return b.reset_index(drop=True)


def _street_names(roads: pd.DataFrame) -> dict[str, shapely.Geometry]:
    """Metric centerlines of the named roads (not rivers), for door numbers."""
    land = roads[~roads["class"].isin(["river", "canal"])]
    frame = gpd.GeoDataFrame(land[["name"]], geometry=land["geometry"].to_numpy(), crs=4326)
    return RoadNetwork.from_frame(frame).lines


def _door_numbers(points: np.ndarray, lines: dict[str, shapely.Geometry]) -> list[str]:
    """``路名+门牌号`` for each metric point: the nearest road, odd numbers on its left side."""
    names = sorted(lines)
    roads = np.asarray([lines[n] for n in names], dtype=object)
    nearest = shapely.STRtree(roads).query_nearest(points, all_matches=False)[1]
    road = roads[nearest]
    pos = shapely.line_locate_point(road, points)
    here = shapely.get_coordinates(shapely.line_interpolate_point(road, pos))
    ahead = shapely.get_coordinates(shapely.line_interpolate_point(road, pos + 1.0))
    xy = shapely.get_coordinates(points)
    fwd, off = ahead - here, xy - here
    left = fwd[:, 0] * off[:, 1] - fwd[:, 1] * off[:, 0] > 0
    numbers = 2 * (pos // 5).astype(int) + np.where(left, 1, 2)
    out, used = [], set()
    for n, number in zip(nearest, numbers, strict=True):
        while f"{names[n]}{number}号" in used:
            number += 2
        used.add(f"{names[n]}{number}号")
        out.append(f"{names[n]}{number}号")
    return out


def _addresses(parks: pd.DataFrame, buildings: pd.DataFrame, lines) -> None:
    """Door addresses: parks and loose buildings get their own, park buildings their park's + 幢."""
    loose = (buildings["park_id"] == "").to_numpy()
    geoms = np.concatenate([parks["geometry"].to_numpy(), buildings["geometry"].to_numpy()[loose]])
    doors = _door_numbers(crs.to_metric(shapely.point_on_surface(geoms)), lines)
    parks["address"] = doors[: len(parks)]
    park_door = dict(zip(parks["id"], parks["address"], strict=True))
    seq: dict[str, int] = {}
    addr = []
    for pid in buildings["park_id"]:
        if pid:
            seq[pid] = seq.get(pid, 0) + 1
            addr.append(f"{park_door[pid]}{seq[pid]}幢")
        else:
            addr.append("")
    buildings["address"] = addr
    buildings.loc[loose, "address"] = doors[len(parks) :]
