"""Write a pygeoapi configuration serving a twin GeoPackage store, one collection per twin layer.

Run with the pygeoapi venv's Python (it has PyYAML), by ``load.sh``:

    python bench/peers/pygeoapi_config.py STORE.gpkg OUT.yml --provider ogr|sqlite --port 55002 [--data COPY.gpkg]

``ogr`` is pygeoapi's OGR provider (GDAL from Debian's python3-gdal; bbox goes through the GeoPackage
R-tree); ``sqlite`` is its SQLiteGPKG provider (mod_spatialite; bbox through spatialite's virtual table,
which scans the layer). The SQLiteGPKG provider writes into the file it reads (spatialite's
``AutoGPKGStart`` creates ``vgpkg_*`` virtual tables), so it must read a copy, never the store itself:
``--data COPY`` makes that copy (SQLite's backup API, so it is consistent) and points the provider at it.
Feature ids are twin's location keys and the properties are the ones twin returns, so payloads compare
like for like.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import yaml
from store_layers import StoreLayer, store_layers

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
MAX_ITEMS = 10_000


def provider(data: Path, layer: StoreLayer, kind: str) -> dict[str, object]:
    """The provider block of one collection, reading ``data``."""
    properties = ["key", *layer.properties]  # key must stay listed: pygeoapi pops the id field from them
    if kind == "ogr":
        return {"type": "feature", "name": "OGR", "data": {"source_type": "GPKG", "source": str(data)},
                "id_field": "key", "layer": layer.name, "properties": properties}
    return {"type": "feature", "name": "SQLiteGPKG", "data": str(data), "id_field": "key", "table": layer.name,
            "properties": properties}


def config(store: Path, kind: str, port: int, data: Path | None = None) -> dict[str, object]:
    """The whole configuration document: the collections are ``store``'s layers, read from ``data`` or the store."""
    resources = {
        layer.name: {
            "type": "collection", "title": layer.title, "description": layer.description or layer.title,
            "keywords": ["twin", "Shanghai"],
            "extents": {"spatial": {"bbox": list(layer.extent or (-180.0, -90.0, 180.0, 90.0)), "crs": CRS84}},
            "providers": [provider(data or store, layer, kind)],
        }
        for layer in store_layers(store)
    }
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port}, "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8", "languages": ["en-US"],
            "limits": {"default_items": 10, "max_items": MAX_ITEMS}, "pretty_print": False, "gzip": False,
            "map": {"url": "http://127.0.0.1/none/{z}/{x}/{y}.png", "attribution": "none (benchmark)"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {"title": "twin peer benchmark (pygeoapi)", "description": "twin store via pygeoapi",
                                "keywords": ["twin"], "keywords_type": "theme", "terms_of_service": "none",
                                "url": "http://127.0.0.1"},
            "license": {"name": "Apache-2.0", "url": "http://127.0.0.1"},
            "provider": {"name": "twin bench", "url": "http://127.0.0.1"},
            "contact": {"name": "twin bench", "url": "http://127.0.0.1", "email": "bench@localhost"},
        },
        "resources": resources,
    }


def snapshot(store: Path, dest: Path) -> None:
    """Copy ``store`` (with whatever its WAL holds) to ``dest`` through SQLite's online backup."""
    dest.unlink(missing_ok=True)
    source, target = sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True), sqlite3.connect(dest)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--provider", choices=["ogr", "sqlite"], default="ogr")
    parser.add_argument("--port", type=int, default=55002)
    parser.add_argument("--data", type=Path, help="copy the store here and have the provider read the copy")
    args = parser.parse_args()
    store = args.store.resolve()
    if args.data:
        snapshot(store, args.data.resolve())
    doc = config(store, args.provider, args.port, args.data.resolve() if args.data else None)
    args.out.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")


if __name__ == "__main__":
    main()
