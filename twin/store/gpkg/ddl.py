"""Creating, checking and migrating the GeoPackage schema. SQL lives in ``sql/*.sql``."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from functools import cache
from importlib.resources import files

from twin.catalogue import Catalogue, LayerSpec, layer_id_is_valid
from twin.errors import StoreError, StoreVersionError

#: The store schema this code writes. Bump it with an entry in ``MIGRATIONS``.
SCHEMA_VERSION = 3
GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"
GPKG_USER_VERSION = 10300  # GeoPackage 1.3
RTREE_EXTENSION = "http://www.geopackage.org/spec120/#extension_rtree"
#: Columns of the tile aggregate cells as version 2 lays them out.
_CELL_COLUMNS = ["layer", "level", "cx", "cy", "status", "n", "measure", "sx", "sy"]


def _tiles_to_store(conn: sqlite3.Connection) -> None:
    """1 -> 2: the tile aggregates become the store's tables (twin 0.1 made them on first use, maybe in an older
    layout, which is dropped: they are rebuilt from the layers)."""
    columns = [r[1] for r in conn.execute("PRAGMA table_info(twin_tiles_cells)")]
    if columns and columns != _CELL_COLUMNS:
        for table in ("twin_tiles_state", "twin_tiles_cells", "twin_tiles_shapes"):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    for statement in statements(sql("tiles")):
        conn.execute(statement)


def _log_order(conn: sqlite3.Connection) -> None:
    """2 -> 3: history indexed in the change log's order (changeset, then component), for the change feed, and by
    place (its own R-tree), for as-of reads; the status reports' log."""
    for statement in statements(sql("core")):
        if "twin_reports" in statement:
            conn.execute(statement.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS").replace(
                "CREATE INDEX", "CREATE INDEX IF NOT EXISTS"))
    for (layer,) in conn.execute("SELECT layer FROM twin_layers").fetchall():
        conn.execute(f'CREATE INDEX IF NOT EXISTS {q(layer + "_history_changeset")} '
                     f'ON {q(layer + "_history")}(changeset, fid)')
        conn.execute(f'DROP INDEX IF EXISTS {q(layer + "_history_changeset_to")}')
        conn.execute(f'CREATE INDEX {q(layer + "_history_changeset_to")} ON {q(layer + "_history")}(changeset_to, fid)')
        spec = LayerSpec.model_validate_json(conn.execute("SELECT spec FROM twin_layers WHERE layer = ?",
                                                          (layer,)).fetchone()[0])
        for statement in statements(layer_script("layer", spec)):
            if "_history_geom" in statement:  # the history's R-tree and its trigger, filled from what is there
                conn.execute(statement.replace("CREATE VIRTUAL TABLE", "CREATE VIRTUAL TABLE IF NOT EXISTS")
                             .replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS"))
        conn.execute(f'INSERT OR REPLACE INTO {q("rtree_" + layer + "_history_geom")} SELECT hid, ST_MinX(geom), '
                     f'ST_MaxX(geom), ST_MinY(geom), ST_MaxY(geom) FROM {q(layer + "_history")} '
                     "WHERE geom NOT NULL AND NOT ST_IsEmpty(geom)")


#: Migrations from version N to N + 1, each run inside the opening transaction.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _tiles_to_store, 2: _log_order}
SYSTEM_COLUMNS = ("fid", "geom", "key", "fp", "version", "changeset", "valid_from", "status", "updated_at")


@cache
def sql(name: str) -> str:
    """The text of ``sql/<name>.sql``."""
    return files("twin.store.gpkg").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def q(ident: str) -> str:
    """Quote an identifier that was validated against the catalogue's id pattern."""
    if not layer_id_is_valid(ident.removesuffix("_history")):
        raise ValueError(f"refusing to use {ident!r} as an SQL identifier")
    return f'"{ident}"'


def layer_script(name: str, spec: LayerSpec) -> str:
    """A per-layer SQL script with its identifiers filled in."""
    q(spec.id)
    cols = "".join(f',\n  "{f.name}" {f.type.sql}' for f in spec.fields)
    return sql(name).replace("{t}", spec.id).replace("{geomtype}", spec.geometry.gpkg_type).replace(
        "{columns}", cols
    )


def create_store(conn: sqlite3.Connection, catalogue: Catalogue) -> None:
    """Lay out an empty store: GeoPackage core, twin tables and one table per layer (in a transaction)."""
    conn.execute(f"PRAGMA application_id = {GPKG_APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {GPKG_USER_VERSION}")
    for statement in statements(sql("core")) + statements(sql("tiles")):
        conn.execute(statement)
    conn.execute("INSERT INTO twin_meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    conn.execute("INSERT INTO twin_meta VALUES ('store_id', ?)", (uuid.uuid4().hex,))
    for spec in catalogue.values():
        create_layer(conn, spec)


def create_layer(conn: sqlite3.Connection, spec: LayerSpec) -> None:
    """Create a layer's tables and register them with the GeoPackage (inside a transaction)."""
    script = layer_script("layer", spec) + layer_script("layer_indexes", spec) + layer_script("rtree_triggers", spec)
    for statement in statements(script):
        conn.execute(statement)
    hist = f"{spec.id}_history"
    conn.executemany(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) "
        "VALUES (?, 'features', ?, ?, 4326)",
        [(spec.id, f"{spec.title_zh} {spec.title_en}", spec.description),
         (hist, f"{spec.title_zh} {spec.title_en} (history)", f"Superseded versions of {spec.id}")],
    )
    conn.executemany(
        "INSERT INTO gpkg_geometry_columns VALUES (?, 'geom', ?, 4326, 0, 0)",
        [(spec.id, spec.geometry.gpkg_type), (hist, "GEOMETRY")],
    )
    conn.execute(
        "INSERT INTO gpkg_extensions VALUES (?, 'geom', 'gpkg_rtree_index', ?, 'write-only')",
        (spec.id, RTREE_EXTENSION),
    )
    conn.execute("INSERT INTO twin_layers (layer, spec) VALUES (?, ?)", (spec.id, spec.model_dump_json()))


def statements(script: str) -> list[str]:
    """Split a script into statements, keeping trigger bodies (BEGIN ... END;) whole."""
    out: list[str] = []
    buf: list[str] = []
    for line in script.splitlines():
        if line.strip().startswith("--") or not line.strip():
            continue
        buf.append(line)
        text = "\n".join(buf)
        if sqlite3.complete_statement(text):
            out.append(text)
            buf = []
    return out


def check_version(conn: sqlite3.Connection, path: str) -> int:
    """The store's schema version; refuses files that are not twin stores or are too new."""
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        has_meta = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'twin_meta'"
        ).fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a GeoPackage store ({exc})") from None
    if app_id != GPKG_APPLICATION_ID or not has_meta:
        raise StoreError(
            f"{path}: this is not a twin store (a GeoPackage without twin's tables, or another SQLite file); "
            "open it with QGIS or bring its layers in with `twin import`"
        )
    row = conn.execute("SELECT value FROM twin_meta WHERE key = 'schema_version'").fetchone()
    version = int(row[0]) if row and str(row[0]).isdigit() else -1
    if version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"{path}: store schema version {version} was written by a newer twin "
            f"(this one reads up to {SCHEMA_VERSION}); upgrade twin, the file was left untouched"
        )
    if version < SCHEMA_VERSION and any(v not in MIGRATIONS for v in range(version, SCHEMA_VERSION)):
        raise StoreVersionError(
            f"{path}: store schema version {version} is older than any this twin can migrate "
            f"(it migrates from {min(MIGRATIONS, default=SCHEMA_VERSION)}); the file was left untouched"
        )
    return version


def migrate(conn: sqlite3.Connection, version: int) -> None:
    """Run every migration from ``version`` up to ``SCHEMA_VERSION`` (inside a transaction)."""
    for v in range(version, SCHEMA_VERSION):
        MIGRATIONS[v](conn)
    conn.execute("UPDATE twin_meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


def sync_layers(conn: sqlite3.Connection, catalogue: Catalogue) -> list[str]:
    """Create tables for layers new to the catalogue and columns for new fields (inside a transaction).

    Returns what was changed, for the log. Fields dropped from the catalogue keep their columns, so
    no data is lost; a field whose type changed is refused.
    """
    changed: list[str] = []
    if conn.execute("SELECT count(*) FROM twin_meta WHERE key = 'store_id'").fetchone()[0] == 0:
        conn.execute("INSERT INTO twin_meta VALUES ('store_id', ?)", (uuid.uuid4().hex,))
        changed.append("gave the store an id")
    stored = {r[0]: json.loads(r[1]) for r in conn.execute("SELECT layer, spec FROM twin_layers")}
    for spec in catalogue.values():
        if spec.id not in stored:
            create_layer(conn, spec)
            changed.append(f"created layer {spec.id}")
            continue
        old_types = {f["name"]: f["type"] for f in stored[spec.id].get("fields", [])}
        added = False
        for f in spec.fields:
            if f.name in old_types and old_types[f.name] != f.type.value:
                raise StoreError(
                    f"layer {spec.id!r}: field {f.name!r} is stored as {old_types[f.name]} but the catalogue "
                    f"now says {f.type.value}; add a new field instead of changing a type"
                )
            if f.name not in old_types:
                for table in (spec.id, f"{spec.id}_history"):
                    conn.execute(f'ALTER TABLE {q(table)} ADD COLUMN "{f.name}" {f.type.sql}')
                changed.append(f"added field {spec.id}.{f.name}")
                added = True
        if added:
            conn.execute("UPDATE twin_layers SET spec = ? WHERE layer = ?", (spec.model_dump_json(), spec.id))
    return changed
