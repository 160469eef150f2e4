"""Creating, checking and migrating a PostGIS store's schema. SQL lives in ``sql/*.sql``.

A store is one PostgreSQL schema (``twin`` unless the URL names another): the layer tables and their
history, changesets, tile aggregates and the access tables. Identifiers come from the catalogue only
(validated ids) and are quoted; values are always bound parameters.
"""

from __future__ import annotations

import json
import re
import uuid
from functools import cache
from importlib.resources import files

import psycopg

from twin.catalogue import Catalogue, FieldType, GeometryKind, LayerSpec, layer_id_is_valid
from twin.errors import StoreError, StoreVersionError

#: The store schema this code writes (shared numbering with the GeoPackage engine's).
SCHEMA_VERSION = 4
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}\Z")
PG_TYPES = {FieldType.string: 'text COLLATE "C"', FieldType.integer: "bigint", FieldType.float: "double precision",
            FieldType.boolean: "boolean", FieldType.date: "date", FieldType.datetime: "timestamptz"}
GEOMETRY_TYPES = {GeometryKind.point: "Point", GeometryKind.line: "MultiLineString",
                  GeometryKind.polygon: "MultiPolygon", GeometryKind.point_or_polygon: "Geometry"}


def schema_ident(name: str) -> str:
    """The quoted schema name, refusing anything but a plain lower-case identifier."""
    if not _SCHEMA_NAME.match(name):
        raise StoreError(f"schema {name!r}: use lower-case letters, digits and '_' (at most 63)")
    return f'"{name}"'


def q(ident: str) -> str:
    """Quote a layer table name that was validated against the catalogue's id pattern."""
    if not layer_id_is_valid(ident.removesuffix("_history")):
        raise ValueError(f"refusing to use {ident!r} as an SQL identifier")
    return f'"{ident}"'


@cache
def sql(name: str) -> str:
    return files("twin.store.postgis").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


#: Migrations from version N to N + 1, each run inside the opening transaction.
MIGRATIONS: dict[int, str] = {
    # 2 -> 3: layers and their history indexed in the change log's order (changeset, then component)
    2: """DO $$ DECLARE l text; BEGIN
  FOR l IN SELECT layer FROM {s}.twin_layers LOOP
    EXECUTE format('DROP INDEX IF EXISTS {s}.%I', l || '_changeset');
    EXECUTE format('CREATE INDEX %I ON {s}.%I (changeset, fid)', l || '_changeset', l);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON {s}.%I (changeset, fid)', l || '_history_changeset',
                   l || '_history');
    EXECUTE format('DROP INDEX IF EXISTS {s}.%I', l || '_history_changeset_to');
    EXECUTE format('CREATE INDEX %I ON {s}.%I (changeset_to, fid)', l || '_history_changeset_to', l || '_history');
  END LOOP;
END $$;
CREATE TABLE IF NOT EXISTS {s}.twin_reports (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  layer text COLLATE "C" NOT NULL, "key" text COLLATE "C" NOT NULL, status text, measured jsonb NOT NULL DEFAULT '{}',
  observed_at text COLLATE "C" NOT NULL, recorded_at text NOT NULL, source text NOT NULL, author text NOT NULL,
  changeset bigint NOT NULL, applied boolean NOT NULL);
CREATE INDEX IF NOT EXISTS twin_reports_key ON {s}.twin_reports ("key", observed_at);""",
    # 3 -> 4: the city's vital signs, alerts, work orders and their events (sql/derived.sql)
    3: sql("derived"),
}


def script(name: str, schema: str, spec: LayerSpec | None = None) -> str:
    """An SQL script with the schema (and a layer's identifiers) filled in."""
    text = sql(name).replace("{s}", schema_ident(schema))
    if spec is not None:
        q(spec.id)
        cols = "".join(f',\n  "{f.name}" {PG_TYPES[f.type]}' for f in spec.fields)
        text = text.replace("{t}", spec.id).replace("{geomtype}", GEOMETRY_TYPES[spec.geometry]).replace(
            "{columns}", cols)
    return text


def run(conn: psycopg.Connection, text: str) -> None:
    """Run a script of ``;``-separated statements (no statement of ours holds a ``;`` inside a string)."""
    for statement in _statements(text):
        conn.execute(statement)


def _statements(text: str) -> list[str]:
    body = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))
    out, buf, in_dollar = [], [], False
    for part in body.split(";"):
        buf.append(part)
        in_dollar ^= part.count("$$") % 2 == 1
        if not in_dollar:
            statement = ";".join(buf).strip()
            if statement:
                out.append(statement)
            buf = []
    return out


def create_store(conn: psycopg.Connection, schema: str, catalogue: Catalogue) -> None:
    """Lay out an empty store in ``schema`` (inside a transaction)."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema_ident(schema)}")
    run(conn, script("core", schema))
    run(conn, script("derived", schema))
    meta = f"INSERT INTO {schema_ident(schema)}.twin_meta VALUES (%s, %s)"
    conn.execute(meta, ("schema_version", str(SCHEMA_VERSION)))
    conn.execute(meta, ("store_id", uuid.uuid4().hex))
    for spec in catalogue.values():
        create_layer(conn, schema, spec)


def create_layer(conn: psycopg.Connection, schema: str, spec: LayerSpec) -> None:
    run(conn, script("layer", schema, spec) + "\n" + script("layer_indexes", schema, spec))
    conn.execute(f"INSERT INTO {schema_ident(schema)}.twin_layers (layer, spec) VALUES (%s, %s)",
                 (spec.id, spec.model_dump_json()))


def has_postgis(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone() is not None


def check_version(conn: psycopg.Connection, schema: str, where: str) -> int | None:
    """The store's schema version, ``None`` when ``schema`` holds no store; refuses foreign or newer schemas."""
    tables = {r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))}
    if not tables:
        return None
    if "twin_meta" not in tables:
        raise StoreError(f"{where}: schema {schema!r} holds tables that are not a twin store; "
                         "name another schema with ?schema=NAME")
    row = conn.execute(f"SELECT value FROM {schema_ident(schema)}.twin_meta "
                       "WHERE key = 'schema_version'").fetchone()
    version = int(row[0]) if row and str(row[0]).isdigit() else -1
    if version > SCHEMA_VERSION:
        raise StoreVersionError(f"{where}: store schema version {version} was written by a newer twin (this one "
                                f"reads up to {SCHEMA_VERSION}); upgrade twin, the database was left untouched")
    if version < SCHEMA_VERSION and any(v not in MIGRATIONS for v in range(version, SCHEMA_VERSION)):
        raise StoreVersionError(f"{where}: store schema version {version} is older than any this twin can migrate; "
                                "the database was left untouched")
    return version


def migrate(conn: psycopg.Connection, schema: str, version: int) -> None:
    for v in range(version, SCHEMA_VERSION):
        run(conn, MIGRATIONS[v].replace("{s}", schema_ident(schema)))
    conn.execute(f"UPDATE {schema_ident(schema)}.twin_meta SET value = %s "
                 "WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


def sync_layers(conn: psycopg.Connection, schema: str, catalogue: Catalogue) -> list[str]:
    """Tables for layers new to the catalogue and columns for new fields; a changed field type is refused."""
    s = schema_ident(schema)
    changed: list[str] = []
    stored = {r[0]: r[1] for r in conn.execute(f"SELECT layer, spec FROM {s}.twin_layers")}
    for spec in catalogue.values():
        if spec.id not in stored:
            create_layer(conn, schema, spec)
            changed.append(f"created layer {spec.id}")
            continue
        old_types = {f["name"]: f["type"] for f in _fields(stored[spec.id])}
        added = False
        for f in spec.fields:
            if f.name in old_types and old_types[f.name] != f.type.value:
                raise StoreError(f"layer {spec.id!r}: field {f.name!r} is stored as {old_types[f.name]} but the "
                                 f"catalogue now says {f.type.value}; add a new field instead of changing a type")
            if f.name not in old_types:
                for table in (spec.id, f"{spec.id}_history"):
                    conn.execute(f'ALTER TABLE {s}.{q(table)} ADD COLUMN "{f.name}" {PG_TYPES[f.type]}')
                changed.append(f"added field {spec.id}.{f.name}")
                added = True
        if added:
            conn.execute(f"UPDATE {s}.twin_layers SET spec = %s WHERE layer = %s",
                         (spec.model_dump_json(), spec.id))
    return changed


def _fields(spec_json: str) -> list[dict[str, str]]:
    return list(json.loads(spec_json).get("fields", []))
