"""What the editor's writes answer, at the service, over HTTP and from `geo boundary`: an
unchanged boundary writes nothing, the CLI warns what the HTTP answer warns, and grids are
called stale only when they no longer tile the community."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely
from support import store_version
from typer.testing import CliRunner

from geo.cli import app as cli_app
from geo.crs import to_metric
from geo.service import boundaries
from geo.service.boundaries import BoundaryDraft

runner = CliRunner()
WEST = "东至信诚路、南至南环路、西至伟业路、北至江南大道"  # the western edge moved to 伟业路
GRIDS_STALE = "the grids of C01 were drawn for the old boundary"


def as_editor_sends(geometry) -> dict:
    """A geometry as the editor's page sends it: GeoJSON rounded to 7 decimals
    (Leaflet's ``toGeoJSON(7)``), its ring starting at another vertex."""
    ring = list(shapely.get_coordinates(geometry.exterior))[:-1]
    ring = ring[5:] + ring[:5]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [[[round(x, 7), round(y, 7)] for x, y in ring]]}


# -------------------------------------------------------------------------------- service


def test_an_unchanged_boundary_is_not_written(store) -> None:
    tables = store.snapshot().tables
    torch = boundaries.community(tables, "C01").geometry
    before, history = store.version(), len(store.community_history("C01"))
    done = boundaries.set_boundary(
        store, tables, "C01", BoundaryDraft(geometry=as_editor_sends(torch)),
        expected_version=1, author="ann", reason="no change", publish=lambda v: ["published"],
    )  # fmt: skip
    assert done.unchanged and done.version == 1 and done.store_version == before
    assert done.note.startswith("unchanged")
    assert done.warnings == []  # nothing written: nothing to re-split, nothing published
    assert store.version() == before and len(store.community_history("C01")) == history
    # a stale If-Match is still a 412, changed or not
    with pytest.raises(boundaries.StaleCommunityError):
        boundaries.set_boundary(
            store, tables, "C01", BoundaryDraft(geometry=as_editor_sends(torch)),
            expected_version=7, author="ann",
        )  # fmt: skip


def test_a_boundary_moved_by_a_metre_is_written(store) -> None:
    tables = store.snapshot().tables
    torch = boundaries.community(tables, "C01").geometry
    ring = shapely.get_coordinates(torch.exterior).copy()
    ring[3, 0] -= 0.00001  # ~1 m west
    ring[-1] = ring[0]
    assert not boundaries.same_boundary(to_metric(shapely.Polygon(ring)), to_metric(torch))
    done = boundaries.set_boundary(
        store, tables, "C01", BoundaryDraft(geometry=as_editor_sends(shapely.Polygon(ring)),
                                            snap_tolerance_m=0),
        expected_version=1, author="ann",
    )  # fmt: skip
    assert not done.unchanged and done.version == 2


def test_grids_are_stale_only_when_they_no_longer_tile(store) -> None:
    tables = store.snapshot().tables
    done = boundaries.set_boundary(
        store, tables, "C01", BoundaryDraft(four_to=WEST), expected_version=1, author="ann"
    )
    assert any(w.startswith(GRIDS_STALE) for w in done.warnings), done.warnings
    parks = [w for w in done.warnings if "park(s) changed community" in w]
    assert parks and "C01 → " in parks[0], done.warnings
    # back to the loaded boundary: the grids tile it exactly again, no stale warning
    back = boundaries.revert(
        store, store.snapshot().tables, "C01", 1, expected_version=2, author="ann"
    )
    assert back.version == 3 and not back.unchanged
    assert not any(w.startswith(GRIDS_STALE) for w in back.warnings), back.warnings
    assert any("→ C01" in w for w in back.warnings)  # the parks come back
    assert boundaries.grids_tile(store.snapshot().tables, "C01", to_metric(back.prop.polygon))


# ----------------------------------------------------------------------------------- HTTP


def test_http_put_of_the_current_boundary_answers_unchanged(hc, writable) -> None:
    db, _ = writable
    r = hc.get("/communities/C01")
    v, geometry = r.json()["properties"]["version"], shapely.geometry.shape(r.json()["geometry"])
    store_before = store_version(db)
    history = len(hc.get("/communities/C01/history").json()["versions"])
    r = hc.put(
        "/communities/C01/boundary",
        json={"geometry": as_editor_sends(geometry), "reason": "保存未修改的边界"},
        headers={"If-Match": f'"{v}"'},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["unchanged"] is True and out["version"] == v
    assert r.headers["ETag"].removeprefix("W/") == f'"{v}"'  # W/: the answer was compressed
    assert out["note"].startswith("unchanged") and out["store_version"] == store_before
    assert store_version(db) == store_before
    assert len(hc.get("/communities/C01/history").json()["versions"]) == history


def test_cli_set_warns_what_http_warns(hc, writable, tmp_path: Path) -> None:
    """The same edit over HTTP and from `geo boundary set` (on a copy of the store as it was):
    the same warnings; the revert to the original says nothing about stale grids."""
    from geo.service.backup import backup

    db, _ = writable
    copy = str(tmp_path / "cli.gpkg")
    backup(db, copy)
    v = hc.get("/communities/C01").json()["properties"]["version"]
    r = hc.put(
        "/communities/C01/boundary",
        json={"four_to": WEST, "reason": "西界调整至伟业路"},
        headers={"If-Match": f'"{v}"'},
    )
    assert r.status_code == 200, r.text
    http_warnings = r.json()["warnings"]
    assert any(w.startswith(GRIDS_STALE) for w in http_warnings), http_warnings
    assert any("park(s) changed community" in w for w in http_warnings), http_warnings

    r = runner.invoke(
        cli_app, ["boundary", "set", "C01", "--four-to", WEST, "--reason", "west", "--db", copy]
    )
    assert r.exit_code == 0, r.output
    shown = [line.removeprefix("warning ") for line in r.stderr.splitlines()]
    for w in http_warnings:
        assert w in shown, (w, r.stderr)

    r = runner.invoke(cli_app, ["boundary", "revert", "C01", str(v), "--db", copy])
    assert r.exit_code == 0, r.output
    assert GRIDS_STALE not in r.stderr, r.stderr
    assert "changed community" in r.stderr  # the parks come back: said
    r = runner.invoke(cli_app, ["check", "--db", copy])
    assert r.exit_code == 0, r.output  # and `geo check` agrees: the grids tile it


def test_cli_set_of_the_current_boundary_says_unchanged(writable, tmp_path: Path) -> None:
    from geo.service.backup import backup
    from geo.store import open_store

    db, _ = writable
    copy = str(tmp_path / "same.gpkg")
    backup(db, copy)
    with open_store(copy) as store:
        row = boundaries.community(store.snapshot().tables, "C03")
        v = store.community_version("C03")
    geom = tmp_path / "c03.geojson"
    geom.write_text(json.dumps(as_editor_sends(row.geometry)), encoding="utf-8")
    before = store_version(copy)
    r = runner.invoke(cli_app, ["boundary", "set", "C03", "--geometry", str(geom), "--db", copy])
    assert r.exit_code == 0, r.output
    assert f"C03 is unchanged at version {v}" in r.stdout and "nothing was written" in r.stdout
    assert store_version(copy) == before
