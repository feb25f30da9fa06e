"""Ids with control characters, bidi controls, slashes, whitespace, the wrong case or thousands of
characters: every id in a path or a body follows `geo.ids` or is refused (404 in a path, 422 in a
body, a rejected row on load), and a refused request has stored nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from shapely.geometry import box, mapping

from geo import ids
from geo.errors import InvalidInput, NotFound
from geo.service import boundaries
from geo.service import grids as grid_actions
from geo.service.boundaries import BoundaryDraft, NewCommunity

FOUR_TO = "东至信诚路、南至南环路、西至东信大道、北至江南大道"
NOTCH = box(120.1420, 30.1900, 120.1450, 30.1920)  # inside 浦沿街道 (S03), next to no community

# (as sent in a URL path, the id it decodes to)
BAD_PATH_IDS = [
    ("C07%00", "C07\x00"),
    ("%E2%80%AEC07", "\u202eC07"),
    ("C07%E2%80%8F", "C07\u200f"),
    ("C07%20", "C07 "),
    ("%20C07", " C07"),
    ("c07", "c07"),
    ("C07%5Cx", "C07\\x"),
    ("C" + "7" * 5000, "C" + "7" * 5000),
]
BAD_BODY_IDS = [
    "\u202eC62",
    "C63\x00x",
    "C61/x",
    "C01 ",
    "c01",
    "C" * 20_000,
    "C64\u2066",
    "C65\n",
    "",
    "Ｃ66",  # a fullwidth C
    "C٦٧",  # Arabic-Indic digits
]


def _state(db: str) -> tuple[int, list[str], dict[str, int]]:
    """The store's version, its community ids and each community's boundary version."""
    from geo.store import open_store

    store = open_store(db)
    try:
        ids_ = store.snapshot().tables["communities"]["id"].tolist()
        return store.version(), ids_, {i: store.community_version(i) for i in ids_}
    finally:
        store.close()


# ------------------------------------------------------------------------------ HTTP: paths


@pytest.mark.parametrize(("raw", "decoded"), BAD_PATH_IDS, ids=[r[:12] for r, _ in BAD_PATH_IDS])
def test_a_path_id_that_is_no_id_is_a_404_everywhere(hc, writable, raw: str, decoded: str) -> None:
    db, _ = writable
    before = _state(db)
    r = hc.get(f"/communities/{raw}")
    assert r.status_code == 404, (raw, r.status_code, r.text[:200])
    assert "etag" not in r.headers
    calls = [
        ("PUT", f"/communities/{raw}/boundary", {"four_to": FOUR_TO}),
        ("POST", f"/communities/{raw}/boundary/preview", {"four_to": FOUR_TO}),
        ("POST", f"/communities/{raw}/boundary/revert", {"version": 1}),
        ("GET", f"/communities/{raw}/history", None),
        ("POST", f"/communities/{raw}/grids/split", {"count": 2}),
        ("POST", f"/communities/{raw}/grids/commit", {"count": 2}),
    ]
    for method, path, body in calls:
        r = hc.request(method, path, json=body, headers={"If-Match": "0"})
        assert r.status_code == 404, (method, path[:40], r.status_code, r.text[:200])
        assert len(r.json()["detail"]) < 400  # the id is cut short and escaped in the message
    assert _state(db) == before  # nothing stored


def test_c07_nul_is_not_c07(hc, writable) -> None:
    """The issue's exploit: an If-Match of 0 on C07%00 answered 404 yet created 'C07\\x00'."""
    db, _ = writable
    before = _state(db)
    assert hc.get("/communities/C07").status_code == 200
    r = hc.put("/communities/C07%00/boundary", json={"four_to": FOUR_TO}, headers={"If-Match": "0"})
    assert r.status_code == 404, r.text
    assert _state(db) == before
    assert "C07\x00" not in _state(db)[1]


# ------------------------------------------------------------------------------ HTTP: bodies


def _create(hc, **changes):
    body = {
        "name": "恶意社区",
        "street_id": "S03",
        "type": "科技创新型",
        "mode": "street",
        "geometry": mapping(NOTCH),
        "snap_tolerance_m": 0,
        **changes,
    }
    return hc.post("/communities", json=body)


@pytest.mark.parametrize("bad", BAD_BODY_IDS, ids=[repr(b[:8]) for b in BAD_BODY_IDS])
def test_a_new_community_id_that_is_no_id_is_a_422(hc, writable, bad: str) -> None:
    db, _ = writable
    before = _state(db)
    r = _create(hc, id=bad)
    assert r.status_code == 422, (bad[:20], r.status_code, r.text[:200])
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail.startswith("id ") and len(detail) < 400
    assert "\x00" not in detail and "\u202e" not in detail  # shown escaped
    assert _state(db) == before


@pytest.mark.parametrize("bad", ["²", "00²", "١٢٣", "1", "0001", "00a", " 003", "00\x00"])
def test_a_new_community_code_that_is_not_three_ascii_digits_is_a_422(
    hc, writable, bad: str
) -> None:
    db, _ = writable
    before = _state(db)
    r = _create(hc, code=bad)
    assert r.status_code == 422, (bad, r.status_code, r.text[:200])
    assert "3 ASCII digits" in r.json()["detail"]
    assert _state(db) == before


@pytest.mark.parametrize("bad", ["S03\x00", "S0/3", "\u202eS03", "S" * 100])
def test_a_street_id_that_is_no_id_is_a_422(hc, writable, bad: str) -> None:
    db, _ = writable
    before = _state(db)
    r = _create(hc, street_id=bad)
    assert r.status_code == 422, (bad[:10], r.status_code, r.text[:200])
    assert r.json()["detail"].startswith("street_id ")
    assert _state(db) == before


def test_after_the_refusals_the_next_create_takes_the_next_id_and_code(hc, writable) -> None:
    """A bad code used to be stored and break every later create in its street."""
    _create(hc, code="²")
    r = _create(hc)
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["id"] == "C08"
    assert got["feature"]["properties"]["code"] == "003"


# ----------------------------------------------------------------- service (the CLI's path)


@pytest.mark.parametrize("bad", ["C07\x00", "C07\x00\x00", "\u202eC07", "C07 ", "c07", "C07/"])
def test_the_actions_refuse_a_community_id_that_is_no_id(store, bad: str) -> None:
    tables = store.snapshot().tables
    version = store.version()
    with pytest.raises(NotFound, match="no community"):
        boundaries.community(tables, bad)
    with pytest.raises(NotFound, match="no community"):
        boundaries.set_boundary(
            store, tables, bad, BoundaryDraft(four_to=FOUR_TO), expected_version=0, author="p"
        )
    with pytest.raises(NotFound, match="no community"):
        boundaries.revert(store, tables, bad, 1, expected_version=0, author="p")
    with pytest.raises(NotFound, match="no community"):
        boundaries.history(store, tables, bad)
    with pytest.raises(NotFound, match="no community"):
        grid_actions.commit_split(store, bad, count=2, author="p")
    assert store.version() == version
    assert bad not in store.snapshot().tables["communities"]["id"].tolist()


@pytest.mark.parametrize(
    "changes",
    [{"id": "C63\x00x"}, {"id": "c09"}, {"code": "²"}, {"street_id": "S03\x00"}],
)
def test_create_action_refuses_bad_ids_and_codes(store, changes: dict) -> None:
    tables = store.snapshot().tables
    fields = {"name": "x", "street_id": "S03", "type": "科技创新型", "mode": "street", **changes}
    draft = BoundaryDraft(geometry=mapping(NOTCH), snap_tolerance_m=0)
    with pytest.raises(InvalidInput):
        boundaries.create_community(store, tables, NewCommunity(**fields), draft, author="p")
    assert store.version() == 1


def test_next_code_ignores_codes_that_are_not_ascii_digits() -> None:
    assert boundaries._next_code(["001", "²", "١٢٣", "9999", None]) == "002"
    assert boundaries._next_id(["C01", "C٩٩", "c50"]) == "C02"


# ---------------------------------------------------------------------------- geo load / import


def test_ids_rules_admit_every_id_of_the_sample(sample_dir: Path) -> None:
    for name in ("roads", "streets", "communities", "grids", "parks", "buildings", "areas"):
        doc = json.loads((sample_dir / f"{name}.geojson").read_text(encoding="utf-8"))
        for f in doc["features"]:
            fid = f.get("id", f["properties"].get("id"))
            assert ids.id_problem(fid) is None, (name, fid)
    for fid in ("W4348186", "BR1234", "P1234", "C01-G02", "E000123", "r1", "编号1", "C-NEW"):
        assert ids.id_problem(fid) is None, fid


def test_load_rejects_rows_whose_id_is_no_id(tmp_path: Path, sample_dir: Path) -> None:
    from typer.testing import CliRunner

    from geo.cli import app

    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    roads = json.loads((data / "roads.geojson").read_text(encoding="utf-8"))
    bad_ids = ["W1\x00", "\u202eW2", "W3/4", "W 5", "W" * 65]
    for k, bad in enumerate(bad_ids):
        roads["features"][k]["id"] = bad
        roads["features"][k]["properties"]["id"] = bad
    comm = json.loads((data / "communities.geojson").read_text(encoding="utf-8"))
    comm["features"].append({**comm["features"][0], "id": "C9\u200f9"})
    comm["features"][-1]["properties"] = {**comm["features"][0]["properties"], "id": "C9\u200f9"}
    for name, doc in (("roads", roads), ("communities", comm)):
        (data / f"{name}.geojson").write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    db = tmp_path / "s.gpkg"
    done = CliRunner().invoke(app, ["load", str(data), "--db", str(db), "--verbose"])
    assert done.exit_code == 0, done.output
    assert "6 rejected" in done.output, done.output[-2000:]
    assert "holds the control or format character U+0000" in done.output
    assert "U+202E" in done.output and "no slashes" in done.output
    assert "whitespace" in done.output and "at most 64" in done.output
    assert "U+200F" in done.output
    assert "\x00" not in done.output and "\u202e" not in done.output
    from geo.store import open_store

    store = open_store(str(db))
    try:
        tables = store.snapshot().tables
        assert not set(bad_ids) & set(tables["roads"]["id"])
        assert "C9\u200f9" not in set(tables["communities"]["id"])
    finally:
        store.close()


def test_posted_roads_with_bad_ids_are_rejected_with_a_reason() -> None:
    from geo import io as geo_io

    line = {"type": "LineString", "coordinates": [[120.1, 30.1], [120.2, 30.2]]}
    doc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": fid, "properties": {"name": "路"}, "geometry": line}
            for fid in ("W4348186", "W1\x00", "\u2066W2")
        ],
    }
    frame, issues = geo_io.read_layer_doc(doc, "roads", "roads")
    assert frame["id"].tolist() == ["W4348186"]
    assert sum("control or format character" in i.reason for i in issues) == 2
