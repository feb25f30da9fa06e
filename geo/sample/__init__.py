"""The sample district: the real Binjiang from OpenStreetMap, with synthetic enterprises.

``python -m geo.sample -o geo/data/sample`` rebuilds the committed sample from the extract
``data/osm/binjiang.osm.pbf`` through the path a user takes:

1. Roads (named highways and waterways, ids ``W<osm id>``), the three 街道 (admin_level 8),
   the named areas of the spec, named industrial/commercial sites and building footprints are
   read from the extract.
2. Each industrial community of ``geo/sample/spec.toml`` is built from its four-to text over
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
import re
import tomllib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import creditcode, crs
from geo.boundaries.fourto import normalise, parse_four_to
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
)
from geo.sample.osm_extract import (
    _areas,
    _district,
    _polygonal,
    _roads,
    _round_geoms,
    _streets,
    read_extract,
    round7,
)
from geo.sample.people import _chains, _enterprises, _name_enterprises, _officers, _shared_vertices
from geo.sample.places import (
    SNAP,
    _addresses,
    _buildings,
    _communities,
    _door_numbers,
    _filler,
    _footprints,
    _Names,
    _owner,
    _parks,
    _street_names,
)

ROOT = Path(__file__).resolve().parents[2]  # the repository: data/osm holds the extract
DEFAULT_SOURCE = ROOT / "data" / "osm" / "binjiang.osm.pbf"
SPEC_PATH = Path(__file__).resolve().parent / "spec.toml"
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
COPY_GAP = 0.02  # degrees between copies of the district (--scale)
WEIGHT = "floor_area"  # grids balance floor area (footprint × floors), as a planner would first


@lru_cache(maxsize=1)
def load_spec(path: Path = SPEC_PATH) -> dict:
    """The district specification (communities, road classes, counts, name pools)."""
    with open(path, "rb") as f:
        return tomllib.load(f)


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


def copy_prefix(c: int) -> str:
    """What copy ``c`` (0-based) of the district puts before each of its names: nothing for
    the district itself, ``2区``, ``3区`` … for the others, so that every copy has its own roads,
    streets, areas and communities (a four-to text names one copy's roads only)."""
    return "" if c == 0 else f"{c + 1}区"


def rename_four_to(text: str, prefix: str) -> str:
    """``text`` with every name it cites (roads, areas, provisos) written with ``prefix``."""
    spec = parse_four_to(text, strict=False)
    names = {ref.name for side in spec.sides.values() for ref in side.chain}
    names |= {n for proviso in spec.exceptions for n in proviso.names}
    if not prefix or not names:
        return text
    if not all(n in text for n in names):  # a name written with full-width characters
        text = normalise(text)
    pattern = "|".join(re.escape(n) for n in sorted(names, key=lambda n: (-len(n), n)))
    return re.sub(pattern, lambda m: prefix + m.group(0), text)


def _rename(f: dict[str, pd.DataFrame], prefix: str) -> None:
    """Copy names in place: roads, streets, areas and communities get ``prefix``, four-to texts
    cite the copy's roads, and door addresses (which start with a road name) follow them."""
    for layer in ("roads", "streets", "areas", "communities"):
        f[layer]["name"] = prefix + f[layer]["name"]
    f["communities"]["four_to"] = [
        rename_four_to(t, prefix) if isinstance(t, str) and t else t
        for t in f["communities"]["four_to"]
    ]
    for layer in ("parks", "buildings", "enterprises"):
        f[layer]["address"] = [
            prefix + a if isinstance(a, str) and a else a for a in f[layer]["address"]
        ]


def _copy(base: dict[str, pd.DataFrame], c: int, dx: float, dy: float) -> dict[str, pd.DataFrame]:
    """Copy ``c`` of the district shifted by (dx, dy) degrees: ids suffixed, codes unique,
    names prefixed (`copy_prefix`)."""
    f = {name: df.copy() for name, df in base.items()}
    if c == 0:
        return f
    suffix = f"x{c + 1}"
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
    _rename(f, copy_prefix(c))
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

    ``scale`` > 1 tiles shifted copies east- and southward for benchmarks: ids suffixed ``x2``…,
    codes unique, and names of roads, streets, areas and communities prefixed ``2区``… (four-to
    texts and door addresses follow), so a four-to text resolves within its own copy.
    Deterministic: the same extract and ``seed`` give the same frames.
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
