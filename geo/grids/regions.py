"""Regionalisation: units grouped into k contiguous regions of balanced weight by seeded
greedy region-growing and boundary moves (see `geo.grids.split`, step 4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely

from geo.grids.blocks import SplitError, _shared_lengths

MIN_SHARED_M = 1.0  # m of shared edge for two units to be neighbours
COMPACTNESS = 0.3  # weight of (1 − mean Polsby–Popper) against log(balance ratio)
RESTARTS = 48
SEED = 20240524


@dataclass
class Graph:
    """Units of a community: weights, areas, perimeters, centroids and shared edge lengths."""

    weights: np.ndarray
    area: np.ndarray
    perimeter: np.ndarray
    centroid: np.ndarray  # (n, 2)
    shared: np.ndarray  # (n, n) shared edge length, m
    neighbours: list[list[int]] = field(default_factory=list)

    @classmethod
    def of(cls, geoms: np.ndarray, weights: np.ndarray) -> Graph:
        """The graph of units ``geoms`` (metric) weighing ``weights``: rook neighbours share
        at least `MIN_SHARED_M` of edge."""
        n = len(geoms)
        shared = np.zeros((n, n))
        for (i, j), length in _shared_lengths(geoms).items():
            shared[i, j] = shared[j, i] = length
        neighbours = [np.flatnonzero(shared[i] >= MIN_SHARED_M).tolist() for i in range(n)]
        return cls(
            np.asarray(weights, dtype=float),
            shapely.area(geoms),
            shapely.length(geoms),
            shapely.get_coordinates(shapely.centroid(geoms)),
            shared,
            neighbours,
        )

    def __len__(self) -> int:
        return len(self.weights)

    def components(self) -> int:
        """How many connected components the units form."""
        return len({_component(self, i) for i in range(len(self))})

    def score(self, labels: np.ndarray, k: int) -> float:
        """log(max/min weight) + COMPACTNESS · mean(1 − Polsby–Popper); lower is better."""
        sums = np.bincount(labels, weights=self.weights, minlength=k)
        ratio = (sums.max() + 1.0) / (sums.min() + 1.0)
        area = np.bincount(labels, weights=self.area, minlength=k)
        same = labels[:, None] == labels[None, :]
        inner = np.bincount(labels, weights=(self.shared * same).sum(axis=1), minlength=k)
        perim = np.bincount(labels, weights=self.perimeter, minlength=k) - inner
        pp = 4 * math.pi * area / np.maximum(perim, 1e-9) ** 2
        return math.log(ratio) + COMPACTNESS * float(np.mean(1.0 - pp))


def _component(graph: Graph, start: int) -> int:
    """Smallest unit index in the connected component of ``start`` (for counting)."""
    seen = {start}
    todo = [start]
    while todo:
        for j in graph.neighbours[todo.pop()]:
            if j not in seen:
                seen.add(j)
                todo.append(j)
    return min(seen)


def _connected(graph: Graph, members: set[int]) -> bool:
    if not members:
        return False
    start = next(iter(members))
    seen = {start}
    todo = [start]
    while todo:
        for j in graph.neighbours[todo.pop()]:
            if j in members and j not in seen:
                seen.add(j)
                todo.append(j)
    return len(seen) == len(members)


def _grow(graph: Graph, k: int, rng: np.random.Generator) -> np.ndarray | None:
    """One greedy region-growing from k spread-out seeds; None if some region could not grow."""
    n = len(graph)
    first = int(rng.integers(n))
    seeds = [first]
    dist = np.hypot(*(graph.centroid - graph.centroid[first]).T)
    while len(seeds) < k:
        # farthest-point sampling with a little jitter so restarts differ
        nxt = int(np.argmax(dist * rng.uniform(0.8, 1.0, n)))
        if nxt in seeds:
            nxt = int(next(i for i in np.argsort(-dist) if i not in seeds))
        seeds.append(nxt)
        dist = np.minimum(dist, np.hypot(*(graph.centroid - graph.centroid[nxt]).T))
    labels = np.full(n, -1)
    sums = np.zeros(k)
    for r, s in enumerate(seeds):
        labels[s] = r
        sums[r] = graph.weights[s]
    open_regions = set(range(k))
    while (labels < 0).any() and open_regions:
        r = min(open_regions, key=lambda q: (sums[q], q))
        members = np.flatnonzero(labels == r)
        frontier = sorted({j for i in members for j in graph.neighbours[i] if labels[j] < 0})
        if not frontier:
            open_regions.discard(r)
            continue
        seed_xy = graph.centroid[seeds[r]]
        j = min(frontier, key=lambda q: (float(np.hypot(*(graph.centroid[q] - seed_xy))), q))
        labels[j] = r
        sums[r] += graph.weights[j]
    if (labels < 0).any():
        return None
    return labels


def _refine(graph: Graph, labels: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Boundary moves (a unit to a neighbouring region) while the score improves."""
    labels = labels.copy()
    best = graph.score(labels, k)
    improved = True
    while improved:
        improved = False
        for u in range(len(graph)):
            a = labels[u]
            targets = sorted({int(labels[j]) for j in graph.neighbours[u]} - {int(a)})
            if not targets:
                continue
            rest = set(np.flatnonzero(labels == a).tolist()) - {u}
            if not _connected(graph, rest):
                continue
            for b in targets:
                labels[u] = b
                s = graph.score(labels, k)
                if s < best - 1e-12:
                    best = s
                    improved = True
                    break
                labels[u] = a
    return labels, best


def regionalise(graph: Graph, k: int, *, restarts: int = RESTARTS, seed: int = SEED) -> np.ndarray:
    """Labels 0…k-1 per unit: k contiguous regions, balanced and compact. Deterministic."""
    n = len(graph)
    if k < 1:
        raise SplitError("a community needs at least 1 grid")
    if k > n:
        raise SplitError(
            f"the community has only {n} street blocks (parks kept whole): at most {n} grids"
        )
    if graph.components() > 1:
        raise SplitError("the community's street blocks are not connected to each other")
    if k == 1:
        return np.zeros(n, dtype=int)
    best: tuple[float, np.ndarray] | None = None
    for r in range(restarts):
        rng = np.random.default_rng([seed, r])
        grown = _grow(graph, k, rng)
        if grown is None:
            continue
        labels, score = _refine(graph, grown, k)
        if best is None or score < best[0] - 1e-12:
            best = (score, labels)
    if best is None:
        raise SplitError(f"could not form {k} contiguous grids from {n} street blocks")
    return best[1]


def balance_ratio(values: Sequence[float] | np.ndarray) -> float | None:
    """max/min of per-grid weights (None when a grid has none: the ratio is unbounded)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0 or values.min() <= 0:
        return None
    return float(values.max() / values.min())
