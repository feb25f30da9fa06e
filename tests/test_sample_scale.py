"""The scaled sample district (``python -m geo.sample --scale N``): each copy has its own names,
so a four-to text resolves within its copy and a four-to edit works at every scale."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import shapely

from geo import crs
from geo.boundaries.fourto import parse_four_to
from geo.sample import LAYER_FILES, copy_prefix, make_district, rename_four_to, write_district
from geo.service import boundaries
from geo.service.boundaries import BoundaryDraft
from geo.settings import SAMPLE_DIR

SCALE = 3
WEST = "东至信诚路、南至南环路、西至伟业路、北至江南大道"  # Torch with its west edge on 伟业路


@pytest.fixture(scope="module")
def three() -> dict[str, pd.DataFrame]:
    return make_district(SCALE)


@pytest.fixture(scope="module")
def store(three, tmp_path_factory: pytest.TempPathFactory):
    """The ×3 district written as files and loaded into a GeoPackage store, as `geo load` does."""
    from geo.service.load import load_into
    from geo.store import open_store

    root = tmp_path_factory.mktemp("scale3")
    write_district(root / "data", three)
    load_into(str(root / "scale3.gpkg"), root / "data")
    opened = open_store(str(root / "scale3.gpkg"))
    yield opened
    opened.close()


def copy_of(ids: pd.Series) -> pd.Series:
    """0 for the district itself, k - 1 for ids suffixed ``xk``."""
    return ids.str.extract(r"x(\d+)$")[0].fillna("1").astype(int) - 1


def iou(a, b) -> float:
    a, b = crs.to_metric(shapely.make_valid(a)), crs.to_metric(shapely.make_valid(b))
    return shapely.intersection(a, b).area / shapely.union(a, b).area


def test_each_copy_has_its_own_names(three) -> None:
    for layer in ("roads", "streets", "areas", "communities"):
        frame = three[layer]
        copy = copy_of(frame["id"])
        prefix = copy.map(copy_prefix)
        assert all(n.startswith(p) for n, p in zip(frame["name"], prefix, strict=True)), layer
        owners = frame.assign(copy=copy).groupby("name")["copy"].nunique()
        shared = list(owners[owners > 1].index)
        assert not shared, f"{layer}: names shared by copies: {shared}"
    assert three["communities"]["name"].is_unique and three["streets"]["name"].is_unique
    roads = three["roads"].assign(copy=copy_of(three["roads"]["id"]))
    names_of = roads.groupby("copy")["name"].agg(set)
    for row in three["communities"].assign(copy=copy_of(three["communities"]["id"])).itertuples():
        spec = parse_four_to(row.four_to)
        cited = {ref.name for side in spec.sides.values() for ref in side.chain}
        assert cited <= names_of[row.copy], (row.id, row.four_to)
    torch = three["communities"].set_index("id").loc["C01x3"]
    assert torch["name"] == "3区火炬产业社区"
    assert torch["four_to"] == "东至3区信诚路、南至3区南环路、西至3区东信大道、北至3区江南大道"
    for layer in ("parks", "enterprises"):  # door addresses name the copy's roads
        frame = three[layer]
        head = frame["address"].str.extract(r"^(\d+区)")[0].fillna("")
        if layer == "parks":
            assert (head == copy_of(frame["id"]).map(copy_prefix)).all()
        else:
            assert head.value_counts().to_dict() == {
                copy_prefix(c): len(frame) // SCALE for c in range(SCALE)
            }


def sample_counts() -> dict[str, int]:
    """Rows per layer and table of the district at scale 1: the committed sample, which is what
    ``make_district(1)`` writes byte for byte (test_sample.py)."""
    counts = {}
    for layer in LAYER_FILES:
        doc = json.loads((SAMPLE_DIR / f"{layer}.geojson").read_text(encoding="utf-8"))
        counts[layer] = len(doc["features"])
    for table in ("enterprises", "officers"):
        rows = pd.read_csv(SAMPLE_DIR / f"{table}.csv", dtype=str, keep_default_na=False)
        counts[table] = len(rows)
    return counts


def test_scale_multiplies_the_district(three) -> None:
    """Each layer has ``SCALE`` times the rows of the district, ids and codes stay unique, and the
    streets of the copies still tile without overlapping (checked on the ×3 district this module
    builds anyway, not on a ×2 one of its own)."""
    one = sample_counts()
    assert set(three) == set(one)
    for k in one:
        assert len(three[k]) == SCALE * one[k], k
    for layer in ("streets", "communities", "grids", "parks", "buildings"):
        assert three[layer]["id"].is_unique
    for layer in ("streets", "grids", "parks"):
        assert three[layer]["code"].is_unique
    codes = three["buildings"]["code"]
    assert codes[codes != ""].is_unique
    assert not three["communities"].duplicated(["street_id", "code"]).any()
    assert three["enterprises"]["credit_code"].is_unique
    streets = three["streets"].to_crs(crs.METRIC_CRS).geometry.to_numpy()
    assert sum(shapely.area(streets)) == pytest.approx(shapely.union_all(streets).area, abs=2.0)


def test_rename_four_to_prefixes_every_cited_name() -> None:
    text = "西与长河街道交界，东至江南大道接线，南至汇智地界北(另含白马湖地块)，北至信诚"
    out = rename_four_to(text, "12区")
    assert out == (
        "西与12区长河街道交界，东至12区江南大道接线，南至12区汇智地界北(另含12区白马湖地块)，"
        "北至12区信诚"
    )
    assert rename_four_to(text, "") == text


@pytest.mark.parametrize("cid", ["C01x2", "C05x2", "C01x3", "C07x3"])
def test_four_to_builds_within_its_copy(three, cid: str) -> None:
    """A copy's community is what its own four-to text builds (no 'ambiguous enclosure')."""
    row = three["communities"].set_index("id").loc[cid]
    street = three["streets"].set_index("id").geometry[row["street_id"]]
    built = boundaries.build(row["four_to"], three).polygon
    assert iou(shapely.intersection(built, street), row.geometry) > 0.9999


@pytest.mark.parametrize("copy", [2, 3])
def test_four_to_edit_in_a_copy(store, copy: int) -> None:
    """``geo boundary set`` / PUT …/boundary with four-to text, on Torch of copy 2 and 3."""
    cid, prefix = f"C01x{copy}", copy_prefix(copy - 1)
    tables = store.snapshot().tables
    old = boundaries.community(tables, cid).geometry
    text = rename_four_to(WEST, prefix)
    done = boundaries.set_boundary(
        store, tables, cid, BoundaryDraft(four_to=text), expected_version=1, author="scale"
    )
    assert (done.community_id, done.version) == (cid, 2) and done.check.ok
    sides = done.prop.feature()["properties"]["sides"]
    assert sides["west"]["roads"] == [f"{prefix}伟业路"]
    row = boundaries.community(store.snapshot().tables, cid)
    assert row["four_to"] == text
    assert shapely.within(crs.to_metric(row.geometry), crs.to_metric(old).buffer(1.0))
    moved_in = crs.to_metric(row.geometry).area < 0.95 * crs.to_metric(old).area
    assert moved_in  # the west edge is on 伟业路 now
