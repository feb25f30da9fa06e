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
