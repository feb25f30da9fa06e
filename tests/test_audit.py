"""The audit log: a row per write (who, what, versions before/after, request id), in the write's
own transaction, append-only in the store, readable by admins (`GET /audit`, `geo audit`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping
from typer.testing import CliRunner

from geo.api.app import create_app
from geo.cli import app as cli_app
from geo.settings import Settings
from geo.store import open_store

WEST = "东至信诚路、南至南环路、西至伟业路、北至江南大道"  # an edit: the western edge on 伟业路


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, copy_sample) -> str:
    return copy_sample(tmp_path_factory.mktemp("audit") / "audit.gpkg")


@pytest.fixture(scope="module")
def api(db: str, issue_headers):
    planner = issue_headers(db, "planner", "planner-zhang")
    admin = issue_headers(db, "admin", "admin-li")
    with TestClient(create_app(open_store(db), Settings(db=db))) as c:
        yield c, planner, admin


def _audit(c: TestClient, admin: dict, **params) -> dict:
    r = c.get("/audit", params=params, headers=admin)
    assert r.status_code == 200, r.text
    return r.json()


def test_every_write_is_audited_with_versions_and_request_id(api) -> None:
    c, planner, admin = api
    start = _audit(c, admin, limit=1000)["total"]
    store_v = c.get("/health").json()["data_version"]

    writes = []  # (response, method, path, target)
    v = c.get("/communities/C01").json()["properties"]["version"]
    r = c.put(
        "/communities/C01/boundary",
        json={"four_to": WEST, "reason": "west edge"},
        headers={**planner, "If-Match": str(v), "X-Request-ID": "req-edit-1"},
    )
    assert r.status_code == 200, r.text
    writes.append((r, "PUT", "/communities/C01/boundary", "C01"))
    r = c.post(
        "/communities/C01/boundary/revert",
        json={"version": v},
        headers={**planner, "If-Match": str(v + 1)},
    )
    assert r.status_code == 200, r.text
    writes.append((r, "POST", "/communities/C01/boundary/revert", "C01"))
    body = {
        "name": "汇智产业社区", "street_id": "S03", "type": "科技创新型", "mode": "street",
        "geometry": mapping(box(120.1420, 30.1900, 120.1450, 30.1920)), "snap_tolerance_m": 0,
    }  # fmt: skip
    r = c.post("/communities", json=body, headers=planner)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    writes.append((r, "POST", "/communities", cid))
    r = c.post(
        "/communities/C02/grids/commit",
        json={"count": 4},
        headers={**planner, "If-Match": str(c.get("/health").json()["data_version"])},
    )
    assert r.status_code == 200, r.text
    writes.append((r, "POST", "/communities/C02/grids/commit", "C02"))
    r = c.post("/users", json={"name": "officer-wu", "role": "officer"}, headers=admin)
    assert r.status_code == 201, r.text
    writes.append((r, "POST", "/users", "officer-wu"))
    r = c.delete("/users/officer-wu", headers=admin)
    assert r.status_code == 200, r.text
    writes.append((r, "DELETE", "/users/officer-wu", "officer-wu"))

    log = _audit(c, admin, limit=1000)
    assert log["total"] == start + len(writes)
    rows = list(reversed(log["items"][: len(writes)]))  # oldest first
    expected_v = store_v
    for (resp, method, path, target), row in zip(writes, rows, strict=True):
        assert (row["method"], row["path"], row["target"]) == (method, path, target)
        assert row["request_id"] == resp.headers["X-Request-ID"]
        assert row["version_before"] == expected_v
        if path.startswith("/users"):
            assert row["version_after"] == expected_v  # no data change
            assert (row["actor"], row["role"]) == ("admin-li", "admin")
        else:
            assert row["version_after"] == expected_v + 1
            assert (row["actor"], row["role"]) == ("planner-zhang", "planner")
            assert (
                resp.json().get("store_version", resp.json().get("version"))
                == (row["version_after"])
            )
        expected_v = row["version_after"]
    assert rows[0]["request_id"] == "req-edit-1"
    # the history's author is the token's user, not a header
    hist = c.get("/communities/C01/history").json()["versions"]
    assert {h["author"] for h in hist[:2]} == {"planner-zhang"}


def test_failed_writes_leave_no_audit_row(api) -> None:
    c, planner, admin = api
    before = _audit(c, admin)["total"]
    r = c.put(
        "/communities/C01/boundary", json={"four_to": WEST}, headers={**planner, "If-Match": "999"}
    )
    assert r.status_code == 412
    r = c.post(
        "/communities/C02/grids/commit",
        json={"count": 4},
        headers={**planner, "If-Match": "0"},
    )
    assert r.status_code == 412
    assert c.put("/communities/C01/boundary", json={"four_to": WEST}).status_code == 401
    assert _audit(c, admin)["total"] == before


def test_paging_and_admin_only(api) -> None:
    c, planner, admin = api
    log = _audit(c, admin, limit=2, offset=1)
    assert log["limit"] == 2 and log["offset"] == 1 and len(log["items"]) == 2
    first = _audit(c, admin, limit=3)["items"]
    assert log["items"] == first[1:3]
    assert c.get("/audit", headers=planner).status_code == 403
    assert c.get("/audit").status_code == 401
    assert c.get("/audit", params={"limit": 0}, headers=admin).status_code == 422
    # no API changes the log
    for method in ("PUT", "DELETE", "PATCH", "POST"):
        assert c.request(method, "/audit", headers=admin).status_code == 405


def test_the_store_refuses_update_and_delete(db: str) -> None:
    con = sqlite3.connect(db)
    try:
        (n,) = con.execute("SELECT COUNT(*) FROM geo_audit").fetchone()
        assert n > 0
        for sql in (
            "UPDATE geo_audit SET actor='someone else'",
            "DELETE FROM geo_audit",
            "DELETE FROM geo_audit WHERE seq=1",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                con.execute(sql)
        with pytest.raises(sqlite3.IntegrityError, match="managed by geo"):  # gpkg_guard
            con.execute(
                "INSERT INTO geo_audit (time, actor, method, path) VALUES ('t', 'x', 'cli', 'test')"
            )
        con.rollback()
        assert con.execute("SELECT COUNT(*) FROM geo_audit").fetchone()[0] == n
    finally:
        con.close()


def test_cli_audit_and_cli_writes_are_audited(tmp_path: Path, copy_sample) -> None:
    db = copy_sample(tmp_path / "cli.gpkg")  # a new store that `geo load` filled
    runner = CliRunner()
    assert runner.invoke(cli_app, ["users", "add", "chen", "--db", db]).exit_code == 0
    r = runner.invoke(cli_app, ["boundary", "set", "C01", "--four-to", WEST, "--db", db])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli_app, ["audit", "--limit", "2", "--db", db])
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2
    assert "edit community C01" in lines[0] and "v1→v2" in lines[0]
    assert "users add chen" in lines[1] and "v1→v1" in lines[1]
    assert "2 of 3 audit rows" in r.stderr  # the load, the user, the edit
