"""Getting the demo's layers into the store through the GIS import path (:mod:`twin.io`).

Layers of up to some hundred thousand rows are written as real files (FlatGeobuf, or GeoJSON where
points and polygons mix) and imported with :func:`twin.io.import_file`, exactly as GIS staff import
theirs. The two point layers run to millions of rows at full scale; writing and re-reading them would
double the build time, so their chunks are handed to the same per-chunk import core
(:class:`twin.io.rows.ChunkWriter`: field mapping, reprojection, geometry repair, extent and schema
checks) inside one store changeset, as ``import_file`` does for each chunk it reads. Imports are
strict: a demo row the importer would refuse is a bug, and fails the build.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio

from twin.crs import LONLAT
from twin.io import ImportOptions, ImportReport, import_file
from twin.io.mapping import build_mapping
from twin.io.readers import Chunk
from twin.io.rows import ChunkWriter
from twin.store import Store

AUTHOR = "twin demo"


def write_file(frame: gpd.GeoDataFrame, path: Path) -> Path:
    """Write ``frame`` as FlatGeobuf (or GeoJSON when its geometry kinds mix), replacing any old file."""
    kinds = set(frame.geometry.geom_type.str.removeprefix("Multi"))
    if len(kinds) > 1:
        path = path.with_suffix(".geojson")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    driver = "GeoJSON" if path.suffix == ".geojson" else "FlatGeobuf"
    pyogrio.write_dataframe(frame, path, driver=driver, promote_to_multi=len(kinds) == 1 and "Point" not in kinds)
    return path


def import_path(store: Store, path: Path, layer: str, *, note: str, crs: str | None = None
                ) -> ImportReport:
    """``twin import`` of one file, strict."""
    return import_file(store, path, layer, ImportOptions(crs=crs, strict=True, author=AUTHOR, note=note))


def import_frames(store: Store, layer: str, frames: Iterable[gpd.GeoDataFrame], *, source: str,
                  columns: list[str], note: str, expected: int) -> ImportReport:
    """Import lon/lat chunks as one changeset through the importer's per-chunk core, strict.

    ``expected`` (about how many rows will come) spreads the importer's coordinate sample evenly.
    """
    spec = store.catalogue[layer]
    options = ImportOptions(strict=True, author=AUTHOR, note=note)
    report = ImportReport(source, spec.id, "in-memory chunks", "UTF-8", "generated", crs=LONLAT.name,
                          crs_how="generated in WGS84", strict=True)
    mapping = build_mapping(columns, spec, {})
    rows = ChunkWriter(spec, mapping, LONLAT, options, report, total=max(expected, 1))
    first = 1
    with store.writer(spec.id, author=AUTHOR, source=source, kind="import", source_crs=LONLAT.name,
                      note=note) as w:
        for frame in frames:
            if not len(frame):
                continue
            attrs = frame.drop(columns=frame.geometry.name).reset_index(drop=True)
            rows.add(w, Chunk(attrs, frame.geometry.to_numpy(), np.arange(first, first + len(frame))))
            first += len(frame)
        rows.finish()
    report.changeset = None if w.changeset is None else w.changeset.id
    return report
