"""``twin import`` and ``twin export``: GIS files in and out of the store."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from twin.cli.audit import audited
from twin.cli.common import LayersOption, StoreOption, console, err_console, friendly, opened, settings
from twin.cli.tiles import update_aggregates
from twin.errors import TwinError
from twin.io import ExportOptions, export_layer, import_file
from twin.io.mapping import read_mapping_file
from twin.io.options import import_options, parse_bbox
from twin.io.render import show_export, show_import
from twin.query.versions import as_of_stamp
from twin.settings import TwinSettings
from twin.store import Store, exists, remove


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
    app.command("export")(export_command)


@contextmanager
def _import_store(cfg: TwinSettings, dry_run: bool) -> Iterator[Store]:
    """The store to import into. One that does not exist yet is made only by a real import that succeeds: a dry
    run plans against an empty GeoPackage in a temporary folder, and a failed import removes what it created."""
    if exists(cfg.store):
        with opened(cfg) as st:
            yield st
    elif dry_run:
        with tempfile.TemporaryDirectory(prefix="twin-dry-run-") as tmp, opened(
                cfg.model_copy(update={"store": str(Path(tmp) / "dry-run.gpkg")}), create=True) as st:
            yield st
    else:
        try:
            with opened(cfg, create=True) as st:
                yield st
        except BaseException:
            remove(cfg.store)
            raise


@friendly
def import_command(
    path: Annotated[Path, typer.Argument(help="Shapefile (.shp or .zip), GeoPackage, GeoJSON, FlatGeobuf or CSV.")],
    layer: Annotated[str, typer.Option("--layer", help="Layer to import into (see `twin layers`).")],
    source_layer: Annotated[str | None, typer.Option(help="Layer in a GeoPackage, or dataset in a zip.")] = None,
    encoding: Annotated[str | None, typer.Option(help="Text encoding of the attributes (GBK, UTF-8 ...).")] = None,
    crs: Annotated[str | None, typer.Option(help="CRS of the coordinates: EPSG:4549, a PROJ string, gcj02, bd09.")
                   ] = None,
    lon: Annotated[str | None, typer.Option(help="CSV column with longitudes / eastings.")] = None,
    lat: Annotated[str | None, typer.Option(help="CSV column with latitudes / northings.")] = None,
    map_: Annotated[list[str] | None, typer.Option("--map", help="SOURCE_COLUMN=field (repeatable).")] = None,
    mapping: Annotated[Path | None, typer.Option(help="YAML file of field (and value) mappings.")] = None,
    extent: Annotated[str | None, typer.Option(help="City extent minx,miny,maxx,maxy (default: Shanghai).")] = None,
    allow_outside: Annotated[bool, typer.Option(help="Import features outside the city extent too.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Show what would be inserted, updated and rejected.")] = False,
    strict: Annotated[bool, typer.Option(help="Import nothing if any row has a problem.")] = False,
    report: Annotated[Path | None, typer.Option(help="Also write the report to this JSON file.")] = None,
    note: Annotated[str, typer.Option(help="Note recorded on the changeset.")] = "",
    store: StoreOption = None, layers: LayersOption = None,
) -> None:
    """Import a GIS file into a layer: encoding, CRS, repair and checks, all or nothing, with a report."""
    cfg = settings(store, layers)
    try:
        with audited(cfg, "import", layer, str(path)) as done:
            options = import_options(
                city_bbox=cfg.city_bbox, author=cfg.author, source_layer=source_layer, encoding=encoding, crs=crs,
                lon=lon, lat=lat, maps=map_ or [], mapping=read_mapping_file(mapping) if mapping else None,
                mapping_name=str(mapping), extent=extent, allow_outside=allow_outside, dry_run=dry_run,
                strict=strict, note=note)
            with _import_store(cfg, dry_run) as st, Progress(
                    TextColumn("[bold]importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err_console, transient=True) as bar:
                task = bar.add_task("import", total=None)
                result = import_file(st, path, layer, options,
                                     progress=lambda n, total: bar.update(task, completed=n, total=total))
                if not dry_run:
                    update_aggregates(st, [layer])
            done.count, done.detail = result.inserted + result.updated, result.summary()
    except TwinError as exc:
        if report is not None:
            report.write_bytes(orjson.dumps({"source": str(path), "layer": layer, "error": str(exc), "imported": 0},
                                            option=orjson.OPT_INDENT_2))
        raise
    show_import(console, result)
    if report is not None:
        result.write_json(report)


@friendly
def export_command(
    layer: Annotated[str, typer.Argument(help="Layer to export.")],
    out: Annotated[Path, typer.Option("--out", help="Output file.")],
    format_: Annotated[str, typer.Option("--format", help="gpkg, shp, geojson, csv or fgb.")] = "gpkg",
    bbox: Annotated[str | None, typer.Option(help="Only components in minx,miny,maxx,maxy (lon/lat).")] = None,
    crs: Annotated[str | None, typer.Option(help="Output CRS: EPSG code, PROJ string, gcj02 or bd09.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Export the layer as it was at this ISO 8601 time "
                                                              "(with a time zone).")] = None,
    store: StoreOption = None, layers: LayersOption = None,
) -> None:
    """Export a layer (or part of it, now or as it was) to a GIS file."""
    cfg = settings(store, layers)
    options = ExportOptions(format=format_, bbox=parse_bbox(bbox, "--bbox") if bbox else None, crs=crs,
                            as_of=None if as_of is None else as_of_stamp(as_of))
    with audited(cfg, "export", layer, str(out)) as done, opened(cfg) as st:
        result = export_layer(st, layer, out, options)
        done.count, done.detail = result.count, f"{result.format} to {', '.join(result.paths)} ({result.crs})"
    show_export(console, result)
