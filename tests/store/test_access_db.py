"""A GeoPackage store's access database opened for the first time by several threads at once (the gate, the vital
signs' follower, the rules): every write gets through; none meets "database is locked"."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.engines import geopackage_only
from twin.store.gpkg.access import SqliteAccessDB


@geopackage_only
def test_a_new_access_database_takes_writes_from_many_threads_at_once(tmp_path: Path) -> None:
    for trial in range(40):
        path = tmp_path / f"city{trial}.access.db"
        failures: list[str] = []

        def write(i: int, path: Path = path, failures: list[str] = failures) -> None:
            db = SqliteAccessDB(path)  # each its own instance, as the gate and the followers hold
            try:
                with db.write() as w:
                    w.execute("INSERT INTO users (name, role, area, created) VALUES (?, 'admin', NULL, 'now')",
                              [f"user{i}"])
            except Exception as exc:  # any failure is the finding
                failures.append(str(exc))
            finally:
                db.close()

        threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        assert SqliteAccessDB(path).read("SELECT count(*) FROM {users}") == [(6,)]
