"""Four-to texts as governments write them, over HTTP: open sides closed by the street,
roads that stop short (``extend_m``), provisos and lead-ins reported in the answer."""

from __future__ import annotations

import pytest
import shapely
from fastapi.testclient import TestClient

from geo.api.app import create_app
from geo.settings import Settings
from geo.store import open_store

FULL = "东至信诚路、南至南环路、西至东信大道、北至江南大道"
THREE = "南至南环路、西至东信大道、北至江南大道"  # 信诚路 is the border of 浦沿街道 (S03)


@pytest.fixture()
def api(tmp_path, issue_headers, copy_sample):
    db = copy_sample(tmp_path / "forms.gpkg")
    with TestClient(create_app(open_store(db), Settings(db=db))) as c:
        c.headers.update(issue_headers(db, "planner", "planner-f"))
        yield c


def shape(feature: dict):
    return shapely.geometry.shape(feature["geometry"])


def test_three_sides_are_closed_by_the_named_street(api: TestClient) -> None:
    full = api.post("/boundaries/build", json={"four_to": FULL})
    three = api.post("/boundaries/build", json={"four_to": THREE, "within": "S03"})
    assert full.status_code == 200 and three.status_code == 200, three.text
    a, b = shape(full.json()), shape(three.json())
    assert a.intersection(b).area / a.union(b).area > 0.99
    assert three.json()["properties"]["within"] == ["east"]


def test_an_open_side_without_within_names_the_side_in_api_terms(api: TestClient) -> None:
    r = api.post("/boundaries/build", json={"four_to": THREE})
    assert r.status_code == 422
    assert "side 东 is open" in r.json()["detail"] and "within=" in r.json()["detail"]
    assert "--within" not in r.json()["detail"]


def test_unknown_within_street_is_422_listing_the_streets(api: TestClient) -> None:
    r = api.post("/boundaries/build", json={"four_to": THREE, "within": "S99"})
    assert r.status_code == 422 and "S03" in r.json()["detail"]


def test_lead_in_and_provisos_come_back_unapplied_or_applied(api: TestClient) -> None:
    text = f"火炬产业社区位于浦沿街道，{FULL}（不含某某科技园），以数字安防为核心"
    r = api.post("/boundaries/build", json={"four_to": text})
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    assert props["notes"] and any("数字安防" in n for n in props["notes"])
    (proviso,) = props["exceptions"]
    assert proviso["kind"] == "exclude" and proviso["applied"] is False and proviso["reason"]


def test_extend_m_is_validated(api: TestClient) -> None:
    r = api.post("/boundaries/build", json={"four_to": FULL, "extend_m": -5})
    assert r.status_code == 422


def test_preview_and_put_close_an_open_side_with_the_communitys_street(api: TestClient) -> None:
    r = api.post("/communities/C01/boundary/preview", json={"four_to": THREE})
    assert r.status_code == 200, r.text
    assert r.json()["feature"]["properties"]["within"] == ["east"]
    v = api.get("/communities/C01").json()["properties"]["version"]
    r = api.put(
        "/communities/C01/boundary",
        json={"four_to": THREE, "reason": "three-sided notice"},
        headers={"If-Match": str(v)},
    )
    assert r.status_code == 200, r.text
    assert r.json()["feature"]["properties"]["four_to"] == THREE
