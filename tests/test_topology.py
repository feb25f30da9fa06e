"""Topology checks: overlaps, gaps, slivers, invalid rings, parts outside; `geo check`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import shapely
from shapely.geometry import Polygon, box
from typer.testing import CliRunner

from geo.boundaries.topology import check_district, check_partition
from geo.cli import app
from geo.io import read_directory
from geo.settings import SAMPLE_DIR

runner = CliRunner()
X0, Y0 = 500_000.0, 3_340_000.0  # EPSG:4549 metres near Binjiang


def b(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    return box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


@pytest.fixture(scope="module")
def sample_tables() -> dict:
    return read_directory(SAMPLE_DIR).tables


def test_sample_district_is_clean(sample_tables: dict) -> None:
    assert check_district(sample_tables) == []


def test_overlap_gap_sliver_outside_and_invalid() -> None:
    street = b(0, 0, 1000, 1000)
    members = [
        b(0, 0, 500, 500),  # A
        b(490, 0, 800, 500),  # B overlaps A by 10 m × 500 m
        b(0, 505, 400, 900),  # C: a 5 m gap to A
        b(800.5, 0, 1100, 500),  # D: 0.5 m sliver gap to B; reaches 100 m outside the street
        Polygon([(X0, Y0 + 950), (X0 + 50, Y0 + 1000), (X0 + 50, Y0 + 950), (X0, Y0 + 1000)]),
    ]
    found = check_partition("communities", "S", street, "ABCDE", members, cover=False)
    kinds = {(p.kind, p.ids) for p in found}
    assert ("overlap", ("A", "B")) in kinds
    assert ("gap", ("A", "C")) in kinds
    assert ("sliver", ("B", "D")) in kinds
    assert ("outside", ("D",)) in kinds
    assert ("invalid", ("E",)) in kinds
    by = {(p.kind, p.ids): p for p in found}
    assert by["overlap", ("A", "B")].area_m2 == pytest.approx(5000, rel=1e-6)
    assert by["gap", ("A", "C")].area_m2 == pytest.approx(2000, rel=1e-3)
    assert by["outside", ("D",)].area_m2 == pytest.approx(50000, rel=1e-6)
    assert "Self-intersection" in by["invalid", ("E",)].detail
    lon, lat = by["overlap", ("A", "B")].location
    assert 119 < lon < 121 and 29 < lat < 31
    assert "m² at (" in by["overlap", ("A", "B")].message


def test_grids_must_tile_their_community() -> None:
    community = b(0, 0, 1000, 1000)
    grids = [b(0, 0, 500, 1000), b(500, 0, 1000, 600)]
    found = check_partition("grids", "C", community, ["G1", "G2"], grids, cover=True)
    assert [(p.kind, p.area_m2) for p in found] == [("gap", pytest.approx(200_000))]
    assert found[0].ids == ("G1", "G2")


def test_noise_along_shared_edges_is_ignored() -> None:
    a = b(0, 0, 500, 500)
    c = b(499.999, 0, 1000, 500)  # 1 mm overlap along 500 m: 0.5 m², noise
    assert check_partition("communities", "S", None, "AC", [a, c], cover=False) == []


def test_geo_check_sample_clean(sample_db: str) -> None:
    r = runner.invoke(app, ["check", "--db", sample_db])
    assert r.exit_code == 0, r.output
    assert "clean" in r.output


def test_geo_check_broken_copy(tmp_path: Path, sample_dir: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    path = data / "communities.geojson"
    doc = json.loads(path.read_text(encoding="utf-8"))
    c05 = next(f for f in doc["features"] if (f.get("id") or f["properties"]["id"]) == "C05")
    geom = shapely.geometry.shape(c05["geometry"])
    c05["geometry"] = shapely.geometry.mapping(shapely.affinity.translate(geom, 0.005, 0.008))
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    r = runner.invoke(app, ["check", str(data), "--json"])
    assert r.exit_code == 1, r.output
    problems = json.loads(r.stdout)["problems"]
    kinds = {(p["kind"], tuple(p["ids"])) for p in problems}
    assert ("overlap", ("C01", "C05")) in kinds  # moved ~1 km north-east into Torch
    assert any(p["kind"] == "outside" and p["ids"] == ["C05"] for p in problems)
    assert any(p["level"] == "grids" and p["parent"] == "C05" for p in problems)
    overlap = next(p for p in problems if p["kind"] == "overlap" and p["ids"] == ["C01", "C05"])
    assert overlap["area_m2"] > 1000 and 120.1 < overlap["location"]["lon"] < 120.2
    r = runner.invoke(app, ["check", str(data)])
    assert r.exit_code == 1 and "overlap" in r.output


def test_geo_check_bad_input_exit_2(tmp_path: Path) -> None:
    assert runner.invoke(app, ["check", str(tmp_path / "nowhere")]).exit_code == 2
    assert runner.invoke(app, ["check", "--db", str(tmp_path / "none.gpkg")]).exit_code == 2
