"""``twin store copy``: a whole twin moved into a new store of this run's engine (and back), verified, resumable."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import hydrants
from tests.engines import drop, new_target
from twin.catalogue import Catalogue
from twin.cli import app
from twin.errors import StoreError
from twin.store import Store, open_store
from twin.store.copy import copy_store, verify


@pytest.fixture
def source(tmp_path: Path, catalogue: Catalogue) -> Store:
    """A GeoPackage twin with history (updates and a delete), a user and aggregates."""
    st = open_store(tmp_path / "source.gpkg", catalogue)
    st.upsert("hydrant", hydrants(400), author="t", source="a")
    changed = hydrants(400)
    changed.loc[:40, "outlet_diameter"] = 65
    st.upsert("hydrant", changed, author="t", source="b")
    key = st.features("hydrant", limit=1)["key"].iloc[0]
    st.delete("hydrant", [key], author="t")
    from twin.access import Gate

    gate = Gate(st)
    gate.add_user("copier", "admin")
    gate.close()
    yield st
    st.close()


def test_a_copy_holds_every_part_of_the_twin_and_verifies(tmp_path: Path, source: Store) -> None:
    target = new_target(tmp_path, "copy")
    try:
        with open_store(target, source.catalogue) as copy:
            checks = copy_store(source, copy, chunk=100)
            assert all(c.same for c in checks)
            rows = {c.part: c.rows for c in checks}
            superseded = sum(c.updated + c.deleted for c in source.changesets(layer="hydrant"))
            assert rows["rows:hydrant"] == 399 and rows["history:hydrant"] == superseded > 1 and rows["users"] == 1
            assert copy.identity == source.identity
            key = source.features("hydrant", limit=1)["key"].iloc[0]
            assert copy.history(key).equals(source.history(key))
            assert [c.id for c in copy.changesets()] == [c.id for c in source.changesets()]
            # the copy takes writes where the source left off: the next fid and changeset follow on
            copy.upsert("hydrant", hydrants(5, seed=9), author="t", source="c")
            assert copy.features("hydrant")["fid"].max() == 405 and copy.changesets(limit=1)[0].id == 4
    finally:
        drop(target)


def test_an_interrupted_copy_resumes_and_sends_nothing_twice(tmp_path: Path, source: Store,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    target = new_target(tmp_path, "copy")
    try:
        with open_store(target, source.catalogue) as copy:
            bulk = type(copy.bulk())
            real, calls = bulk.load, []

            def failing(self, part, rows, progress):  # type: ignore[no-untyped-def]
                calls.append(part.name)
                if part.name == "rows:hydrant" and calls.count("rows:hydrant") == 3:
                    raise RuntimeError("the connection dropped")
                return real(self, part, rows, progress)

            monkeypatch.setattr(bulk, "load", failing)
            with pytest.raises(RuntimeError, match="dropped"):
                copy_store(source, copy, chunk=100)
            monkeypatch.setattr(bulk, "load", real)
            checks = copy_store(source, copy, chunk=100)
            assert all(c.same for c in checks) and copy.count("hydrant") == 399
    finally:
        drop(target)


def test_a_copy_into_a_store_that_holds_anything_is_refused(tmp_path: Path, source: Store,
                                                            catalogue: Catalogue) -> None:
    target = new_target(tmp_path, "busy")
    try:
        with open_store(target, catalogue) as busy:
            busy.upsert("hydrant", hydrants(3, seed=4), author="t", source="t")
            with pytest.raises(StoreError, match="is not empty"):
                copy_store(source, busy)
    finally:
        drop(target)


def test_verification_names_a_part_that_differs(tmp_path: Path, source: Store) -> None:
    target = new_target(tmp_path, "copy")
    try:
        with open_store(target, source.catalogue) as copy:
            copy_store(source, copy)
            copy.edit(copy.features("hydrant", limit=1)["key"].iloc[0], author="x", properties={"status": "faulty"})
            bad = {c.part for c in verify(source.bulk(), copy.bulk()) if not c.same}
            assert {"changesets", "rows:hydrant", "history:hydrant"} <= bad
    finally:
        drop(target)


def test_the_command_copies_there_and_back(tmp_path: Path, source: Store) -> None:
    source.close()
    there, back = new_target(tmp_path, "there"), str(tmp_path / "back.gpkg")
    try:
        runner = CliRunner()
        first = runner.invoke(app, ["store", "copy", str(tmp_path / "source.gpkg"), there])
        assert first.exit_code == 0 and "identical" in first.output, first.output
        second = runner.invoke(app, ["store", "copy", there, back])
        assert second.exit_code == 0, second.output
        same = runner.invoke(app, ["store", "verify", str(tmp_path / "source.gpkg"), back])
        assert same.exit_code == 0 and "identical" in same.output
        missing = runner.invoke(app, ["store", "copy", str(tmp_path / "nothing.gpkg"), str(tmp_path / "x.gpkg")])
        assert missing.exit_code == 1 and "no store here" in missing.output and not (tmp_path / "x.gpkg").exists()
    finally:
        drop(there)
