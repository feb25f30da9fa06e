"""The sample district: the real Binjiang from OpenStreetMap, with synthetic enterprises.

``python -m geo.sample -o geo/data/sample`` rebuilds the committed sample from the extract
``data/osm/binjiang.osm.pbf`` through the path a user takes:

1. Roads (named highways and waterways, ids ``W<osm id>``), the three 街道 (admin_level 8),
   the named areas of the spec, named industrial/commercial sites and building footprints are
   read from the extract.
2. Each industrial community of ``geo/sample_spec.toml`` is built from its four-to text over
   those roads by `geo.boundaries.build.build_boundary` (what ``geo boundary build`` does), and
   trimmed to its 街道 where the real street border cuts a corner off.
3. Named sites inside a community become its parks (micro-grids), footprints inside it its
   buildings. Enterprises (synthetic) are placed in the buildings, ~3 % in buildings outside
   every community and a few exactly on shared vertices; officers (synthetic) serve buildings.
4. Each community is split into grids by `geo.grids.split` (what ``geo grids split`` does),
   which gives the grids their codes and the parks and buildings their grid and micro-grid codes.

Deterministic: the same extract, spec and seed give byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import math
import tomllib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geo import creditcode, crs
from geo.boundaries.build import build_boundary
from geo.boundaries.roads import RoadNetwork
from geo.grids.split import apply_split, community_units, propose_split
from geo.model import (
    BUILDINGS,
    COMMUNITIES,
    COUNTY_CODE,
    GRIDS,
    OFFICERS,
    PARKS,
    ROADS,
    STREETS,
    TEAM_ROLES,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT / "data" / "osm" / "binjiang.osm.pbf"
SPEC_PATH = Path(__file__).resolve().parent / "sample_spec.toml"
ENTERPRISE_COLUMNS = (
    "id",
    "name",
    "credit_code",
    "address",
    "lon",
    "lat",
    "crs",
    "chain",
    "employees",
)
AREA_COLUMNS = ("id", "name")
LAYER_FILES = ("roads", "streets", "communities", "grids", "parks", "buildings", "areas")
MIN_PARK_M2 = 800.0  # m²: smaller pieces of a site inside a community are dropped
MIN_BUILDING_M2 = 40.0
DISTRICT_MARGIN = 0.004  # degrees: roads this close to the district are kept
COPY_GAP = 0.02  # degrees between copies of the district (--scale)
WEIGHT = "floor_area"  # grids balance floor area (footprint × floors), as a planner would first
SNAP = 1e-7  # degrees (~1 cm): neighbouring communities share their vertices within this


@lru_cache(maxsize=1)
def load_spec(path: Path = SPEC_PATH) -> dict:
    """The district specification (communities, road classes, counts, name pools)."""
    with open(path, "rb") as f:
        return tomllib.load(f)


# --------------------------------------------------------------------------------------------
# Reading the extract
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Communities, parks, buildings
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Enterprises and officers
# --------------------------------------------------------------------------------------------


def _points_in(polys: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniform random point (x, y) inside each polygon (metric), vectorised rejection."""
    out = np.full((len(polys), 2), np.nan)
    bounds = shapely.bounds(polys)
    todo = np.arange(len(polys))
    while len(todo):
        lo, hi = bounds[todo, :2], bounds[todo, 2:]
        xy = lo + rng.random((len(todo), 2)) * (hi - lo)
        ok = shapely.contains_xy(polys[todo], xy[:, 0], xy[:, 1])
        out[todo[ok]] = xy[ok]
        todo = todo[~ok]
    return out


def _chains(weights: dict[str, float], n: int, rng: np.random.Generator) -> np.ndarray:
    labels = list(weights)
    p = np.asarray([weights[k] for k in labels], dtype=float)
    return rng.choice(labels, size=n, p=p / p.sum())


def _rooms(floors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    fl = rng.integers(1, floors + 1)
    unit = rng.integers(1, 30, len(floors))
    return np.asarray([f"{f}{u:02d}室" for f, u in zip(fl, unit, strict=True)])


def _enterprises(
    buildings: pd.DataFrame,
    outside: pd.DataFrame,
    spec: dict,
    lines,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Enterprises in buildings (per-community counts), plus ~3 % in buildings outside."""
    metric = crs.to_metric(buildings["geometry"].to_numpy())
    floors = buildings["floors"].to_numpy()
    weight = shapely.area(metric) * floors * rng.lognormal(0, 0.6, len(buildings))
    parts = []
    for k, c in enumerate(spec["communities"]):
        mine = np.flatnonzero(buildings["_comm"].to_numpy() == k)
        pick = rng.choice(mine, c["enterprises"], p=weight[mine] / weight[mine].sum())
        xy = _points_in(metric[pick], rng)
        address = buildings["address"].to_numpy()[pick] + _rooms(floors[pick], rng)
        parts.append(
            pd.DataFrame(
                {"address": address, "chain": _chains(c["chains"], len(pick), rng), "_xy": list(xy)}
            )
        )
    inside = sum(c["enterprises"] for c in spec["communities"]) + sum(spec["on_edge"])
    n_out = round(inside * spec["outside_share"] / (1 - spec["outside_share"]))
    out_m = crs.to_metric(outside["geometry"].to_numpy())
    pick = rng.choice(len(outside), n_out, p=shapely.area(out_m) / shapely.area(out_m).sum())
    xy = _points_in(out_m[pick], rng)
    doors = _door_numbers(shapely.points(xy), lines)
    rooms = _rooms(rng.integers(3, 20, n_out), rng)
    parts.append(
        pd.DataFrame(
            {
                "address": [d + r for d, r in zip(doors, rooms, strict=True)],
                "chain": _chains(spec["communities"][0]["chains"], n_out, rng),
                "_xy": list(xy),
            }
        )
    )
    return pd.concat(parts, ignore_index=True)


def _name_enterprises(ents: pd.DataFrame, spec: dict, rng, names: _Names) -> None:
    """Company names by chain; 12 Hikvision companies among Torch's and IoT's security firms."""
    ents["name"] = [names.company(c) for c in ents["chain"]]
    first_two = sum(c["enterprises"] for c in spec["communities"][:2])
    pool = np.flatnonzero(ents["chain"].isin(["数字安防", "物联网"]).to_numpy()[:first_two])
    hik = rng.choice(pool, len(spec["names"]["hikvision"]), replace=False)
    ents.loc[hik, "name"] = [f"杭州海康{s}" for s in spec["names"]["hikvision"]]
    ents["employees"] = np.maximum(1, rng.lognormal(np.log(18), 1.25, len(ents))).astype(int)
    ents.loc[hik[0], "employees"] = 28000


def _officers(
    buildings: pd.DataFrame, spec: dict, rng: np.random.Generator, names: _Names
) -> pd.DataFrame:
    """The 一长二员 of the buildings outside parks; a few teams are incomplete."""
    n_officers = spec["officers"]
    towers = buildings[buildings["park_id"] == ""]
    groups = [("楼宇管理长", ("enterprise", "mixed-use"))] + [
        (role, (kind,)) for kind in ("enterprise", "mixed-use") for role in TEAM_ROLES[kind][1:]
    ]
    cells = []  # (role, community, building ids) in a fixed order
    for role, kinds in groups:
        ok = towers[towers["kind"].isin(kinds)]
        ok = ok[rng.random(len(ok)) >= (0.02 if role == "楼宇管理长" else 0.04)]
        for comm, sub in ok.groupby("_comm", sort=True):
            cells.append((role, comm, list(sub["id"])))
    sizes = np.asarray([len(c[2]) for c in cells], dtype=float)
    quota = sizes / sizes.sum() * n_officers
    k = np.minimum(np.maximum(1, np.floor(quota).astype(int)), sizes.astype(int))
    for i in np.argsort(-(quota - np.floor(quota)), kind="stable"):
        if k.sum() >= n_officers:
            break
        k[i] += int(k[i] < sizes[i])
    rows = []
    for (role, _, ids), n in zip(cells, k, strict=True):
        for chunk in np.array_split(np.asarray(ids), n):
            rows.append({"name": names.person(), "role": role, "building_ids": ";".join(chunk)})
    officers = pd.DataFrame(rows)
    if len(officers) != n_officers:
        raise AssertionError(f"{len(officers)} officers, not {n_officers}")
    officers.insert(0, "id", [f"O{i:04d}" for i in range(1, n_officers + 1)])
    party = np.zeros(n_officers, dtype=bool)
    party[rng.choice(n_officers, spec["party_members"], replace=False)] = True
    officers["party_member"] = party
    officers["phone"] = ""
    return officers[list(OFFICERS.field_names)]


def _shared_vertices(
    grids: pd.DataFrame, comms: pd.DataFrame, want: Sequence[int], skip: str, rng
) -> np.ndarray:
    """Up to ``want`` vertices (lon, lat) shared by exactly two communities (and two grids),
    then by two grids of one community; none on community ``skip`` (Torch), so its count is the
    same under every reading of "inside"."""

    def table(geoms: np.ndarray, owners: np.ndarray) -> pd.DataFrame:
        xy, idx = shapely.get_coordinates(geoms, return_index=True)
        df = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "owner": owners[idx]})
        return df.drop_duplicates()

    g = table(grids["geometry"].to_numpy(), grids["id"].to_numpy())
    g["community"] = g["owner"].map(dict(zip(grids["id"], grids["community_id"], strict=True)))
    c = table(comms["geometry"].to_numpy(), comms["id"].to_numpy())
    n_grid = g.groupby(["x", "y"])["owner"].nunique().rename("n_grid")
    n_comm = c.groupby(["x", "y"])["owner"].nunique().rename("n_comm")
    on_skip = c[c["owner"] == skip].set_index(["x", "y"]).index
    g = g.join(n_grid, on=["x", "y"]).join(n_comm, on=["x", "y"])
    g["n_comm"] = g["n_comm"].fillna(0)
    g = g[~g.set_index(["x", "y"]).index.isin(on_skip) & (g["community"] != skip)]
    g = g.sort_values(["x", "y", "owner"]).drop_duplicates(["x", "y"])
    chosen = []
    masks = ((g["n_comm"] == 2) & (g["n_grid"] == 2), (g["n_comm"] == 0) & (g["n_grid"] == 2))
    for n, mask in zip(want, masks, strict=True):
        cand = g[mask]
        pick = np.sort(rng.choice(len(cand), min(n, len(cand)), replace=False))
        chosen.append(cand[["x", "y", "community"]].to_numpy()[pick])
    return np.vstack(chosen)


# --------------------------------------------------------------------------------------------
# Grids
# --------------------------------------------------------------------------------------------


def _gdf(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        frame.drop(columns="geometry"), geometry=frame["geometry"].to_numpy(), crs="EPSG:4326"
    )


def _split_all(tables: dict[str, pd.DataFrame], spec: dict) -> dict[str, pd.DataFrame]:
    """Every community split into its spec's grid count (at most one per street block, parks
    kept whole), balancing floor area, as ``geo grids split --weight floor_area`` does."""
    tables = {k: _gdf(v) if "geometry" in v else v for k, v in tables.items()}
    for c in spec["communities"]:
        units = len(community_units(tables, c["id"]).units)  # a small community: fewer grids
        proposal = propose_split(tables, c["id"], count=min(c["grids"], units), weight=WEIGHT)
        tables = apply_split(tables, proposal)
    return tables


def _clean_coverage(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Make the grids one exact coverage (shared edges vertex for vertex, as GEOS's coverage
    cleaner does; the split leaves centimetre mismatches), each community the union of its
    grids, and each park clipped to its community again."""
    grids, comms, parks = tables["grids"], tables["communities"].copy(), tables["parks"].copy()
    clean = shapely.coverage_clean(grids.geometry.to_numpy(), snapping_distance=SNAP)
    grids["geometry"] = _round_geoms(clean)  # shared vertices stay shared; 7 decimals as elsewhere
    grids = grids.set_geometry("geometry")
    union = {
        cid: shapely.coverage_union_all(sub.geometry.to_numpy())
        for cid, sub in grids.groupby("community_id")
    }
    comms["geometry"] = comms["id"].map(union)
    comm_of = dict(zip(grids["id"], grids["community_id"], strict=True))
    parks["geometry"] = [
        _polygonal(shapely.intersection(g, union[comm_of[gid]]))
        for g, gid in zip(parks.geometry, parks["grid_id"], strict=True)
    ]
    return {**tables, "grids": grids, "communities": comms.set_geometry("geometry"), "parks": parks}


# --------------------------------------------------------------------------------------------
# The district
# --------------------------------------------------------------------------------------------


def _base(source: str | Path, seed: int) -> dict[str, pd.DataFrame]:
    """The district at scale 1 (WGS84), enterprises with an ``_xy`` metric point."""
    spec = load_spec()
    rng = np.random.default_rng(seed)
    ext = read_extract(source)
    polys = ext["multipolygons"]
    district = _district(polys, spec)
    roads = _roads(ext["lines"], district, spec)
    streets = _streets(polys, spec)
    comms = _communities(roads, streets, spec)
    parks = _parks(polys, comms)
    prints = _footprints(polys, district)
    prints = pd.concat([prints, _filler(comms, prints, spec["min_buildings"])], ignore_index=True)
    names = _Names(rng, spec["names"], list(parks["name"]) + list(prints["osm_name"]))
    buildings = _buildings(prints, comms, parks, spec, rng, names)
    lines = _street_names(roads)
    _addresses(parks, buildings, lines)
    points = shapely.point_on_surface(prints["geometry"].to_numpy())
    in_comm = _owner(points, comms["geometry"].to_numpy())
    outside = prints[in_comm < 0]
    ents = _enterprises(buildings, outside, spec, lines, rng)
    xy = np.vstack(ents["_xy"].to_numpy())
    lon, lat = crs.to_wgs84(xy[:, 0], xy[:, 1], crs.METRIC_CRS)
    ents["geometry"] = shapely.points(np.column_stack([lon, lat]))
    tables = {
        "roads": roads,
        "streets": streets,
        "communities": comms.assign(retired_grids=None),
        "grids": pd.DataFrame(columns=[*GRIDS.field_names, "geometry"]),
        "parks": parks,
        "buildings": buildings,
        "enterprises": ents,
    }
    tables = _clean_coverage(_split_all(tables, spec))
    comms = tables["communities"]
    edge = _shared_vertices(tables["grids"], comms, spec["on_edge"], comms["id"][0], rng)
    edge_pts = shapely.points(edge[:, :2].astype(float))
    comm_index = {c["id"]: k for k, c in enumerate(spec["communities"])}
    extra = pd.DataFrame(
        {
            "address": _door_numbers(crs.to_metric(edge_pts), lines),
            "chain": [
                _chains(spec["communities"][comm_index[c]]["chains"], 1, rng)[0] for c in edge[:, 2]
            ],
            "geometry": edge_pts,
            "_edge": True,
        }
    )
    ents = pd.concat([tables["enterprises"].assign(_edge=False), extra], ignore_index=True)
    _name_enterprises(ents, spec, rng, names)
    ents = ents.iloc[rng.permutation(len(ents))].reset_index(drop=True)
    buildings = tables["buildings"]
    officers = _officers(buildings, spec, rng, names)
    return {
        "roads": roads,
        "streets": streets,
        "communities": tables["communities"],
        "grids": tables["grids"],
        "parks": tables["parks"],
        "buildings": buildings,
        "areas": _areas(polys, spec),
        "enterprises": ents,
        "officers": officers,
    }


def _credit_codes(n: int, share_invalid: float, rng: np.random.Generator) -> list[str]:
    """``n`` unique codes of region 330108; a share fail the check character, as in registries."""
    alphabet = np.asarray(list(creditcode.ALPHABET))
    codes: list[str] = []
    used: set[str] = set()
    while len(codes) < n:
        m = n - len(codes)
        new_style = rng.random(m) < 0.7
        tail = alphabet[rng.integers(0, len(alphabet), (m, 6))]
        digits = rng.integers(0, 10, (m, 8)).astype(str)
        for is_new, t6, d8 in zip(new_style, tail, digits, strict=True):
            body = "MA" + "".join(t6) if is_new else "".join(d8)
            code = creditcode.make_credit_code(COUNTY_CODE, body)
            if code not in used:
                used.add(code)
                codes.append(code)
    for i in np.sort(rng.choice(n, round(n * share_invalid), replace=False)):
        right = codes[i][-1]
        wrong = str(rng.choice([c for c in creditcode.ALPHABET if c != right]))
        codes[i] = codes[i][:-1] + wrong
    return codes


def _phones(n: int, prefixes: Sequence[str], rng: np.random.Generator) -> list[str]:
    """Unique synthetic mobile numbers such as 13805711234."""
    prefix = rng.choice(prefixes, n)
    tail = rng.choice(10**8, n, replace=False)
    return [f"{p}{t:08d}" for p, t in zip(prefix, tail, strict=True)]


def _copy(base: dict[str, pd.DataFrame], c: int, dx: float, dy: float) -> dict[str, pd.DataFrame]:
    """Copy ``c`` of the district shifted by (dx, dy) degrees: ids suffixed, codes unique."""
    f = {name: df.copy() for name, df in base.items()}
    if c == 0:
        return f
    suffix, label = f"x{c + 1}", f"({c + 1})"
    street_code = {sid: f"{3 * c + k + 1:03d}" for k, sid in enumerate(f["streets"]["id"])}
    comm_street = dict(zip(f["communities"]["id"], f["communities"]["street_id"], strict=True))
    grid_comm = f["grids"]["community_id"].map(comm_street)
    grid_street = dict(zip(f["grids"]["id"], grid_comm, strict=True))

    def recode(frame: pd.DataFrame, street: pd.Series) -> None:
        frame["code"] = [
            x[:6] + street_code[s] + x[9:] if isinstance(x, str) and x else x
            for x, s in zip(frame["code"], street, strict=True)
        ]

    recode(f["grids"], f["grids"]["id"].map(grid_street))
    recode(f["parks"], f["parks"]["grid_id"].map(grid_street))
    recode(f["buildings"], f["buildings"]["grid_id"].map(grid_street))
    f["streets"]["code"] = f["streets"]["id"].map(street_code)
    for layer in ("streets", "areas", "communities"):
        f[layer]["name"] = f[layer]["name"] + label
    refs = {
        "communities": ["street_id"],
        "grids": ["community_id"],
        "parks": ["grid_id"],
        "buildings": ["grid_id", "park_id"],
    }
    for layer in LAYER_FILES:
        f[layer]["id"] = f[layer]["id"] + suffix
        for col in refs.get(layer, []):
            f[layer][col] = [v + suffix if v else v for v in f[layer][col]]
        f[layer]["geometry"] = shapely.transform(
            f[layer]["geometry"].to_numpy(), lambda xy: xy + np.array([dx, dy])
        )
    f["officers"]["id"] = f["officers"]["id"] + suffix
    f["officers"]["building_ids"] = [
        ";".join(b + suffix for b in ids.split(";")) for ids in f["officers"]["building_ids"]
    ]
    f["enterprises"]["geometry"] = shapely.transform(
        f["enterprises"]["geometry"].to_numpy(), lambda xy: xy + np.array([dx, dy])
    )
    return f


def _offsets(scale: int, streets: pd.DataFrame) -> list[tuple[float, float]]:
    """Copy offsets (degrees): tiles east then south."""
    x0, y0, x1, y1 = shapely.total_bounds(streets["geometry"].to_numpy())
    cols = math.ceil(math.sqrt(scale))
    step_x, step_y = x1 - x0 + COPY_GAP, y1 - y0 + COPY_GAP
    return [((c % cols) * step_x, -(c // cols) * step_y) for c in range(scale)]


def _enterprise_table(ents: pd.DataFrame, spec: dict, rng) -> pd.DataFrame:
    """The CSV rows: GCJ-02 for placed enterprises, WGS84 for those on shared vertices."""
    xy = shapely.get_coordinates(ents["geometry"].to_numpy())
    lon, lat = crs.from_wgs84(xy[:, 0], xy[:, 1], "gcj02")
    edge = ents["_edge"].to_numpy(dtype=bool)
    ents = ents.assign(
        lon=np.where(edge, xy[:, 0], round7(lon)),
        lat=np.where(edge, xy[:, 1], round7(lat)),
        crs=np.where(edge, "wgs84", "gcj02"),
    )
    width = max(6, len(str(len(ents))))
    ents["id"] = [f"E{i:0{width}d}" for i in range(1, len(ents) + 1)]
    ents["credit_code"] = _credit_codes(len(ents), spec["invalid_code_share"], rng)
    return ents[list(ENTERPRISE_COLUMNS)].reset_index(drop=True)


def make_district(
    scale: int = 1, seed: int | None = None, source: str | Path = DEFAULT_SOURCE
) -> dict[str, pd.DataFrame]:
    """The sample district from the extract at ``source``: GeoDataFrames per layer (EPSG:4326),
    plus the enterprises and officers tables.

    ``scale`` > 1 tiles shifted copies east- and southward (ids suffixed ``x2``…, codes unique)
    for benchmarks. Deterministic: the same extract and ``seed`` give the same frames.
    """
    if scale < 1:
        raise ValueError("scale must be >= 1")
    spec = load_spec()
    seed = spec["seed"] if seed is None else seed
    base = _base(source, seed)
    copies = [_copy(base, c, dx, dy) for c, (dx, dy) in enumerate(_offsets(scale, base["streets"]))]
    specs = {
        "roads": ROADS,
        "streets": STREETS,
        "communities": COMMUNITIES,
        "grids": GRIDS,
        "parks": PARKS,
        "buildings": BUILDINGS,
    }
    out: dict[str, pd.DataFrame] = {}
    for layer in LAYER_FILES:
        df = pd.concat([pd.DataFrame(c[layer]) for c in copies], ignore_index=True)
        cols = list(specs[layer].field_names) if layer in specs else list(AREA_COLUMNS)
        geoms = df["geometry"].to_numpy()
        if layer != "roads":
            geoms = shapely.orient_polygons(geoms, exterior_cw=False)
        out[layer] = gpd.GeoDataFrame(df.reindex(columns=cols), geometry=geoms, crs="EPSG:4326")
    extra = np.random.default_rng([seed, scale])
    ents = pd.concat([pd.DataFrame(c["enterprises"]) for c in copies], ignore_index=True)
    out["enterprises"] = _enterprise_table(ents, spec, extra)
    officers = pd.concat([c["officers"] for c in copies], ignore_index=True)
    officers["phone"] = _phones(len(officers), spec["names"]["phone_prefix"], extra)
    out["officers"] = officers[list(OFFICERS.field_names)]
    return out


def _feature_collection(gdf: gpd.GeoDataFrame) -> str:
    """An RFC 7946 FeatureCollection, one feature per line, top-level ``id`` = properties.id."""
    props = gdf.drop(columns="geometry").to_dict("records")
    lines = []
    for p, geom in zip(props, gdf.geometry, strict=True):
        p = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in p.items()}
        p = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in p.items()}
        feature = {
            "type": "Feature",
            "id": p["id"],
            "properties": p,
            "geometry": shapely.geometry.mapping(geom),
        }
        lines.append(json.dumps(feature, ensure_ascii=False, separators=(",", ":")))
    return '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"


def write_district(out_dir: str | Path, frames: dict[str, pd.DataFrame]) -> list[Path]:
    """Write ``<layer>.geojson`` for each layer and ``enterprises.csv``, ``officers.csv``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for layer in LAYER_FILES:
        path = out / f"{layer}.geojson"
        path.write_text(_feature_collection(frames[layer]), encoding="utf-8")
        written.append(path)
    for table in ("enterprises", "officers"):
        path = out / f"{table}.csv"
        frames[table].to_csv(
            path, index=False, encoding="utf-8", lineterminator="\n", float_format="%.7f"
        )
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m geo.sample -o geo/data/sample [-i EXTRACT] [--scale N] [--seed S]``."""
    parser = argparse.ArgumentParser(
        prog="python -m geo.sample", description="Build the sample district from the extract."
    )
    parser.add_argument("-o", "--out", required=True, help="output directory")
    parser.add_argument("-i", "--source", default=str(DEFAULT_SOURCE), help="OSM .pbf extract")
    parser.add_argument("--scale", type=int, default=1, help="copies of the district (>= 1)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the spec's)")
    args = parser.parse_args(argv)
    write_district(args.out, make_district(args.scale, args.seed, args.source))


if __name__ == "__main__":
    main()
