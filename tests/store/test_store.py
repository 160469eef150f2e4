"""The store on either engine: schema checks, history, atomicity, versions, concurrency; and what only one engine
has (the GeoPackage file GDAL reads and edits, its migration from version 1, foreign files and schemas)."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from tests.conftest import hydrants
from tests.engines import execute, fresh, geopackage_only, is_pg, postgis_only, snapshot
from twin.access.policy import load_policy
from twin.access.principal import local
from twin.catalogue import load_catalogue
from twin.errors import FeatureNotFoundError, LayerNotFoundError, SchemaViolationError, StoreError, StoreVersionError
from twin.model.changes import Position
from twin.query.changes import ChangeReader
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import Store, open_store


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@geopackage_only
def test_store_is_a_geopackage_gdal_reads_with_its_spatial_index(store):
    store.upsert("hydrant", hydrants(200), author="t", source="t")
    info = pyogrio.read_info(store.path, layer="hydrant")
    assert info["features"] == 200 and info["crs"] == "EPSG:4326" and info["geometry_type"] == "Point"
    assert info["capabilities"]["fast_spatial_filter"]
    box = (121.42, 31.22, 121.45, 31.26)
    ours = store.features("hydrant", bbox=box)
    theirs = pyogrio.read_dataframe(store.path, layer="hydrant", bbox=box)
    assert sorted(ours.key) == sorted(theirs.key) and len(ours) > 0
    assert set(pyogrio.list_layers(store.path)[:, 0]) >= {"hydrant", "pipeline", "hydrant_history"}


@geopackage_only
def test_gdal_can_edit_the_file_and_twin_still_reads_it(store, tmp_path):
    store.upsert("hydrant", hydrants(10), author="t", source="t")
    store.close()
    # GDAL runs the GeoPackage R-tree triggers, proving they are well formed
    extra = hydrants(3, seed=9)
    extra["key"] = ["HY-wtw3zzzz-0", "HY-wtw3zzzz-1", "HY-wtw3zzzz-2"]
    for c, v in {"fp": 0, "version": 1, "changeset": 0, "valid_from": "2026-01-01T00:00:00.000000Z",
                 "status": "in_service", "updated_at": "2026-01-01T00:00:00.000Z"}.items():
        extra[c] = v
    pyogrio.write_dataframe(extra.rename_geometry("geom"), store.path, layer="hydrant", append=True)
    reopened = open_store(store.path, load_catalogue(DEFAULT_LAYERS_DIR))
    assert len(reopened.features("hydrant", bbox=(121.3, 31.1, 121.6, 31.4))) == 13
    reopened.close()


def test_original_crs_and_author_are_recorded(store):
    cs = store.upsert("hydrant", hydrants(5), author="王工", source="hydrants.shp", source_crs="EPSG:4549")
    got = store.changesets(limit=1)[0]
    assert got == cs and got.author == "王工" and got.source_crs == "EPSG:4549" and got.inserted == 5


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda f: f.assign(kind="sideways"), r"field 'kind': 'sideways' is not one of"),
        (lambda f: f.assign(kind=None), r"field 'kind': a value is required"),
        (lambda f: f.assign(outlet_diameter="big"), r"field 'outlet_diameter': 'big' is not a integer"),
        (lambda f: f.assign(pressure=1.5, outlet_diameter=100.5), r"'outlet_diameter': 100.5 is not a whole"),
        (lambda f: f.assign(status="exploded"), r"field 'status': 'exploded' is not one of"),
        (lambda f: f.assign(colour="red"), r"field 'colour': the layer has no field"),
        (lambda f: f.assign(road="路" * 2000), r"field 'road': value is 2000 characters long"),
        (lambda f: f.set_geometry(shapely.buffer(f.geometry.array, 0.001)), r"a Polygon cannot go into hydrant"),
        (lambda f: f.to_crs(4549), r"the store takes EPSG:4326"),
    ],
)
def test_write_breaking_the_schema_is_refused_and_changes_nothing(store, change, expected):
    store.upsert("hydrant", hydrants(5), author="t", source="t")
    before = snapshot(store.location)
    with pytest.raises(SchemaViolationError, match=expected):
        store.upsert("hydrant", change(hydrants(5, seed=1)), author="t", source="t")
    assert snapshot(store.location) == before


def test_invalid_and_empty_geometries_are_named_by_row(store):
    bow = shapely.Polygon([(121.4, 31.2), (121.41, 31.21), (121.41, 31.2), (121.4, 31.21), (121.4, 31.2)])
    frame = gpd.GeoDataFrame({"permit_no": ["A", "B", "C"]},
                             geometry=[shapely.box(121.4, 31.2, 121.41, 31.21), bow, shapely.Polygon()],
                             crs="EPSG:4326")
    with pytest.raises(SchemaViolationError) as err:
        store.upsert("construction_site", frame, author="t", source="t")
    assert err.value.problems[0][:2] == (1, "geometry") and "Self-intersection" in err.value.problems[0][2]
    assert err.value.problems[1] == (2, "geometry", "geometry is empty")


def test_unknown_layer_is_refused(store):
    with pytest.raises(LayerNotFoundError):
        store.upsert("volcano", hydrants(1), author="t", source="t")


def test_lines_and_polygons_are_stored_as_multi_parts(store):
    line = shapely.LineString([(121.4, 31.2), (121.41, 31.21)])
    frame = gpd.GeoDataFrame({"kind": ["gas"]}, geometry=[line], crs="EPSG:4326")
    store.upsert("pipeline", frame, author="t", source="t")
    assert store.features("pipeline").geometry.iloc[0].geom_type == "MultiLineString"


def test_history_reads_back_every_past_state_exactly(store):
    store.upsert("hydrant", hydrants(50), author="t", source="import 1")
    key = store.features("hydrant").key.iloc[7]
    times, states = [], []

    def remember():
        times.append(store.changesets(limit=1)[0].time)
        states.append(store.features("hydrant").drop(columns=["fid"]).sort_values("key").reset_index(drop=True))

    remember()
    store.edit(key, author="t", properties={"status": "faulty", "pressure": 0.12})
    remember()
    store.edit(key, author="t", geometry=shapely.Point(121.45, 31.25))
    remember()
    changed = hydrants(50)
    changed.loc[:9, "road"] = "改名路"
    store.upsert("hydrant", changed, author="t", source="import 2")
    remember()
    store.delete("hydrant", [key], author="t")
    remember()
    for t, expected in zip(times, states, strict=True):
        past = store.features("hydrant", as_of=t).drop(columns=["fid"]).sort_values("key").reset_index(drop=True)
        assert past.equals(expected)
    versions = store.history(key)
    assert versions.version.tolist() == [1, 2, 3] and versions.op.tolist() == ["update", "update", "delete"]
    assert versions.status.tolist() == ["in_service", "faulty", "faulty"]
    with pytest.raises(FeatureNotFoundError):
        store.get(key)
    assert store.get(key, as_of=times[1]).status.iloc[0] == "faulty"
    assert store.features("hydrant", as_of="2000-01-01T00:00:00Z").empty


def test_edit_keeps_the_key_and_an_unknown_key_is_not_found(store):
    store.upsert("hydrant", hydrants(3), author="t", source="t")
    key = store.features("hydrant").key.iloc[0]
    store.edit(key, author="t", geometry=shapely.Point(121.3, 31.1))
    assert store.get(key).geometry.iloc[0].equals(shapely.Point(121.3, 31.1))
    with pytest.raises(FeatureNotFoundError):
        store.edit("HY-wtw3sjq6-v", author="t", properties={"status": "faulty"})
    with pytest.raises(FeatureNotFoundError):
        store.delete("hydrant", [key, "HY-wtw3sjq6-v"], author="t")
    assert store.count("hydrant") == 3


def test_the_spatial_index_follows_a_move_and_an_attribute_edit_keeps_it(store):
    store.upsert("hydrant", hydrants(3), author="t", source="t")
    moved, kept = sorted(store.features("hydrant").key)[:2]
    here = store.get(kept).geometry.iloc[0]
    store.edit(moved, author="t", geometry=shapely.Point(121.3, 31.1))
    store.edit(kept, author="t", properties={"status": "faulty", "road": "新路"})
    assert list(store.features("hydrant", bbox=(121.29, 31.09, 121.31, 31.11)).key) == [moved]
    assert kept in set(store.features("hydrant", bbox=(here.x - 1e-4, here.y - 1e-4, here.x + 1e-4, here.y + 1e-4)).key)
    store.edit(moved, author="t", properties={"status": "retired"}, geometry=shapely.Point(121.31, 31.12))
    assert store.features("hydrant", bbox=(121.29, 31.09, 121.305, 31.11)).empty
    assert list(store.features("hydrant", bbox=(121.305, 31.115, 121.315, 31.125)).key) == [moved]


def _last_step_of_a_write(store: Store) -> tuple[object, str]:
    """What the store's engine does last in a write, after rows, history and spatial index entries were written."""
    if store.engine == "postgis":
        from twin.store.postgis.writing import PgLayerWriter

        return PgLayerWriter, "_grow_extent"
    import twin.store.gpkg.writing as writing

    return writing, "_grow_extent"


def test_write_failing_halfway_leaves_no_trace(store, monkeypatch):
    store.upsert("hydrant", hydrants(20), author="t", source="t")
    before = snapshot(store.location)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(*_last_step_of_a_write(store), boom)
    changed = hydrants(20)
    changed["road"] = "新路"
    with pytest.raises(OSError, match="disk full"), store.writer("hydrant", author="t", source="t") as w:
        w.add(hydrants(30, seed=5))
    with pytest.raises(OSError):
        store.upsert("hydrant", changed, author="t", source="t")
    assert snapshot(store.location) == before


def test_failure_in_a_later_chunk_rolls_back_earlier_chunks(store):
    before = snapshot(store.location)
    with pytest.raises(SchemaViolationError), store.writer("hydrant", author="t", source="t") as w:
        w.add(hydrants(100, seed=1))
        w.add(hydrants(100, seed=2).assign(kind="bad"))
    assert snapshot(store.location) == before and store.count("hydrant") == 0


CRASH = """
import sys, os
from twin.catalogue import load_catalogue
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import open_store
from tests.conftest import hydrants
store = open_store(sys.argv[1], load_catalogue(DEFAULT_LAYERS_DIR))
if store.engine == "postgis":
    from twin.store.postgis.writing import PgLayerWriter as where
    name = "_copy"  # rows are streamed in with COPY
else:
    import twin.store.gpkg.writing as where
    name = "_index_rows"  # rows are in, their R-tree entries being written
real = getattr(where, name)
def crash(*a, **k):
    real(*a, **k)
    os._exit(3)  # the process dies mid-transaction, after rows and index entries were written
setattr(where, name, crash)
store.upsert("hydrant", hydrants(500, seed=4), author="t", source="t")
"""


def test_a_process_killed_mid_write_leaves_the_store_as_it_was(store):
    store.upsert("hydrant", hydrants(20), author="t", source="t")
    before = snapshot(store.location)
    proc = subprocess.run([sys.executable, "-c", CRASH, store.location], cwd=Path(__file__).parents[2])
    assert proc.returncode == 3
    assert snapshot(store.location) == before
    store.upsert("hydrant", hydrants(500, seed=4), author="t", source="t")  # the same import, again, goes in whole
    assert store.count("hydrant") == 520 and store.changesets(limit=1)[0].inserted == 500


def test_readers_keep_working_while_a_writer_imports(store):
    store.upsert("hydrant", hydrants(100), author="t", source="t")
    seen: list[int] = []
    inside = threading.Event()
    done = threading.Event()

    def read_while_writing():
        inside.wait(10)
        t0 = time.perf_counter()
        seen.append(len(store.features("hydrant")))
        seen.append(int((time.perf_counter() - t0) * 1000))
        done.set()

    reader = threading.Thread(target=read_while_writing)
    reader.start()
    with store.writer("hydrant", author="t", source="t") as w:
        w.add(hydrants(1000, seed=3))
        inside.set()
        assert done.wait(10)  # the reader finished while the write transaction was still open
    reader.join()
    assert seen[0] == 100 and seen[1] < 2000
    assert len(store.features("hydrant")) == 1100


def test_dry_run_plans_exactly_what_a_write_does_and_writes_nothing(store):
    store.upsert("hydrant", hydrants(50), author="t", source="t")
    before = snapshot(store.location)
    batch = pd.concat([hydrants(50), hydrants(30, seed=7)], ignore_index=True)  # 50 known, 30 new
    batch.loc[:4, "road"] = "改名路"
    with store.writer("hydrant", author="t", source="t", dry_run=True) as w:
        plans = [w.add(batch.iloc[:40]), w.add(batch.iloc[40:])]
    assert snapshot(store.location) == before and w.changeset is None
    assert w.counts == {"insert": 30, "update": 5, "unchanged": 45, "delete": 0}
    with store.writer("hydrant", author="t", source="t") as real:
        done = [real.add(batch.iloc[:40]), real.add(batch.iloc[40:])]
    for planned, written in zip(plans, done, strict=True):
        assert planned.frame.key.tolist() == written.frame.key.tolist()
        assert planned.action.tolist() == written.action.tolist()


def test_same_spot_components_across_chunks_stay_distinct(store):
    batch = hydrants(4)
    batch = batch.set_geometry([shapely.Point(121.47, 31.23)] * 4)
    with store.writer("hydrant", author="t", source="t") as w:
        w.add(batch.iloc[:2])
        w.add(batch.iloc[2:])
    assert sorted(store.features("hydrant").key) == [f"HY-wtw3sjq6-{i}" for i in range(4)] or \
        store.features("hydrant").key.is_unique
    store.upsert("hydrant", batch, author="t", source="t")
    assert store.count("hydrant") == 4


def test_newer_schema_version_is_refused_and_the_store_left_untouched(store, catalogue):
    store.upsert("hydrant", hydrants(5), author="t", source="t")
    store.close()
    execute(store.location, "UPDATE twin_meta SET value = '99' WHERE key = 'schema_version'")
    before = snapshot(store.location)
    digest = None if is_pg(store.location) else file_hash(Path(store.location))
    with pytest.raises(StoreVersionError, match="version 99 was written by a newer twin"):
        open_store(store.location, catalogue)
    assert snapshot(store.location) == before
    if digest is not None:  # not a byte of the file changed either
        assert file_hash(Path(store.location)) == digest


def test_unmigratable_old_version_is_refused_and_the_store_left_untouched(store, catalogue):
    store.close()
    execute(store.location, "UPDATE twin_meta SET value = '0' WHERE key = 'schema_version'")
    before = snapshot(store.location)
    with pytest.raises(StoreVersionError, match="older than any this twin can migrate"):
        open_store(store.location, catalogue)
    assert snapshot(store.location) == before


_TILE_TABLES = ("twin_tiles_state", "twin_tiles_cells", "twin_tiles_shapes")


@geopackage_only  # PostGIS stores began at version 2
@pytest.mark.parametrize("tiles", ["none", "old layout"])
def test_a_version_1_store_gains_the_tile_aggregate_tables_and_keeps_its_components(store, catalogue, tiles):
    """Version 1 kept no aggregate tables (tiles made them on first use, perhaps in an older layout, which is
    dropped: aggregates are rebuilt from the layers); opening it migrates it to version 2 in place."""
    store.upsert("hydrant", hydrants(20), author="t", source="t")
    store.close()
    conn = sqlite3.connect(store.path)
    for table in _TILE_TABLES:
        conn.execute(f"DROP TABLE {table}")
    if tiles == "old layout":
        conn.execute("CREATE TABLE twin_tiles_cells (layer TEXT, level INTEGER, cx INTEGER, cy INTEGER, n INTEGER)")
        conn.execute("INSERT INTO twin_tiles_cells VALUES ('hydrant', 3, 1, 1, 99)")
    conn.execute("UPDATE twin_meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    reopened = open_store(str(store.path), catalogue, create=False)
    try:
        assert reopened.count("hydrant") == 20
        with reopened.aggregate_writer("hydrant") as w:
            assert w is not None and w.state() is None
            w.set_state(reopened.last_changeset("hydrant"), "signature")
        with reopened.read() as snap:
            assert snap.aggregate_state("hydrant") == (reopened.last_changeset("hydrant"), "signature")
            assert snap.cells("hydrant", 3, (0, 10), (0, 10)) == []
    finally:
        reopened.close()
    with closing(sqlite3.connect(store.path)) as conn:
        assert conn.execute("SELECT value FROM twin_meta WHERE key = 'schema_version'").fetchone() == ("3",)
        assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} >= set(_TILE_TABLES)


def test_a_version_2_store_gains_the_change_log_indexes_and_keeps_its_history(store, catalogue):
    """Version 2 indexed history by the changeset that ended a version only; opening it migrates it to version 3
    in place (history indexed in the change log's order), every version kept."""
    store.upsert("hydrant", hydrants(10), author="t", source="t")
    key = sorted(store.features("hydrant").key)[0]
    store.edit(key, author="t", properties={"road": "新路"})
    store.close()
    where = store.location
    execute(where, "DROP INDEX hydrant_history_changeset", "DROP INDEX hydrant_history_changeset_to",
            "CREATE INDEX hydrant_history_changeset_to ON hydrant_history (changeset_to)",
            "UPDATE twin_meta SET value = '2' WHERE key = 'schema_version'")
    if not is_pg(where):  # version 2 had no R-tree of the history either
        execute(where, "DROP TRIGGER rtree_hydrant_history_geom_insert", "DROP TABLE rtree_hydrant_history_geom")
    index = ("SELECT count(*) FROM pg_indexes WHERE indexname = 'hydrant_history_changeset' "
             "AND schemaname = current_schema()" if is_pg(where) else
             "SELECT count(*) FROM sqlite_master WHERE name = 'hydrant_history_changeset'")
    assert execute(where, index) == [(0,)]
    reopened = open_store(where, catalogue, create=False)
    try:
        changes = ChangeReader(reopened).page(local(load_policy(None, catalogue)), Position(0)).changes
        assert [c["op"] for c in changes].count("update") == 1 and len(changes) == 11
    finally:
        reopened.close()
    assert execute(where, index) == [(1,)]
    # a PostGIS store goes on to version 4, which adds the tables of what twin derives (vital signs, alerts, orders)
    version = "4" if is_pg(where) else "3"
    assert execute(where, "SELECT value FROM twin_meta WHERE key = 'schema_version'") == [(version,)]
    if is_pg(where):
        assert execute(where, "SELECT count(*) FROM twin_vitals") == [(0,)]
        assert execute(where, "SELECT count(*) FROM twin_watch_events") == [(0,)]
    if not is_pg(where):  # the history's R-tree was built from what was there
        assert execute(where, "SELECT count(*) FROM rtree_hydrant_history_geom") == [(1,)]


@geopackage_only
def test_foreign_files_are_refused_clearly(tmp_path, catalogue):
    garbage = tmp_path / "garbage.gpkg"
    garbage.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="not a GeoPackage store"):
        open_store(garbage, catalogue)
    other = tmp_path / "qgis.gpkg"
    pyogrio.write_dataframe(hydrants(3), other, layer="points")
    with pytest.raises(StoreError, match="not a twin store"):
        open_store(other, catalogue)
    with pytest.raises(StoreError, match="no store here"):
        open_store(tmp_path / "missing.gpkg", catalogue, create=False)


@postgis_only
def test_foreign_schemas_are_refused_clearly_and_left_untouched(tmp_path, target, catalogue):
    execute(target, "CREATE TABLE points (id integer PRIMARY KEY, name text)", "INSERT INTO points VALUES (1, 'a')")
    before = snapshot(target)
    with pytest.raises(StoreError, match="holds tables that are not a twin store"):
        open_store(target, catalogue)
    assert snapshot(target) == before
    with fresh(tmp_path, "missing") as missing, pytest.raises(StoreError, match="no store here"):
        open_store(missing, catalogue, create=False)


def test_catalogue_additions_migrate_the_store(store, tmp_path):
    store.upsert("hydrant", hydrants(3), author="t", source="t")
    store.close()
    layers = tmp_path / "layers"
    layers.mkdir()
    for f in DEFAULT_LAYERS_DIR.glob("*.yaml"):
        (layers / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    text = (layers / "hydrant.yaml").read_text(encoding="utf-8")
    (layers / "hydrant.yaml").write_text(text + "  - {name: valve_count, type: integer}\n", encoding="utf-8")
    (layers / "well.yaml").write_text(
        "id: well\ncode: WE\ntitle_zh: 水井\ntitle_en: Well\ngroup: infrastructure\ngeometry: point\n",
        encoding="utf-8")
    reopened = open_store(store.location, load_catalogue(layers))
    assert reopened.features("hydrant").valve_count.isna().all() and reopened.count("well") == 0
    reopened.close()
    (layers / "hydrant.yaml").write_text(text + "  - {name: valve_count, type: string}\n", encoding="utf-8")
    with pytest.raises(StoreError, match=r"valve_count.*stored as integer"):
        open_store(store.location, load_catalogue(layers))


def test_a_deleted_components_key_is_never_given_to_another(store):
    spot = gpd.GeoDataFrame({"kind": ["above_ground"]}, geometry=[shapely.Point(121.47, 31.23)], crs="EPSG:4326")
    store.upsert("hydrant", spot, author="t", source="t")
    old = store.features("hydrant").key.iloc[0]
    store.delete("hydrant", [old], author="t")
    store.upsert("hydrant", spot.assign(kind="underground"), author="t", source="t")
    new = store.features("hydrant").key.iloc[0]
    assert new != old and new[:-1] == old[:-1]
    assert store.history(old).op.tolist() == ["delete"]


def test_a_failing_subscriber_does_not_make_a_committed_write_look_failed(store, caplog):
    seen = []

    def broken(cs):
        raise RuntimeError("cache exploded")

    store.subscribe(broken)
    store.subscribe(seen.append)
    cs = store.upsert("hydrant", hydrants(3), author="t", source="t")
    assert seen == [cs] and store.count("hydrant") == 3
    assert "cache exploded" in caplog.text
    store.unsubscribe(broken)
    store.unsubscribe(seen.append)
    store.upsert("hydrant", hydrants(2, seed=4), author="t", source="t")
    assert seen == [cs]


def test_a_store_following_the_changes_closes_at_once(store):
    store.follow()  # as a service does: the poller (GeoPackage) or LISTEN (PostGIS) in a thread of its own
    started = time.monotonic()
    store.close()  # a server stopping does not wait out the follower's quiet time (5 s on PostGIS)
    assert time.monotonic() - started < 1


def test_each_store_has_its_own_id(tmp_path, catalogue, store):
    with fresh(tmp_path, "other") as target, open_store(target, catalogue) as other:
        assert len(store.store_id) == 32 and store.store_id != other.store_id
