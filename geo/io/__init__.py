"""Read and write the layers' files; every reader validates each row and explains what it drops.

A folder holds ``roads streets communities grids parks buildings`` as GeoJSON (RFC 7946) and
``enterprises.csv`` / ``officers.csv``. `read_directory` returns tables shaped as `geo.model`
describes (WGS84, spec columns in order, sorted by id) plus the rows it rejected and the warnings,
each an `Issue` that names the table, the row and the fix. Rows are 1-based feature indexes in a
GeoJSON file and 1-based line numbers in a CSV (the header is line 1); row 0 means the whole file.

A bad row never stops a load: it is rejected with its reason and the rest loads. Problems with a
whole file (missing, not JSON, not a FeatureCollection, missing CSV columns, an unknown ``crs``
member) raise `InputError`.

Any other source (Shapefile, GeoPackage, FileGDB, KML, GeoParquet, .osm.pbf, CSV in any usual
encoding, .xlsx, Parquet) is read by `geo.sources`, its columns found and ids derived by
`geo.columns`, then validated row by row exactly as above: `read_layer_source` for one layer,
and `read_directory` for a folder's ``roads.shp``, ``enterprises.xlsx`` … (one file per layer).

The package holds one concern per module: `geo.io.rows` (the vocabulary and row checks),
`geo.io.geojson` (our GeoJSON layers), `geo.io.csv_tables` (enterprises and officers CSV),
`geo.io.source_layers` (any other source), `geo.io.folder` (a data folder whole) and
`geo.io.write` (the writers).
"""

from geo.io.folder import dangling_references, read_directory, read_layer_file
from geo.io.geojson import read_layer_doc
from geo.io.rows import (
    FILES,
    GEOJSON_LAYERS,
    OPTIONAL_FILES,
    WGS84,
    InputError,
    Issue,
    LoadResult,
)
from geo.io.source_layers import (
    SourceLoad,
    load_layer_frame,
    load_layer_source,
    read_layer_source,
)
from geo.io.write import defuse_formula, write_csv, write_geojson

__all__ = [
    "FILES",
    "GEOJSON_LAYERS",
    "OPTIONAL_FILES",
    "WGS84",
    "InputError",
    "Issue",
    "LoadResult",
    "SourceLoad",
    "dangling_references",
    "defuse_formula",
    "load_layer_frame",
    "load_layer_source",
    "read_directory",
    "read_layer_doc",
    "read_layer_file",
    "read_layer_source",
    "write_csv",
    "write_geojson",
]
