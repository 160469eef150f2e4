"""The public layers of a twin GeoPackage store, as the peers should see them (standard library only).

Both peers read the same store: PostGIS gets a copy made by ogr2ogr (``load.sh``), pygeoapi reads the
file itself. What they expose must match what twin's API returns, so feature payloads are comparable:
the id is the location ``key``; the properties are ``status``, ``updated_at`` and the layer's fields.
twin's bookkeeping columns (``fp``, ``version``, ``changeset``, ``valid_from``) and the ``*_history``
tables stay out. This runs under any Python (the twin venv, or a peer's venv), hence no twin import.

    python bench/peers/store_layers.py STORE.gpkg              # one line per layer: name, tab, its public columns
    python bench/peers/store_layers.py STORE.gpkg --changeset  # the id of the store's last changeset
"""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

#: twin's bookkeeping columns, not part of a feature's properties in twin's API.
INTERNAL = ("fp", "version", "changeset", "valid_from")


@dataclass(frozen=True)
class StoreLayer:
    """One layer: table name, title, public property columns (after ``key``), extent and row count."""

    name: str
    title: str
    description: str
    properties: tuple[str, ...]
    internal: tuple[str, ...]
    extent: tuple[float, float, float, float] | None
    count: int


def store_layers(store: Path) -> list[StoreLayer]:
    """Every feature layer of a twin store except the history tables, in table order."""
    conn = sqlite3.connect(f"{Path(store).resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT table_name, identifier, description FROM gpkg_contents "
            "WHERE data_type = 'features' AND table_name NOT LIKE '%\\_history' ESCAPE '\\' ORDER BY table_name"
        ).fetchall()
        return [_layer(conn, name, title or name, description or "") for name, title, description in rows]
    finally:
        conn.close()


def last_changeset(store: Path) -> int:
    """The id of the store's latest changeset (0 for none): the store's data changes only through changesets."""
    conn = sqlite3.connect(f"{Path(store).resolve().as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT coalesce(max(id), 0) FROM twin_changesets").fetchone()[0])
    finally:
        conn.close()


def _layer(conn: sqlite3.Connection, name: str, title: str, description: str) -> StoreLayer:
    quoted = '"' + name.replace('"', '""') + '"'
    columns = [row[1] for row in conn.execute(f"PRAGMA table_info({quoted})")]
    if "key" not in columns:
        raise SystemExit(f"{name}: no 'key' column; is this a twin store?")
    public = tuple(c for c in columns if c not in ("fid", "geom", "key", *INTERNAL))
    internal = tuple(c for c in columns if c in INTERNAL)
    rtree = '"' + f"rtree_{name}_geom".replace('"', '""') + '"'
    box = conn.execute(f"SELECT min(minx), min(miny), max(maxx), max(maxy) FROM {rtree}").fetchone()
    count = conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]
    extent = None if box[0] is None else tuple(float(v) for v in box)
    return StoreLayer(name, title, description, public, internal, extent, int(count))  # type: ignore[arg-type]


if __name__ == "__main__":
    if sys.argv[2:] == ["--changeset"]:
        print(last_changeset(Path(sys.argv[1])))
    else:
        for layer in store_layers(Path(sys.argv[1])):
            print(layer.name, ",".join(("key", *layer.properties)), sep="\t")
