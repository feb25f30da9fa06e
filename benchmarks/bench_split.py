"""Split each sample community into as many grids as it has now: ours against spopt.

For every community the same units (street blocks, parks kept whole) and weights go to:

* ``geo`` — `geo.grids.split.regionalise` (seeded region growing + boundary-move refinement);
* ``maxp`` — spopt's `MaxPHeuristic`, its threshold searched so that it yields K regions;
* ``skater`` — spopt's `Skater` with K clusters on the weight;
* ``kmeans`` — spopt's `RegionKMeansHeuristic` with K regions on the weight.

Prints the max/min balance ratio (lower is better; 1 is perfect), the mean Polsby–Popper
compactness of the grids (higher is rounder) and the seconds each took. spopt and libpysal are
optional (``pip install spopt libpysal``); without them only ``geo`` runs.

    python benchmarks/bench_split.py [--weight enterprises|employees|floor_area]
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np

from geo import io as geo_io
from geo.grids.split import Graph, balance_ratio, community_units, regionalise
from geo.settings import SAMPLE_DIR


def _compactness(graph: Graph, labels: np.ndarray, k: int) -> float:
    area = np.bincount(labels, weights=graph.area, minlength=k)
    same = labels[:, None] == labels[None, :]
    inner = np.bincount(labels, weights=(graph.shared * same).sum(axis=1), minlength=k)
    perim = np.bincount(labels, weights=graph.perimeter, minlength=k) - inner
    return float(np.mean(4 * math.pi * area / perim**2))


def _contiguous(graph: Graph, labels: np.ndarray) -> bool:
    from geo.grids.split import _connected

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weight", default="enterprises")
    args = parser.parse_args()
    tables = geo_io.read_directory(SAMPLE_DIR).tables
    try:
        import spopt  # noqa: F401

        methods = ["geo", "maxp", "skater", "kmeans"]
    except ImportError:
        methods = ["geo"]
    print(f"{'community':10} {'K':>2} {'units':>5} {'current':>8}  method  ratio  compact  seconds")
    for cid in tables["communities"]["id"]:
        grids = tables["grids"]
        k = int((grids["community_id"] == cid).sum())
        cu = community_units(tables, cid, args.weight)
        graph = Graph.of(cu.units, cu.weights)
        from geo.boundaries.roads import to_metric
        from geo.grids.split import weigh

        old = grids[grids["community_id"] == cid]
        cur = balance_ratio(weigh(to_metric(old.geometry.to_numpy()), tables, args.weight))
        for m in methods:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                labels = (
                    regionalise(graph, k)
                    if m == "geo"
                    else _spopt(m, cu.units, cu.weights, graph, k)
                )
            dt = time.perf_counter() - t0
            if labels is None:
                print(
                    f"{cid:10} {k:>2} {len(graph):>5} {cur or 0:8.3f}  {m:6}  "
                    f"(no {k}-region answer)"
                )
                continue
            labels = np.unique(labels, return_inverse=True)[1]
            sums = np.bincount(labels, weights=cu.weights, minlength=k)
            ratio = balance_ratio(sums)
            flag = "" if _contiguous(graph, labels) else " NOT CONTIGUOUS"
            print(
                f"{cid:10} {k:>2} {len(graph):>5} {cur or 0:8.3f}  {m:6} "
                f"{ratio or float('inf'):6.3f}  {_compactness(graph, labels, k):7.3f}  "
                f"{dt:7.3f}{flag}"
            )


if __name__ == "__main__":
    main()
