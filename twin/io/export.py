"""``twin export``: a layer (or the part of it in a bbox, now or as it was) to GeoPackage, Shapefile, GeoJSON,
CSV or FlatGeobuf.

Components are read from the store a page at a time and appended to the output, so memory stays
bounded. The file is written under a temporary name and moved into place at the end: a failed export
leaves no partial file. Shapefiles get a ``.cpg`` saying UTF-8 (so Chinese reads right in QGIS and
ArcGIS) and field names cut to the format's 10 characters, with the renaming reported. A layer that
holds both points and polygons becomes two shapefiles (``*_points``, ``*_polygons``), one per type.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError, FieldError, GeometryError
from pyproj import CRS

from twin.catalogue import GeometryKind, LayerSpec
from twin.crs import LONLAT, TwinCRS, parse_crs, transform_geoms
from twin.errors import ExportError, InvalidQueryError
from twin.io.report import ExportReport
from twin.io.sources import gdal_message
from twin.store import Store
from twin.store.base import BBox

FORMATS = {"gpkg": ("GPKG", ".gpkg"), "shp": ("ESRI Shapefile", ".shp"), "geojson": ("GeoJSON", ".geojson"),
           "csv": ("CSV", ".csv"), "fgb": ("FlatGeobuf", ".fgb")}
SHAPEFILE_SUFFIXES = (".shp", ".shx", ".dbf", ".prj", ".cpg")
_GEOMETRY_TYPES = {GeometryKind.point: "Point", GeometryKind.line: "MultiLineString",
                   GeometryKind.polygon: "MultiPolygon", GeometryKind.point_or_polygon: "Unknown"}
_DBF_TEXT_BYTES = 254


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how: format, an optional lon/lat bbox, the output CRS (EPSG, PROJ, gcj02, bd09) and an
    optional past moment (a store time) to export the layer as it was then."""

    format: str = "gpkg"
    bbox: BBox | None = None
    crs: str | None = None
    as_of: str | None = None
    page_size: int = 100_000


@dataclass(frozen=True)
class _Target:
    path: Path
    geometry_type: str
    dims: tuple[int, ...] | None  # only geometries of these dimensions (None: all)


def shapefile_names(names: list[str]) -> dict[str, str]:
    """Unique dBASE field names of at most 10 characters, for the names that need cutting."""
    out: dict[str, str] = {}
    used = {n.lower() for n in names if len(n) <= 10}
    for name in names:
        if len(name) <= 10:
            continue
        cut, i = name[:10], 1
        while cut.lower() in used:
            suffix = f"_{i}"
            cut, i = name[: 10 - len(suffix)] + suffix, i + 1
        used.add(cut.lower())
        out[name] = cut
    return out


def _targets(spec: LayerSpec, fmt: str, out: Path) -> list[_Target]:
    if fmt == "shp" and spec.geometry is GeometryKind.point_or_polygon:
        return [_Target(out.with_name(out.stem + "_points.shp"), "Point", (0,)),
                _Target(out.with_name(out.stem + "_polygons.shp"), "MultiPolygon", (2,))]
    return [_Target(out, _GEOMETRY_TYPES[spec.geometry], None)]


def _pages(store: Store, spec: LayerSpec, options: ExportOptions) -> Iterator[gpd.GeoDataFrame]:
    offset = 0
    columns = ["key", "status", "updated_at", *spec.field_names]
    box = None if options.bbox is None else shapely.box(*options.bbox)
    while True:
        page = store.features(spec.id, bbox=options.bbox, limit=options.page_size, offset=offset,
                              as_of=options.as_of)
        if page.empty:
            return
        offset += len(page)
        if box is not None:
            page = page[shapely.intersects(page.geometry.to_numpy(), box)]
        yield page[[*columns, page.geometry.name]].reset_index(drop=True)


def _label(crs: TwinCRS) -> str | CRS:
    """The CRS written into the file: GCJ-02 and BD-09 have no code, so their files say WGS84."""
    return "EPSG:4326" if crs.offset or crs.proj is None else crs.proj


def _reproject(page: gpd.GeoDataFrame, crs: TwinCRS) -> gpd.GeoDataFrame:
    geoms = transform_geoms(page.geometry.to_numpy(), LONLAT, crs)
    return gpd.GeoDataFrame(page.drop(columns=page.geometry.name), geometry=gpd.GeoSeries(geoms, crs=_label(crs)))


def _write_csv(page: gpd.GeoDataFrame, path: Path, first: bool, points: bool) -> None:
    geoms = page.geometry.to_numpy()
    frame = pd.DataFrame(page.drop(columns=page.geometry.name))
    if points:
        frame.insert(0, "Y", shapely.get_y(geoms))
        frame.insert(0, "X", shapely.get_x(geoms))
    else:
        frame.insert(0, "WKT", shapely.to_wkt(geoms, rounding_precision=-1))
    frame.to_csv(path, mode="w" if first else "a", header=first, index=False,
                 encoding="utf-8-sig" if first else "utf-8")


def _write_page(page: gpd.GeoDataFrame, target: _Target, fmt: str, first: bool, points: bool) -> None:
    if fmt == "csv":
        _write_csv(page, target.path, first, points)
        return
    driver = FORMATS[fmt][0]
    layer_options = {"ENCODING": "UTF-8"} if fmt == "shp" else None
    try:
        pyogrio.write_dataframe(page, target.path, driver=driver, append=not first,
                                geometry_type=target.geometry_type, layer=target.path.stem,
                                promote_to_multi=target.geometry_type.startswith("Multi"), layer_options=layer_options)
    except (DataSourceError, DataLayerError, FieldError, GeometryError, OSError) as exc:
        raise ExportError(f"{target.path.name}: GDAL could not write it ({gdal_message(exc, target.path)})") from None


def _export(store: Store, spec: LayerSpec, fmt: str, targets: list[_Target], crs: TwinCRS,
            options: ExportOptions, report: ExportReport) -> None:
    firsts = {t.path: True for t in targets}
    long_text = 0
    for page in _pages(store, spec, options):
        page = _reproject(page, crs) if crs != LONLAT else page
        if report.renamed_fields:
            page = page.rename(columns=report.renamed_fields)
            text = page.drop(columns=page.geometry.name).select_dtypes(exclude="number")
            long_text += int(sum(text[c].astype(object).map(
                lambda v: isinstance(v, str) and len(v.encode()) > _DBF_TEXT_BYTES).sum() for c in text.columns))
        dims = shapely.get_dimensions(page.geometry.to_numpy())
        for target in targets:
            part = page if target.dims is None else page[np.isin(dims, target.dims)]
            if len(part):
                _write_page(part, target, fmt, firsts[target.path], spec.geometry is GeometryKind.point)
                firsts[target.path] = False
                report.count += len(part)
    columns = [report.renamed_fields.get(c, c) for c in ("key", "status", "updated_at", *spec.field_names)]
    for target in targets:
        if firsts[target.path]:  # nothing of this kind: still write an empty, well-formed file
            empty = gpd.GeoDataFrame({c: pd.Series([], dtype=object) for c in columns}, geometry=[],
                                     crs=_label(crs))
            _write_page(empty, target, fmt, True, spec.geometry is GeometryKind.point)
    if long_text:
        report.warnings.append(f"{long_text:,} text value(s) are longer than a shapefile's {_DBF_TEXT_BYTES} bytes "
                               "and were cut; export to GeoPackage to keep them whole")


def _move(tmp: Path, targets: list[_Target], out: Path) -> list[str]:
    moved = []
    for target in targets:
        final = out.parent / target.path.name
        suffixes = SHAPEFILE_SUFFIXES if target.path.suffix == ".shp" else (target.path.suffix,)
        for suffix in suffixes:
            src = target.path.with_suffix(suffix)
            if src.exists():
                shutil.move(src, final.with_suffix(suffix))
        moved.append(str(final))
    shutil.rmtree(tmp, ignore_errors=True)
    return moved


def export_layer(store: Store, layer: str, out: Path | str, options: ExportOptions | None = None
                 ) -> ExportReport:
    """Write ``layer`` (optionally only within ``options.bbox``) to ``out`` in ``options.format``."""
    options = options or ExportOptions()
    out = Path(out)
    spec = store.catalogue[layer]
    fmt = options.format.lower()
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {options.format!r}: choose one of {', '.join(FORMATS)}")
    try:
        crs = parse_crs(options.crs) if options.crs else LONLAT
    except InvalidQueryError as exc:
        raise ExportError(f"--crs: {exc}") from None
    if not out.parent.is_dir():
        raise ExportError(f"{out.parent}: no such folder")
    if out.suffix.lower() != FORMATS[fmt][1]:
        out = out.with_name(out.name + FORMATS[fmt][1])
    tmp = Path(tempfile.mkdtemp(prefix=".twin-export-", dir=out.parent))
    targets = _targets(spec, fmt, tmp / out.name)
    names = ["key", "status", "updated_at", *spec.field_names]
    report = ExportReport(spec.id, fmt, [], 0, crs.name, shapefile_names(names) if fmt == "shp" else {})
    if crs.offset:
        report.warnings.append(f"coordinates are {crs.name}, which has no EPSG code: the file is labelled WGS84; "
                               f"tell its users (twin import --crs {crs.offset} reads it back)")
    try:
        _export(store, spec, fmt, targets, crs, options, report)
        report.paths = _move(tmp, targets, out)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report
