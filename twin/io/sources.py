"""Finding the dataset a user pointed at: format sniffing, zip archives, shapefile sidecars, source layers.

A :class:`Source` names one readable layer on disk. Zip archives are opened with the bounds of
:mod:`twin.io.archive` and only the chosen dataset's members are extracted into a work folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyogrio
from pyogrio.errors import DataSourceError

from twin.errors import ImportRejectedError
from twin.io import archive

Kind = Literal["shapefile", "gpkg", "geojson", "fgb", "csv"]
EXTENSIONS: dict[str, Kind] = {".shp": "shapefile", ".gpkg": "gpkg", ".geojson": "geojson", ".json": "geojson",
                               ".fgb": "fgb", ".csv": "csv"}
DRIVERS: dict[Kind, str] = {"shapefile": "ESRI Shapefile", "gpkg": "GPKG", "geojson": "GeoJSON",
                            "fgb": "FlatGeobuf", "csv": "CSV"}
#: What twin reads, as the user is told when a file is not one of them.
READABLE = ("Shapefile (.shp, or a .zip holding one), GeoPackage (.gpkg), GeoJSON (.geojson, .json), "
            "FlatGeobuf (.fgb) and CSV with lon/lat or WKT columns")
#: GDAL's advice to name a driver with a ``<DRIVER>:`` prefix, which a twin user cannot act on.
_DRIVER_HINT = re.compile(r"[;.]?\s*It might help to specify the correct driver.*$", re.DOTALL)
#: Files that travel with a shapefile; extracted from archives alongside the .shp.
SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qpj")
_MAGIC: dict[bytes, Kind] = {b"SQLite format 3\x00": "gpkg", b"fgb\x03": "fgb", b"\x00\x00\x27\x0a": "shapefile"}


@dataclass(frozen=True)
class Source:
    """One layer to import: where GDAL (or the CSV reader) finds it and how to name it to the user."""

    path: Path
    kind: Kind
    name: str
    layer: str | None = None

    @property
    def driver(self) -> str:
        return DRIVERS[self.kind]


def gdal_message(exc: Exception, source: Source | Path) -> str:
    """GDAL's message in a user's terms: the file by its name (never a work folder's path), without GDAL's
    ``<DRIVER>:`` prefix advice, and with the formats twin reads when GDAL did not recognise the file."""
    path, name = (source.path, source.name) if isinstance(source, Source) else (source, source.name)
    text = _DRIVER_HINT.sub("", str(exc)).strip().rstrip(";. ")
    text = text.replace(str(path), name).replace(f"{path.parent}{os.sep}", "")
    if "not recognized as being in a supported file format" in text:
        return f"its contents are in no format GDAL recognises; twin reads {READABLE}"
    return text


def sniff(path: Path) -> Kind:
    """The format of ``path`` by its first bytes, falling back on the extension (GeoJSON, CSV)."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if not head.strip():
        raise ImportRejectedError(f"{path.name}: the file is empty")
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return kind
    by_ext = EXTENSIONS.get(path.suffix.lower())
    if by_ext in ("shapefile", "gpkg", "fgb"):
        raise ImportRejectedError(f"{path.name}: not a valid {DRIVERS[by_ext]} file (its header is damaged "
                                  "or it is another format renamed)")
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"{", b"[")):
        return "geojson"
    if by_ext == "csv" or path.suffix.lower() in (".txt", ".tsv"):
        return "csv"
    raise ImportRejectedError(f"{path.name}: unknown format; twin reads {READABLE}")


def sidecar(shp: Path, ext: str) -> Path | None:
    """The shapefile's sidecar with extension ``ext`` (any case), if present."""
    for cand in shp.parent.glob(shp.stem + ".*"):
        if cand.stem == shp.stem and cand.suffix.lower() == ext:
            return cand
    return None


def check_shapefile(shp: Path, name: str) -> None:
    """Refuse a shapefile whose .shx or .dbf is missing or whose .shp is shorter than its header says."""
    for ext, what in ((".shx", "index"), (".dbf", "attribute table")):
        if sidecar(shp, ext) is None:
            raise ImportRejectedError(
                f"{name}: the shapefile's {ext} ({what}) file is missing; a shapefile is several files "
                f"({', '.join(SIDECARS[:4])} ...) with the same name: copy or zip them together"
            )
    with open(shp, "rb") as fh:
        header = fh.read(100)
    declared = int.from_bytes(header[24:28], "big") * 2 if len(header) == 100 else -1
    size = shp.stat().st_size
    if declared != size:
        raise ImportRejectedError(
            f"{name}: the .shp file is truncated or damaged (its header says {declared:,} bytes, "
            f"the file has {size:,}); copy it again from the original"
        )


def _datasets(names: list[str]) -> list[str]:
    hidden = ("__MACOSX/", "._")
    return [n for n in names if Path(n).suffix.lower() in EXTENSIONS
            and not any(n.startswith(h) or f"/{h}" in n for h in hidden)]


def _choose(found: list[str], wanted: str | None, where: str) -> tuple[str, str | None]:
    """The archive member to import, and the layer still to pick inside it (for a zipped GeoPackage)."""
    if not found:
        raise ImportRejectedError(f"{where}: the archive holds no file twin reads; twin reads {READABLE}")
    if wanted is not None:
        hits = [n for n in found if wanted in (n, Path(n).stem, Path(n).name)]
        if len(hits) == 1:
            return hits[0], None
        if len(found) == 1 and found[0].lower().endswith(".gpkg"):
            return found[0], wanted
        raise ImportRejectedError(f"{where}: no dataset {wanted!r} in the archive (found: {', '.join(found)})")
    if len(found) == 1:
        return found[0], None
    raise ImportRejectedError(
        f"{where}: the archive holds several datasets ({', '.join(found)}); choose one with --source-layer NAME"
    )


def _from_zip(path: Path, workdir: Path, wanted: str | None, limits: archive.Limits) -> tuple[Path, str, str | None]:
    members = archive.list_members(path, limits)
    chosen, layer = _choose(_datasets(sorted(members)), wanted, path.name)
    stem, ext = chosen.rsplit(".", 1)
    names = [chosen]
    if ext.lower() == "shp":
        names = [n for n in members if "." in n and n.rsplit(".", 1)[0] == stem
                 and "." + n.rsplit(".", 1)[1].lower() in SIDECARS]
    archive.extract(path, members, names, workdir, limits)
    return workdir.joinpath(*chosen.split("/")), f"{path.name}!{chosen}", layer


def _gpkg_layer(path: Path, name: str, wanted: str | None) -> str:
    try:
        layers = [str(row[0]) for row in pyogrio.list_layers(path)]
    except DataSourceError as exc:
        raise ImportRejectedError(f"{name}: not a readable GeoPackage ({gdal_message(exc, path)})") from None
    if wanted is not None and wanted in layers:
        return wanted
    if wanted is not None:
        raise ImportRejectedError(f"{name}: no layer {wanted!r} (layers: {', '.join(layers) or 'none'})")
    if len(layers) == 1:
        return layers[0]
    raise ImportRejectedError(
        f"{name}: the GeoPackage has {len(layers)} layers ({', '.join(layers)}); choose one with --source-layer"
    )


def open_source(path: Path, workdir: Path, source_layer: str | None = None,
                limits: archive.Limits | None = None) -> Source:
    """Resolve ``path`` (a file or a zip) to the one layer to import, extracting into ``workdir`` if zipped."""
    if not path.exists():
        raise ImportRejectedError(f"{path}: no such file")
    if path.is_dir():
        raise ImportRejectedError(f"{path}: is a folder; give the .shp (or other dataset) file, or zip the folder")
    if path.stat().st_size == 0:
        raise ImportRejectedError(f"{path.name}: the file is empty")
    name = path.name
    with open(path, "rb") as fh:
        zipped = fh.read(4) == b"PK\x03\x04" or path.suffix.lower() == ".zip"
    if zipped:
        path, name, source_layer = _from_zip(path, workdir, source_layer, limits or archive.Limits())
        if path.stat().st_size == 0:
            raise ImportRejectedError(f"{name}: the file is empty")
    kind = sniff(path)
    layer: str | None = None
    if kind == "shapefile":
        check_shapefile(path, name)
    elif kind == "gpkg":
        layer = _gpkg_layer(path, name, source_layer)
    return Source(path, kind, name, layer)
