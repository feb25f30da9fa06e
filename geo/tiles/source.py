"""The tile source of one atlas: per-zoom simplified (or thinned) layers, indexed by tile and
encoded feature by feature when the version is built; tiles assembled from them, the features
crossing a tile's edge clipped and encoded; one source per atlas object; TileJSON.

A source serves the fields a role may see (`geo.visibility`); the shared one of an atlas
(`source_for`) is public, so the tile cache of `geo.api.tiles` needs no role in its key.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from geo import visibility
from geo.atlas import Atlas
from geo.model import LAYERS
from geo.tiles import tile_index
from geo.tiles.attributes import Attributes, _attribute_frame, attributes_in_steps, build_attributes
from geo.tiles.drawn import Drawn, draw
from geo.tiles.encoding_small import encode_layer_small, geometry, layer_of
from geo.tiles.tile_index import TileIndex
from geo.tiles.tile_math import (
    BUFFER,
    COVERAGES,
    EXTENT,
    HALF,
    MAX_LAT,
    MAXZOOM,
    MINZOOM,
    SIMPLIFY_MAXZOOM,
    THIN_BELOW,
    THIN_CELL_PX,
    _check_layer,
    _project,
    check_address,
    normalise_layers,
    pixel_size,
    tile_bounds,
)


@dataclass(frozen=True)
class ZoomLayer:
    """One layer ready for the tiles of one zoom: Web Mercator geometry, its index and (lines
    and polygons) each feature's shape at the zoom, encoded once (`geo.tiles.drawn`)."""

    name: str
    kind: str  # point | line | polygon
    rows: NDArray[np.int64]  # positions in the layer (sorted by id) of the features kept
    geoms: NDArray[np.object_]  # Web Mercator, as stored: what the index and `bounds` hold
    tree: shapely.STRtree
    bounds: NDArray[np.float64] | None = None  # (n, 4) of geoms: who lies inside a tile
    shapes: NDArray[np.object_] | None = None  # geoms as drawn whole: simplified for the zoom
    tolerance: float = 0.0  # simplify clipped pieces by this much (0: drawn as clipped)
    drawn: Drawn | None = None  # shapes encoded on the zoom's grid (its zoom: drawn.zoom)
    index: TileIndex | None = None  # geoms by tile at drawn.zoom

    def edge(self, hit: NDArray[np.int64], box: tuple[float, float, float, float]) -> NDArray:
        """Which of the features ``hit`` cross the edge of ``box`` (the others lie inside)."""
        b = self.bounds[hit] if self.bounds is not None else np.zeros((len(hit), 4))
        return (b[:, 0] < box[0]) | (b[:, 1] < box[1]) | (b[:, 2] > box[2]) | (b[:, 3] > box[3])

    def cut(self, hit: NDArray[np.int64], box: tuple[float, float, float, float]) -> NDArray:
        """The shapes of features ``hit`` in ``box``: those inside it whole, as drawn at the
        zoom; those crossing its edge clipped (`clip`)."""
        if self.shapes is None:  # points
            return self.geoms[hit]
        geoms = self.shapes[hit]
        edge = self.edge(hit, box)
        if edge.any():
            geoms[edge] = self.clip(hit[edge], box)
        return geoms

    def clip(self, cut: NDArray[np.int64], box: tuple[float, float, float, float]) -> NDArray:
        """Features ``cut`` clipped to ``box``. Polygons: their shapes as drawn at the zoom
        (simplified whole, valid), clipped, as geojson-vt does. Lines: clipped, then simplified
        by `tolerance` (a road running along the box's edge would lose pieces if it were
        simplified first: its chord may lie outside, and a line's stroke reaches into the
        tile); a piece of two points or fewer (or none: it missed the box) is its own
        simplification, and GEOS's per-geometry cost is most of a small tile's."""
        if self.kind == "polygon" or not self.tolerance:
            shapes = self.geoms if self.shapes is None else self.shapes
            return shapely.clip_by_rect(shapes[cut], *box)
        pieces = shapely.clip_by_rect(self.geoms[cut], *box)
        busy = shapely.get_num_coordinates(pieces) > 2
        if busy.any():
            pieces[busy] = simplify(self.kind, pieces[busy], self.tolerance)
        return pieces


def simplify(kind: str, geoms: NDArray[np.object_], tolerance: float) -> NDArray[np.object_]:
    """Geometry as a tile draws it: polygons simplified keeping their topology (valid, rings
    apart), lines by Douglas–Peucker, as PostGIS's ``ST_AsMVTGeom`` does (a topology kept
    within one line changes nothing a pixel wide and costs a road tile 4×)."""
    return shapely.simplify(geoms, tolerance, preserve_topology=kind == "polygon")


# the zooms whose geometry a version build prepares (`TileSource.prepare_all`): a map's zooms
PREPARED_ZOOMS = range(8, SIMPLIFY_MAXZOOM + 2)


def _tolerance(z: int) -> float:
    """Simplification tolerance at zoom z, metres: a pixel, or 0 above `SIMPLIFY_MAXZOOM`."""
    return pixel_size(z) if z <= SIMPLIFY_MAXZOOM else 0.0


def _thin(geoms: NDArray[np.object_], z: int) -> NDArray[np.int64]:
    """Positions of the points kept at zoom z: the first of each 4×4-pixel cell of the world."""
    if z >= THIN_BELOW or len(geoms) == 0:
        return np.arange(len(geoms))
    cell = pixel_size(z) * THIN_CELL_PX
    x, y = shapely.get_x(geoms), shapely.get_y(geoms)
    ok = np.isfinite(x) & np.isfinite(y)
    cx = np.floor((x + HALF) / cell)
    cy = np.floor((HALF - y) / cell)
    key = np.where(ok, cx * (1 << 32) + cy, -1.0)
    _, first = np.unique(key, return_index=True)  # np.unique: first occurrence per cell
    first = np.sort(first)
    return first[ok[first]]


class TileSource:
    """Tiles of one atlas. Per-layer attributes and per-(layer, zoom) geometry are cached here;
    a new atlas version gets a new source (see `source_for`), so edits show at once."""

    def __init__(
        self,
        atlas: Atlas,
        buffer: int = BUFFER,
        extent: int = EXTENT,
        role: str = visibility.PUBLIC,
    ) -> None:
        # weakly: `source_for` caches sources in a WeakKeyDictionary keyed by the atlas, and a
        # value that held its key strongly would keep every atlas (and its tables) alive
        self._atlas = weakref.ref(atlas)
        self.role = role  # the fields served are those this role may see
        self.version = atlas.version
        self.buffer = buffer
        self.extent = extent
        self._lock = threading.RLock()
        self._attrs: dict[str, Attributes] = {}
        self._previous: dict[str, Attributes] = {}  # the last version's, see `follow`
        self._hashes: dict[str, NDArray[np.uint64]] = {}
        self._frames: dict[str, pd.DataFrame] = {}
        self._projected: dict[str, NDArray[np.object_]] = {}
        self._zooms: dict[tuple[str, int], ZoomLayer] = {}

    # -- layers ------------------------------------------------------------------------------
    def attributes(self, name: str) -> Attributes:
        """The encoded attributes of layer ``name`` (made once, reusing the last version's)."""
        attrs = self._attrs.get(name)
        if attrs is None:
            with self._lock:
                attrs = self._attrs.get(name)
                if attrs is None:
                    previous = self._previous.get(name)
                    attrs = build_attributes(self.attribute_frame(name), previous)
                    self._attrs[name] = attrs
                    self._previous.pop(name, None)
        return attrs

    def prepare(self, name: str) -> Iterator[None]:
        """Make the attributes of layer ``name`` a field per step (for a caller that runs
        other work between steps, see `geo.api.tiles.TileCache.carry_over`)."""
        if name in self._attrs:
            return
        attrs = None
        for attrs in attributes_in_steps(self.attribute_frame(name), self._previous.get(name)):
            if attrs is None:
                yield
        with self._lock:
            self._attrs.setdefault(name, attrs)
            self._previous.pop(name, None)

    @property
    def atlas(self) -> Atlas:
        """The atlas these tiles draw (alive while anyone can ask this source for a tile)."""
        atlas = self._atlas()
        if atlas is None:
            raise RuntimeError("the atlas of this tile source is gone")
        return atlas

    def prepare_all(self, zooms: Sequence[int] = PREPARED_ZOOMS) -> Iterator[None]:
        """Make everything the first tile of any layer needs, a step at a time (a version
        build runs this, so no request pays for it, see `geo.api.tiles.install`): every
        layer's encoded attributes and its geometry at ``zooms``. (The encoder's compiled
        loops are loaded once per process: `geo.tiles.encoding_small.load`.)"""
        for name in LAYERS:
            yield from self.prepare(name)
            yield
            for z in zooms:
                self.layer(name, z)
                yield

    def prepared(self, zooms: Sequence[int] = PREPARED_ZOOMS) -> bool:
        """Whether `prepare_all` has run (nothing is left for a first tile to make)."""
        return all(n in self._attrs for n in LAYERS) and all(
            self._zoom_key(n, z) in self._zooms for n in LAYERS for z in zooms
        )

    def follow(self, old: TileSource) -> None:
        """Take over what ``old`` (the previous version's source) made that still holds: the
        geometry of layers whose table is the same (snapshots share unchanged tables), and
        encoded fields, reused where unchanged."""
        self._previous = {**old._previous, **old._attrs, **self._previous}
        with old._lock:
            same = {n for n in LAYERS if old.atlas.tables[n] is self.atlas.tables[n]}
            projected = {n: g for n, g in old._projected.items() if n in same}
            zooms = {k: zl for k, zl in old._zooms.items() if k[0] in same}
        with self._lock:
            self._projected = {**projected, **self._projected}
            self._zooms = {**zooms, **self._zooms}

    def attribute_hashes(self, name: str) -> NDArray[np.uint64]:
        """One hash per feature of the attributes its tiles carry (to compare two atlases)."""
        hashes = self._hashes.get(name)
        if hashes is None:
            hashes = pd.util.hash_pandas_object(self.attribute_frame(name), index=False)
            hashes = self._hashes[name] = hashes.to_numpy()
        return hashes

    def attribute_frame(self, name: str) -> pd.DataFrame:
        """The fields the tiles of layer ``name`` carry, one row per feature (made once)."""
        frame = self._frames.get(name)
        if frame is None:
            frame = self._frames[name] = _attribute_frame(self.atlas, name, self.role)
        return frame

    def changed_boxes(self, old: TileSource, name: str, z: int) -> NDArray[np.float64] | None:
        """Web Mercator bounds (k × 4) of the features of layer ``name`` whose zoom-z tile
        encoding differs from ``old``'s (their old and their new shape); None when features
        were added, removed or renumbered, which changes the whole layer.

        A tile of this layer at zoom z that no box touches (clip buffer included) encodes the
        same bytes under both atlases: its features, their simplified shapes and attributes
        are equal.
        """
        ids_old, ids_new = old.atlas.tables[name]["id"], self.atlas.tables[name]["id"]
        if len(ids_old) != len(ids_new) or not np.array_equal(ids_old, ids_new):
            return None
        shapes = []
        layers = (old.layer(name, z), self.layer(name, z))
        for zl in layers:
            g = np.full(len(ids_new), None, dtype=object)
            g[zl.rows] = zl.geoms
            shapes.append(g)
        changed = old.attribute_hashes(name) != self.attribute_hashes(name)
        if layers[0] is not layers[1]:  # not the same geometry (see `follow`)
            changed |= shapely.to_wkb(shapes[0]) != shapely.to_wkb(shapes[1])
        rows = np.flatnonzero(changed)
        boxes = np.vstack([shapely.bounds(shapes[0][rows]), shapely.bounds(shapes[1][rows])])
        return boxes[~np.isnan(boxes).any(axis=1)]

    def fields(self, name: str) -> dict[str, str]:
        """TileJSON field types of a layer: ``{"id": "String", "enterprises": "Number"...}``."""
        return dict(self.attributes(_check_layer(name)).types)

    def projected(self, name: str) -> NDArray[np.object_]:
        """The geometry of layer ``name`` in Web Mercator (projected once)."""
        geoms = self._projected.get(name)
        if geoms is None:
            geoms = _project(self.atlas.tables[name].geometry.values)
            self._projected[name] = geoms
        return geoms

    def layer(self, name: str, z: int) -> ZoomLayer:
        """The layer at zoom z: simplified (or thinned), indexed; built once per atlas.

        Zooms that serve the same geometry share one entry: points from `THIN_BELOW` up,
        other layers above `SIMPLIFY_MAXZOOM`.
        """
        zl = self._zooms.get((name, z))  # (a zoom that shares no entry: its own key)
        if zl is not None:
            return zl
        key = self._zoom_key(name, z)
        zl = self._zooms.get(key)
        if zl is not None:
            return zl
        with self._lock:
            zl = self._zooms.get(key)
            if zl is None:
                zl = self._build_layer(name, LAYERS[name].geometry or "point", key[1])
                self._zooms[key] = zl
        return zl

    @staticmethod
    def _zoom_key(name: str, z: int) -> tuple[str, int]:
        """The cache key of layer ``name`` at zoom z (zooms serving the same geometry share)."""
        kind = LAYERS[_check_layer(name)].geometry or "point"
        top = THIN_BELOW if kind == "point" else SIMPLIFY_MAXZOOM + 1
        return (name, min(z, top))

    def _build_layer(self, name: str, kind: str, z: int) -> ZoomLayer:
        base = self.projected(name)
        if kind == "point":  # thinned, never simplified
            rows = _thin(base, z)
            return ZoomLayer(
                name, kind, rows.astype(np.int64), base[rows], shapely.STRtree(base[rows])
            )
        tol = _tolerance(z)
        if name in COVERAGES:
            # coverages are simplified whole, so neighbours keep sharing their edges
            geoms = (
                shapely.coverage_simplify(base, tol, simplify_boundary=True)
                if tol and len(base)
                else base
            )
            rows = np.flatnonzero(~(shapely.is_empty(geoms) | shapely.is_missing(geoms)))
            geoms = shapes = geoms[rows]
            tree, bounds = shapely.STRtree(geoms), shapely.bounds(geoms)
        else:
            # every zoom shares one index of the stored shapes; each draws them simplified
            if z <= SIMPLIFY_MAXZOOM:
                top = self.layer(name, SIMPLIFY_MAXZOOM + 1)
                rows, geoms, tree, bounds = top.rows, top.geoms, top.tree, top.bounds
            else:
                rows = np.flatnonzero(~(shapely.is_empty(base) | shapely.is_missing(base)))
                geoms = base[rows]
                tree, bounds = shapely.STRtree(geoms), shapely.bounds(geoms)
            shapes = simplify(kind, geoms, tol) if tol else geoms
        drawn = draw(kind, shapes, z, self.extent)
        index = tile_index.build(bounds, z, self.buffer, self.extent)
        tol = 0.0 if name in COVERAGES else tol  # (a coverage's shapes are its geoms)
        rows = rows.astype(np.int64)
        return ZoomLayer(name, kind, rows, geoms, tree, bounds, shapes, tol, drawn, index)

    # -- tiles -------------------------------------------------------------------------------
    def clip_box(self, z: int, x: int, y: int) -> tuple[float, float, float, float]:
        """Web Mercator bounds of tile z/x/y grown by the buffer: what its features are cut to."""
        minx, miny, maxx, maxy = tile_bounds(z, x, y)
        pad = (maxx - minx) * self.buffer / self.extent
        return (minx - pad, miny - pad, maxx + pad, maxy + pad)

    def layer_bytes(self, name: str, z: int, x: int, y: int) -> bytes:
        """The encoded ``Layer`` of one layer in tile z/x/y (b"" when it has no feature)."""
        zl = self.layer(name, z)
        box = self.clip_box(z, x, y)
        if zl.drawn is not None and zl.index is not None and zl.drawn.zoom == z:
            hit, whole = zl.index.at(x, y)
            return self._drawn_bytes(zl, hit, whole, box, (z, x, y)) if len(hit) else b""
        hit = np.sort(zl.tree.query(shapely.box(*box)))
        if len(hit) == 0:
            return b""
        rows, bounds, attrs = zl.rows[hit], tile_bounds(z, x, y), self.attributes(name)
        geoms = zl.cut(hit, box)
        return encode_layer_small(name, zl.kind, geoms, bounds, rows + 1, attrs, rows, self.extent)

    def _drawn_bytes(
        self,
        zl: ZoomLayer,
        hit: NDArray[np.int64],
        whole: NDArray[np.bool_],
        box: tuple[float, float, float, float],
        zxy: tuple[int, int, int],
    ) -> bytes:
        """Layer bytes of a tile whose features' shapes were encoded at version build: those
        inside the tile are sent as they are, those crossing its edge are clipped and encoded
        here."""
        assert zl.drawn is not None and zl.shapes is not None
        bounds, rows = tile_bounds(*zxy), zl.rows[hit]
        pieces = zl.shapes[:0] if whole.all() else zl.clip(hit[~whole], box)
        cut = geometry(zl.kind, pieces, bounds, self.extent)
        _, x, y = zxy  # the tile's corner on the zoom's grid (`geo.tiles.encoding.grid`)
        drawn = zl.drawn.geometry(hit, whole, x * self.extent, y * self.extent, cut)
        return layer_of(
            zl.name, zl.kind, drawn, rows + 1, self.attributes(zl.name), rows, self.extent
        )

    def tile(self, z: int, x: int, y: int, layers: Sequence[str] | None = None) -> bytes:
        """The MVT of tile z/x/y with ``layers`` (default all); b"" when the tile is empty."""
        check_address(z, x, y)
        names = normalise_layers(layers)
        return b"".join(self.layer_bytes(name, z, x, y) for name in names)

    def bounds(self, layers: Sequence[str] | None = None) -> tuple[float, float, float, float]:
        """WGS84 bounds (w, s, e, n) of the data in ``layers`` (default all)."""
        boxes = [
            self.atlas.tables[n].total_bounds
            for n in normalise_layers(layers)
            if len(self.atlas.tables[n])
        ]
        if not boxes:
            return (-180.0, -MAX_LAT, 180.0, MAX_LAT)
        b = np.array(boxes)
        return (
            float(np.nanmin(b[:, 0])),
            float(np.nanmin(b[:, 1])),
            float(np.nanmax(b[:, 2])),
            float(np.nanmax(b[:, 3])),
        )


_SOURCES: weakref.WeakKeyDictionary[Atlas, TileSource] = weakref.WeakKeyDictionary()
_SOURCES_LOCK = threading.Lock()


def source_for(atlas: Atlas, role: str = visibility.PUBLIC) -> TileSource:
    """The public tile source of an atlas (one per atlas object, dropped with it); for another
    ``role`` (an operator's export) a source of its own, not shared."""
    if role != visibility.PUBLIC:
        return TileSource(atlas, role=role)
    src = _SOURCES.get(atlas)
    if src is None:
        with _SOURCES_LOCK:
            src = _SOURCES.get(atlas)
            if src is None:
                src = _SOURCES[atlas] = TileSource(atlas)
    return src


def tilejson(
    atlas: Atlas,
    tiles_url: str,
    layers: Sequence[str] | str | None = None,
    minzoom: int = MINZOOM,
    maxzoom: int = MAXZOOM,
    source: TileSource | None = None,
) -> dict[str, Any]:
    """TileJSON 3.0.0 for ``layers`` served at ``tiles_url`` (with {z}/{x}/{y}); the fields
    are ``source``'s (default: the atlas's public source)."""
    src = source or source_for(atlas)
    names = normalise_layers(layers)
    w, s, e, n = src.bounds(names)
    return {
        "tilejson": "3.0.0",
        "name": names[0] if len(names) == 1 else "geo",
        "description": "Industrial communities (产业社区): " + ", ".join(names),
        "version": f"1.0.{atlas.version}",
        "scheme": "xyz",
        "tiles": [tiles_url],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": [w, s, e, n],
        "center": [(w + e) / 2, (s + n) / 2, min(max(minzoom, 13), maxzoom)],
        "vector_layers": [
            {
                "id": name,
                "fields": src.fields(name),
                "minzoom": minzoom,
                "maxzoom": maxzoom,
                "description": f"{name} ({LAYERS[name].geometry}s); feature id = position "
                "in the layer sorted by id, + 1",
            }
            for name in names
        ],
    }
