"""The change feed, property-tested on the run's engine: replaying it from the start, in pages of any size,
rebuilds the layer exactly; a user with an area rebuilds exactly their area, and never sees anything outside it;
personal fields come masked as the user's role requires; a cursor resumes without a gap or a duplicate."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.conftest import hydrants
from tests.tiles.conftest import compounds
from twin.access.policy import load_policy
from twin.access.principal import Principal, local
from twin.catalogue import Catalogue
from twin.cli import app
from twin.errors import CursorGoneError, InvalidQueryError
from twin.model.area import Area
from twin.model.changes import Position
from twin.query import changes
from twin.query.changes import ChangeReader, diff
from twin.query.versions import as_of_stamp
from twin.store import Store

WEST = shapely.box(121.40, 31.20, 121.45, 31.30)  # the western half of where the test hydrants lie


def _mirror(reader: ChangeReader, who: Principal, limit: int, since: Position = Position(0),
            into: dict[str, dict] | None = None) -> tuple[dict[str, dict], list[str]]:
    """What a client following the feed from ``since`` holds at the end, and the event ids it saw."""
    held = {} if into is None else into
    seen: list[str] = []
    while True:
        page = reader.page(who, since, limit)
        for c in page.changes:
            seen.append(str(c["id"]))
            if c["op"] in ("create", "update"):
                held[str(c["key"])] = c["feature"]  # type: ignore[assignment]
            else:
                held.pop(str(c["key"]), None)
        assert page.next >= since
        since = page.next
        if page.caught_up:
            return held, seen


def _state(store: Store, layer: str, area: shapely.Geometry | None = None) -> dict[str, tuple]:
    frame = store.features(layer)
    if area is not None:
        frame = frame[frame.intersects(area)]
    return {k: (road, round(g.x, 9), round(g.y, 9)) for k, road, g in zip(frame.key, frame.road, frame.geometry,
                                                                          strict=True)}


def _as_state(held: dict[str, dict]) -> dict[str, tuple]:
    return {k: (f["properties"]["road"], round(f["geometry"]["coordinates"][0], 9),  # type: ignore[index]
                round(f["geometry"]["coordinates"][1], 9)) for k, f in held.items()}  # type: ignore[index]


@pytest.fixture(scope="module")
def admin(catalogue: Catalogue) -> Principal:
    return local(load_policy(None, catalogue))



ops = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(1, 6), st.integers(0, 10_000)),
    st.tuples(st.just("edit"), st.integers(0, 10_000), st.text("路街巷", min_size=1, max_size=3)),
    st.tuples(st.just("move"), st.integers(0, 10_000), st.floats(-0.06, 0.06)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.just(0)),
), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=ops, limit=st.integers(1, 7))
def test_replaying_the_feed_rebuilds_the_layer_and_each_area_exactly(fresh_store, admin: Principal, steps, limit
                                                                     ) -> None:
    for store in fresh_store():
        for op, n, arg in steps:
            keys = sorted(store.features("hydrant").key)
            if op == "add":
                store.upsert("hydrant", hydrants(n, seed=arg), author="t", source="t")
            elif keys and op == "edit":
                store.edit(keys[n % len(keys)], author="t", properties={"road": arg})
            elif keys and op == "move":
                g = store.get(keys[n % len(keys)]).geometry.iloc[0]
                store.edit(keys[n % len(keys)], author="t", geometry=shapely.Point(g.x + arg, g.y))
            elif keys and op == "delete":
                store.delete("hydrant", [keys[n % len(keys)]], author="t")
        reader = ChangeReader(store)
        held, seen = _mirror(reader, admin, limit)
        assert _as_state(held) == _state(store, "hydrant")
        assert len(seen) == len(set(seen))  # no event twice across pages
        officer = replace(admin, area=Area("west", "committee", "西", WEST))
        held, _ = _mirror(reader, officer, limit)
        assert _as_state(held) == _state(store, "hydrant", WEST)
        for f in held.values():
            assert WEST.intersects(shapely.geometry.shape(f["geometry"]))


def test_a_resumed_cursor_misses_nothing_and_repeats_nothing(store: Store, admin: Principal) -> None:
    reader = ChangeReader(store)
    store.upsert("hydrant", hydrants(30, seed=1), author="t", source="t")
    first = reader.page(admin, Position(0), 10)
    assert len(first.changes) == 10 and not first.caught_up
    keys = sorted(store.features("hydrant").key)
    store.edit(keys[0], author="t", properties={"road": "新路"})
    store.delete("hydrant", [keys[1]], author="t")
    held, seen = _mirror(reader, admin, 7, first.next)
    assert len(seen) == 20 + 2 and len(set(seen)) == len(seen)
    assert held[keys[0]]["properties"]["road"] == "新路" and keys[1] not in held
    assert [c for c in seen if c in {str(c2["id"]) for c2 in first.changes}] == []
    end = reader.end()
    assert reader.page(admin, end).changes == [] and reader.page(admin, end).caught_up


def test_personal_fields_come_masked_as_the_role_requires(store: Store, admin: Principal,
                                                          catalogue: Catalogue) -> None:
    store.upsert("residential_compound", compounds(5, seed=3), author="t", source="t")
    stored = set(store.features("residential_compound").property_manager)
    planner = replace(admin, role=load_policy(None, catalogue).role("planner"))
    reader = ChangeReader(store)
    seen_admin = {c["feature"]["properties"].get("property_manager")  # type: ignore[index]
                  for c in reader.page(admin, Position(0)).changes}
    seen_planner = {c["feature"]["properties"].get("property_manager")  # type: ignore[index]
                    for c in reader.page(planner, Position(0)).changes}
    assert seen_admin == stored
    assert not seen_planner & stored


def test_bad_and_foreign_cursors_are_refused(store: Store, admin: Principal) -> None:
    reader = ChangeReader(store)
    store.upsert("hydrant", hydrants(3, seed=1), author="t", source="t")
    with pytest.raises(CursorGoneError, match="read the layers again"):
        reader.page(admin, Position(reader.end().changeset + 5))
    for text in ("", "x", "1.2.3", "-1", "1e5"):
        with pytest.raises(InvalidQueryError):
            Position.parse(text)
    with pytest.raises(InvalidQueryError):
        reader.page(admin, Position(0), 0)


def test_a_component_moved_out_of_the_area_leaves_it_and_one_moved_in_arrives(store: Store, admin: Principal
                                                                              ) -> None:
    store.upsert("hydrant", hydrants(20, seed=4), author="t", source="t")
    frame = store.features("hydrant")
    inside = frame[frame.intersects(WEST)].iloc[0]
    outside = frame[~frame.intersects(WEST)].iloc[0]
    officer = replace(admin, area=Area("west", "committee", "西", WEST))
    reader = ChangeReader(store)
    start = reader.end()
    store.edit(inside.key, author="t", geometry=shapely.Point(121.47, inside.geometry.y))
    store.edit(outside.key, author="t", geometry=shapely.Point(121.42, outside.geometry.y))
    changes = reader.page(officer, start).changes
    assert [(c["key"], c["op"]) for c in changes] == [(inside.key, "leave"), (outside.key, "update")]
    assert "feature" not in changes[0] and changes[1]["feature"]["geometry"]["coordinates"][0] == 121.42
    held, _ = _mirror(reader, officer, 3)
    assert _as_state(held) == _state(store, "hydrant", WEST)


def _now() -> str:
    time.sleep(0.002)
    stamp = as_of_stamp(datetime.now(UTC).isoformat())
    time.sleep(0.002)
    return stamp


def test_a_diff_folds_the_log_between_two_instants_per_component(store: Store, admin: Principal, monkeypatch
                                                                   ) -> None:
    store.upsert("hydrant", hydrants(6, seed=1), author="t", source="t")
    old = sorted(store.features("hydrant").key)
    start = _now()
    store.upsert("hydrant", hydrants(3, seed=2), author="t", source="t")
    added = sorted(set(store.features("hydrant").key) - set(old))
    store.edit(old[0], author="t", properties={"road": "改路"})
    store.edit(old[0], author="t", properties={"road": "再改路"})
    store.delete("hydrant", [old[1]], author="t")
    store.delete("hydrant", [added[0]], author="t")  # created and deleted in between: no difference
    end = _now()
    store.edit(old[2], author="t", properties={"road": "后来"})  # after the end: not in the diff
    found = diff(ChangeReader(store), admin, start, end)
    got = {(e["key"], e["change"]) for e in found.entries}
    assert got == {*((k, "added") for k in added[1:]), (old[0], "changed"), (old[1], "removed")}
    changed = next(e for e in found.entries if e["key"] == old[0])
    assert (changed["fromVersion"], changed["toVersion"]) == (1, 3)
    assert changed["feature"]["properties"]["road"] == "再改路"
    assert diff(ChangeReader(store), admin, end, end).entries == []
    west = diff(ChangeReader(store), admin, start, end, bbox=WEST.bounds)
    frame = store.get(old[0])
    assert (old[0] in {e["key"] for e in west.entries}) == bool(frame.intersects(WEST).iloc[0])
    with pytest.raises(InvalidQueryError, match="ends"):
        diff(ChangeReader(store), admin, end, start)
    monkeypatch.setattr(changes, "MAX_DIFF_EVENTS", 3)  # a window too full to fold in memory is refused
    with pytest.raises(InvalidQueryError, match="more than 3 changes"):
        diff(ChangeReader(store), admin, start, end)


def test_twin_diff_lists_what_changed_on_the_command_line(store: Store) -> None:
    store.upsert("hydrant", hydrants(2, seed=1), author="t", source="t")
    start = _now()
    key = sorted(store.features("hydrant").key)[0]
    store.edit(key, author="t", properties={"road": "命令行路"})
    end = _now()
    done = CliRunner().invoke(app, ["diff", start, end, "--layer", "hydrant", "--store", store.location])
    assert done.exit_code == 0, done.output
    assert key in done.output and "changed" in done.output and "1 → 2" in done.output
    bad = CliRunner().invoke(app, ["diff", "yesterday", end, "--store", store.location])
    assert bad.exit_code != 0 and "as_of" in bad.output
