"""Reading a source in bounded chunks: GDAL (via pyogrio) for GIS formats, pandas for CSV.

Each :class:`Chunk` carries the file row number of every feature (1-based feature number; for CSV
the line number, the header being line 1) so that every problem can be reported where the user can
find it. Memory stays bounded by the chunk size whatever the file size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyogrio
import shapely
from numpy.typing import NDArray
from pyogrio import errors as ogr_errors

from twin.errors import ImportRejectedError
from twin.io.sources import Source, gdal_message

_GDAL_ERRORS = (ogr_errors.DataSourceError, ogr_errors.DataLayerError, ogr_errors.FeatureError,
                ogr_errors.GeometryError, ogr_errors.FieldError, ogr_errors.CRSError, RuntimeError, ValueError)
LON_NAMES = ("lng", "lon", "long", "longitude", "x", "经度", "gcj_lng", "bd_lng", "point_x")
LAT_NAMES = ("lat", "latitude", "y", "纬度", "gcj_lat", "bd_lat", "point_y")
WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "shape")


@dataclass
class Chunk:
    """A slice of the file: attributes as read, geometries in the file's CRS, and file row numbers."""

    frame: pd.DataFrame
    geoms: NDArray[np.object_]
    rows: NDArray[np.int64]
    unreadable: dict[int, str] = field(default_factory=dict)  # position -> why the geometry could not be read


class OgrReader:
    """Shapefile, GeoPackage, GeoJSON and FlatGeobuf through GDAL, a chunk of features at a time."""

    def __init__(self, source: Source, encoding: str | None) -> None:
        self.source = source
        self.encoding = encoding
        try:
            info = pyogrio.read_info(source.path, layer=source.layer, encoding=encoding)
        except _GDAL_ERRORS as exc:
            raise ImportRejectedError(f"{source.name}: not a readable {source.driver} file "
                                      f"({gdal_message(exc, source)})") from None
        self.coordinates: dict[str, str] = {}
        self.coordinates_how = ""
        self.total = int(info["features"])
        self.columns = [str(c) for c in info["fields"]]
        self.declared_crs: str | None = info["crs"]
        self.geometry_type: str | None = info["geometry_type"]

    def chunks(self, size: int) -> Iterator[Chunk]:
        # GDAL parses a whole GeoJSON file into memory on every open, so re-opening it per chunk would only
        # parse it again and again: read it once and hand it on in chunks of ``size``.
        step = max(self.total, size) if self.source.kind == "geojson" else size
        for start in range(0, self.total, step):
            block = self._read(start, step)
            for i in range(0, len(block.rows), size):
                yield Chunk(block.frame.iloc[i:i + size].reset_index(drop=True), block.geoms[i:i + size],
                            block.rows[i:i + size], {p - i: why for p, why in block.unreadable.items()
                                                     if i <= p < i + size})

    def _read(self, start: int, count: int) -> Chunk:
        try:
            meta, _, wkb, values = pyogrio.raw.read(
                self.source.path, layer=self.source.layer, encoding=self.encoding,
                skip_features=start, max_features=count)
        except _GDAL_ERRORS as exc:
            raise ImportRejectedError(
                f"{self.source.name}: the file is damaged: GDAL failed reading features "
                f"{start + 1:,}–{min(start + count, self.total):,} ({gdal_message(exc, self.source)})"
            ) from None
        frame = pd.DataFrame({str(n): v for n, v in zip(meta["fields"], values, strict=True)})
        n = len(frame) if len(frame.columns) else (0 if wkb is None else len(wkb))
        wkb = np.full(n, None, dtype=object) if wkb is None else np.asarray(wkb, dtype=object)
        geoms = shapely.from_wkb(wkb, on_invalid="fix")
        unreadable = {int(i): "the geometry is damaged and cannot be read"
                      for i in np.flatnonzero(shapely.is_missing(geoms) & (wkb != None))}  # noqa: E711
        return Chunk(frame.reset_index(drop=True), geoms, np.arange(start + 1, start + n + 1), unreadable)


def _delimiter(header: str) -> str:
    return max([",", "\t", ";", "|"], key=header.count)


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    low = {c.strip().lower(): c for c in columns}
    return next((low[n] for n in names if n in low), None)


class CsvReader:
    """CSV with lon/lat columns (or a WKT column), read with pandas in chunks, every value as text."""

    def __init__(self, source: Source, encoding: str, lon: str | None, lat: str | None) -> None:
        self.source = source
        self.encoding = encoding
        with open(source.path, encoding=encoding, errors="replace", newline="") as fh:
            header = fh.readline()
        self.sep = _delimiter(header)
        try:
            cols = pd.read_csv(source.path, nrows=0, encoding=encoding, sep=self.sep, dtype=str).columns
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ImportRejectedError(f"{source.name}: not a readable CSV ({exc})") from None
        all_cols = [str(c) for c in cols]
        self.lon = lon or _pick(all_cols, LON_NAMES)
        self.lat = lat or _pick(all_cols, LAT_NAMES)
        self.wkt = None if (self.lon and self.lat) else _pick(all_cols, WKT_NAMES)
        for given, flag in ((lon, "--lon"), (lat, "--lat")):
            if given and given not in all_cols:
                raise ImportRejectedError(f"{source.name}: {flag} {given}: no such column ({', '.join(all_cols)})")
        if not ((self.lon and self.lat) or self.wkt):
            raise ImportRejectedError(
                f"{source.name}: found no coordinate columns among {', '.join(all_cols)}; name them with "
                "--lon COLUMN --lat COLUMN (lng/lon/longitude/x/经度 and lat/latitude/y/纬度 are found by themselves)"
            )
        self.header = all_cols
        self.coordinates, self.coordinates_how = self._coordinates(lon, lat)
        geo = {self.lon, self.lat, self.wkt}
        self.columns = [c for c in all_cols if c not in geo]
        self.declared_crs: str | None = None
        self.geometry_type: str | None = "Point" if self.wkt is None else None
        self.total = self._count_rows()
        if self.total == 0:
            raise ImportRejectedError(f"{source.name}: the CSV has a header but no rows")

    def _coordinates(self, lon: str | None, lat: str | None) -> tuple[dict[str, str], str]:
        """The columns the coordinates come from, and how they were chosen, for the report."""
        if self.wkt:
            return {"wkt": self.wkt}, f"a WKT column, found by its name ({'/'.join(WKT_NAMES)})"
        assert self.lon and self.lat
        if lon and lat:
            return {"lon": self.lon, "lat": self.lat}, "given with --lon/--lat"
        how = ("found by their names" if not (lon or lat)
               else f"{'--lon' if lon else '--lat'} given, the other found by its name")
        return {"lon": self.lon, "lat": self.lat}, f"{how}; --lon/--lat choose other columns"

    def _count_rows(self) -> int:
        lines = 0
        last = b"\n"
        with open(self.source.path, "rb") as fh:
            while block := fh.read(1024**2):
                lines += block.count(b"\n")
                last = block[-1:]
        return max(lines - 1 + (last != b"\n"), 0)

    def _header_row(self, frame: pd.DataFrame, offset: int) -> None:
        cells = [frame[c] for c in (self.lon, self.lat, self.wkt) if c]
        names = {n.lower() for n in (*LON_NAMES, *LAT_NAMES, *WKT_NAMES, *(c.lower() for c in self.header))}
        looks = np.zeros(len(frame), dtype=bool)
        for col in cells:
            looks |= col.astype(object).map(lambda v: isinstance(v, str) and v.strip().lower() in names).to_numpy()
        if looks.any():
            r = int(np.flatnonzero(looks)[0])
            row = ",".join(str(v) for v in frame.iloc[r].tolist())
            raise ImportRejectedError(
                f"{self.source.name}: line {offset + r + 2:,} is another header row ({row[:80]!r}): the file "
                "looks like several CSV files joined together; split it and import each part"
            )

    def chunks(self, size: int) -> Iterator[Chunk]:
        reader = pd.read_csv(self.source.path, encoding=self.encoding, sep=self.sep, dtype=str,
                             keep_default_na=False, chunksize=size)
        offset = 0
        try:
            for frame in reader:
                yield self._chunk(frame.reset_index(drop=True), offset)
                offset += len(frame)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ImportRejectedError(f"{self.source.name}: the CSV is malformed after line {offset + 1:,} "
                                      f"({exc}); nothing was imported") from None

    def _chunk(self, frame: pd.DataFrame, offset: int) -> Chunk:
        self._header_row(frame, offset)
        rows = np.arange(offset + 2, offset + 2 + len(frame))
        unreadable: dict[int, str] = {}
        if self.wkt:
            text = frame[self.wkt].astype(object).where(frame[self.wkt] != "", None)
            geoms = shapely.from_wkt(text.to_numpy(), on_invalid="ignore")
            for i in np.flatnonzero(shapely.is_missing(geoms) & text.notna().to_numpy()):
                unreadable[int(i)] = f"{self.wkt} {str(text.iloc[i])[:40]!r} is not WKT"
        else:
            x = pd.to_numeric(frame[self.lon], errors="coerce").to_numpy(dtype=float)
            y = pd.to_numeric(frame[self.lat], errors="coerce").to_numpy(dtype=float)
            bad = ~(np.isfinite(x) & np.isfinite(y))
            geoms = np.full(len(frame), None, dtype=object)
            geoms[~bad] = shapely.points(x[~bad], y[~bad])
            for i in np.flatnonzero(bad):
                unreadable[int(i)] = (f"{self.lon}/{self.lat} {frame[self.lon].iloc[i]!r}, "
                                      f"{frame[self.lat].iloc[i]!r} are not numbers")
        return Chunk(frame[self.columns], geoms, rows, unreadable)


def open_reader(source: Source, encoding: str | None, lon: str | None = None,
                lat: str | None = None) -> OgrReader | CsvReader:
    """The reader for ``source``."""
    if source.kind == "csv":
        return CsvReader(source, encoding or "utf-8", lon, lat)
    return OgrReader(source, encoding)

