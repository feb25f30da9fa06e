"""Name, pinyin and initials search (geo.search), and GET /search."""

from __future__ import annotations

import pandas as pd
import pytest

from geo.search import SearchIndex, normalize, to_syllables


@pytest.fixture(scope="module")
def index(atlas) -> SearchIndex:
    t = atlas.tables
    return SearchIndex.build(
        [
            ("officer", t["officers"], "role"),
            ("building", t["buildings"], "address"),
            ("park", t["parks"], "address"),
            ("enterprise", t["enterprises"], "address"),
        ]
    )


def hikvision(atlas) -> set[str]:
    ent = atlas.tables["enterprises"]
    return set(ent.loc[ent["name"].str.startswith("杭州海康"), "id"])


def test_syllables_and_initials() -> None:
    assert to_syllables(["杭州海康威视", "A座Tower 1"]) == [
        ["hang", "zhou", "hai", "kang", "wei", "shi"],
        ["a", "zuo", "tower", "1"],
    ]
    assert normalize("  Ｈai  KANG ") == "hai kang"


@pytest.mark.parametrize("query", ["hzhk", "haikang", "hai kang", "HaiKang", "杭州海康"])
def test_hikvision_first(index, atlas, query) -> None:
    wanted = hikvision(atlas)
    assert len(wanted) >= 12  # the sample README: 14 names start with 杭州海康
    # OSM names real sites and buildings 海康威视… too: among enterprises, the 杭州海康 ones first
    hits = index.search(query, limit=len(wanted), kinds=["enterprise"])
    assert {h["id"] for h in hits} == wanted
    assert all(h["kind"] == "enterprise" for h in hits)


def test_exact_name_ranks_first_with_kind_and_id(index, atlas) -> None:
    officer = atlas.tables["officers"].iloc[0]
    hit = index.search(officer["name"])[0]
    assert (hit["kind"], hit["id"], hit["matched"]) == ("officer", officer["id"], "name")
    assert hit["detail"] == officer["role"]
    park = atlas.tables["parks"].iloc[0]
    hits = index.search(park["name"], kinds=["park"])
    assert hits[0]["id"] == park["id"] and {h["kind"] for h in hits} == {"park"}


def test_pinyin_of_an_officer(index, atlas) -> None:
    officer = atlas.tables["officers"].iloc[1]
    full = "".join(to_syllables([officer["name"]])[0])
    hit = index.search(full)[0]
    assert hit["id"] == officer["id"] and hit["matched"] == "pinyin"


def test_typo_is_a_fuzzy_match_below_exact_ones(index) -> None:
    hits = index.search("haikangweishi", kinds=["enterprise"])
    assert hits[0]["name"].startswith("杭州海康威视")
    typo = index.search("haikangwiesh", limit=50, kinds=["enterprise"])
    assert any(h["name"].startswith("杭州海康威视") for h in typo)
    assert all(h["score"] < 600 for h in typo if h["matched"] == "fuzzy")


def test_nothing_and_empty() -> None:
    small = SearchIndex.build([("park", pd.DataFrame({"id": ["P1"], "name": ["海创园"]}), None)])
    assert small.search("") == []
    assert small.search("zzzzzz") == []
    assert small.search("hcy")[0]["id"] == "P1"


def test_search_endpoint(client) -> None:
    r = client.get("/search", params={"q": "hzhk", "limit": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 5
    assert all(h["name"].startswith("杭州海康") for h in body["results"])
    fields = {"kind", "id", "name", "detail", "score", "matched", "lon", "lat", "ref"}
    assert set(body["results"][0]) == fields  # lon, lat, ref: where a map shows the hit
    only = client.get("/search", params={"q": "hm", "kind": "officer"}).json()
    assert only["results"] and {h["kind"] for h in only["results"]} == {"officer"}


@pytest.mark.parametrize(
    ("params", "status"),
    [({}, 422), ({"q": ""}, 422), ({"q": "   "}, 422), ({"q": "a", "kind": "dog"}, 422),
     ({"q": "a", "limit": 0}, 422)],
)  # fmt: skip
def test_search_bad_input(client, params, status) -> None:
    r = client.get("/search", params=params)
    assert r.status_code == status
    assert "detail" in r.json()
