"""Mapbox Vector Tiles 2.1 from the atlas: tile math, per-zoom simplification, encoder, PMTiles.

No HTTP here: `TileSource` turns one atlas into tiles, `write_pmtiles` writes an archive.

* **Tile math**: XYZ tiles in Web Mercator (EPSG:3857), projected with the closed formula.
  A tile has `EXTENT` units a side; geometry is clipped to the tile grown by `BUFFER` units.
* **Simplification**: per (layer, zoom), made when the version is built. The coverages
  (streets, communities, grids) are simplified as a whole with `shapely.coverage_simplify`,
  so neighbours keep sharing their edges: no gaps, no overlaps at any zoom. Parks and
  buildings are simplified whole, keeping their topology, and clipped from that shape. Roads
  are simplified by Douglas–Peucker (as PostGIS's ``ST_AsMVTGeom``), whole for the tiles that
  hold them whole and per tile, after clipping, where a tile cuts them: simplifying first and
  clipping after moves the point where a line crosses the clip rectangle along that edge by
  the offset divided by the sine of the crossing angle (metres for a road nearly parallel to
  the edge, or a lost piece), whereas a clipped piece keeps its exact ends. The tolerance is
  one 256-px pixel at that zoom; above `SIMPLIFY_MAXZOOM` the geometry is served as stored.
* **Prepared per zoom** (`geo.tiles.drawn`, `geo.tiles.tile_index`): every line and polygon
  quantised and encoded once on the zoom's grid (all tiles of a zoom share one grid, so a
  feature held whole encodes the same in every tile but for its first point), and a tile →
  features index that says which features each tile holds whole. A tile sends those as they
  are and clips and encodes only the ones crossing its edge.
* **Points** are thinned below `THIN_BELOW`: the first point (smallest id) of every
  4×4-pixel cell of the world at that zoom is kept, so thinning is deterministic and the same
  on both sides of a tile edge. From `THIN_BELOW` up every point is served.
* **Encoders**: a tile's loops (per point, per feature) compiled with numba, and one
  vectorised with numpy that prepares each zoom (the same bytes, tested tile by tile).
  Coordinates are quantised to integers; repeated points are dropped, rings that collapse
  (zero area) are dropped, and rings are wound as MVT wants them (exterior rings positive
  area — clockwise on screen, y down — holes negative). The protobuf is written directly (the
  fields of vector_tile.proto 2.1).
* **Feature ids** are the 1-based position of the feature in its layer sorted by id, so they
  are stable for a given atlas version; the string ``id`` is an attribute.

The package holds one concern per module: `geo.tiles.tile_math` (addresses, bounds,
projection), `geo.tiles.attributes` (the fields a layer serves, encoded once per atlas),
`geo.tiles.encoding` and `geo.tiles.encoding_small` with `geo.tiles.kernels` (the MVT
encoders), `geo.tiles.drawn` and `geo.tiles.tile_index` (what a zoom prepares),
`geo.tiles.source` (the tile source of one atlas and TileJSON) and `geo.tiles.pmtiles_archive`
(PMTiles writing). Their public names are here.
"""

from geo.tiles.attributes import Attributes, Column, attributes_in_steps, build_attributes
from geo.tiles.encoding import encode_layer
from geo.tiles.pmtiles_archive import write_pmtiles
from geo.tiles.source import TileSource, ZoomLayer, source_for, tilejson
from geo.tiles.tile_math import (
    BUFFER,
    COVERAGES,
    EXTENT,
    HALF,
    LAYER_NAMES,
    MAX_LAT,
    MAXZOOM,
    MEDIA_TYPE,
    MINZOOM,
    SIMPLIFY_MAXZOOM,
    THIN_BELOW,
    THIN_CELL_PX,
    TILE_PX,
    R,
    TileError,
    check_address,
    normalise_layers,
    pixel_size,
    tile_bounds,
    tile_to_lonlat,
    tiles_covering,
    tiles_touching,
    to_lonlat,
    to_mercator,
    unknown_layer,
)

__all__ = [
    "BUFFER",
    "COVERAGES",
    "EXTENT",
    "HALF",
    "LAYER_NAMES",
    "MAXZOOM",
    "MAX_LAT",
    "MEDIA_TYPE",
    "MINZOOM",
    "SIMPLIFY_MAXZOOM",
    "THIN_BELOW",
    "THIN_CELL_PX",
    "TILE_PX",
    "Attributes",
    "Column",
    "R",
    "TileError",
    "TileSource",
    "ZoomLayer",
    "attributes_in_steps",
    "build_attributes",
    "check_address",
    "encode_layer",
    "normalise_layers",
    "pixel_size",
    "source_for",
    "tile_bounds",
    "tile_to_lonlat",
    "tilejson",
    "tiles_covering",
    "tiles_touching",
    "to_lonlat",
    "to_mercator",
    "unknown_layer",
    "write_pmtiles",
]
