"""A planner's session on the real Binjiang, end to end through the `geo` command: the
OpenStreetMap extract in, then boundaries from four-to text as governments write it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geo.cli import app

OSM = Path(__file__).resolve().parent.parent / "data" / "osm" / "binjiang.osm.pbf"
TORCH = "东至信诚路、南至南环路、西至东信大道、北至江南大道"
runner = CliRunner()


@pytest.fixture(scope="module")
def osm_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    db = str(tmp_path_factory.mktemp("real") / "binjiang.gpkg")
    r = runner.invoke(app, ["import", "osm", str(OSM), "--db", db])
    assert r.exit_code == 0, r.output
    assert "streets: 3 rows" in r.output and "(version 1)" in r.output
    return db


def build(db: str, *args: str):
    r = runner.invoke(app, ["boundary", "build", *args, "--db", db])
    return r, (json.loads(r.stdout) if r.exit_code == 0 else None)


def test_torch_builds_on_the_real_roads(osm_db: str) -> None:
    r, feature = build(osm_db, TORCH)
    assert r.exit_code == 0, r.output
    assert feature["properties"]["area_m2"] == pytest.approx(1.609e6, rel=0.01)


def test_a_notice_with_lead_in_and_three_sides_closed_by_the_street(osm_db: str) -> None:
    text = "火炬产业社区位于浦沿街道，南至南环路，西至东信大道，北至江南大道，以数字安防为核心"
    r, _ = build(osm_db, text)
    assert r.exit_code == 2 and "side 东 is open" in r.output and "--within" in r.output
    r, feature = build(osm_db, text, "--within", "浦沿街道")
    assert r.exit_code == 0, r.output
    props = feature["properties"]
    assert props["within"] == ["east"] and "以数字安防为核心" in props["notes"]
    assert props["area_m2"] == pytest.approx(1.61e6, rel=0.01)


def test_a_street_named_as_a_side(osm_db: str) -> None:
    r, feature = build(osm_db, "东与长河街道交界，南至南环路，西至东信大道，北至江南大道")
    assert r.exit_code == 0, r.output
    assert feature["properties"]["area_m2"] == pytest.approx(1.61e6, rel=0.01)


def test_a_road_that_stops_short_is_extended_on_request(osm_db: str) -> None:
    text = "东至江晖路、南至南环路、西至江淑路、北至聚园路"
    r, _ = build(osm_db, text)
    assert r.exit_code == 2 and "--extend-m 180" in r.output
    r, feature = build(osm_db, text, "--extend-m", "180")
    assert r.exit_code == 0, r.output
    (ext,) = feature["properties"]["extensions"]
    assert ext["road"] == "江晖路" and ext["reached"] == "南环路"
    assert ext["length_m"] == pytest.approx(179.4, abs=0.5)


def test_within_an_unknown_street_lists_the_streets(osm_db: str) -> None:
    r, _ = build(osm_db, TORCH, "--within", "S9")
    assert r.exit_code == 2 and "浦沿街道" in r.output


def test_the_osm_store_answers_locate_with_the_street(osm_db: str) -> None:
    r = runner.invoke(app, ["locate", "120.16", "30.19", "--db", osm_db])
    assert r.exit_code == 0, r.output
    owners = json.loads(r.stdout)
    assert owners["street"]["name"] == "浦沿街道" and owners["community"] is None


def test_osm_into_a_store_with_communities_is_refused_and_says_how(
    tmp_path: Path, copy_sample
) -> None:
    db = copy_sample(tmp_path / "sample.gpkg")
    r = runner.invoke(app, ["import", "osm", str(OSM), "--db", db])
    assert r.exit_code == 2 and "nothing imported" in r.output and "--db NEW.gpkg" in r.output
