"""Status reports on the run's engine: every report kept with both its times, the newest applied whatever the order
of arrival (property-tested), bad ones refused by line while the good ones around them are kept, and the command
line's ``twin status push``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.conftest import hydrants
from tests.engines import execute
from twin.access.policy import load_policy
from twin.access.principal import Principal, local
from twin.catalogue import Catalogue
from twin.cli import app
from twin.status import Intake, items_of, lines_of
from twin.store import Store


@pytest.fixture(scope="module")
def admin(catalogue: Catalogue) -> Principal:
    return local(load_policy(None, catalogue))


def _at(base: datetime, seconds: float) -> str:
    return (base + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _push(store: Store, who: Principal, reports: list[dict]) -> object:
    return Intake(store, who, author="t").push(items_of(orjson.dumps(reports)))


def _reports(store: Store) -> list[tuple]:
    return execute(store.location, 'SELECT "key", status, observed_at, applied FROM twin_reports ORDER BY id')


def test_good_reports_are_kept_and_bad_ones_refused_by_line(store: Store, admin: Principal) -> None:
    store.upsert("hydrant", hydrants(4), author="t", source="t")
    keys = sorted(store.features("hydrant").key)
    t0 = datetime.now(UTC) + timedelta(seconds=1)
    before = store.changesets(limit=1)[0].id
    done = _push(store, admin, [
        {"key": keys[0], "status": "faulty", "values": {"pressure": 0.05}, "observed_at": _at(t0, 1)},
        {"key": keys[1], "status": "broken", "observed_at": _at(t0, 1)},
        {"key": "HY-xxxxxxxx-0", "status": "faulty", "observed_at": _at(t0, 1)},
        {"key": keys[1], "values": {"road": "x"}, "observed_at": _at(t0, 1)},
        {"key": keys[1], "status": "faulty", "observed_at": _at(t0, 3600)},
        {"key": keys[1], "status": "faulty", "observed_at": "2001-01-01T00:00:00Z"},
        {"key": keys[1], "status": "faulty"},
        {"key": keys[1], "status": "faulty", "observed_at": _at(t0, 1), "colour": "red"},
        {"key": keys[2], "status": "under_repair", "observed_at": _at(t0, 2), "source": "巡检员"},
    ])
    assert (done.applied, done.late) == (2, 0) and len(done.changesets) == 1 and done.changesets[0] > before
    reasons = {r.line: r.error for r in done.rejected}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8]
    assert "not one of hydrant's" in reasons[2] and "no component" in reasons[3]
    assert "not a measured field" in reasons[4] and "in the future" in reasons[5]
    assert "before the component existed" in reasons[6] and "observed_at is missing" in reasons[7]
    assert "unknown member 'colour'" in reasons[8]
    row = store.get(keys[0]).iloc[0]
    assert (row.status, row.pressure) == ("faulty", 0.05)
    assert store.get(keys[2]).iloc[0].status == "under_repair"
    assert [r[:2] for r in _reports(store)] == [(keys[0], "faulty"), (keys[2], "under_repair")]
    again = _push(store, admin, [{"key": keys[0], "status": "faulty", "values": {"pressure": 0.05},
                                  "observed_at": _at(t0, 1)}])
    assert "duplicate" in again.rejected[0].error and again.changesets == []


def test_a_batch_of_only_bad_reports_writes_nothing(store: Store, admin: Principal) -> None:
    store.upsert("hydrant", hydrants(2), author="t", source="t")
    last = store.changesets(limit=1)[0].id
    done = _push(store, admin, [{"key": "HY-xxxxxxxx-0", "status": "faulty", "observed_at": _at(datetime.now(UTC), 0)}])
    assert done.changesets == [] and len(done.rejected) == 1
    assert store.changesets(limit=1)[0].id == last and _reports(store) == []


def test_a_late_report_is_kept_in_its_place_without_rewriting_the_state(store: Store, admin: Principal) -> None:
    store.upsert("hydrant", hydrants(1), author="t", source="t")
    key = store.features("hydrant").key[0]
    t0 = datetime.now(UTC) + timedelta(seconds=1)
    assert _push(store, admin, [{"key": key, "status": "faulty", "observed_at": _at(t0, 20)}]).applied == 1
    late = _push(store, admin, [{"key": key, "status": "under_repair", "observed_at": _at(t0, 10)}])
    assert (late.applied, late.late) == (0, 1)
    assert store.get(key).iloc[0].status == "faulty"
    assert [(r[1], r[3]) for r in _reports(store)] == [("faulty", 1), ("under_repair", 0)]
    assert len(store.history(key)) == 2  # the first version and the one report applied
    log = CliRunner().invoke(app, ["status", "log", key, "--store", store.location])
    assert log.exit_code == 0, log.output
    assert log.output.index("faulty") < log.output.index("under_repair") and "late" in log.output



statuses = st.sampled_from(["in_service", "faulty", "under_repair", "retired"])
batches = st.lists(st.lists(st.tuples(st.integers(0, 2), statuses, st.integers(1, 40)), min_size=1, max_size=6),
                   min_size=1, max_size=4)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=batches)
def test_the_newest_observation_wins_whatever_order_reports_arrive_in(fresh_store, admin: Principal, batches
                                                                      ) -> None:
    for store in fresh_store():
        store.upsert("hydrant", hydrants(3, seed=7), author="t", source="t")
        keys = sorted(store.features("hydrant").key)
        created = {k: store.get(k).iloc[0].status for k in keys}
        t0 = datetime.now(UTC) + timedelta(seconds=1)
        sent: dict[tuple[str, str], str] = {}
        for batch in batches:
            reports = [{"key": keys[i], "status": s, "observed_at": _at(t0, sec), "source": "p"}
                       for i, s, sec in batch]
            _push(store, admin, reports)
            for i, s, sec in batch:
                sent.setdefault((keys[i], _at(t0, sec)), s)  # the first of a key and time is kept, the rest duplicates
        for key in keys:
            mine = sorted((at, s) for (k, at), s in sent.items() if k == key)
            assert store.get(key).iloc[0].status == (mine[-1][1] if mine else created[key])
        assert len(_reports(store)) == len(sent)


def test_twin_status_push_reads_a_file_or_standard_input(store: Store, tmp_path: Path) -> None:
    store.upsert("hydrant", hydrants(2), author="t", source="t")
    keys = sorted(store.features("hydrant").key)
    t0 = datetime.now(UTC) + timedelta(seconds=1)
    lines = [orjson.dumps({"key": keys[0], "status": "faulty", "observed_at": _at(t0, 1)}).decode(),
             "not json", orjson.dumps({"key": keys[1], "status": "retired", "observed_at": _at(t0, 2)}).decode()]
    path = tmp_path / "reports.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = CliRunner().invoke(app, ["status", "push", str(path), "--store", store.location])
    assert done.exit_code == 0, done.output
    assert "2 reports kept (2 applied" in done.output and "line 2" in done.output and "not JSON" in done.output
    piped = CliRunner().invoke(app, ["status", "push", "-", "--store", store.location],
                               input=lines[0] + "\n")
    assert piped.exit_code == 1 and "duplicate" in piped.output
    assert [s for s in store.features("hydrant").sort_values("key").status] == ["faulty", "retired"]


def test_ndjson_lines_are_numbered_across_chunks() -> None:
    chunks = [b'{"a": 1}\n{"b"', b': 2}\n\n{"c": 3}']
    assert list(lines_of(chunks)) == [(1, b'{"a": 1}'), (2, b'{"b": 2}'), (4, b'{"c": 3}')]
