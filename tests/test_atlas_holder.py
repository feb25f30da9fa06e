"""A new atlas version is readied before it is served: what its first request would otherwise
make on the event loop (each level's ids and descriptions) is made in the build's steps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from geo.api.state import AtlasHolder
from geo.atlas import Atlas
from geo.service import boundaries
from geo.store import open_store

WEST = "东至信诚路、南至南环路、西至伟业路、北至江南大道"  # C01's western edge on 伟业路


def _ready(atlas: Atlas) -> bool:
    return all(
        "descriptions" in vars(level) and "ids_or_none" in vars(level)
        for level in atlas.levels.values()
    )


def test_a_new_version_is_readied_before_it_is_swapped_in(copy_sample, tmp_path: Path) -> None:
    store = open_store(copy_sample(tmp_path / "store.gpkg"))
    try:
        holder = AtlasHolder(store, refresh_seconds=0)  # strict: current() builds in this thread
        first = holder.current()
        assert _ready(first)  # the atlas a server starts with, too
        seen: list[tuple[bool, bool]] = []

        def hook(old: Atlas, new: Atlas) -> Iterator[None]:
            seen.append((_ready(new), holder._atlas is old))  # the old one still served
            yield

        holder.on_swap.append(hook)
        boundaries.set_boundary(
            store, first.tables, "C01", boundaries.BoundaryDraft(four_to=WEST),
            expected_version=None, author="test", reason="move the western edge",
        )  # fmt: skip
        new = holder.current()
        assert new.version > first.version
        assert seen == [(True, True)]  # readied while the old version was served
        assert _ready(new)
        point = new.tables["enterprises"].geometry.iloc[0]
        assert set(new.describe_one(point.x, point.y)) == {
            "street",
            "community",
            "grid",
            "microgrid",
        }
    finally:
        store.close()


def test_old_versions_are_freed_after_edits(copy_sample, tmp_path: Path) -> None:
    """Per-atlas caches (tile sources, maps, people, search) must not keep old versions alive:
    a server that kept every atlas grew by ~90 MB per edit at ×10 (bench_edits)."""
    import gc
    import weakref

    from fastapi.testclient import TestClient

    from geo.api.app import create_app
    from geo.settings import Settings

    db = copy_sample(tmp_path / "store.gpkg")
    store = open_store(db)
    with TestClient(create_app(store, Settings(db=db, refresh_seconds=0))) as client:
        olds: list[weakref.ref[Atlas]] = []
        edge = [WEST, "东至信诚路、南至南环路、西至东信大道、北至江南大道"]
        for i in range(3):
            current = client.app.state.atlas.current()
            olds.append(weakref.ref(current))
            assert client.get("/tiles/communities/14/13703/6747.mvt").status_code in (200, 204)
            assert client.get("/search", params={"q": "火炬"}).status_code == 200
            assert client.get("/maps/").status_code == 200
            boundaries.set_boundary(
                store, current.tables, "C01", boundaries.BoundaryDraft(four_to=edge[i % 2]),
                expected_version=None, author="test", reason=f"edit {i}",
            )  # fmt: skip
            del current
        assert client.get("/health").status_code == 200  # the newest version is served
        gc.collect()
        alive = [ref() is not None for ref in olds]
    assert alive == [False, False, False]
