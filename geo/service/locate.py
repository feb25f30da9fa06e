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
