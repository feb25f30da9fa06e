"""Tile attributes (issue 16 §2): each layer's tiles carry what a map draws and labels (`id`,
`name`, `code`, `kind`, counts) and nothing else; the values are encoded vectorised and equal the
per-value MVT encoding; tiles whose attributes did not change are byte-identical to before; a
version's tiles are prepared when the version is built, not on the first request; decoded tiles
(mapbox_vector_tile) hold exactly the attribute frame's values."""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

import mapbox_vector_tile
import numpy as np
import pandas as pd
import pytest
import shapely

from geo import tiles
from geo.atlas import Atlas
from geo.tiles.attributes import MAP_FIELDS, build_attributes
from geo.tiles.encoding import Packed, _varint

EXPECTED_TYPES = {
    "roads": {"id": "String", "name": "String", "class": "String"},
    "streets": {
        "id": "String",
        "name": "String",
        "code": "String",
        "communities": "Number",
        "enterprises": "Number",
    },
    "communities": {
        "id": "String",
        "name": "String",
        "code": "String",
        "grids": "Number",
        "enterprises": "Number",
    },
    "grids": {"id": "String", "name": "String", "code": "String", "enterprises": "Number"},
    "parks": {
        "id": "String",
        "name": "String",
        "code": "String",
        "buildings": "Number",
        "enterprises": "Number",
    },
    "buildings": {
        "id": "String",
        "name": "String",
        "code": "String",
        "kind": "String",
        "enterprises": "Number",
    },
    "enterprises": {"id": "String", "name": "String", "credit_code": "String"},
}


def _decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def _full_tile(src: tiles.TileSource, name: str, z: int = 15) -> tuple[int, int, int]:
    """The tile at zoom z holding the most features of layer ``name``."""
    best, most = None, -1
    for t in tiles.tiles_covering(src.bounds([name]), [z]):
        n = len(src.layer(name, z).tree.query(shapely.box(*src.clip_box(*t))))
        if n > most:
            best, most = t, n
    assert best is not None
    return best


@pytest.fixture(scope="module")
def source(atlas: Atlas) -> tiles.TileSource:
    return tiles.source_for(atlas)


@pytest.mark.parametrize("layer", tiles.LAYER_NAMES)
def test_each_layer_carries_what_a_map_draws_and_labels(source, layer) -> None:
    assert source.fields(layer) == EXPECTED_TYPES[layer]
    assert tuple(EXPECTED_TYPES[layer]) == MAP_FIELDS[layer]
    feats = _decode(source.tile(*_full_tile(source, layer), [layer]))[layer]["features"]
    assert feats
    for f in feats:
        assert set(f["properties"]) <= set(MAP_FIELDS[layer])
        assert "id" in f["properties"]


@pytest.mark.parametrize("layer", tiles.LAYER_NAMES)
def test_decoded_tiles_hold_the_attribute_frames_values(source, layer) -> None:
    frame = source.attribute_frame(layer)
    z, x, y = _full_tile(source, layer)
    for f in _decode(source.tile(z, x, y, [layer]))[layer]["features"]:
        row = frame.iloc[f["id"] - 1]  # feature id = position in the layer + 1
        want = {k: _plain(row[k]) for k in frame.columns}
        assert f["properties"] == {k: v for k, v in want.items() if v is not None}


def test_an_officers_export_still_carries_every_field_it_may_see(atlas: Atlas) -> None:
    src = tiles.TileSource(atlas, role="officer")
    fields = src.fields("enterprises")
    assert {"credit_code", "chain", "employees", "grid_id", "community_id"} <= set(fields)
    assert "employees" not in tiles.source_for(atlas).fields("enterprises")


# -- the per-value reference encoding (the encoder before vectorising) -------------------------
def _plain(v: Any, kind: str | None = None) -> Any:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        f = float(v)
        return None if math.isnan(f) else (int(f) if f.is_integer() else f)
    return str(v) or None


def _reference_value(v: Any) -> bytes:
    if isinstance(v, str):
        raw = v.encode("utf-8")
        body = b"\x0a" + _varint(len(raw)) + raw
    elif isinstance(v, bool):
        body = b"\x38" + (b"\x01" if v else b"\x00")
    elif isinstance(v, int):
        body = b"\x20" + _varint(v) if v >= 0 else b"\x30" + _varint((v << 1) ^ (v >> 63))
    else:
        body = b"\x19" + np.float64(v).tobytes()
    return b"\x22" + _varint(len(body)) + body


def test_vectorised_values_equal_the_per_value_encoding() -> None:
    frame = pd.DataFrame(
        {
            "s": ["b", "a", None, "", "a", "中文名", float("nan"), "x" * 300],
            "n": [1.0, -3.0, 2.5, np.nan, 1e15, -0.0, 7.0, float("inf")],
            "i": [1, 2, 3, -5, 0, 2**40, 3, 200],
            "b": [True, False, True, True, False, False, True, True],
            "I": pd.array([1, None, 3, 4, 5, 6, 7, 128], dtype="Int64"),
        }
    )
    attrs = build_attributes(frame)
    assert isinstance(attrs.values, Packed)  # one buffer, not a Python object per value
    table = attrs.values.tolist()
    expected = set()
    for j, k in enumerate(frame.columns):
        for i, v in enumerate(frame[k].tolist()):
            p = _plain(v)
            if isinstance(v, str) or k == "s":
                p = None if p is None else str(v)
            if p is None:
                assert attrs.codes[i, j] == -1, (k, i)
                continue
            ref = _reference_value(p)
            expected.add(ref)
            assert table[attrs.codes[i, j]] == ref, (k, i, v)
    assert table == sorted(expected)  # canonical order: by encoded bytes


def test_unchanged_fields_are_reused_by_the_next_version() -> None:
    frame = pd.DataFrame({"id": ["a", "b"], "n": [1, 2]})
    first = build_attributes(frame)
    second = build_attributes(frame.assign(n=[1, 3]), previous=first)
    assert second.columns["id"] is first.columns["id"]
    assert second.columns["n"] is not first.columns["n"]


# -- byte-identical where unchanged --------------------------------------------------------------
# sha256 of every roads tile (whose attributes are unchanged: id, name, class) covering the
# sample district at z12, z14 and z16, made by the encoder before issue 16 (b46546e), then once
# changed on purpose: roads simplified by Douglas–Peucker (one z12 tile, see test_tiles_golden)
ROADS_BEFORE = (1179, "78cef6fc8fe62d778f26a431b64e9baf9268e08a9dd1fde9d4371313faac2a7d")


def test_tiles_whose_attributes_did_not_change_are_byte_identical(source) -> None:
    h, n = hashlib.sha256(), 0
    for z in (12, 14, 16):
        for t in tiles.tiles_covering(source.bounds(["roads"]), [z]):
            h.update(source.tile(*t, ["roads"]))
            n += 1
    assert (n, h.hexdigest()) == ROADS_BEFORE


# -- prepared when the version is built ---------------------------------------------------------
def test_a_versions_tiles_are_prepared_when_it_is_built(copy_sample, tmp_path) -> None:
    """Structural (not timed): once the app has started, its tile source gets every layer's
    encoded attributes and per-zoom geometry in the background, before any tile request (and
    /health says so); a written version is prepared before it is served."""
    import geopandas as gpd
    from fastapi.testclient import TestClient

    from geo.api.app import create_app
    from geo.settings import Settings
    from geo.store import open_store

    db = copy_sample(tmp_path / "prep.gpkg")
    store = open_store(db)
    app = create_app(open_store(db), Settings(db=db, refresh_seconds=0, prepare_tiles=True))
    holder = app.state.atlas
    first = holder.current()
    src = tiles.source_for(first)
    assert not src.prepared()  # not on the way to readiness: after start
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while not client.get("/health").json()["tiles_prepared"]:
            assert time.monotonic() < deadline, "tiles not prepared after start"
            time.sleep(0.02)
    assert src.prepared()
    assert set(src._attrs) == set(tiles.LAYER_NAMES)
    tables = dict(first.tables)
    grids = tables["grids"].copy()
    grids.loc[grids.index[0], "name"] = "改名网格"
    tables["grids"] = gpd.GeoDataFrame(grids, crs=4326)
    store.replace_all(tables, author="t", reason="rename")
    second = holder.current()  # strict mode: builds and swaps the new version in
    assert second.version != first.version
    assert tiles.source_for(second).prepared()
    store.close()


def test_without_preparation_tiles_are_the_same_bytes(copy_sample, tmp_path) -> None:
    """GEO_PREPARE_TILES=0 (tools, test runs) makes a layer on its first tile: nothing is made at
    start, and the tiles are the bytes a prepared server sends."""
    import mercantile
    from fastapi.testclient import TestClient

    from geo.api.app import create_app
    from geo.settings import Settings
    from geo.store import open_store

    db = copy_sample(tmp_path / "lazy.gpkg")
    store = open_store(db)
    point = store.snapshot().tables["enterprises"].geometry.iloc[0]
    store.close()
    t = mercantile.tile(point.x, point.y, 15)
    paths = [f"/tiles/{n}/{t.z}/{t.x}/{t.y}.mvt" for n in ("grids", "roads", "enterprises")]
    got = {}
    for prepare in (False, True):
        app = create_app(open_store(db), Settings(db=db, prepare_tiles=prepare))
        with TestClient(app) as client:
            deadline = time.monotonic() + 60
            while prepare and not client.get("/health").json()["tiles_prepared"]:
                assert time.monotonic() < deadline, "tiles not prepared after start"
                time.sleep(0.02)
            assert tiles.source_for(app.state.atlas.current()).prepared() is prepare
            got[prepare] = [client.get(p).content for p in paths]
    assert got[False] == got[True] and all(got[True])
