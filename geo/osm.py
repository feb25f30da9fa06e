"""Read an OpenStreetMap extract (``.osm.pbf`` or ``.osm``) into the tables of `geo.model`.

GDAL's OSM driver (through pyogrio) reads the ``lines`` and ``multipolygons`` layers; tags
without a column of their own come in ``other_tags`` as hstore text (``"k"=>"v",…``), parsed
here with escaped quotes and backslashes undone. What is taken:

- **roads**: named ways with a road ``highway`` value, ``class`` mapped to our vocabulary
  (motorway/trunk → expressway, primary → arterial, secondary/tertiary → secondary, every other
  kept value → branch; ``*_link`` like its base; ``construction`` by its ``construction=*``),
  plus named waterways (river, canal, stream; drain and ditch as canal). Paths for feet, bikes
  and horses (footway, path, steps, cycleway, track, bridleway, corridor, elevator, platform,
  proposed, …) are left out. By default only ways that come within `ROAD_MARGIN_M` of the
  district are kept, so that names elsewhere in the extract do not compete with the district's
  in four-to text (the same name is used for roads in other districts). Id ``W<way id>``.
- **streets**: admin_level 8 boundaries that lie in the district, ``code`` from a 9- or 12-digit
  GB/T 2260 ``division_code``/``ref`` tag (when every street has a distinct one), else 001, 002, …
  north → south, then west → east (by the centroid's latitude rounded to 0.01°, then longitude).
  Id ``S<code>``.
- **areas**: the district itself, the admin_level 10 社区 and every named landuse site in the
  district (what four-to text cites as ``…地界``/``与…相邻``).
- **parks**: named landuse industrial/commercial/retail sites in the district, id ``P<key>``.
- **buildings**: every ``building`` (not ``building=no``) in the district, id ``B<key>``;
  ``kind`` mixed-use for dwellings (apartments, residential, house, …), else enterprise;
  ``floors`` from ``building:levels``; ``park_id`` the park that holds the building's
  representative point (the smallest id where parks overlap).

``<key>`` is the way id for closed ways and ``R<relation id>`` for multipolygon relations, so
ids are stable across reads of the same data. "In the district" means the representative point
lies in the district polygon. Parks and buildings get no ``grid_id``/``code``: ``geo grids
split`` assigns them. Geometries are WGS84, valid, polygons with counter-clockwise shells.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from shapely.geometry.base import BaseGeometry

from geo.crs import to_metric
from geo.errors import InvalidInput
from geo.model import TABLES

WGS84 = "EPSG:4326"
ROAD_MARGIN_M = 300.0  # roads this close to the district are kept (its edge roads, bridges)
MAJOR_CLASSES = {
    "motorway": "expressway",
    "trunk": "expressway",
    "primary": "arterial",
    "secondary": "secondary",
    "tertiary": "secondary",
}
BRANCH_VALUES = frozenset(
    {"unclassified", "residential", "living_street", "service", "pedestrian", "road", "busway"}
)
WATERWAY_CLASSES = {
    "river": "river",
    "canal": "canal",
    "stream": "stream",
    "drain": "canal",
    "ditch": "canal",
}
PARK_LANDUSE = ("industrial", "commercial", "retail")
DWELLINGS = frozenset(
    {
        "apartments",
        "residential",
        "house",
        "detached",
        "semidetached_house",
        "terrace",
        "dormitory",
        "bungalow",
    }
)
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)  # GDAL escapes " and \ with a backslash
_HSTORE = re.compile(r'"((?:[^"\\]|\\.)*)"=>"((?:[^"\\]|\\.)*)"')
_OSM_LAYERS = ("lines", "multipolygons")
_LINE_COLUMNS = ("osm_id", "name", "highway", "waterway", "other_tags")
_POLY_COLUMNS = (
    *("osm_id", "osm_way_id", "name", "admin_level", "boundary"),
    *("building", "landuse", "other_tags"),
)


class OSMError(InvalidInput):
    """An OpenStreetMap file that cannot be read or holds no usable district."""


def read_osm(
    path: str | os.PathLike[str],
    *,
    district: str | None = None,
    road_margin_m: float | None = ROAD_MARGIN_M,
) -> dict[str, gpd.GeoDataFrame]:
    """The tables ``roads, streets, areas, parks, buildings`` of one district of an OSM extract.

    ``district`` names the admin_level 6 boundary to take (default: the one holding most
    admin_level 8 areas); roads are those within ``road_margin_m`` of it (None: every road of
    the file). Raises `OSMError` for an unreadable file or a missing district.
    """
    lines, polys = _read_layers(Path(os.fspath(path)))
    admin = polys[polys["boundary"].eq("administrative")]
    row = _district(admin, district)
    district_geom = row.geometry
    streets = _streets(admin, district_geom)
    inside = _inside(polys.geometry.to_numpy(), district_geom)
    parks = _parks(polys[inside])
    return {
        "roads": _roads(lines, district_geom, road_margin_m),
        "streets": streets,
        "areas": _areas(admin, polys[inside], row),
        "parks": parks,
        "buildings": _buildings(polys[inside], parks),
    }


# ------------------------------------------------------------------------------- reading


def _read_layers(path: Path) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The ``lines`` and ``multipolygons`` layers (valid WGS84 geometries)."""
    if not path.is_file():
        what = "a folder" if path.is_dir() else "no such file"
        raise OSMError(f"{path}: {what}; give the path of an .osm.pbf or .osm extract")
    try:
        found = {str(n) for n, _ in pyogrio.list_layers(path)}
        if not set(_OSM_LAYERS) <= found:
            raise OSMError(
                f"{path} is not an OpenStreetMap file (layers {sorted(found)}); "
                "give an .osm.pbf or .osm extract"
            )
        driver = pyogrio.read_info(path, layer="lines")["driver"]
        if driver != "OSM":
            raise OSMError(f"{path} is a {driver} file, not OpenStreetMap (.osm.pbf or .osm)")
        lines = pyogrio.read_dataframe(path, layer="lines", columns=[*_LINE_COLUMNS])
        polys = pyogrio.read_dataframe(path, layer="multipolygons", columns=[*_POLY_COLUMNS])
    except pyogrio.errors.DataSourceError as e:
        raise OSMError(f"cannot read {path} as OpenStreetMap (.osm.pbf or .osm): {e}") from None
    except pyogrio.errors.DataLayerError as e:
        raise OSMError(
            f"{path} is damaged or cut short ({e}); download the extract again"
        ) from None
    polys = polys[~polys.geometry.isna()].reset_index(drop=True)
    polys["key"] = np.where(
        polys["osm_way_id"].notna(),
        polys["osm_way_id"].astype(str),
        "R" + polys["osm_id"].astype(str),
    )
    polys = polys.set_geometry(_valid_polygons(polys.geometry.to_numpy()), crs=WGS84)
    return lines[~lines.geometry.isna()].reset_index(drop=True), polys[~polys.geometry.isna()]


def tags(other_tags: pd.Series, keys: tuple[str, ...]) -> pd.DataFrame:
    """The values of ``keys`` parsed from GDAL's hstore text (``"k"=>"v",…``), one column per
    key (None where absent), on ``other_tags``' index; ``\\"`` and ``\\\\`` are unescaped."""
    out = pd.DataFrame({k: pd.Series(None, index=other_tags.index, dtype=object) for k in keys})
    text = other_tags.dropna().astype(str)
    if text.empty:
        return out
    pairs = text.str.extractall(_HSTORE)
    if pairs.empty:
        return out
    # an empty group comes back as NaN: the key is there with an empty value
    pairs = pairs.fillna("").droplevel("match")
    names = pairs[0].str.replace(_ESCAPED, r"\1", regex=True)
    values = pairs[1].str.replace(_ESCAPED, r"\1", regex=True)
    for k in keys:
        first = values[(names == k).to_numpy()]
        first = first[~first.index.duplicated()]
        out.loc[first.index, k] = first.astype(object).to_numpy()
    return out


def _valid_polygons(geoms: np.ndarray) -> np.ndarray:
    """Valid polygons (single-part where one part), CCW shells; None for what has no area."""
    fixed = shapely.make_valid(geoms)
    bad = ~np.isin(shapely.get_type_id(fixed), (3, 6))
    if bad.any():  # make_valid may return a collection: keep its polygonal parts
        fixed[bad] = [_polygonal(g) for g in fixed[bad]]
    single = shapely.get_num_geometries(fixed) == 1
    fixed[single] = shapely.get_geometry(fixed[single], 0)
    fixed = shapely.orient_polygons(fixed)
    fixed[shapely.area(fixed) <= 0] = None
    return fixed


def _polygonal(geom: BaseGeometry | None) -> BaseGeometry | None:
    if geom is None:
        return None
    parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) in (3, 6)]
    return shapely.union_all(parts) if parts else None


def _inside(geoms: np.ndarray, district: BaseGeometry) -> np.ndarray:
    """Which geometries have their representative point in the district."""
    points = shapely.point_on_surface(geoms)
    shapely.prepare(district)
    return shapely.contains_xy(district, shapely.get_x(points), shapely.get_y(points))


def _table(name: str, frame: pd.DataFrame, geoms: np.ndarray) -> gpd.GeoDataFrame:
    """``frame`` as table ``name``: the spec's columns, absent ones empty, sorted by id."""
    spec = TABLES[name]
    data = {
        f.name: (
            frame[f.name].to_numpy()
            if f.name in frame.columns
            else np.full(len(frame), None, dtype=object)
        )
        for f in spec.fields
    }
    out = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(list(geoms), crs=WGS84), crs=WGS84)
    for f in spec.fields:
        if f.type == "int":
            out[f.name] = out[f.name].astype("Int64")
        elif f.type == "str":
            out[f.name] = out[f.name].astype(object).where(out[f.name].notna(), None)
    return out.sort_values("id", kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------- the district


def _district(admin: gpd.GeoDataFrame, name: str | None) -> pd.Series:
    """The admin_level 6 area named ``name``, or the one that holds most level-8 areas."""
    level6 = admin[admin["admin_level"].eq("6") & admin["name"].notna()]
    if level6.empty:
        raise OSMError(
            "the extract holds no district (boundary=administrative, admin_level=6) relation; "
            "export an area that contains the whole district"
        )
    if name is not None:
        hit = level6[level6["name"].eq(name) | level6["name"].str.startswith(name)]
        if hit.empty:
            raise OSMError(
                f"no district named {name!r} in the extract; it holds "
                f"{', '.join(sorted(level6['name']))}"
            )
        return hit.sort_values("osm_id").iloc[0]
    level8 = admin[admin["admin_level"].eq("8")].geometry.to_numpy()
    counts = [int(_inside(level8, g).sum()) for g in level6.geometry]
    return level6.iloc[int(np.argmax(counts))]


def _streets(admin: gpd.GeoDataFrame, district: BaseGeometry) -> gpd.GeoDataFrame:
    """The admin_level 8 areas in the district, coded (official code where tagged)."""
    level8 = admin[admin["admin_level"].eq("8") & admin["name"].notna()]
    level8 = level8[_inside(level8.geometry.to_numpy(), district)].reset_index(drop=True)
    official = _official_codes(level8["other_tags"])
    centroids = shapely.centroid(level8.geometry.to_numpy())
    order = np.lexsort((shapely.get_x(centroids), -np.round(shapely.get_y(centroids), 2)))
    codes = np.empty(len(level8), dtype=object)
    codes[order] = [f"{i:03d}" for i in range(1, len(level8) + 1)]
    if official.notna().all() and official.is_unique:
        codes = official.to_numpy(dtype=object)
    frame = pd.DataFrame({"id": ["S" + c for c in codes], "name": level8["name"], "code": codes})
    return _table("streets", frame, level8.geometry.to_numpy())


def _official_codes(other_tags: pd.Series) -> pd.Series:
    """The 3-digit street part of a GB/T 2260 ``division_code`` or ``ref`` (9 or 12 digits)."""
    t = tags(other_tags, ("division_code", "ref"))
    text = t["division_code"].fillna(t["ref"]).astype(object)
    found = text.str.extract(r"^\s*(\d{6})(\d{3})(?:\d{3})?\s*$")
    return found[1].where(found[1].notna(), None)


def _areas(admin: gpd.GeoDataFrame, polys: gpd.GeoDataFrame, row: pd.Series) -> gpd.GeoDataFrame:
    """The district (``row``), its 社区 (admin_level 10) and its named landuse sites."""
    district = row.geometry
    level10 = admin[admin["admin_level"].eq("10") & admin["name"].notna()]
    level10 = level10[_inside(level10.geometry.to_numpy(), district)]
    sites = polys[polys["landuse"].notna() & polys["name"].notna()]
    ids = ["A" + k for k in level10["key"]] + ["A" + k for k in sites["key"]]
    names = [*level10["name"], *sites["name"]]
    geoms = [*level10.geometry, *sites.geometry]
    frame = pd.DataFrame({"id": ["A" + row["key"], *ids], "name": [row["name"], *names]})
    table = _table("areas", frame, np.array([district, *geoms], dtype=object))
    return table.drop_duplicates("id").reset_index(drop=True)


# ------------------------------------------------------------------------------- roads


def _roads(
    lines: gpd.GeoDataFrame, district: BaseGeometry, margin_m: float | None
) -> gpd.GeoDataFrame:
    """Named roads and waterways within ``margin_m`` of the district (None: all), classes
    mapped (see the module doc)."""
    named = lines[lines["name"].notna() & (lines["name"].str.strip() != "")]
    highway = named["highway"].fillna("")
    base = highway.str.removesuffix("_link")
    building = base.eq("construction")
    if building.any():
        base = base.copy()
        base[building] = tags(named.loc[building, "other_tags"], ("construction",))[
            "construction"
        ].fillna("road")
        base[building] = base[building].str.removesuffix("_link")
    road_class = base.map(MAJOR_CLASSES).where(~base.isin(BRANCH_VALUES), "branch")
    water_class = named["waterway"].map(WATERWAY_CLASSES)
    cls = road_class.where(road_class.notna() & highway.ne(""), water_class)
    geoms = named.geometry.to_numpy()
    keep = cls.notna().to_numpy() & (shapely.length(geoms) > 0)
    if margin_m is not None:
        near = shapely.buffer(to_metric(district), margin_m)
        keep &= shapely.intersects(to_metric(geoms), near)
    frame = pd.DataFrame(
        {
            "id": "W" + named["osm_id"].astype(str),
            "name": named["name"].str.strip(),
            "class": cls,
        }
    )
    return _table("roads", frame[keep], geoms[keep])


# ------------------------------------------------------------------------------- sites


def _addresses(other_tags: pd.Series) -> pd.Series:
    """``addr:full``, else ``addr:street`` + ``addr:housenumber`` (号 added to a bare number)."""
    t = tags(other_tags, ("addr:full", "addr:street", "addr:housenumber"))
    number = t["addr:housenumber"].fillna("").astype(str)
    number = number.where(~number.str.contains(r"\d$"), number + "号")
    composed = (t["addr:street"].fillna("").astype(str) + number).str.strip()
    return t["addr:full"].where(t["addr:full"].notna(), composed.where(composed != "", None))


def _parks(polys: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Named industrial, commercial and retail landuse sites."""
    sites = polys[polys["landuse"].isin(PARK_LANDUSE) & polys["name"].notna()]
    frame = pd.DataFrame(
        {
            "id": "P" + sites["key"],
            "name": sites["name"].str.strip(),
            "address": _addresses(sites["other_tags"]),
        }
    )
    return _table("parks", frame, sites.geometry.to_numpy())


def _buildings(polys: gpd.GeoDataFrame, parks: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Building footprints with kind, floors and the park holding each."""
    b = polys[polys["building"].notna() & polys["building"].ne("no")]
    levels = tags(b["other_tags"], ("building:levels",))["building:levels"]
    floors = pd.to_numeric(levels.astype(object).str.extract(r"^\s*(\d+)")[0], errors="coerce")
    frame = pd.DataFrame(
        {
            "id": "B" + b["key"],
            "name": b["name"].str.strip(),
            "address": _addresses(b["other_tags"]),
            "kind": np.where(b["building"].isin(DWELLINGS), "mixed-use", "enterprise"),
            "floors": floors.where(floors > 0).astype("Int64"),
            "park_id": _containing(b.geometry.to_numpy(), parks),
        }
    )
    return _table("buildings", frame, b.geometry.to_numpy())


def _containing(geoms: np.ndarray, parks: gpd.GeoDataFrame) -> np.ndarray:
    """Per geometry, the id of the park holding its representative point (smallest id), else
    None; ``parks`` is sorted by id."""
    out = np.full(len(geoms), None, dtype=object)
    if len(parks) == 0 or len(geoms) == 0:
        return out
    tree = shapely.STRtree(parks.geometry.to_numpy())
    gi, pi = tree.query(shapely.point_on_surface(geoms), predicate="within")
    first = pd.Series(pi).groupby(gi).min()  # parks are sorted by id: smallest position wins
    out[first.index.to_numpy()] = parks["id"].to_numpy()[first.to_numpy()]
    return out
