"""Restricted fields: one table (`geo.visibility`) says which fields each role sees, and every
surface follows it — OGC items (JSON, HTML, schema, queryables, filters), vector tiles and their
TileJSON, PMTiles exports, maps, search, the owner look-up, neighbours, grids, micro-grids and
officers. Each surface is checked for each restricted field, for an anonymous caller and for an
officer."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import mapbox_vector_tile
import mercantile
import pytest
from typer.testing import CliRunner

from geo import visibility
from geo.atlas import Atlas
from geo.cli import app as cli_app
from geo.maps.layers import ENT_COLUMNS
from geo.model import TABLES
from geo.store.users import ROLES

CALLERS = ("anonymous", "officer")
# every restricted field: (layer, field)
RESTRICTED = [(layer, f) for layer, fields in visibility.RESTRICTED.items() for f in fields]


def sees(caller: str, layer: str, field: str) -> bool:
    return visibility.may_see(layer, field, caller)


def _walk(doc):
    """Every (key, value) of a JSON document, at any depth."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _walk(v)


def keys_of(doc) -> set[str]:
    return {k for k, _ in _walk(doc)}


@pytest.fixture(scope="module")
def enterprise(atlas: Atlas) -> dict:
    """An enterprise with employees recorded, in a building micro-grid with a team."""
    e = atlas.enterprises
    ok = e["employees"].notna().to_numpy() & (e["_microgrid"].to_numpy() >= 0)
    row = int(ok.nonzero()[0][0])
    return {"id": e["id"].iat[row], "row": row, "employees": int(e["employees"].iat[row])}


# -- the table -----------------------------------------------------------------------------------
def test_the_table_names_real_fields_and_roles() -> None:
    for layer, field in RESTRICTED:
        assert field in TABLES[layer].field_names, (layer, field)
        assert visibility.least_role(layer, field) in ROLES
    assert ("enterprises", "employees") in RESTRICTED and ("officers", "phone") in RESTRICTED


@pytest.mark.parametrize("role", ROLES)
def test_roles_see_more_as_trust_grows(role: str) -> None:
    for layer in TABLES:
        seen = visibility.visible_fields(layer, role)
        assert set(seen) | set(visibility.hidden_fields(layer, role)) == set(
            TABLES[layer].field_names
        )
        rank = ROLES.index(role)
        if rank:
            assert set(visibility.visible_fields(layer, ROLES[rank - 1])) <= set(seen)
    assert ("employees" in visibility.visible_fields("enterprises", role)) == (role != "anonymous")
    assert ("phone" in visibility.visible_fields("officers", role)) == (role != "anonymous")


# -- OGC API – Features --------------------------------------------------------------------------
@pytest.mark.parametrize("caller", CALLERS)
def test_ogc_items_json_and_html(client, auth_headers, enterprise, caller: str) -> None:
    h = auth_headers[caller]
    shown = sees(caller, "enterprises", "employees")
    doc = client.get("/collections/enterprises/items", params={"limit": 5000}, headers=h).json()
    props = [f["properties"] for f in doc["features"]]
    assert all(("employees" in p) == shown for p in props)
    one = client.get(f"/collections/enterprises/items/{enterprise['id']}", headers=h).json()
    assert ("employees" in one["properties"]) == shown
    if shown:
        assert one["properties"]["employees"] == enterprise["employees"]
    for url in (
        "/collections/enterprises/items",
        f"/collections/enterprises/items/{enterprise['id']}",
    ):
        page = client.get(url, params={"f": "html"}, headers=h).text
        assert (">employees<" in page) == shown, url
    page = client.get("/collections/enterprises", params={"f": "html"}, headers=h).text
    assert ("employees" in page) == shown


@pytest.mark.parametrize("caller", CALLERS)
def test_ogc_schema_and_queryables(client, auth_headers, caller: str) -> None:
    h = auth_headers[caller]
    shown = sees(caller, "enterprises", "employees")
    for what in ("schema", "queryables"):
        doc = client.get(f"/collections/enterprises/{what}", headers=h).json()
        assert ("employees" in doc["properties"]) == shown, what


@pytest.mark.parametrize("caller", CALLERS)
def test_ogc_filter_on_a_hidden_field_is_refused(client, auth_headers, enterprise, caller) -> None:
    h = auth_headers[caller]
    r = client.get(
        "/collections/enterprises/items",
        params={"employees": enterprise["employees"], "limit": 5000},
        headers=h,
    )
    if sees(caller, "enterprises", "employees"):
        assert r.status_code == 200
        assert enterprise["id"] in {f["id"] for f in r.json()["features"]}
    else:
        assert r.status_code == 400, r.text
        assert "officer" in r.json()["detail"] and "employees" in r.json()["detail"]
    # a bad token is still a 401, not a hint about the field
    bad = client.get(
        "/collections/enterprises/items", params={"employees": 1}, headers=auth_headers["bad"]
    )
    assert bad.status_code == 401


def test_officers_are_still_no_collection(client, auth_headers) -> None:
    for caller in CALLERS:
        r = client.get("/collections/officers/items", headers=auth_headers[caller])
        assert r.status_code == 404


# -- tiles and PMTiles ---------------------------------------------------------------------------
def _tile_of(atlas: Atlas, row: int, z: int = 16) -> tuple[int, int, int]:
    e = atlas.enterprises
    t = mercantile.tile(float(e["lon"].iat[row]), float(e["lat"].iat[row]), z)
    return z, t.x, t.y


def _decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


@pytest.mark.parametrize("caller", CALLERS)
def test_tiles_never_carry_restricted_fields(
    client, auth_headers, atlas, enterprise, caller
) -> None:
    h = auth_headers[caller]
    z, x, y = _tile_of(atlas, enterprise["row"])
    for url in (f"/tiles/enterprises/{z}/{x}/{y}.mvt", f"/tiles/{z}/{x}/{y}.mvt"):
        r = client.get(url, headers=h)
        assert r.status_code == 200
        layer = _decode(r.content)["enterprises"]
        ids = {f["properties"]["id"] for f in layer["features"]}
        assert enterprise["id"] in ids
        assert all("employees" not in f["properties"] for f in layer["features"]), url
    for url in ("/tiles/enterprises.json", "/tiles.json"):
        meta = client.get(url, headers=h).json()
        fields = {v["id"]: v["fields"] for v in meta["vector_layers"]}
        assert "employees" not in fields["enterprises"] and "credit_code" in fields["enterprises"]


def _pmtiles_properties(path: Path) -> tuple[dict, list[dict]]:
    from pmtiles.reader import MmapSource, Reader, all_tiles

    with path.open("rb") as f:
        reader = Reader(MmapSource(f))
        meta = reader.metadata()
        props = [
            feat["properties"]
            for _, data in all_tiles(reader.get_bytes)
            for feat in _decode(gzip.decompress(data)).get("enterprises", {}).get("features", [])
        ]
    return meta, props


@pytest.mark.parametrize("role", [None, "anonymous", "officer"])
def test_pmtiles_export_is_public_unless_asked(sample_db: str, tmp_path: Path, role) -> None:
    out = tmp_path / "ent.pmtiles"
    args = ["export", "tiles", "-o", str(out), "--minzoom", "15", "--maxzoom", "15"]
    args += ["--layers", "enterprises", "--db", sample_db]
    if role:
        args += ["--role", role]
    r = CliRunner().invoke(cli_app, args)
    assert r.exit_code == 0, r.output
    meta, props = _pmtiles_properties(out)
    shown = role == "officer"
    assert props and all(("employees" in p) == shown for p in props)
    fields = {v["id"]: v["fields"] for v in meta["vector_layers"]}
    assert ("employees" in fields["enterprises"]) == shown


def test_pmtiles_export_refuses_an_unknown_role(sample_db: str, tmp_path: Path) -> None:
    args = [
        "export",
        "tiles",
        "-o",
        str(tmp_path / "x.pmtiles"),
        "--role",
        "boss",
        "--db",
        sample_db,
    ]
    r = CliRunner().invoke(cli_app, args)
    assert r.exit_code == 2 and "unknown role" in r.output


def test_layer_export_is_the_operators_and_complete(sample_db: str, tmp_path: Path) -> None:
    out = tmp_path / "enterprises.geojson"
    r = CliRunner().invoke(cli_app, ["export", "enterprises", "-o", str(out), "--db", sample_db])
    assert r.exit_code == 0, r.output
    feats = json.loads(out.read_text(encoding="utf-8"))["features"]
    assert all("employees" in f["properties"] for f in feats)


# -- maps ------------------------------------------------------------------------------------------
def test_map_markers_show_public_fields_only() -> None:
    fields = [c for c in ENT_COLUMNS if c in TABLES["enterprises"].field_names]
    assert visibility.public("enterprises", fields) == fields


@pytest.mark.parametrize("caller", CALLERS)
def test_map_pages_show_no_restricted_field(client, auth_headers, atlas, caller) -> None:
    h = auth_headers[caller]
    o = atlas.tables["officers"].iloc[0]
    pages = {
        "/maps/community/C01": None,
        f"/maps/officer/{o['id']}": o["phone"],
        "/maps/": None,
    }
    for url, phone in pages.items():
        page = client.get(url, params={"basemap": "none"}, headers=h)
        assert page.status_code == 200, url
        assert "employees" not in page.text and "从业人数" not in page.text, url
        if phone:
            assert phone not in page.text
    # the maps' search entries: names, roles, addresses and credit codes only
    phones = set(atlas.tables["officers"]["phone"])
    for params in ({}, {"community": "C01"}):
        r = client.get("/maps/search.json", params=params, headers=h)
        assert r.status_code == 200
        cells = {str(c) for entry in r.json() for c in entry}
        assert not cells & phones


# -- the JSON views ------------------------------------------------------------------------------
@pytest.mark.parametrize("caller", CALLERS)
def test_owner_look_up(client, auth_headers, enterprise, caller: str) -> None:
    body = client.get(f"/enterprises/{enterprise['id']}/owner", headers=auth_headers[caller]).json()
    assert ("employees" in body["enterprise"]) == sees(caller, "enterprises", "employees")
    if sees(caller, "enterprises", "employees"):
        assert body["enterprise"]["employees"] == enterprise["employees"]
    assert body["team"], "the sample enterprise has a team"
    assert all(("phone" in o) == sees(caller, "officers", "phone") for o in body["team"])


@pytest.mark.parametrize("caller", CALLERS)
def test_views_of_cells_and_people(client, auth_headers, atlas, enterprise, caller) -> None:
    """Grids, micro-grids, officers, neighbours and search: phones by role, employees never
    (these views list enterprises publicly)."""
    h = auth_headers[caller]
    e = atlas.enterprises
    row = enterprise["row"]
    grid_id = atlas.ids_of("grid", e["_grid"].to_numpy()[[row]])[0]
    micro_id = atlas.ids_of("microgrid", e["_microgrid"].to_numpy()[[row]])[0]
    officer = atlas.tables["officers"].iloc[0]
    urls = [
        f"/grids/{grid_id}",
        f"/microgrids/{micro_id}",
        f"/officers/{officer['id']}",
        f"/enterprises/{enterprise['id']}/neighbours?chain=any&scope=grid",
        f"/search?q={officer['name']}",
        f"/search?q={e['name'].iat[row]}",
    ]
    for url in urls:
        r = client.get(url, headers=h)
        assert r.status_code == 200, (url, r.text)
        keys = keys_of(r.json())
        assert "employees" not in keys, url
        if url.startswith(("/grids", "/microgrids", "/officers")):
            assert ("phone" in keys) == sees(caller, "officers", "phone"), url
        else:
            assert "phone" not in keys, url
        assert officer["phone"] not in r.text or sees(caller, "officers", "phone"), url
