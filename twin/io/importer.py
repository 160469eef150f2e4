"""``twin import``: bring a GIS file into a layer, all or nothing, with a report of every decision.

Row policy: a row with a problem of its own (a value that breaks the schema, a geometry that is
missing or cannot be repaired, a feature outside the city extent) is set aside and reported with its
file row number, and the other rows are imported; ``strict`` fails the whole file instead. A problem
with the file itself (unreadable, unsafe archive, unknown CRS, geometry kinds the layer does not take,
a CSV that changes header, absurd values, or no importable row at all) imports nothing. Every write goes
through one ``store.writer`` changeset, so a failure at any point leaves the store exactly as it was.
The command line, the HTTP import and the demo all import through :func:`import_file`.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np
import shapely

from twin.errors import ImportRejectedError
from twin.io import archive, checks, encoding
from twin.io.crs_detect import CrsChoice, resolve_crs
from twin.io.duplicates import DuplicateCheck
from twin.io.mapping import build_mapping
from twin.io.readers import Chunk, CsvReader, OgrReader, open_reader
from twin.io.report import ImportReport
from twin.io.rows import ChunkWriter, RowObserver
from twin.io.sources import Source, open_source, sidecar
from twin.settings import TwinSettings
from twin.store import Store
from twin.store.base import BBox

Progress = Callable[[int, int], None]
DEFAULT_CHUNK = 100_000
#: The default city extent, the one TwinSettings.city_bbox defaults to (Shanghai).
CITY_BBOX: BBox = TwinSettings.model_fields["city_bbox"].default
_KIND_DIMS = {"point": {0}, "line": {1}, "polygon": {2}, "point_or_polygon": {0, 2}}
_TYPE_DIMS = {"point": 0, "multipoint": 0, "linestring": 1, "multilinestring": 1, "polygon": 2, "multipolygon": 2}


@dataclass(frozen=True)
class ImportOptions:
    """How to read and check a file; every field has a command-line twin of the same name."""

    source_layer: str | None = None
    encoding: str | None = None
    crs: str | None = None
    lon: str | None = None
    lat: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, object]] = field(default_factory=dict)
    extent: BBox = CITY_BBOX
    allow_outside: bool = False
    dry_run: bool = False
    strict: bool = False
    author: str = "twin"
    note: str = ""
    chunk_size: int = DEFAULT_CHUNK
    limits: archive.Limits = field(default_factory=archive.Limits)


def _encoding(source: Source, override: str | None, workdir: Path) -> tuple[Source, encoding.EncodingGuess]:
    if source.kind == "shapefile":
        dbf = sidecar(source.path, ".dbf")
        assert dbf is not None  # checked by open_source
        return source, encoding.shapefile_encoding(dbf, sidecar(source.path, ".cpg"), override)
    if source.kind == "csv":
        return source, encoding.text_file_encoding(source.path, override)
    if source.kind == "geojson":
        guess = encoding.text_file_encoding(source.path, override)
        if guess.encoding.lower() not in ("utf-8", "utf-8-sig"):
            utf8 = encoding.transcode(source.path, guess.encoding, workdir / "transcoded.geojson")
            source = Source(utf8, source.kind, source.name, source.layer)
        return source, encoding.EncodingGuess("UTF-8" if guess.encoding == "utf-8-sig" else guess.encoding,
                                              guess.how)
    return source, encoding.EncodingGuess("UTF-8", f"{source.driver} stores text as UTF-8")


def _check_declared_type(reader: OgrReader | CsvReader, source: Source, kind: str, layer: str) -> None:
    declared = (reader.geometry_type or "").lower().replace(" z", "").replace(" m", "")
    dim = _TYPE_DIMS.get(declared)
    if dim is not None and dim not in _KIND_DIMS[kind]:
        raise ImportRejectedError(
            f"{source.name}: the file holds {reader.geometry_type} features but layer {layer!r} takes "
            f"{kind.replace('_', ' ')} geometries; nothing was imported"
        )


def _sample_coords(chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
    present = chunk.geoms[~shapely.is_missing(chunk.geoms)]
    coords = shapely.get_coordinates(present[:: max(1, len(present) // 500)])
    coords = coords[np.isfinite(coords).all(axis=1)]
    return coords[:, 0], coords[:, 1]


def _resolve(reader: OgrReader | CsvReader, first: Chunk, options: ImportOptions, name: str) -> CrsChoice:
    x, y = _sample_coords(first)
    return resolve_crs(reader.declared_crs, options.crs, x, y, options.extent, name)


def _chunks(reader: OgrReader | CsvReader, size: int) -> tuple[Chunk, Iterator[Chunk]]:
    it = reader.chunks(size)
    first = next(it, None)
    if first is None:
        raise ImportRejectedError(f"{reader.source.name}: the file contains no features")
    return first, chain([first], it)


def import_file(store: Store, path: Path | str, layer: str, options: ImportOptions | None = None,
                progress: Progress | None = None, observer: RowObserver | None = None) -> ImportReport:
    """Import the layer in ``path`` (a file or a zip) into ``layer`` of ``store`` and report what happened.

    ``progress(rows_read, total)`` is called after every chunk; ``observer`` is told what becomes of
    every row (the web import page draws it).

    Raises
    ------
    ImportRejectedError
        For a file that cannot be imported at all (nothing is written); see the module docstring.
    """
    options = options or ImportOptions()
    started = time.perf_counter()
    spec = store.catalogue[layer]
    workdir = Path(tempfile.mkdtemp(prefix="twin-import-"))
    try:
        source = open_source(Path(path), workdir, options.source_layer, options.limits)
        source, enc = _encoding(source, options.encoding, workdir)
        reader = open_reader(source, enc.encoding, options.lon, options.lat)
        if reader.total == 0:
            raise ImportRejectedError(f"{source.name}: the file contains no features")
        _check_declared_type(reader, source, spec.geometry.value, spec.id)
        report = ImportReport(source.name, spec.id, source.driver, enc.encoding, enc.how, dry_run=options.dry_run,
                              strict=options.strict, coordinates=reader.coordinates,
                              coordinates_how=reader.coordinates_how)
        mapping = build_mapping(reader.columns, spec, options.mapping, options.values)
        report.mapping, report.ignored_columns = dict(mapping.pairs), list(mapping.ignored)
        first, chunks = _chunks(reader, options.chunk_size)
        choice = _resolve(reader, first, options, source.name)
        report.crs, report.crs_how = choice.crs.name, choice.how
        if choice.warning:
            report.warnings.append(choice.warning)
        duplicates = DuplicateCheck(store, spec)
        rows = ChunkWriter(spec, mapping, choice.crs, options, report, reader.total, duplicates=duplicates,
                           observer=observer)
        with store.writer(spec.id, author=options.author, source=source.name, kind="import",
                          source_crs=choice.crs.name, note=options.note, dry_run=options.dry_run) as w:
            for chunk in chunks:
                rows.add(w, chunk)
                if progress is not None:
                    progress(report.read, reader.total)
            rows.finish()
            offset = checks.offset_warning(store, *rows.sample.arrays(), choice.crs.offset)
            report.duplicates = duplicates.count
            report.warnings += [text for text in (offset, duplicates.warning()) if text]
        report.changeset = None if w.changeset is None else w.changeset.id
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report.seconds = round(time.perf_counter() - started, 3)
    return report

