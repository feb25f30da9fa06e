"""Coordinate systems: WGS84, CGCS2000, GCJ-02, BD-09 and any EPSG code, to and from WGS84.

Everything is vectorised over numpy arrays. CGCS2000 (EPSG:4490) is treated as equal to WGS84
(they differ by centimetres). GCJ-02 is the obfuscated datum of Chinese web maps (AMap/Gaode,
Tencent) and their geocoders; BD-09 is Baidu's offset of GCJ-02. Neither has a closed-form
inverse: the inverses iterate the forward transform until the round trip is below 1e-9 degrees
(~0.1 mm). Points outside China pass through GCJ-02 unchanged, as the standard algorithm does.

Areas and lengths are computed in `METRIC_CRS` (EPSG:4549, CGCS2000 / 3-degree Gauss-Kruger
CM 120E), which covers Hangzhou.
"""

from __future__ import annotations

import math
from functools import lru_cache
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from geo.errors import InvalidInput

if TYPE_CHECKING:  # pyproj is imported where an EPSG code is used (`geo locate` needs none)
    from pyproj import Transformer

METRIC_CRS = "EPSG:4549"
NAMED_CRS = ("wgs84", "cgcs2000", "gcj02", "bd09")

_ALIASES = {
    "wgs84": "wgs84",
    "wgs-84": "wgs84",
    "epsg:4326": "wgs84",
    "crs84": "wgs84",
    "ogc:crs84": "wgs84",
    "urn:ogc:def:crs:ogc:1.3:crs84": "wgs84",
    "urn:ogc:def:crs:epsg::4326": "wgs84",
    "cgcs2000": "cgcs2000",
    "epsg:4490": "cgcs2000",
    "urn:ogc:def:crs:epsg::4490": "cgcs2000",
    "gcj02": "gcj02",
    "gcj-02": "gcj02",
    "bd09": "bd09",
    "bd-09": "bd09",
}

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 algorithm.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0
_INVERSE_TOL_DEG = 1e-9
_INVERSE_MAX_ITER = 30

Coords = tuple[NDArray[np.float64], NDArray[np.float64]]
# the numpy functions the formulas use, for floats (one point at a time)
_MATH = SimpleNamespace(sqrt=math.sqrt, sin=math.sin, cos=math.cos, arctan2=math.atan2, pi=math.pi)


class UnknownCRSError(InvalidInput):
    """A CRS name that is neither one of `NAMED_CRS` nor a valid EPSG code."""


def normalize_crs(name: str) -> str:
    """Return ``wgs84|cgcs2000|gcj02|bd09`` or ``EPSG:n`` for a user-given CRS name.

    Parameters
    ----------
    name : str
        A name as users write it: ``WGS84``, ``GCJ-02``, ``EPSG:4326``, ``4549``, an OGC URN…

    Returns
    -------
    str
        One of `NAMED_CRS`, or ``EPSG:n`` for any other EPSG code.

    Raises
    ------
    UnknownCRSError
        With the accepted values, when the name is not understood.

    Examples
    --------
    >>> normalize_crs("GCJ-02"), normalize_crs("EPSG:4326"), normalize_crs("epsg:4549")
    ('gcj02', 'wgs84', 'EPSG:4549')
    >>> normalize_crs("mars")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geo.crs.UnknownCRSError: unknown CRS 'mars': use one of wgs84, cgcs2000, gcj02, bd09 or ...
    """
    key = str(name).strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    code = key.removeprefix("urn:ogc:def:crs:epsg::").removeprefix("epsg:")
    if code.isdigit():
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            CRS.from_epsg(int(code))
        except CRSError as exc:
            raise UnknownCRSError(f"EPSG:{code} is not a known EPSG code") from exc
        return {4326: "wgs84", 4490: "cgcs2000"}.get(int(code), f"EPSG:{int(code)}")
    raise UnknownCRSError(
        f"unknown CRS {name!r}: use one of {', '.join(NAMED_CRS)} or an EPSG code such as EPSG:4549"
    )


def to_wgs84(lon: ArrayLike, lat: ArrayLike, crs: str = "wgs84") -> Coords:
    """Convert coordinates given in ``crs`` to WGS84 lon/lat (x/y order for projected CRS).

    Parameters
    ----------
    lon, lat : array_like
        Longitudes and latitudes (or x and y of a projected CRS), scalars or arrays of one shape.
    crs : str, default "wgs84"
        Any name `normalize_crs` accepts. GCJ-02 and BD-09 are inverted by iteration.

    Returns
    -------
    tuple of ndarray
        WGS84 longitudes and latitudes (float64, at least one dimension).

    Examples
    --------
    A point as a Chinese geocoder (GCJ-02) returns it, back to WGS84:

    >>> lon, lat = to_wgs84(120.20455794, 30.19758465, "gcj02")
    >>> lon.round(6), lat.round(6)
    (array([120.2]), array([30.2]))
    """
    x, y = as_arrays(lon, lat)
    kind = normalize_crs(crs)
    if kind in ("wgs84", "cgcs2000"):
        return x, y
    if kind == "gcj02":
        return gcj02_to_wgs84(x, y)
    if kind == "bd09":
        return gcj02_to_wgs84(*bd09_to_gcj02(x, y))
    return _transformer(kind, "EPSG:4326").transform(x, y)


def from_wgs84(lon: ArrayLike, lat: ArrayLike, crs: str = "wgs84") -> Coords:
    """Convert WGS84 lon/lat to ``crs``.

    Parameters
    ----------
    lon, lat : array_like
        WGS84 longitudes and latitudes, scalars or arrays of one shape.
    crs : str, default "wgs84"
        Any name `normalize_crs` accepts.

    Returns
    -------
    tuple of ndarray
        Coordinates in ``crs`` (x and y for a projected CRS).

    Examples
    --------
    GCJ-02 moves a point in Hangzhou by about 500 m:

    >>> x, y = from_wgs84([120.2, 120.3], [30.2, 30.3], "gcj02")
    >>> x.round(6), y.round(6)
    (array([120.204558, 120.304493]), array([30.197585, 30.297594]))
    >>> x, y = from_wgs84(120.2, 30.2, "EPSG:4549")
    >>> x.round(1), y.round(1)
    (array([519258.5]), array([3342301.1]))
    """
    x, y = as_arrays(lon, lat)
    kind = normalize_crs(crs)
    if kind in ("wgs84", "cgcs2000"):
        return x, y
    if kind == "gcj02":
        return wgs84_to_gcj02(x, y)
    if kind == "bd09":
        return gcj02_to_bd09(*wgs84_to_gcj02(x, y))
    return _transformer("EPSG:4326", kind).transform(x, y)


def to_metric(geom, crs: str = "wgs84"):
    """Geometry (or array of geometries) in ``crs`` (lon/lat by default) → `METRIC_CRS`.

    Parameters
    ----------
    geom : shapely.Geometry or array_like of them
        In ``crs``.
    crs : str, default "wgs84"
        Any name `normalize_crs` accepts; `METRIC_CRS` returns ``geom`` itself.

    Returns
    -------
    shapely.Geometry or ndarray
        The same shape of input, in metres (EPSG:4549).

    Examples
    --------
    >>> from shapely import Point, box
    >>> p = to_metric(Point(120.2, 30.2))
    >>> round(p.x), round(p.y)
    (519258, 3342301)
    >>> round(to_metric(box(120.2, 30.2, 120.21, 30.21)).area)  # m²: 0.96 km by 1.11 km
    1067412
    """
    if crs == METRIC_CRS:
        return geom

    def fn(xy: np.ndarray) -> np.ndarray:
        lon, lat = to_wgs84(xy[:, 0], xy[:, 1], crs)
        return np.column_stack(from_wgs84(lon, lat, METRIC_CRS))

    return shapely.transform(geom, fn)


def to_lonlat(geom):
    """Geometry (or array of geometries) in `METRIC_CRS` → WGS84 lon/lat.

    Examples
    --------
    >>> from shapely import Point
    >>> p = to_lonlat(Point(519258.463, 3342301.132))
    >>> round(p.x, 6), round(p.y, 6)
    (120.2, 30.2)
    """

    def fn(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(to_wgs84(xy[:, 0], xy[:, 1], METRIC_CRS))

    return shapely.transform(geom, fn)


def out_of_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """The bounding box test of the standard GCJ-02 algorithm (outside: no offset).

    Examples
    --------
    >>> out_of_china([120.2, 2.35], [30.2, 48.85])  # Hangzhou, Paris
    array([False,  True])
    """
    x, y = as_arrays(lon, lat)
    return (x < 72.004) | (x > 137.8347) | (y < 0.8293) | (y > 55.8271)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """The GCJ-02 forward transform (the published algorithm).

    Examples
    --------
    >>> x, y = wgs84_to_gcj02(120.2, 30.2)
    >>> x.round(6), y.round(6)
    (array([120.204558]), array([30.197585]))
    """
    x, y = as_arrays(lon, lat)
    dlon, dlat = _gcj_offset(x, y, np)
    outside = out_of_china(x, y)
    return np.where(outside, x, x + dlon), np.where(outside, y, y + dlat)


def _gcj_offset(x, y, m):
    """GCJ-02's (dlon, dlat) at WGS84 (x, y): arrays with ``m`` = numpy, floats with `_MATH`."""
    dx = x - 105.0
    dy = y - 35.0
    dlat = _shift_lat(dx, dy, m)
    dlon = _shift_lon(dx, dy, m)
    rad = y / 180.0 * m.pi
    magic = 1.0 - _EE * m.sin(rad) ** 2
    sqrt_magic = m.sqrt(magic)
    dlat = dlat * 180.0 / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * m.pi)
    dlon = dlon * 180.0 / (_A / sqrt_magic * m.cos(rad) * m.pi)
    return dlon, dlat


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """Invert GCJ-02 by fixed-point iteration to < 1e-9 degrees round-trip error.

    Examples
    --------
    >>> x, y = gcj02_to_wgs84(*wgs84_to_gcj02(120.2, 30.2))
    >>> bool(abs(x[0] - 120.2) < 1e-9 and abs(y[0] - 30.2) < 1e-9)
    True
    """
    return _invert(wgs84_to_gcj02, *as_arrays(lon, lat))


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """Baidu's BD-09 offset of GCJ-02 (the published forward formula).

    Examples
    --------
    >>> x, y = gcj02_to_bd09(120.204558, 30.197585)
    >>> x.round(6), y.round(6)
    (array([120.211068]), array([30.20348]))
    """
    return _bd_forward(*as_arrays(lon, lat), np)


def _bd_forward(x, y, m):
    z = m.sqrt(x * x + y * y) + 0.00002 * m.sin(y * _X_PI)
    theta = m.arctan2(y, x) + 0.000003 * m.cos(x * _X_PI)
    return z * m.cos(theta) + 0.0065, z * m.sin(theta) + 0.006


def to_wgs84_one(lon: float, lat: float, kind: str) -> tuple[float, float]:
    """`to_wgs84` of one point for a `normalize_crs` name, with floats: a single point would
    spend most of its time in numpy's per-call overhead (the inverses iterate).

    Examples
    --------
    >>> lon, lat = to_wgs84_one(120.20455794, 30.19758465, "gcj02")
    >>> round(lon, 6), round(lat, 6)
    (120.2, 30.2)
    """
    if kind in ("wgs84", "cgcs2000"):
        return lon, lat
    if kind == "bd09":
        lon, lat = _invert_one(lambda u, v: _bd_forward(u, v, _MATH), lon, lat)
    elif kind != "gcj02":
        x, y = to_wgs84(lon, lat, kind)
        return float(x[0]), float(y[0])
    return _invert_one(_gcj_forward_one, lon, lat)


def _gcj_forward_one(x: float, y: float) -> tuple[float, float]:
    if x < 72.004 or x > 137.8347 or y < 0.8293 or y > 55.8271:  # `out_of_china`
        return x, y
    dlon, dlat = _gcj_offset(x, y, _MATH)
    return x + dlon, y + dlat


def _invert_one(forward, x: float, y: float) -> tuple[float, float]:
    """`_invert` for one point."""
    u, v = x, y
    for _ in range(_INVERSE_MAX_ITER):
        fu, fv = forward(u, v)
        ex, ey = fu - x, fv - y
        u -= ex
        v -= ey
        if not (abs(ex) > _INVERSE_TOL_DEG or abs(ey) > _INVERSE_TOL_DEG):  # NaN: stop
            break
    return u, v


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """Invert BD-09 to GCJ-02 by iterating the forward formula.

    Examples
    --------
    >>> x, y = bd09_to_gcj02(*gcj02_to_bd09(120.2, 30.2))
    >>> x.round(9), y.round(9)
    (array([120.2]), array([30.2]))
    """
    return _invert(gcj02_to_bd09, *as_arrays(lon, lat))


def _invert(forward, x: NDArray[np.float64], y: NDArray[np.float64]) -> Coords:
    """Solve forward(u, v) == (x, y) for (u, v), starting from (x, y)."""
    u, v = x.copy(), y.copy()
    for _ in range(_INVERSE_MAX_ITER):
        fu, fv = forward(u, v)
        ex, ey = fu - x, fv - y
        u -= ex
        v -= ey
        if not (
            np.nanmax(np.abs(ex), initial=0.0) > _INVERSE_TOL_DEG
            or np.nanmax(np.abs(ey), initial=0.0) > _INVERSE_TOL_DEG
        ):
            break
    return u, v


def _shift_lat(x, y, m):
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * m.sqrt(abs(x))
    ret += (20.0 * m.sin(6.0 * x * m.pi) + 20.0 * m.sin(2.0 * x * m.pi)) * 2.0 / 3.0
    ret += (20.0 * m.sin(y * m.pi) + 40.0 * m.sin(y / 3.0 * m.pi)) * 2.0 / 3.0
    ret += (160.0 * m.sin(y / 12.0 * m.pi) + 320.0 * m.sin(y * m.pi / 30.0)) * 2.0 / 3.0
    return ret


def _shift_lon(x, y, m):
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * m.sqrt(abs(x))
    ret += (20.0 * m.sin(6.0 * x * m.pi) + 20.0 * m.sin(2.0 * x * m.pi)) * 2.0 / 3.0
    ret += (20.0 * m.sin(x * m.pi) + 40.0 * m.sin(x / 3.0 * m.pi)) * 2.0 / 3.0
    ret += (150.0 * m.sin(x / 12.0 * m.pi) + 300.0 * m.sin(x / 30.0 * m.pi)) * 2.0 / 3.0
    return ret


def as_arrays(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """Coordinates as float64 arrays of one shape (scalars become length-1 arrays).

    Examples
    --------
    >>> as_arrays(120, 30)
    (array([120.]), array([30.]))
    >>> as_arrays([120, 121], 30)
    Traceback (most recent call last):
    ...
    ValueError: lon and lat differ in shape: (2,) vs (1,)
    """
    x = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    y = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    if x.shape != y.shape:
        raise ValueError(f"lon and lat differ in shape: {x.shape} vs {y.shape}")
    return x, y


@lru_cache(maxsize=32)
def _transformer(src: str, dst: str) -> Transformer:
    from pyproj import Transformer

    return Transformer.from_crs(src, dst, always_xy=True)
