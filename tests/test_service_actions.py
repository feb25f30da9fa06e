"""The actions of `geo.service` called directly, without the CLI or the API: load, import, grid
split and commit, backup; their results, their errors and the ``publish`` they are handed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from geo.errors import InvalidInput, NotFound, PreconditionFailed
from geo.service import grids as grid_actions
from geo.service.backup import backup
from geo.service.imports import import_layer
from geo.service.load import LoadRefused, load_directory
from geo.settings import SAMPLE_DIR
from geo.store import open_store
from geo.store.base import StaleVersionError


@pytest.fixture()
def db(sample_db: str, tmp_path: Path) -> str:
    """A store of its own holding the sample district (a backup of the session's store)."""
    path = tmp_path / "store.gpkg"
    backup(sample_db, path)
    return str(path)


@pytest.fixture()
def broken_dir(tmp_path: Path) -> Path:
    """The sample folder with one road whose coordinate is not a number (a rejected row)."""
    data = tmp_path / "data"
    shutil.copytree(SAMPLE_DIR, data)
    roads = json.loads((data / "roads.geojson").read_text(encoding="utf-8"))
    roads["features"][0]["geometry"]["coordinates"] = [[120.1, "x"], [120.2, 30.2]]
    (data / "roads.geojson").write_text(json.dumps(roads, ensure_ascii=False), encoding="utf-8")
    return data


def _version(db: str) -> int:
    store = open_store(db)
    try:
        return store.version()
    finally:
        store.close()


# ---------------------------------------------------------------------------------------- load


def test_load_directory_reports_counts_and_publishes_the_new_version(db: str) -> None:
    before = _version(db)
    seen: list[int] = []

    def publish(store, version: int) -> list[str]:
        seen.append(version)
        return ["1 server behind"]

    result = load_directory(db, SAMPLE_DIR, author="tester", publish=publish)
    assert result.version == before + 1 == _version(db) and seen == [result.version]
    assert result.publish_warnings == ["1 server behind"]
    assert list(result.counts)[:3] == ["roads", "streets", "communities"]
    assert result.counts["communities"] == 7 and result.rejected == []
    assert result.four_to == []  # the sample's four-to texts build their polygons


def test_load_directory_into_an_open_store(db: str) -> None:
    store = open_store(db)
    try:
        result = load_directory(store, SAMPLE_DIR)
        assert store.version() == result.version
    finally:
        store.close()


def test_strict_load_with_rejects_is_refused_and_writes_nothing(db: str, broken_dir: Path) -> None:
    before = _version(db)
    with pytest.raises(LoadRefused, match=r"^1 rows rejected; nothing was loaded \(--strict\)$"):
        load_directory(db, broken_dir, strict=True)
    assert _version(db) == before
    try:
        load_directory(db, broken_dir, strict=True)
    except LoadRefused as refused:
        assert isinstance(refused, InvalidInput) and refused.status == 422
        assert [i.id for i in refused.read.rejected] == ["W4348186"]
    done = load_directory(db, broken_dir)
    assert done.version == before + 1 and len(done.rejected) == 1


def test_a_folder_that_cannot_be_read_creates_no_store(tmp_path: Path) -> None:
    path = tmp_path / "new.gpkg"
    with pytest.raises(InvalidInput, match=r"missing roads\.geojson"):
        load_directory(path, tmp_path / "nowhere")
    assert not path.exists()


# -------------------------------------------------------------------------------------- import


def test_import_publishes_its_version(db: str) -> None:
    store = open_store(db)
    try:
        seen: list[int] = []
        result = import_layer(
            store,
            "roads",
            SAMPLE_DIR / "roads.geojson",
            publish=lambda v: seen.append(v) or [],
        )
    finally:
        store.close()
    assert result.version is not None and seen == [result.version]
    assert result.publish_warnings == []


# -------------------------------------------------------------------------------------- grids


def test_propose_split_is_computed_on_the_given_version(db: str) -> None:
    store = open_store(db)
    try:
        snapshot = store.snapshot()
    finally:
        store.close()
    split = grid_actions.propose_split(snapshot.tables, snapshot.version, "C01", count=4)
    assert split.committed is False and split.version == snapshot.version
    summary = split.summary()
    assert summary["committed"] is False and summary["version"] == snapshot.version
    assert summary["community"] == "C01" and len(summary["grids"]) == 4
    with pytest.raises(NotFound, match=r"^no community 'C99'; communities are C01, C02"):
        grid_actions.propose_split(snapshot.tables, snapshot.version, "C99", count=2)
    with pytest.raises(InvalidInput, match="street blocks"):
        grid_actions.propose_split(snapshot.tables, snapshot.version, "C01", count=99)


def test_commit_split_checks_the_version_writes_and_publishes(db: str) -> None:
    store = open_store(db)
    try:
        version = store.version()
        with pytest.raises(PreconditionFailed, match=r"^the store is at version \d+, not 0: "):
            grid_actions.commit_split(store, "C02", count=6, author="t", expected_version=0)
        assert store.version() == version
        audit = {"actor": "planner-1", "method": "POST", "path": "/x", "target": "C02"}
        split = grid_actions.commit_split(
            store, "C02", count=6, author="planner-1", expected_version=version,
            audit=audit, publish=lambda v: [f"behind at {v}"],
        )  # fmt: skip
        assert split.committed and split.version == version + 1 == store.version()
        assert split.publish_warnings == [f"behind at {version + 1}"]
        grids = store.snapshot().tables["grids"]
        assert sorted(grids.loc[grids["community_id"] == "C02", "id"]) == sorted(
            g.id for g in split.proposal.grids
        )
        newest = store.history()[0]
        assert newest.author == "planner-1" and newest.reason.startswith("split C02 into 6 grids")
    finally:
        store.close()


def test_commit_split_on_a_store_written_meanwhile_is_stale(db: str) -> None:
    store = open_store(db)
    try:
        old = store.snapshot()
        store.replace_all(old.tables, author="someone", reason="meanwhile")
        with pytest.raises(PreconditionFailed):
            grid_actions.commit_split(
                store, "C02", count=6, author="t", expected_version=old.version, reuse=old
            )
    finally:
        store.close()
    assert issubclass(StaleVersionError, PreconditionFailed)
