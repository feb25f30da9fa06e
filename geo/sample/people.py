"""The sample's synthetic enterprises (placed in buildings, a few on shared vertices or
outside every community) and officers serving buildings (step 3 of `geo.sample`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import shapely

from geo import crs
from geo.model import (
    OFFICERS,
    TEAM_ROLES,
)
from geo.sample.places import _door_numbers, _Names


def _points_in(polys: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniform random point (x, y) inside each polygon (metric), vectorised rejection."""
    out = np.full((len(polys), 2), np.nan)
    bounds = shapely.bounds(polys)
    todo = np.arange(len(polys))
    while len(todo):
        lo, hi = bounds[todo, :2], bounds[todo, 2:]
        xy = lo + rng.random((len(todo), 2)) * (hi - lo)
        ok = shapely.contains_xy(polys[todo], xy[:, 0], xy[:, 1])
        out[todo[ok]] = xy[ok]
        todo = todo[~ok]
    return out


def _chains(weights: dict[str, float], n: int, rng: np.random.Generator) -> np.ndarray:
    labels = list(weights)
    p = np.asarray([weights[k] for k in labels], dtype=float)
    return rng.choice(labels, size=n, p=p / p.sum())


def _rooms(floors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    fl = rng.integers(1, floors + 1)
    unit = rng.integers(1, 30, len(floors))
    return np.asarray([f"{f}{u:02d}室" for f, u in zip(fl, unit, strict=True)])


def _enterprises(
    buildings: pd.DataFrame,
    outside: pd.DataFrame,
    spec: dict,
    lines,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Enterprises in buildings (per-community counts), plus ~3 % in buildings outside."""
    metric = crs.to_metric(buildings["geometry"].to_numpy())
    floors = buildings["floors"].to_numpy()
    weight = shapely.area(metric) * floors * rng.lognormal(0, 0.6, len(buildings))
    parts = []
    for k, c in enumerate(spec["communities"]):
        mine = np.flatnonzero(buildings["_comm"].to_numpy() == k)
        pick = rng.choice(mine, c["enterprises"], p=weight[mine] / weight[mine].sum())
        xy = _points_in(metric[pick], rng)
        address = buildings["address"].to_numpy()[pick] + _rooms(floors[pick], rng)
        parts.append(
            pd.DataFrame(
                {"address": address, "chain": _chains(c["chains"], len(pick), rng), "_xy": list(xy)}
            )
        )
    inside = sum(c["enterprises"] for c in spec["communities"]) + sum(spec["on_edge"])
    n_out = round(inside * spec["outside_share"] / (1 - spec["outside_share"]))
    out_m = crs.to_metric(outside["geometry"].to_numpy())
    pick = rng.choice(len(outside), n_out, p=shapely.area(out_m) / shapely.area(out_m).sum())
    xy = _points_in(out_m[pick], rng)
    doors = _door_numbers(shapely.points(xy), lines)
    rooms = _rooms(rng.integers(3, 20, n_out), rng)
    parts.append(
        pd.DataFrame(
            {
                "address": [d + r for d, r in zip(doors, rooms, strict=True)],
                "chain": _chains(spec["communities"][0]["chains"], n_out, rng),
                "_xy": list(xy),
            }
        )
    )
    return pd.concat(parts, ignore_index=True)


def _name_enterprises(ents: pd.DataFrame, spec: dict, rng, names: _Names) -> None:
    """Company names by chain; 12 Hikvision companies among Torch's and IoT's security firms."""
    ents["name"] = [names.company(c) for c in ents["chain"]]
    first_two = sum(c["enterprises"] for c in spec["communities"][:2])
    pool = np.flatnonzero(ents["chain"].isin(["数字安防", "物联网"]).to_numpy()[:first_two])
    hik = rng.choice(pool, len(spec["names"]["hikvision"]), replace=False)
    ents.loc[hik, "name"] = [f"杭州海康{s}" for s in spec["names"]["hikvision"]]
    ents["employees"] = np.maximum(1, rng.lognormal(np.log(18), 1.25, len(ents))).astype(int)
    ents.loc[hik[0], "employees"] = 28000


def _officers(
    buildings: pd.DataFrame, spec: dict, rng: np.random.Generator, names: _Names
) -> pd.DataFrame:
    """The 一长二员 of the buildings outside parks; a few teams are incomplete."""
    n_officers = spec["officers"]
    towers = buildings[buildings["park_id"] == ""]
    groups = [("楼宇管理长", ("enterprise", "mixed-use"))] + [
        (role, (kind,)) for kind in ("enterprise", "mixed-use") for role in TEAM_ROLES[kind][1:]
    ]
    cells = []  # (role, community, building ids) in a fixed order
    for role, kinds in groups:
        ok = towers[towers["kind"].isin(kinds)]
        ok = ok[rng.random(len(ok)) >= (0.02 if role == "楼宇管理长" else 0.04)]
        for comm, sub in ok.groupby("_comm", sort=True):
            cells.append((role, comm, list(sub["id"])))
    sizes = np.asarray([len(c[2]) for c in cells], dtype=float)
    quota = sizes / sizes.sum() * n_officers
    k = np.minimum(np.maximum(1, np.floor(quota).astype(int)), sizes.astype(int))
    for i in np.argsort(-(quota - np.floor(quota)), kind="stable"):
        if k.sum() >= n_officers:
            break
        k[i] += int(k[i] < sizes[i])
    rows = []
    for (role, _, ids), n in zip(cells, k, strict=True):
        for chunk in np.array_split(np.asarray(ids), n):
            rows.append({"name": names.person(), "role": role, "building_ids": ";".join(chunk)})
    officers = pd.DataFrame(rows)
    if len(officers) != n_officers:
        raise AssertionError(f"{len(officers)} officers, not {n_officers}")
    officers.insert(0, "id", [f"O{i:04d}" for i in range(1, n_officers + 1)])
    party = np.zeros(n_officers, dtype=bool)
    party[rng.choice(n_officers, spec["party_members"], replace=False)] = True
    officers["party_member"] = party
    officers["phone"] = ""
    return officers[list(OFFICERS.field_names)]


def _shared_vertices(
    grids: pd.DataFrame, comms: pd.DataFrame, want: Sequence[int], skip: str, rng
) -> np.ndarray:
    """Up to ``want`` vertices (lon, lat) shared by exactly two communities (and two grids),
    then by two grids of one community; none on community ``skip`` (Torch), so its count is the
    same under every reading of "inside"."""

    def table(geoms: np.ndarray, owners: np.ndarray) -> pd.DataFrame:
        xy, idx = shapely.get_coordinates(geoms, return_index=True)
        df = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "owner": owners[idx]})
        return df.drop_duplicates()

    g = table(grids["geometry"].to_numpy(), grids["id"].to_numpy())
    g["community"] = g["owner"].map(dict(zip(grids["id"], grids["community_id"], strict=True)))
    c = table(comms["geometry"].to_numpy(), comms["id"].to_numpy())
    n_grid = g.groupby(["x", "y"])["owner"].nunique().rename("n_grid")
    n_comm = c.groupby(["x", "y"])["owner"].nunique().rename("n_comm")
    on_skip = c[c["owner"] == skip].set_index(["x", "y"]).index
    g = g.join(n_grid, on=["x", "y"]).join(n_comm, on=["x", "y"])
    g["n_comm"] = g["n_comm"].fillna(0)
    g = g[~g.set_index(["x", "y"]).index.isin(on_skip) & (g["community"] != skip)]
    g = g.sort_values(["x", "y", "owner"]).drop_duplicates(["x", "y"])
    chosen = []
    masks = ((g["n_comm"] == 2) & (g["n_grid"] == 2), (g["n_comm"] == 0) & (g["n_grid"] == 2))
    for n, mask in zip(want, masks, strict=True):
        cand = g[mask]
        pick = np.sort(rng.choice(len(cand), min(n, len(cand)), replace=False))
        chosen.append(cand[["x", "y", "community"]].to_numpy()[pick])
    return np.vstack(chosen)
