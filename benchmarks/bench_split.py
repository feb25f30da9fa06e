"""Split each sample community into as many grids as it has now: ours against spopt.

For every community the same units (street blocks, parks kept whole) and weights go to:

* ``geo`` — `geo.grids.split.regionalise` (seeded region growing + boundary-move refinement);
* ``maxp`` — spopt's `MaxPHeuristic`, its threshold searched so that it yields K regions (the
  search, up to 11 solves, is part of its time; skipped where no threshold searched can give K
  regions, e.g. one unit heavier than the rest together);
* ``skater`` — spopt's `Skater` with K clusters on the weight;
* ``kmeans`` — spopt's `RegionKMeansHeuristic` with K regions on the weight.

The methods run in ``--rounds`` interleaved rounds per community (the order rotating, so load
on the machine hits every method alike). Per community it prints each method's quality — the
max/min balance ratio (lower is better; 1 is perfect; inf: a grid weighs nothing), the mean
Polsby–Popper compactness of the grids (higher is rounder), whether every grid is contiguous —
and whether it gave the same answer in every round (every method here is seeded, so the
quality figures are deterministic; the column shows it); then min/median/max seconds of each
method that answered and of each such peer's time ÷ geo's (per round). Last, the same over
all the communities every method answered (per round: the sum of their seconds).

spopt and libpysal are optional and in no extra of pyproject (``pip install spopt libpysal``);
without them only ``geo`` runs and it says so. A community of one grid, or with no more units
than grids, has nothing to compare: only ``geo`` runs on it.

    python benchmarks/bench_split.py --rounds 3 [--weight enterprises|employees|floor_area]
    python benchmarks/bench_split.py --rounds 3 --peers skater,kmeans   # without max-p's search
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geo import io as geo_io
from geo.crs import to_metric
from geo.grids.regions import _connected
from geo.grids.split import Graph, balance_ratio, community_units, regionalise, weigh
from geo.settings import SAMPLE_DIR

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Spread, interleave, ratios

PEERS = ("maxp", "skater", "kmeans")


def _compactness(graph: Graph, labels: np.ndarray, k: int) -> float:
    area = np.bincount(labels, weights=graph.area, minlength=k)
    same = labels[:, None] == labels[None, :]
    inner = np.bincount(labels, weights=(graph.shared * same).sum(axis=1), minlength=k)
    perim = np.bincount(labels, weights=graph.perimeter, minlength=k) - inner
    return float(np.mean(4 * math.pi * area / perim**2))


def _contiguous(graph: Graph, labels: np.ndarray) -> bool:

    return all(
        _connected(graph, set(np.flatnonzero(labels == r).tolist())) for r in np.unique(labels)
    )


def _spopt(kind: str, units, weights: np.ndarray, graph: Graph, k: int) -> np.ndarray | None:
    import geopandas as gpd
    from libpysal.weights import W
    from spopt.region import MaxPHeuristic, RegionKMeansHeuristic, Skater

    w = W({i: list(nb) for i, nb in enumerate(graph.neighbours)}, silence_warnings=True)
    gdf = gpd.GeoDataFrame({"weight": weights, "one": 1.0}, geometry=list(units), crs="EPSG:4549")
    np.random.seed(0)
    if kind == "kmeans":
        model = RegionKMeansHeuristic(weights.reshape(-1, 1), k, w, seed=0)
        model.solve()
        return np.asarray(model.labels_)
    if kind == "skater":
        model = Skater(gdf, w, ["weight"], n_clusters=k, floor=1)
        model.solve()
        return np.asarray(model.labels_)
    # max-p: the largest threshold that still gives k regions
    lowest = weights.sum() / k * 0.5
    if weights.sum() - weights.max() < (k - 1) * lowest:
        # the k - 1 regions without the heaviest unit cannot each reach the lowest threshold
        # searched (spopt then spends minutes, or never returns, on its enclaves)
        raise ValueError(f"no threshold searched can give {k} regions")
    best = None
    for share in np.linspace(1.0, 0.5, 11):
        np.random.seed(0)
        model = MaxPHeuristic(gdf, w, ["weight"], "weight", weights.sum() / k * share, top_n=2)
        model.solve()
        labels = np.asarray(model.labels_)
        if len(np.unique(labels)) == k and (labels > 0).all():
            best = labels
            break
    return best


@dataclass
class Answers:
    """What one method answered in each round (labels, or why it gave none)."""

    labels: list[np.ndarray | None] = field(default_factory=list)
    failure: str = ""

    def solver(self, solve: Callable[[], np.ndarray | None]) -> Callable[[], None]:
        """A run for `interleave`: ``solve()`` once, its answer kept (an error kept as text)."""

        def run() -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    got = solve()
                except Exception as exc:  # a peer's failure is a figure, not a crash
                    self.failure = f"{type(exc).__name__}: {exc}"[:80]
                    got = None
            self.labels.append(None if got is None else np.unique(got, return_inverse=True)[1])

        return run

    def same_every_round(self) -> bool:
        """Whether every round gave the same answer."""
        first = self.labels[0]
        if first is None:
            return all(x is None for x in self.labels)
        return all(x is not None and np.array_equal(x, first) for x in self.labels)


def peers_installed() -> bool:
    """Whether spopt and libpysal can be imported."""
    try:
        import libpysal  # noqa: F401
        import spopt  # noqa: F401
    except ImportError:
        return False
    return True


def quality(graph: Graph, answers: Answers, k: int) -> str:
    """Balance ratio, compactness and contiguity of the last round's answer, and whether every
    round gave it."""
    labels = answers.labels[-1]
    if labels is None:
        return f"no {k}-region answer" + (f" ({answers.failure})" if answers.failure else "")
    ratio = balance_ratio(np.bincount(labels, weights=graph.weights, minlength=k))
    contiguous = "yes" if _contiguous(graph, labels) else "NO"
    same = "yes" if answers.same_every_round() else "NO (figures: the last round)"
    return (
        f"{ratio or float('inf'):9.3f} {_compactness(graph, labels, k):8.3f}  {contiguous:10}  "
        f"{same}"
    )


def compare(tables, cid: str, args: argparse.Namespace, peers: bool) -> dict[str, list[float]]:
    """One community: every method in interleaved rounds; prints quality and seconds; returns
    the seconds per method and round."""
    grids = tables["grids"]
    k = int((grids["community_id"] == cid).sum())
    cu = community_units(tables, cid, args.weight)
    graph = Graph.of(cu.units, cu.weights)
    old = grids[grids["community_id"] == cid]
    current = balance_ratio(weigh(to_metric(old.geometry.to_numpy()), tables, args.weight))
    methods = ["geo", *args.peers] if peers and k >= 2 and len(graph) > k else ["geo"]
    answers = {m: Answers() for m in methods}
    solve = {
        m: (lambda: regionalise(graph, k))
        if m == "geo"
        else (lambda m=m: _spopt(m, cu.units, cu.weights, graph, k))
        for m in methods
    }
    took = interleave({m: answers[m].solver(solve[m]) for m in methods}, args.rounds)
    now = current or math.inf
    print(f"\n{cid}: K {k}, {len(graph)} units, the current grids' ratio {now:.3f}")
    if len(methods) == 1 and peers:
        print("  (one grid, or no more units than grids: only geo runs)")
    print(f"  {'method':8} {'balance':>9} {'compact':>8}  {'contiguous':10}  same every round")
    for m in methods:
        print(f"  {m:8} {quality(graph, answers[m], k)}")
    # a method without an answer has no time worth comparing
    took = {m: t for m, t in took.items() if all(x is not None for x in answers[m].labels)}
    _seconds(took, args.rounds)
    return took


def _seconds(took: dict[str, list[float]], rounds: int) -> None:
    """min/median/max seconds of each method, and of each peer's time over geo's."""
    print(f"  seconds over {rounds} interleaved rounds:")
    for m, values in took.items():
        print(Spread.of(values).line(f"{m} s", ".4f"))
    for m, values in ratios(took, "geo").items():
        print(Spread.of(values).line(f"ratio ({m} time / geo)", ".2f"))


def main(argv: list[str] | None = None) -> None:
    """Parse the options; compare every community, then all of them together."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weight", default="enterprises")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds")
    parser.add_argument("--communities", help="comma-separated ids (default: every one)")
    parser.add_argument(
        "--peers",
        default=",".join(PEERS),
        type=lambda text: [p for p in text.split(",") if p],
        help=f"comma-separated, of {', '.join(PEERS)} (default: all; maxp takes minutes)",
    )
    args = parser.parse_args(argv)
    if unknown := set(args.peers) - set(PEERS):
        parser.error(f"--peers: unknown {', '.join(sorted(unknown))}; choose of {PEERS}")
    tables = geo_io.read_directory(SAMPLE_DIR).tables
    installed = peers_installed()
    peers = installed and bool(args.peers)
    if not installed:
        print(
            "peers: spopt/libpysal not installed (pip install spopt libpysal; in no extra of "
            "pyproject): only geo runs, no ratios"
        )
    elif not peers:
        print("peers: none asked for (--peers): only geo runs, no ratios")
    ids = args.communities.split(",") if args.communities else list(tables["communities"]["id"])
    every = [compare(tables, cid, args, peers) for cid in ids]
    most = max(len(took) for took in every)
    full = {c: took for c, took in zip(ids, every, strict=True) if len(took) == most}
    methods = next(iter(full.values()))
    total = {m: [sum(r) for r in zip(*(t[m] for t in full.values()), strict=True)] for m in methods}
    names = ", ".join(full)
    print(f"\nall communities every method answered ({names}), per round the sum of their seconds:")
    _seconds(total, args.rounds)


if __name__ == "__main__":
    main()
