"""Tile math: XYZ tiles in Web Mercator (EPSG:3857), their bounds, pixel sizes and the
projection to and from WGS84 lon/lat; which tiles cover or touch an area; layer names checked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import mercantile
import numpy as np
import shapely
from numpy.typing import NDArray

from geo.errors import NotFound
from geo.model import LAYERS

EXTENT = 4096
BUFFER = 64  # tile units the clip rectangle extends past each tile edge
TILE_PX = 256  # the pixel size of a tile on screen, for "one pixel" tolerances
MINZOOM, MAXZOOM = 0, 20
THIN_BELOW = 14  # points are thinned at z < THIN_BELOW (never at z >= 16)
THIN_CELL_PX = 4  # one point per THIN_CELL_PX × THIN_CELL_PX pixels when thinning
SIMPLIFY_MAXZOOM = 16  # geometry is simplified up to this zoom, served as stored above
MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
LAYER_NAMES: tuple[str, ...] = tuple(LAYERS)  # roads streets communities grids parks ...
COVERAGES = frozenset({"streets", "communities", "grids"})
R = 6378137.0
HALF = math.pi * R  # half the width of the Web Mercator world, metres
MAX_LAT = 85.0511287798066


class TileError(NotFound):
    """A tile address or layer that does not exist; the message says why."""


def check_address(z: int, x: int, y: int, maxzoom: int = MAXZOOM) -> None:
    """Raise `TileError` unless z/x/y is a tile of the pyramid (z in minzoom..maxzoom).

    Parameters
    ----------
    z, x, y : int
        The tile address (XYZ scheme, y down from the north).
    maxzoom : int
        The deepest zoom served.

    Returns
    -------
    None
        Raises `TileError`, saying which coordinate is out of range, for a bad address.

    Examples
    --------
    >>> check_address(1, 1, 0)
    >>> check_address(1, 2, 0)
    Traceback (most recent call last):
    ...
    geo.tiles.tile_math.TileError: x = 2 is out of range at zoom 1: 0 <= x < 2
    """
    if not MINZOOM <= z <= maxzoom:
        raise TileError(f"zoom {z} is out of range: tiles exist for z = {MINZOOM}..{maxzoom}")
    n = 1 << z
    for name, v in (("x", x), ("y", y)):
        if not 0 <= v < n:
            raise TileError(f"{name} = {v} is out of range at zoom {z}: 0 <= {name} < {n}")


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Web Mercator bounds (minx, miny, maxx, maxy) of a tile, metres.

    Parameters
    ----------
    z, x, y : int
        The tile address (XYZ scheme, y down from the north).

    Returns
    -------
    tuple of float
        (minx, miny, maxx, maxy) in EPSG:3857 metres.

    Examples
    --------
    >>> tile_bounds(1, 1, 0)  # the north-east quarter of the world
    (0.0, 0.0, 20037508.342789244, 20037508.342789244)
    """
    size = 2 * HALF / (1 << z)
    return (-HALF + x * size, HALF - (y + 1) * size, -HALF + (x + 1) * size, HALF - y * size)


def pixel_size(z: int) -> float:
    """Metres (Web Mercator) of one screen pixel of a 256-px tile at zoom z.

    Parameters
    ----------
    z : int
        The zoom.

    Returns
    -------
    float
        The pixel size, EPSG:3857 metres (true size shrinks with the cosine of the latitude).

    Examples
    --------
    >>> round(pixel_size(16), 4)
    2.3887
    """
    return 2 * HALF / (TILE_PX * (1 << z))


def to_mercator(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    """WGS84 lon/lat → Web Mercator x/y, metres (latitudes clamped to ±85.0511°).

    Parameters
    ----------
    lon, lat : ndarray of float
        Degrees.

    Returns
    -------
    tuple of ndarray
        (x, y), EPSG:3857 metres.

    Examples
    --------
    >>> x, y = to_mercator(np.array([120.2]), np.array([30.2]))
    >>> round(float(x[0]), 1), round(float(y[0]), 1)
    (13380602.8, 3529284.0)
    """
    lat = np.clip(lat, -MAX_LAT, MAX_LAT)
    x = np.radians(lon) * R
    y = np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * R
    return x, y


def to_lonlat(x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    """Web Mercator x/y → WGS84 lon/lat.

    Parameters
    ----------
    x, y : ndarray of float
        EPSG:3857 metres.

    Returns
    -------
    tuple of ndarray
        (lon, lat), degrees: the inverse of `to_mercator`.

    Examples
    --------
    >>> lon, lat = to_lonlat(np.array([13380602.79335148]), np.array([3529283.97111381]))
    >>> round(float(lon[0]), 6), round(float(lat[0]), 6)
    (120.2, 30.2)
    """
    return np.degrees(x / R), np.degrees(2 * np.arctan(np.exp(y / R)) - np.pi / 2)


def tile_to_lonlat(
    z: int, x: int, y: int, tx: NDArray, ty: NDArray, extent: int = EXTENT
) -> tuple[NDArray, NDArray]:
    """Tile coordinates (y down, 0..extent) of tile z/x/y → WGS84 lon/lat.

    Parameters
    ----------
    z, x, y : int
        The tile address.
    tx, ty : ndarray
        Positions inside the tile, in tile units (0..extent, y down).
    extent : int
        Tile units a side.

    Returns
    -------
    tuple of ndarray
        (lon, lat), degrees.

    Examples
    --------
    >>> lon, lat = tile_to_lonlat(1, 1, 1, np.array([0, 4096]), np.array([0, 4096]))
    >>> [round(v, 4) for v in lon.tolist()], [round(v, 4) for v in lat.tolist()]
    ([0.0, 180.0], [0.0, -85.0511])
    """
    minx, miny, maxx, maxy = tile_bounds(z, x, y)
    mx = minx + np.asarray(tx, dtype=float) / extent * (maxx - minx)
    my = maxy - np.asarray(ty, dtype=float) / extent * (maxy - miny)
    return to_lonlat(mx, my)


def _project(geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    def fn(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.column_stack(to_mercator(xy[:, 0], xy[:, 1]))

    return shapely.transform(geoms, fn)


def tiles_covering(bounds: Sequence[float], zooms: Iterable[int]) -> list[tuple[int, int, int]]:
    """The (z, x, y) of the tiles that cover lon/lat ``bounds`` at each zoom.

    Parameters
    ----------
    bounds : sequence of float
        (west, south, east, north), degrees.
    zooms : iterable of int
        The zooms wanted.

    Returns
    -------
    list of tuple
        (z, x, y) per tile.

    Examples
    --------
    >>> tiles_covering((120.15, 30.17, 120.25, 30.23), [12])
    [(12, 3415, 1686), (12, 3415, 1687), (12, 3416, 1686), (12, 3416, 1687)]
    """
    w, s, e, n = (float(v) for v in bounds)
    return [(t.z, t.x, t.y) for t in mercantile.tiles(w, s, e, n, zooms=list(zooms))]


def tiles_touching(
    boxes: NDArray[np.float64], z: int, x: NDArray[np.int64], y: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """Which tiles z/x/y (arrays) have a clip rectangle (`BUFFER` included) that touches one of
    the Web Mercator ``boxes``.

    Parameters
    ----------
    boxes : ndarray of float
        (k, 4) Web Mercator boxes (minx, miny, maxx, maxy), metres.
    z : int
        The zoom of the tiles.
    x, y : ndarray of int
        The tiles' columns and rows.

    Returns
    -------
    ndarray of bool
        Per tile, whether its buffered rectangle touches a box.

    Examples
    --------
    >>> x, y = np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1])
    >>> tiles_touching(np.array([[1e7, 1e7, 1.1e7, 1.1e7]]), 1, x, y).tolist()
    [False, True, False, False]
    """
    hit = np.zeros(len(x), dtype=bool)
    if len(boxes) == 0 or len(x) == 0:
        return hit
    size = 2 * HALF / (1 << z)
    pad = size * BUFFER / EXTENT
    minx, maxy = -HALF + x * size, HALF - y * size
    clips = shapely.box(minx - pad, maxy - size - pad, minx + size + pad, maxy + pad)
    tile_i, _ = shapely.STRtree(shapely.box(*boxes.T)).query(clips, predicate="intersects")
    hit[tile_i] = True
    return hit


def unknown_layer(name: str) -> str:
    """The 404 reason for a layer that does not exist."""
    return f"unknown layer {name!r}; layers are: {', '.join(LAYER_NAMES)}"


def _check_layer(name: str) -> str:
    if name not in LAYERS:
        raise TileError(unknown_layer(name))
    return name


def normalise_layers(layers: Sequence[str] | str | None) -> tuple[str, ...]:
    """Layer names in the canonical order, checked; a comma-separated string works too.

    Parameters
    ----------
    layers : sequence of str, str or None
        Layer names, or one comma-separated string; None or empty means every layer.

    Returns
    -------
    tuple of str
        The names in the order of `LAYER_NAMES`; raises `TileError` for an unknown one.

    Examples
    --------
    >>> normalise_layers("grids, roads")
    ('roads', 'grids')
    """
    if layers is None:
        return LAYER_NAMES
    if isinstance(layers, str):
        layers = [s for s in (p.strip() for p in layers.split(",")) if s]
    if not layers:
        return LAYER_NAMES
    for name in layers:
        _check_layer(name)
    wanted = set(layers)
    return tuple(n for n in LAYER_NAMES if n in wanted)
