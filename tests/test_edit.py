"""Boundary edits without HTTP: snapping, validation, impact, rebuild on load, store history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box, mapping

from geo.boundaries import edit
from geo.boundaries.roads import RoadNetwork
from geo.crs import to_lonlat, to_metric
from geo.io import read_directory
from geo.service.load import check_four_to
from geo.settings import SAMPLE_DIR as SAMPLE
from geo.store import SQLiteStore, StaleCommunityError


@pytest.fixture(scope="module")
def tables() -> dict:
    return read_directory(SAMPLE).tables


@pytest.fixture(scope="module")
def network(tables: dict) -> RoadNetwork:
    return RoadNetwork.from_frame(tables["roads"])


def torch(tables: dict):
    comm = tables["communities"]
    return comm[comm["id"] == "C01"].geometry.iloc[0]


def drawn_near_jiangnan(network: RoadNetwork, offset_m: float) -> tuple[dict, list]:
    """A quadrilateral inside Torch whose two northern vertices lie offset_m from 江南大道,
    on its southern side (along the road's normal: the road runs diagonally here)."""
    road = network.get("江南大道")
    pts = []
    for x in (120.160, 120.165):
        probe = to_metric(shapely.Point(x, 30.188))
        at = shapely.line_locate_point(road, probe)
        on = shapely.line_interpolate_point(road, at)
        ahead = shapely.line_interpolate_point(road, at + 1.0)
        dx, dy = ahead.x - on.x, ahead.y - on.y
        nx, ny = (dy, -dx) if dx > 0 else (-dy, dx)  # the normal that points south
        pts.append((on.x + nx * offset_m, on.y + ny * offset_m))
    (ax, ay), (bx, by) = pts
    ring = [(ax, ay), (bx, by), (bx, by - 300), (ax, ay - 300), (ax, ay)]
    return mapping(to_lonlat(Polygon(ring))), pts


def test_every_sample_community_builds_from_its_four_to_on_load(tables: dict) -> None:
    """The check `geo load` runs: IoU of built vs digitised ≥ 0.99 for every community."""
    reports = edit.rebuild_check(tables["communities"], tables["roads"], tables["areas"])
    assert len(reports) == len(tables["communities"]) > 0
    assert all(r.ok for r in reports), [r.message() for r in reports if not r.ok]
    assert min(r.iou for r in reports) >= 0.99
    assert check_four_to(tables) == []


def test_load_warns_when_four_to_does_not_match(tables: dict) -> None:
    comm = tables["communities"].copy()
    comm.loc[comm["id"] == "C01", "four_to"] = "东至信诚路、南至南环路、西至伟业路、北至江南大道"
    comm.loc[comm["id"] == "C05", "four_to"] = "东至信诚路、西至伟业路、南至无名路、北至南环路"
    bad = {r.id: r for r in check_four_to({**tables, "communities": comm})}
    assert set(bad) == {"C01", "C05"}
    assert "IoU 0.739" in bad["C01"].message()
    assert 'unknown road "无名路"' in bad["C05"].message()


@pytest.mark.parametrize(("offset", "snaps"), [(10.0, True), (30.0, False)])
def test_drawn_vertex_snaps_onto_jiangnan_within_tolerance(
    network: RoadNetwork, offset: float, snaps: bool
) -> None:
    geometry, drawn = drawn_near_jiangnan(network, offset)
    prop = edit.propose(geometry=geometry, roads=network, snap_tolerance_m=15.0)
    road = network.get("江南大道")
    coords = shapely.get_coordinates(prop.metric)
    # the result's vertex closest to each drawn northern vertex
    north = np.array([coords[np.argmin(np.hypot(*(coords - p).T))] for p in drawn])
    moved = np.hypot(*(north - np.array(drawn)).T)
    dist = shapely.distance(shapely.points(north), road)
    if snaps:
        assert dist.max() < 1e-6
        assert moved.max() == pytest.approx(offset, abs=1.0)
        assert {v["road"] for v in prop.snapped.vertices} == {"江南大道"}
        assert [e["road"] for e in prop.snapped.edges] == ["江南大道"]
        assert prop.snapped.edges[0]["length_m"] == pytest.approx(430, abs=40)
    else:  # nothing snaps onto 江南大道 (永久河, 30-40 m south of it, may take a vertex)
        assert dist.min() > 25
        assert "江南大道" not in {v["road"] for v in prop.snapped.vertices}
        assert "江南大道" not in {e["road"] for e in prop.snapped.edges}


def test_self_intersecting_drawing_is_refused_with_its_location() -> None:
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[120.15, 30.18], [120.16, 30.19], [120.16, 30.18], [120.15, 30.19],
                         [120.15, 30.18]]],
    }  # fmt: skip
    with pytest.raises(edit.EditError, match=r"Self-intersection at \(120\.155000, 30\.18500") as e:
        edit.propose(geometry=bowtie)
    assert "redraw" in str(e.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "either four_to"),
        ({"four_to": "x", "geometry": {}}, "not both"),
        ({"geometry": {"type": "Point", "coordinates": [1, 2]}}, "Polygon or MultiPolygon"),
        ({"geometry": mapping(box(30, 120, 31, 121))}, "out of range"),
        ({"geometry": mapping(box(120.1, 30.1, 120.2, 30.2)), "crs": "nad"}, "nad"),
    ],
)
def test_proposal_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        edit.propose(**kwargs)


def test_validation_overlap_and_outside_street(tables: dict, network: RoadNetwork) -> None:
    old = to_metric(torch(tables))
    grown = shapely.affinity.translate(old, -480, -890)  # into 智造 (C05), south-west of Torch
    check = edit.validate(tables, "C01", "S03", grown)
    assert not check.ok
    overlap = next(p for p in check.errors if p.kind == "overlap")
    assert overlap.ids == ("C01", "C05") and overlap.area_m2 > 1000
    assert "C01 and C05 overlap" in check.message()
    east = shapely.affinity.translate(old, 200, 0)  # across 信诚路 into 长河街道
    check = edit.validate(tables, "C01", "S03", east)
    assert any(p.kind == "outside" for p in check.errors)
    assert "reaches outside S03" in check.message()
    with pytest.raises(edit.EditError, match="unknown street"):
        edit.validate(tables, "C01", "S99", old)


def test_impact_of_moving_torchs_northern_edge_matches_shapely(tables: dict) -> None:
    old = torch(tables)
    minx, miny, maxx, _ = old.bounds
    new = shapely.intersection(old, box(minx - 1, miny - 1, maxx + 1, 30.187))
    out = edit.impact(tables, "C01", new)
    ent = tables["enterprises"]
    x, y = ent.geometry.x.to_numpy(), ent.geometry.y.to_numpy()
    truth = set(ent["id"][shapely.contains_xy(old, x, y) & ~shapely.contains_xy(new, x, y)])
    assert truth and {e["id"] for e in out["enterprises"]} == truth
    assert all(e["from"]["id"] == "C01" and e["to"] is None for e in out["enterprises"])
    parks = tables["parks"]
    rep = shapely.point_on_surface(parks.geometry.values)
    lost = shapely.contains(old, rep) & ~shapely.contains(new, rep)
    assert {p["id"] for p in out["parks"]} == set(parks["id"][lost])
    assert out["counts"]["parks"] == int(lost.sum()) > 0
    m_old, m_new = to_metric(old), to_metric(new)
    assert out["area"]["lost_m2"] == pytest.approx(m_old.area - m_new.area, abs=1)
    assert out["area"]["gained_m2"] == pytest.approx(0, abs=1)


def test_owners_follow_the_edge_rule() -> None:
    a, c = box(0, 0, 1, 1), box(1, 0, 2, 1)
    pts = shapely.points([(0.5, 0.5), (1.0, 0.5), (1.5, 0.5), (5, 5)])
    assert edit.owners(pts, np.array([a, c], dtype=object)).tolist() == [0, 0, 1, -1]


def test_store_history_versions_and_stale_writes(tmp_path: Path, tables: dict) -> None:
    with SQLiteStore(tmp_path / "s.gpkg") as store:
        v1 = store.replace_all(tables, author="t", reason="load", record_history=True)
        assert store.community_version("C01") == 1
        old = torch(tables)
        smaller = shapely.intersection(old, box(*old.bounds[:3], 30.1915))
        cv, sv = store.edit_community(
            "C01", smaller, author="ann", reason="north edge", expected_version=1,
            fields={"four_to": "东至信诚路"},
        )  # fmt: skip
        assert (cv, sv) == (2, v1 + 1) and store.version() == v1 + 1
        with pytest.raises(StaleCommunityError, match="C01 is at version 2, not 1"):
            store.edit_community("C01", old, author="bob", reason="x", expected_version=1)
        snap = store.snapshot()
        row = snap.tables["communities"].set_index("id").loc["C01"]
        assert row["four_to"] == "东至信诚路" and row.geometry.equals(smaller)
        history = store.community_history("C01")
        assert [(h.version, h.action, h.author) for h in history] == [
            (2, "edit", "ann"),
            (1, "load", "t"),
        ]
        assert history[1].geometry.equals(old)
        # a reload keeps the history and appends a version
        store.replace_all(tables, author="t", reason="reload", record_history=True)
        assert [h.version for h in store.community_history("C01")] == [3, 2, 1]
        # a store without history records a baseline before the first edit
        store.replace_all(tables, author="t", reason="plain")
        assert store.community_version("C02") == 2
        with pytest.raises(KeyError):
            store.edit_community("C99", old, author="x", reason="x", expected_version=None)
        with pytest.raises(ValueError, match="exists already"):
            store.edit_community("C02", old, author="x", reason="x", expected_version=2,
                                 create=True)  # fmt: skip
