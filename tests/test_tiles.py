"""Vector tiles: decoded with mapbox-vector-tile and GDAL and compared with the source layers."""

from __future__ import annotations

import gzip
from collections import defaultdict
from pathlib import Path

import mapbox_vector_tile
import mercantile
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import Transformer

from geo import tiles
from geo.atlas import Atlas
from geo.model import LAYERS
from geo.ownership import NONE
from geo.tiles.attributes import MAP_FIELDS
from geo.tiles.source import _thin
from geo.tiles.tile_math import _project

ALL = tiles.LAYER_NAMES


# --------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def source(atlas: Atlas) -> tiles.TileSource:
    return tiles.source_for(atlas)


@pytest.fixture(scope="module")
def tile_client(sample_db: str):
    from fastapi.testclient import TestClient

    from geo.settings import Settings
    from geo.store import open_store

    app = _app(open_store(sample_db), Settings(db=sample_db))
    with TestClient(app) as c:
        yield c


def _app(store, settings):
    from geo.api.app import create_app

    return create_app(store, settings)


def decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def covering(source: tiles.TileSource, z: int) -> list[tuple[int, int, int]]:
    return tiles.tiles_covering(source.bounds(), [z])


def _a_full_tile(source: tiles.TileSource, z: int = 14) -> tuple[int, int, int]:
    """The tile at zoom z with the most grid and enterprise features."""
    return max(covering(source, z), key=lambda t: len(source.tile(*t, ["grids", "enterprises"])))


def _to_lonlat_geom(geom: dict, z: int, x: int, y: int) -> shapely.Geometry:
    """A decoded GeoJSON-like geometry in tile units (y down) → WGS84 shapely geometry."""
    g = shapely.geometry.shape(geom)

    def fn(xy):
        lon, lat = tiles.tile_to_lonlat(z, x, y, xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(g, fn)


def _merc(g):
    def fn(xy):
        return np.column_stack(tiles.to_mercator(xy[:, 0], xy[:, 1]))

    return shapely.transform(g, fn)


def raw_features(data: bytes, layer: str) -> list[tuple[int, int, list[int]]]:
    """(id, type, geometry commands) of each feature of a layer, read with the protobuf schema."""
    from mapbox_vector_tile.Mapbox import vector_tile_pb2

    tile = vector_tile_pb2.tile()
    tile.ParseFromString(data)
    for lyr in tile.layers:
        if lyr.name == layer:
            assert lyr.version == 2 and lyr.extent == tiles.EXTENT
            return [(f.id, f.type, list(f.geometry)) for f in lyr.features]
    return []


def rings_of(commands: list[int]) -> list[list[tuple[int, int]]]:
    """The rings of a polygon command stream, in tile coordinates."""
    rings, ring, cx, cy, i = [], [], 0, 0, 0
    while i < len(commands):
        cmd, count = commands[i] & 7, commands[i] >> 3
        i += 1
        if cmd == 7:
            rings.append(ring)
            ring = []
            continue
        for _ in range(count):
            dx, dy = (
                (commands[i] >> 1) ^ -(commands[i] & 1),
                (commands[i + 1] >> 1) ^ -(commands[i + 1] & 1),
            )
            i += 2
            cx, cy = cx + dx, cy + dy
            if cmd == 1:
                ring = [(cx, cy)]
            else:
                ring.append((cx, cy))
    return rings


def signed_area(ring: list[tuple[int, int]]) -> float:
    xy = np.array(ring, dtype=float)
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


# --------------------------------------------------------------------------------------------
# tile math


def test_tile_math_agrees_with_mercantile_and_pyproj() -> None:
    for z, x, y in [(0, 0, 0), (10, 857, 425), (14, 13715, 6803), (18, 219449, 108860)]:
        b = mercantile.xy_bounds(x, y, z)
        np.testing.assert_allclose(tiles.tile_bounds(z, x, y), b, atol=1e-6)
    lon, lat = np.array([120.17, -73.9, 0.0]), np.array([30.19, 40.7, 0.0])
    mx, my = tiles.to_mercator(lon, lat)
    px, py = Transformer.from_crs(4326, 3857, always_xy=True).transform(lon, lat)
    np.testing.assert_allclose(mx, px, atol=1e-6)
    np.testing.assert_allclose(my, py, atol=1e-6)
    back = tiles.to_lonlat(mx, my)
    np.testing.assert_allclose(back, (lon, lat), atol=1e-9)


@pytest.mark.parametrize(
    ("z", "x", "y", "words"),
    [(21, 0, 0, "zoom 21"), (-1, 0, 0, "zoom -1"), (3, 8, 0, "x = 8"), (3, 0, -1, "y = -1")],
)
def test_addresses_outside_the_pyramid_are_refused(z, x, y, words) -> None:
    with pytest.raises(tiles.TileError, match=words):
        tiles.check_address(z, x, y)


# --------------------------------------------------------------------------------------------
# the encoder against the source layers


@pytest.mark.parametrize("layer", ALL)
def test_every_feature_is_in_the_covering_tiles_with_its_id_and_attributes(
    source: tiles.TileSource, atlas: Atlas, layer: str
) -> None:
    z = 16
    table = atlas.tables[layer].reset_index(drop=True)
    seen: dict[int, dict] = {}
    for t in covering(source, z):
        data = source.tile(*t, [layer])
        for f in decode(data).get(layer, {}).get("features", []):
            seen[f["id"]] = f["properties"]
    assert len(seen) == len(table), f"{layer}: {len(seen)} of {len(table)} features in z{z}"
    for fid, props in seen.items():
        row = table.iloc[fid - 1]  # feature id = position in the layer sorted by id, + 1
        assert props["id"] == row["id"]
        assert props.get("name") == (row["name"] or None)  # empty strings are left out
        for key in ("code", "kind", "class", "credit_code"):
            if key in table.columns and isinstance(row[key], str) and row[key]:
                assert props[key] == row[key], (layer, key)
        # what a map draws and labels, nothing else (the rest comes from the feature by id)
        assert set(props) <= set(MAP_FIELDS[layer]), (layer, set(props) - set(MAP_FIELDS[layer]))


def test_enterprise_counts_come_from_the_owners(source: tiles.TileSource, atlas: Atlas) -> None:
    owners = atlas.enterprises["_grid"].to_numpy()
    expected = np.bincount(owners[owners != NONE], minlength=len(atlas.tables["grids"]))
    got = {}
    for t in covering(source, 12):
        for f in decode(source.tile(*t, ["grids"])).get("grids", {}).get("features", []):
            got[f["id"]] = f["properties"]["enterprises"]
    assert got == {i + 1: int(n) for i, n in enumerate(expected)}
    ents = decode(source.tile(*_a_full_tile(source)))
    for f in ents["enterprises"]["features"]:
        row = atlas.enterprises.iloc[f["id"] - 1]
        assert f["properties"]["id"] == row["id"]
        assert f["properties"]["credit_code"] == row["credit_code"]


@pytest.mark.parametrize("layer", ["communities", "buildings", "roads", "enterprises"])
def test_geometry_matches_the_source_within_a_pixel(
    source: tiles.TileSource, atlas: Atlas, layer: str
) -> None:
    z = 16
    px = tiles.pixel_size(z)
    merc = _project(atlas.tables[layer].geometry.values)
    checked = 0
    for z_, x, y in covering(source, z)[::7]:
        box = source.clip_box(z_, x, y)
        for f in decode(source.tile(z_, x, y, [layer])).get(layer, {}).get("features", []):
            got = _merc(_to_lonlat_geom(f["geometry"], z_, x, y))
            want = shapely.clip_by_rect(merc[f["id"] - 1], *box)
            assert shapely.hausdorff_distance(got, want) < 1.5 * px, (layer, f["id"])
            checked += 1
    assert checked > 0


def test_a_road_along_a_tile_edge_keeps_its_piece_in_the_tile(atlas: Atlas) -> None:
    """A 3-vertex road that runs 1 m inside the clip edge and leaves it at a shallow angle
    (like 时代高架路 in the sample): simplifying the whole road drops the middle vertex (2 m
    off the chord, under a pixel) and the chord lies outside the tile, so clipping after
    simplifying lost a 100 m piece; clipped first, then simplified, every piece stays."""
    from geo.store.base import Snapshot

    z, x, y = 16, 54646, 27016
    src = tiles.source_for(atlas)
    edge = src.clip_box(z, x, y)[2]  # the east side of the buffered tile
    mid = sum(tiles.tile_bounds(z, x, y)[1::2]) / 2
    merc = np.array([[edge + 1, mid - 100], [edge - 1, mid], [edge + 1, mid + 100]])
    line = shapely.linestrings(np.column_stack(tiles.to_lonlat(merc[:, 0], merc[:, 1])))
    roads = atlas.tables["roads"].iloc[:1].copy()
    roads["geometry"] = [line]
    new = Atlas(Snapshot(atlas.version + 1, {**atlas.tables, "roads": roads}), previous=atlas)
    source = tiles.source_for(new)
    px = tiles.pixel_size(z)
    for t in ((z, x, y), (z, x + 1, y)):  # the road is in x + 1, and in x's buffer
        want = shapely.clip_by_rect(shapely.linestrings(merc), *source.clip_box(*t))
        feats = decode(source.tile(*t, ["roads"])).get("roads", {}).get("features", [])
        assert len(feats) == (want.length > px), t
        for f in feats:
            got = _merc(_to_lonlat_geom(f["geometry"], *t))
            assert shapely.hausdorff_distance(got, want) < 1.5 * px, t


def _coverage_checks(simplified: np.ndarray, original: np.ndarray, tol: float) -> None:
    area = shapely.area(simplified).sum()
    union = shapely.union_all(simplified)
    # no overlap: the parts add up to their union; pairwise overlaps are nil
    assert area == pytest.approx(union.area, rel=1e-9)
    tree = shapely.STRtree(simplified)
    a, b = tree.query(simplified, predicate="intersects")
    pair = a < b
    overlap = shapely.area(shapely.intersection(simplified[a[pair]], simplified[b[pair]])).sum()
    assert overlap < 1e-6 * area
    # no gap: the union has no hole the original coverage lacks, and the same area ± a pixel
    orig = shapely.union_all(original)
    holes = shapely.get_num_interior_rings(shapely.get_parts(union)).sum()
    assert holes <= shapely.get_num_interior_rings(shapely.get_parts(orig)).sum()
    assert abs(union.area - orig.area) < orig.length * tol


@pytest.mark.parametrize("layer", ["streets", "communities", "grids"])
@pytest.mark.parametrize("z", [10, 12, 14])
def test_simplified_coverages_have_no_gaps_or_overlaps(
    source: tiles.TileSource, layer: str, z: int
) -> None:
    zl = source.layer(layer, z)
    original = source.projected(layer)
    assert len(zl.geoms) == len(original)  # no polygon vanishes
    assert (
        shapely.get_num_coordinates(zl.geoms).sum() <= shapely.get_num_coordinates(original).sum()
    )
    _coverage_checks(zl.geoms, original, tiles.pixel_size(z))


@pytest.mark.parametrize("z", [12, 14])
def test_decoded_neighbours_still_tile(source: tiles.TileSource, z: int) -> None:
    for t in covering(source, z):
        for layer in ("communities", "grids"):
            feats = decode(source.tile(*t, [layer])).get(layer, {}).get("features", [])
            geoms = np.array([shapely.geometry.shape(f["geometry"]) for f in feats])
            if len(geoms) < 2:
                continue
            geoms = shapely.make_valid(geoms)
            a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
            pair = a < b
            overlap = shapely.area(shapely.intersection(geoms[a[pair]], geoms[b[pair]])).sum()
            assert overlap < 0.5, (t, layer, overlap)  # tile units², i.e. a rounding crumb
            union = shapely.union_all(geoms)
            assert shapely.area(geoms).sum() == pytest.approx(union.area, abs=0.5)


def test_rings_wind_as_mvt_says(source: tiles.TileSource) -> None:
    n = 0
    for t in covering(source, 14):
        data = source.tile(*t)
        for layer in ("streets", "communities", "grids", "parks", "buildings"):
            for _fid, ftype, cmds in raw_features(data, layer):
                assert ftype == 3
                rings = rings_of(cmds)
                assert rings and signed_area(rings[0]) > 0  # exterior: clockwise, y down
                assert all(signed_area(r) != 0 for r in rings)
                n += 1
    assert n > 100


def test_holes_wind_the_other_way_and_ids_attributes_survive() -> None:
    from geo.tiles import build_attributes, encode_layer, tile_bounds

    z, x, y = 16, 54860, 27218
    minx, miny, maxx, maxy = tile_bounds(z, x, y)
    w = maxx - minx
    outer = shapely.box(minx + 0.1 * w, miny + 0.1 * w, minx + 0.9 * w, miny + 0.9 * w)
    hole = shapely.box(minx + 0.4 * w, miny + 0.4 * w, minx + 0.6 * w, miny + 0.6 * w)
    poly = shapely.orient_polygons(shapely.Polygon(outer.exterior, [hole.exterior]))
    frame = pd.DataFrame({"id": ["a", "b"], "n": [3, None], "ok": [True, False]})
    attrs = build_attributes(frame)
    data = encode_layer(
        "t",
        "polygon",
        np.array([poly, shapely.box(minx, miny, minx + 1e-6, miny + 1e-6)]),
        (minx, miny, maxx, maxy),
        np.array([7, 8]),
        attrs,
        np.array([0, 1]),
    )
    feats = raw_features(data, "t")
    assert [f[0] for f in feats] == [7]  # the sub-unit square collapses and is dropped
    rings = rings_of(feats[0][2])
    assert len(rings) == 2
    assert signed_area(rings[0]) > 0 > signed_area(rings[1])
    decoded = decode(data)["t"]["features"][0]
    assert decoded["properties"] == {"id": "a", "n": 3, "ok": True}
    got = shapely.geometry.shape(decoded["geometry"])
    assert got.area == pytest.approx((0.8**2 - 0.2**2) * tiles.EXTENT**2, rel=1e-3)


def test_points_are_thinned_below_z14_deterministically_and_never_from_z14(
    source: tiles.TileSource, atlas: Atlas
) -> None:
    n = len(atlas.tables["enterprises"])
    low = source.layer("enterprises", 10)
    assert 0 < len(low.rows) < n
    np.testing.assert_array_equal(low.rows, _thin(source.projected("enterprises"), 10))
    for z in (14, 16, 18):
        assert len(source.layer("enterprises", z).rows) == n
    # at most one point per 4×4-pixel cell at z12
    rows = source.layer("enterprises", 12).rows
    x, y = (
        shapely.get_x(source.projected("enterprises")[rows]),
        shapely.get_y(source.projected("enterprises")[rows]),
    )
    cell = tiles.pixel_size(12) * tiles.THIN_CELL_PX
    cx, cy = np.floor((x + tiles.HALF) / cell), np.floor((tiles.HALF - y) / cell)
    assert len(set(zip(cx, cy, strict=True))) == len(rows)


def test_multi_layer_tile_holds_each_layer_once(source: tiles.TileSource) -> None:
    t = _a_full_tile(source)
    both = decode(source.tile(*t, ["grids", "enterprises"]))
    assert set(both) == {"grids", "enterprises"}
    everything = decode(source.tile(*t))
    assert set(everything) <= set(ALL) and {"grids", "enterprises"} <= set(everything)
    for layer in ("grids", "enterprises"):
        assert both[layer]["features"] == everything[layer]["features"]
        assert both[layer]["extent"] == tiles.EXTENT


def test_gdal_reads_the_tiles(source: tiles.TileSource, tmp_path: Path) -> None:
    z, x, y = _a_full_tile(source)
    data = source.tile(z, x, y)
    path = tmp_path / str(z) / str(x) / f"{y}.mvt"  # GDAL georeferences from z/x/y.mvt
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    ours = decode(data)
    layers = {name for name, _ in pyogrio.list_layers(path)}
    assert layers == set(ours)
    for name in layers:
        frame = pyogrio.read_dataframe(path, layer=name, CLIP="NO")  # keep the buffer
        assert len(frame) == len(ours[name]["features"])
        assert sorted(frame["mvt_id"]) == sorted(f["id"] for f in ours[name]["features"])
        assert set(frame["id"]) == {f["properties"]["id"] for f in ours[name]["features"]}
        minx, miny, maxx, maxy = source.clip_box(z, x, y)
        bx = frame.total_bounds
        assert minx - 1 <= bx[0] and bx[2] <= maxx + 1 and miny - 1 <= bx[1] and bx[3] <= maxy + 1


def test_pmtiles_archive_holds_the_tiles(
    source: tiles.TileSource, atlas: Atlas, tmp_path: Path
) -> None:
    from pmtiles.reader import MmapSource, Reader, all_tiles
    from pmtiles.tile import TileType

    calls: list[tuple[int, int]] = []
    path = tmp_path / "district.pmtiles"
    summary = tiles.write_pmtiles(atlas, path, 10, 13, progress=lambda d, t: calls.append((d, t)))
    expected = {t: source.tile(*t) for t in tiles.tiles_covering(source.bounds(), range(10, 14))}
    expected = {t: d for t, d in expected.items() if d}
    assert calls[-1] == (summary["candidates"], summary["candidates"])
    assert [d for d, _ in calls] == list(range(1, summary["candidates"] + 1))
    assert summary["tiles"] == len(expected)
    with open(path, "rb") as f:
        reader = Reader(MmapSource(f))
        header = reader.header()
        assert header["tile_type"] == TileType.MVT
        assert (header["min_zoom"], header["max_zoom"]) == (10, 13)
        meta = reader.metadata()
        assert {v["id"] for v in meta["vector_layers"]} == set(ALL)
        stored = {t: gzip.decompress(d) for t, d in all_tiles(reader.get_bytes)}
        assert stored == expected
        z, x, y = next(iter(expected))
        assert gzip.decompress(reader.get(z, x, y)) == expected[(z, x, y)]


# --------------------------------------------------------------------------------------------
# HTTP


def test_tile_endpoint_serves_mvt_with_cache_headers(tile_client, source) -> None:
    z, x, y = _a_full_tile(source)
    r = tile_client.get(f"/tiles/grids/{z}/{x}/{y}.mvt")
    assert r.status_code == 200
    assert r.headers["content-type"] == tiles.MEDIA_TYPE
    assert r.headers["cache-control"] == "public, max-age=60"
    assert r.content == source.tile(z, x, y, ["grids"])
    assert list(decode(r.content)) == ["grids"]
    etag = r.headers["etag"]
    again = tile_client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    other = tile_client.get(f"/tiles/roads/{z}/{x}/{y}.mvt")
    assert other.headers["etag"] != etag


def test_multi_layer_endpoint(tile_client, source) -> None:
    z, x, y = _a_full_tile(source)
    r = tile_client.get(f"/tiles/{z}/{x}/{y}.mvt", params={"layers": "enterprises,grids"})
    assert r.status_code == 200
    assert set(decode(r.content)) == {"grids", "enterprises"}
    everything = tile_client.get(f"/tiles/{z}/{x}/{y}.mvt")
    assert everything.content == source.tile(z, x, y)
    assert everything.headers["etag"] != r.headers["etag"]


def test_empty_tile_is_204(tile_client) -> None:
    r = tile_client.get("/tiles/grids/14/0/0.mvt")
    assert r.status_code == 204 and r.content == b""
    assert "etag" in r.headers


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("/tiles/grids/21/0/0.mvt", "zoom 21"),
        ("/tiles/grids/3/8/0.mvt", "x = 8"),
        ("/tiles/grids/3/0/-1.mvt", "y = -1"),
        ("/tiles/3/0/9.mvt", "y = 9"),
        ("/tiles/lakes/3/0/0.mvt", "unknown layer 'lakes'; layers are: roads, streets"),
        ("/tiles/3/0/0.mvt?layers=grids,lakes", "unknown layer 'lakes'"),
        ("/tiles/lakes.json", "layers are:"),
    ],
)
def test_missing_tiles_and_layers_are_404_with_a_reason(tile_client, url, words) -> None:
    r = tile_client.get(url)
    assert r.status_code == 404
    assert words in r.json()["detail"]


def test_tilejson(tile_client, atlas: Atlas) -> None:
    r = tile_client.get("/tiles/grids.json")
    assert r.status_code == 200
    tj = r.json()
    assert tj["tilejson"] == "3.0.0"
    assert tj["tiles"] == ["http://testserver/tiles/grids/{z}/{x}/{y}.mvt"]
    assert (tj["minzoom"], tj["maxzoom"]) == (0, 20)
    w, s, e, n = tj["bounds"]
    np.testing.assert_allclose([w, s, e, n], atlas.tables["grids"].total_bounds)
    assert w < tj["center"][0] < e and s < tj["center"][1] < n
    (vl,) = tj["vector_layers"]
    assert vl["id"] == "grids"
    assert vl["fields"] == {
        "id": "String",
        "name": "String",
        "code": "String",
        "enterprises": "Number",
    }
    many = tile_client.get("/tiles.json", params={"layers": "grids,roads"}).json()
    assert [v["id"] for v in many["vector_layers"]] == ["roads", "grids"]
    assert many["tiles"][0].endswith("/tiles/{z}/{x}/{y}.mvt?layers=roads,grids")
    for v in tile_client.get("/tiles.json").json()["vector_layers"]:
        assert set(LAYERS[v["id"]].field_names) & set(v["fields"]) >= {"id", "name"}


def test_a_new_atlas_version_changes_etag_and_content(tmp_path, sample_dir) -> None:
    import geopandas as gpd
    from fastapi.testclient import TestClient

    from geo import io as geo_io
    from geo.settings import Settings
    from geo.store import open_store

    db = str(tmp_path / "live.gpkg")
    store = open_store(db)
    tables = geo_io.read_directory(sample_dir).tables
    store.replace_all(tables, author="t", reason="first")
    app = _app(open_store(db), Settings(db=db, refresh_seconds=0))
    with TestClient(app) as c:
        src = tiles.source_for(app.state.atlas.current())
        z, x, y = _a_full_tile(src)
        url = f"/tiles/grids/{z}/{x}/{y}.mvt"
        r1 = c.get(url)
        grids = tables["grids"].copy()
        first_id = decode(r1.content)["grids"]["features"][0]["id"]
        grids.loc[first_id - 1, "name"] = "改名网格"
        store.replace_all(
            {**tables, "grids": gpd.GeoDataFrame(grids, crs=4326)}, author="t", reason="rename"
        )
        r2 = c.get(url, headers={"If-None-Match": r1.headers["etag"]})
        assert r2.status_code == 200
        assert r2.headers["etag"] != r1.headers["etag"]
        names = defaultdict(str)
        for f in decode(r2.content)["grids"]["features"]:
            names[f["id"]] = f["properties"]["name"]
        assert names[first_id] == "改名网格"
    store.close()


# --------------------------------------------------------------------------------------------
# carrying cached tiles over to a new version


def _edited(atlas: Atlas) -> Atlas:
    """C01 shrunk by ~30 m and one grid renamed: an edit that changes a few features."""
    from geo.store.base import Snapshot

    tables = dict(atlas.tables)
    comm = tables["communities"].copy()
    row = comm.index[comm["id"] == "C01"][0]
    comm.loc[row, "geometry"] = shapely.buffer(comm.geometry[row], -0.0003, join_style="mitre")
    grids = tables["grids"].copy()
    grids.loc[grids.index[-1], "name"] = "改名网格"
    tables |= {"communities": comm, "grids": grids}
    return Atlas(Snapshot(atlas.version + 1, tables), previous=atlas)


def test_carried_over_tiles_equal_the_new_versions_tiles(atlas: Atlas) -> None:
    from geo.api.tiles import TileCache

    new = _edited(atlas)
    old_src, new_src = tiles.source_for(atlas), tiles.source_for(new)
    cache = TileCache()
    combos = [(name,) for name in ALL] + [ALL, ("communities", "grids", "enterprises")]
    for z in (11, 13, 14, 15, 17):
        for zxy in covering(old_src, z):
            for names in combos:
                cache.put((atlas.serial, *zxy, names), old_src.tile(*zxy, names))
    before = {k: v for k, v in cache._items.items() if k[0] == atlas.serial}
    for _ in cache.carry_over(atlas, new):
        pass
    after = {k[1:]: v for k, v in cache._items.items() if k[0] == new.serial}
    assert set(after) == {k[1:] for k in before}  # every tile is ready for the new version
    carried = [k for k, v in before.items() if after[k[1:]] is v]
    assert len(carried) > 2 * (len(before) - len(carried))  # the edit is local: most are kept
    for key, item in after.items():
        assert item.data == new_src.tile(*key[:3], key[3]), key
    changed = [k for k, v in before.items() if after[k[1:]] is not v and after[k[1:]] != v]
    assert changed  # some tiles that were not carried really differ


def test_a_whole_layer_changes_when_features_are_renumbered(atlas: Atlas) -> None:
    from geo.store.base import Snapshot

    tables = dict(atlas.tables)
    tables["parks"] = tables["parks"].iloc[1:].reset_index(drop=True)  # ids shift
    new = Atlas(Snapshot(atlas.version + 1, tables), previous=atlas)
    src = tiles.source_for(new)
    assert src.changed_boxes(tiles.source_for(atlas), "parks", 14) is None
    assert len(src.changed_boxes(tiles.source_for(atlas), "roads", 14)) == 0
