"""The boundary actions without an adapter: build, lookup, preview, set, create, revert, history
on a private copy of the sample store."""

from __future__ import annotations

import pytest
import shapely
from shapely.geometry import box, mapping
from shapely.geometry.polygon import orient

from geo.boundaries.edit import EditError
from geo.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from geo.service import boundaries
from geo.service.boundaries import BoundaryDraft, NewCommunity

TORCH = "东至信诚路、南至南环路、西至东信大道、北至江南大道"
WEST = "东至信诚路、南至南环路、西至伟业路、北至江南大道"  # the western edge moved to 伟业路
THREE = "南至南环路、西至东信大道、北至江南大道"  # the east side is the border of 浦沿街道 (S03)
NOTCH = box(120.1420, 30.1900, 120.1450, 30.1920)  # west of Torch, inside 浦沿街道


@pytest.fixture()
def tables(store) -> dict:
    return store.snapshot().tables


def torch(tables: dict):
    return boundaries.community(tables, "C01").geometry


def cut_north(tables: dict) -> dict:
    """Torch without its part north of 30.187° (~167,000 m², three parks)."""
    old = torch(tables)
    minx, miny, maxx, _ = old.bounds
    cut = shapely.intersection(old, box(minx - 1, miny - 1, maxx + 1, 30.187))
    return mapping(orient(cut))  # counter-clockwise, as RFC 7946 wants: nothing to repair


class Published:
    """A ``publish`` that records the versions it was given and warns once."""

    def __init__(self) -> None:
        self.versions: list[int] = []

    def __call__(self, store_version: int) -> list[str]:
        self.versions.append(store_version)
        return ["1 server process(es) still answered from an older version"]


# ------------------------------------------------------------------------------------ build


def test_build_along_the_atlas_roads_and_closed_by_a_street(tables: dict) -> None:
    prop = boundaries.build(TORCH, tables)
    assert prop.area_m2 == pytest.approx(1_608_616, rel=1e-3)
    assert prop.feature()["properties"]["sides"]["north"]["roads"] == ["江南大道"]
    three = boundaries.build(THREE, tables, within="S03")
    assert three.feature()["properties"]["within"] == ["east"]
    assert three.metric.intersection(prop.metric).area / prop.metric.union(three.metric).area > 0.99
    with pytest.raises(EditError, match="within: no street 'S99'; streets are S01"):
        boundaries.build(THREE, tables, within="S99")


def test_build_from_given_roads(tables: dict) -> None:
    roads = tables["roads"][tables["roads"]["name"] != "伟业路"]
    with pytest.raises(InvalidInput, match="伟业路"):
        boundaries.build(WEST, tables, roads=roads)


# ----------------------------------------------------------------------------------- lookup


def test_an_unknown_community_is_not_found_and_lists_the_communities(tables: dict) -> None:
    with pytest.raises(NotFound, match=r"no community 'C99'; communities are C01, C02") as hit:
        boundaries.community(tables, "C99")
    assert hit.value.status == 404 and hit.value.exit_code == 2
    assert boundaries.community(tables, "C01")["name"] == "火炬产业社区"


# ---------------------------------------------------------------------------------- preview


def test_preview_reports_the_impact_and_writes_nothing(store, tables: dict) -> None:
    before = store.version()
    draft = BoundaryDraft(geometry=cut_north(tables), snap_tolerance_m=0)
    seen = boundaries.preview(tables, "C01", draft)
    out = seen.to_dict()
    assert out["community"] == "C01" and out["area"]["lost_m2"] > 100_000
    assert out["counts"]["parks"] == len(out["parks"]) > 0
    assert out["parks"][0]["from"] == {"id": "C01", "name": "火炬产业社区"}
    assert out["valid"] is True and out["errors"] == out["overlaps"] == []
    assert out["outside_street"] == [] and out["warnings"] == []
    assert out["snapped"] == {"vertices": [], "edges": []}
    assert out["feature"]["type"] == "Feature" and seen.prop.source == "geometry"
    assert store.version() == before


def test_preview_lists_what_validation_refuses(tables: dict) -> None:
    east = shapely.affinity.translate(torch(tables), 0.003, 0)  # across 信诚路, out of S03
    draft = BoundaryDraft(geometry=mapping(east), snap_tolerance_m=0)
    out = boundaries.preview(tables, "C01", draft).to_dict()
    assert out["valid"] is False and out["outside_street"]
    assert all(p in out["errors"] for p in out["outside_street"])


# -------------------------------------------------------------------------------------- set


def test_set_writes_a_new_version_and_publishes_it(store, tables: dict) -> None:
    published = Published()
    done = boundaries.set_boundary(
        store, tables, "C01", BoundaryDraft(four_to=WEST), expected_version=1,
        author="ann", reason="west edge", publish=published,
    )  # fmt: skip
    assert (done.community_id, done.version) == ("C01", 2)
    assert published.versions == [done.store_version] == [store.version()]
    assert done.warnings[0] == (  # the edit's (grids, then parks), then the publisher's
        "the grids of C01 were drawn for the old boundary: re-split them (`geo check` lists "
        "the gaps and overlaps)"
    )
    assert done.warnings[1].startswith("4 park(s) changed community: ")
    assert done.warnings[2:] == ["1 server process(es) still answered from an older version"]
    assert done.check.ok and done.prop.four_to == WEST
    row = boundaries.community(store.snapshot().tables, "C01")
    assert row["four_to"] == WEST and row.geometry.equals(done.prop.polygon)
    (latest, *_) = store.community_history("C01")
    assert (latest.version, latest.action, latest.author, latest.reason) == (
        2, "edit", "ann", "west edge",
    )  # fmt: skip


def test_set_refuses_a_stale_version_before_any_work(store, tables: dict) -> None:
    with pytest.raises(PreconditionFailed, match="community C01 is at version 1, not 9"):
        boundaries.set_boundary(
            store, tables, "C01", BoundaryDraft(four_to="not four-to text"),
            expected_version=9, author="ann",
        )  # fmt: skip
    assert store.community_version("C01") == 1


def test_set_without_an_expected_version_takes_the_current_one(store, tables: dict) -> None:
    draft = BoundaryDraft(geometry=cut_north(tables), snap_tolerance_m=0)
    done = boundaries.set_boundary(store, tables, "C01", draft, expected_version=None, author="b")
    assert done.version == 2
    assert any("four-to text was kept" in w for w in done.warnings)
    assert store.community_history("C01")[0].reason == "edit"  # no reason: the action


def test_set_refuses_an_overlap_and_writes_nothing(store, tables: dict) -> None:
    south = shapely.affinity.translate(torch(tables), -0.005, -0.008)  # into 智造 (C05)
    draft = BoundaryDraft(geometry=mapping(south), snap_tolerance_m=0)
    with pytest.raises(boundaries.BoundaryRefused, match="C01 and C05 overlap") as hit:
        boundaries.set_boundary(store, tables, "C01", draft, expected_version=1, author="b")
    assert hit.value.status == 422
    assert store.community_version("C01") == 1


# ----------------------------------------------------------------------------------- create


def test_create_takes_the_next_id_and_code(store, tables: dict) -> None:
    new = NewCommunity(name="汇智产业社区", street_id="S03", type="科技创新型", mode="street")
    draft = BoundaryDraft(geometry=mapping(NOTCH), snap_tolerance_m=0)
    done = boundaries.create_community(store, tables, new, draft, author="planner")
    assert (done.community_id, done.version) == ("C08", 1)
    row = boundaries.community(store.snapshot().tables, "C08")
    assert (row["code"], row["name"], row["four_to"]) == ("003", "汇智产业社区", "")
    assert store.community_history("C08")[0].action == "create"
    assert store.community_history("C08")[0].reason == "created"


@pytest.mark.parametrize(
    ("changes", "kind", "message"),
    [
        ({"id": "C01"}, Conflict, "community C01 exists already; choose another id"),
        ({"type": "x"}, InvalidInput, "type 'x' is not one of 科技创新型"),
        ({"mode": "x"}, InvalidInput, "mode 'x' is not one of platform, street"),
    ],
)
def test_create_refuses_a_taken_id_and_unknown_kinds(
    store, tables: dict, changes: dict, kind: type, message: str
) -> None:
    fields = {"name": "x", "street_id": "S03", "type": "科技创新型", "mode": "street", **changes}
    draft = BoundaryDraft(geometry=mapping(NOTCH), snap_tolerance_m=0)
    with pytest.raises(kind, match=message):
        boundaries.create_community(store, tables, NewCommunity(**fields), draft, author="p")
    assert len(store.snapshot().tables["communities"]) == len(tables["communities"])


# --------------------------------------------------------------------------- revert, history


def test_revert_goes_back_as_a_new_version_and_history_lists_it(store, tables: dict) -> None:
    boundaries.set_boundary(
        store, tables, "C01", BoundaryDraft(four_to=WEST), expected_version=1, author="ann"
    )
    now = store.snapshot().tables
    with pytest.raises(PreconditionFailed, match="is at version 2, not 1"):
        boundaries.revert(store, now, "C01", 1, expected_version=1, author="bob")
    missing = r"C01 has no version 9; versions: \[1, 2\]"
    with pytest.raises(boundaries.UnknownVersion, match=missing) as hit:
        boundaries.revert(store, now, "C01", 9, expected_version=2, author="bob")
    assert hit.value.versions == [1, 2] and hit.value.status == 404
    published = Published()
    done = boundaries.revert(store, now, "C01", 1, expected_version=2, author="bob",
                             publish=published)  # fmt: skip
    assert done.version == 3 and published.versions == [done.store_version]
    versions = boundaries.history(store, store.snapshot().tables, "C01")
    assert [(v.version, v.action, v.reason) for v in versions[:2]] == [
        (3, "revert", "revert to version 1"),
        (2, "edit", "edit"),
    ]
    assert (versions[2].version, versions[2].action) == (1, "load")
    assert versions[0].geometry.equals(versions[2].geometry)
    assert versions[0].four_to == TORCH
    assert boundaries.community(store.snapshot().tables, "C01")["four_to"] == TORCH


def test_history_of_an_unknown_community_is_not_found(store, tables: dict) -> None:
    with pytest.raises(boundaries.UnknownCommunityId, match="no community 'C99'"):
        boundaries.history(store, tables, "C99")
