"""Split a community into grids: propose a split, and commit it as one new store version.

The split is deterministic (`geo.grids.split.propose_split`), so a commit recomputes exactly
the proposal of the same store version; ``expected_version`` (the version of the proposal the
caller reviewed) makes a commit on a store that has moved on a `StaleProposal` instead of a
split nobody has seen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from geo.errors import NotFound, PreconditionFailed
from geo.grids import split as split_mod
from geo.ids import id_problem, shown
from geo.store.base import Snapshot, Store

#: After the write: wait until the servers answer from the new version; the warnings to report.
Publish = Callable[[int], list[str]]


class NoSuchCommunity(NotFound):
    """The community to split is not in the store (the message lists those that are)."""


class StaleProposal(PreconditionFailed):
    """The store has moved on since the proposal the caller reviewed: propose again."""


@dataclass(frozen=True)
class GridSplit:
    """A split proposed (or committed): the store version it was computed on (or written as)."""

    proposal: split_mod.Proposal
    version: int
    committed: bool
    publish_warnings: list[str] = field(default_factory=list)  # servers still behind

    def summary(self) -> dict[str, Any]:
        """The proposal as JSON-ready data, with ``version`` and ``committed``."""
        return {**self.proposal.summary(), "version": self.version, "committed": self.committed}


def check_community_id(community_id: str) -> str:
    """``community_id`` if it is a community id (`geo.ids`); else `NoSuchCommunity` saying why
    (a NUL, a bidi control, a slash … can name no community)."""
    problem = id_problem(community_id)
    if problem is not None:
        raise NoSuchCommunity(f"no community {shown(community_id)}: the id {problem}")
    return community_id


def check_community(tables: Mapping[str, pd.DataFrame], community_id: str) -> str:
    """``community_id`` if ``tables`` hold that community; else `NoSuchCommunity` (listing the
    communities, or saying why the value is no id)."""
    check_community_id(community_id)
    if community_id not in set(tables["communities"]["id"]):
        known = ", ".join(tables["communities"]["id"])
        raise NoSuchCommunity(f"no community {community_id!r}; communities are {known}")
    return community_id


def propose_split(
    tables: Mapping[str, pd.DataFrame],
    version: int,
    community_id: str,
    *,
    count: int | None = None,
    per_grid: float | None = None,
    weight: str = "enterprises",
) -> GridSplit:
    """Propose grids for ``community_id`` on the tables of store version ``version``.

    Raises `NoSuchCommunity` for an unknown id and `geo.grids.split.SplitError` for a split
    that cannot be made (too many grids for the street blocks, an unknown weight …).
    """
    check_community(tables, community_id)
    proposal = split_mod.propose_split(
        tables, community_id, count=count, per_grid=per_grid, weight=weight
    )
    return GridSplit(proposal, version, committed=False)


def commit_split(
    store: Store,
    community_id: str,
    *,
    count: int | None = None,
    per_grid: float | None = None,
    weight: str = "enterprises",
    author: str,
    expected_version: int | None = None,
    audit: Mapping[str, Any] | None = None,
    publish: Publish | None = None,
    reuse: Snapshot | None = None,
) -> GridSplit:
    """Split ``community_id`` into grids and store them (micro-grids re-pointed and re-coded).

    With ``expected_version``, a store at another version is a `StaleProposal`; a write by
    someone else between reading and committing is the store's `StaleVersionError`. After the
    write, ``publish(version)`` (when given) hands the new version to the servers. ``reuse``:
    a snapshot the caller read before (its tables not written since are not read again).
    """
    check_community_id(community_id)
    snapshot = store.snapshot(reuse)
    if expected_version is not None and expected_version != snapshot.version:
        raise StaleProposal(
            f"the store is at version {snapshot.version}, not {expected_version}: propose the "
            "split again and review it before committing"
        )
    proposal = propose_split(
        snapshot.tables, snapshot.version, community_id,
        count=count, per_grid=per_grid, weight=weight,
    ).proposal  # fmt: skip
    reason = (
        f"split {community_id} into {proposal.count} grids by {proposal.weight} "
        f"(balance {proposal.ratio or float('inf'):.3f})"
    )
    split = split_mod.apply_split(snapshot.tables, proposal)
    version = store.replace_tables(
        {n: t for n, t in split.items() if t is not snapshot.tables[n]},  # the tables it changed
        author=author,
        reason=reason,
        expected_version=snapshot.version,
        audit=audit,
    )
    published = publish(version) if publish else []
    return GridSplit(proposal, version, committed=True, publish_warnings=published)
