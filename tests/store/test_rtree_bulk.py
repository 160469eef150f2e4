"""The packed R-tree loader writes exactly what SQLite's own inserts would hold."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.conftest import hydrants
from tests.engines import geopackage_only
from twin.store.gpkg.rtree_bulk import bulk_load, round_down, round_up


def rtree(conn, name):
    conn.execute(f'CREATE VIRTUAL TABLE "rtree_{name}_geom" USING rtree(id, minx, maxx, miny, maxy)')


coords = arrays(np.float64, st.integers(1, 50), elements=st.floats(-1e6, 1e6, allow_nan=False))


@given(coords)
def test_rounding_matches_sqlite(values):
    conn = sqlite3.connect(":memory:")
    rtree(conn, "r")
    conn.executemany('INSERT INTO "rtree_r_geom" VALUES (?, ?, ?, ?, ?)',
                     [(i, v, v, v, v) for i, v in enumerate(values.tolist())])
    stored = np.array(conn.execute('SELECT minx, maxx FROM "rtree_r_geom" ORDER BY id').fetchall())
    assert np.array_equal(stored[:, 0], round_down(values).astype(np.float64))
    assert np.array_equal(stored[:, 1], round_up(values).astype(np.float64))


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 3000), st.integers(0, 2**32 - 1))
def test_bulk_load_equals_incremental_inserts_and_passes_rtreecheck(n, seed):
    rng = np.random.default_rng(seed)
    x, y, w = 121 + rng.random(n), 31 + rng.random(n), rng.random(n) * 0.01
    bounds = np.column_stack([x, y, x + w, y + w])
    conn = sqlite3.connect(":memory:")
    rtree(conn, "bulk")
    rtree(conn, "slow")
    fids = rng.permutation(n) + 1
    bulk_load(conn, "bulk", fids, bounds)
    conn.executemany('INSERT INTO "rtree_slow_geom" VALUES (?, ?, ?, ?, ?)',
                     zip(fids.tolist(), x.tolist(), (x + w).tolist(), y.tolist(), (y + w).tolist(), strict=True))
    assert conn.execute("SELECT rtreecheck('rtree_bulk_geom')").fetchone()[0] == "ok"
    rows = 'SELECT * FROM "rtree_{}_geom" ORDER BY id'
    assert conn.execute(rows.format("bulk")).fetchall() == conn.execute(rows.format("slow")).fetchall()
    q = "SELECT id FROM \"rtree_{}_geom\" WHERE minx <= 121.5 AND maxx >= 121.4 AND miny <= 31.5 AND maxy >= 31.4"
    assert sorted(conn.execute(q.format("bulk")).fetchall()) == sorted(conn.execute(q.format("slow")).fetchall())
    conn.execute('DELETE FROM "rtree_bulk_geom" WHERE id = ?', (int(fids[0]),))  # still editable afterwards
    conn.execute('INSERT INTO "rtree_bulk_geom" VALUES (?, 1, 2, 3, 4)', (n + 10,))
    assert conn.execute("SELECT rtreecheck('rtree_bulk_geom')").fetchone()[0] == "ok"


def test_bulk_load_refuses_a_non_empty_index():
    conn = sqlite3.connect(":memory:")
    rtree(conn, "r")
    conn.execute('INSERT INTO "rtree_r_geom" VALUES (1, 0, 1, 0, 1)')
    with pytest.raises(ValueError, match="not empty"):
        bulk_load(conn, "r", np.array([2]), np.array([[0.0, 0.0, 1.0, 1.0]]))


@geopackage_only
def test_first_import_builds_a_valid_index_and_later_writes_keep_it_valid(store):
    with store.writer("hydrant", author="t", source="t") as w:
        w.add(hydrants(3000, seed=1))
        w.add(hydrants(2000, seed=2))
    conn = sqlite3.connect(store.path)
    assert conn.execute("SELECT rtreecheck('rtree_hydrant_geom')").fetchone()[0] == "ok"
    assert conn.execute('SELECT count(*) FROM "rtree_hydrant_geom"').fetchone()[0] == 5000
    store.upsert("hydrant", hydrants(500, seed=3), author="t", source="t")  # incremental now
    store.delete("hydrant", store.features("hydrant").key[:100].tolist(), author="t")
    assert conn.execute("SELECT rtreecheck('rtree_hydrant_geom')").fetchone()[0] == "ok"
    assert conn.execute('SELECT count(*) FROM "rtree_hydrant_geom"').fetchone()[0] == 5400
