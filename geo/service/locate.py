"""Locating points: which street, community, grid and micro-grid own them (`geo locate`,
``GET``/``POST /locate``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from geo import crs as crs_mod
from geo.atlas import Atlas
from geo.errors import InvalidInput


def locate_points(
    current: Atlas, lon: np.ndarray, lat: np.ndarray, crs: str
) -> list[dict[str, Any]]:
    """What owns each point (lon/lat in ``crs``), with the point in WGS84, in input order.

    Raises `InvalidInput` that says which points are wrong and why (swapped lon/lat, projected
    metres, NaN …); an unknown ``crs`` is `geo.crs.UnknownCRSError`.
    """
    reasons = current.diagnose(lon, lat, crs)
    bad = [(i, r) for i, r in enumerate(reasons) if r]
    if bad:
        if len(lon) == 1:
            raise InvalidInput(bad[0][1])
        listed = "; ".join(f"point {i}: {r}" for i, r in bad[:20])
        more = f" (and {len(bad) - 20} more)" if len(bad) > 20 else ""
        raise InvalidInput(f"{len(bad)} of {len(lon)} points cannot be located: {listed}{more}")
    if len(lon) == 1:  # one point: floats beat numpy's per-call overhead
        kind = crs_mod.normalize_crs(crs)
        px, py = crs_mod.to_wgs84_one(float(lon[0]), float(lat[0]), kind)
        return [{**current.describe_one(px, py), "point": {"lon": px, "lat": py}}]
    x, y = crs_mod.to_wgs84(lon, lat, crs)
    described = current.describe_points(current.locate_indices(x, y))
    for item, px, py in zip(described, x.tolist(), y.tolist(), strict=True):
        item["point"] = {"lon": px, "lat": py}
    return described


def locate_points_report(
    current: Atlas,
    lon: np.ndarray,
    lat: np.ndarray,
    crs: str,
    invalid: dict[int, str] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Per-point status: each point's owners (as `locate_points`), or ``{"error": reason}``
    where it cannot be located; and how many cannot.

    ``invalid`` holds the points already refused (not numbers, not a pair) by index: their
    ``lon``/``lat`` are placeholders. The good points are converted and located in one
    vectorised call, as `locate_points` does; an unknown ``crs`` still fails the whole batch.
    """
    reasons = current.diagnose(lon, lat, crs)
    for i, reason in (invalid or {}).items():
        reasons[i] = reason
    bad = np.array([i for i, r in enumerate(reasons) if r], dtype=np.int64)
    good = np.ones(len(lon), dtype=bool)
    good[bad] = False
    x, y = crs_mod.to_wgs84(lon[good], lat[good], crs)
    described = current.describe_points(current.locate_indices(x, y))
    results: list[dict[str, Any]] = [{"error": r} if r else {} for r in reasons]
    where = np.flatnonzero(good).tolist()
    for i, item, px, py in zip(where, described, x.tolist(), y.tolist(), strict=True):
        item["point"] = {"lon": px, "lat": py}
        results[i] = item
    return results, len(bad)
