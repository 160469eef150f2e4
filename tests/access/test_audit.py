"""The audit trail: events written in batches from any thread, kept in the store's access tables, and queried back
by filters, directly and over ``GET /audit`` (administrators only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.query.twin_fixture import build_twin
from twin.access.audit import ACTIONS, AuditLog
from twin.api.app import create_app
from twin.catalogue import Catalogue
from twin.errors import InvalidQueryError
from twin.settings import TwinSettings
from twin.store import Store, open_store


@pytest.fixture
def log(store: Store) -> Iterator[AuditLog]:
    db = store.access()
    audit = AuditLog(db)
    yield audit
    audit.close()
    db.close()


def _fill(log: AuditLog) -> None:
    log.record("login", user="wang", role="planner", method="POST", path="/login")
    log.record("export", user="wang", role="planner", layer="hydrant", count=12, detail="download as csv")
    log.record("import", "rejected", user="li", role="gis_editor", layer="hydrant", detail="no CRS")
    log.record("import", user="li", role="gis_editor", layer="pipeline", count=40, detail="changeset 7")
    log.record("denied", "denied", user=None, role="anonymous", status=401, path="/collections/hydrant/items",
               layer="hydrant", detail="layer 'hydrant' needs a token")


def test_query_filters_each_field_newest_first(log: AuditLog) -> None:
    _fill(log)
    every = log.query()
    assert [e.action for e in every] == ["denied", "import", "import", "export", "login"]
    assert [e.time for e in every] == sorted((e.time for e in every), reverse=True)
    assert [e.detail for e in log.query(user="li")] == ["changeset 7", "no CRS"]
    assert [e.layer for e in log.query(action="import")] == ["pipeline", "hydrant"]
    assert [e.detail for e in log.query(outcome="rejected")] == ["no CRS"]
    assert [e.action for e in log.query(layer="hydrant")] == ["denied", "import", "export"]
    assert [e.count for e in log.query(user="wang", action="export", layer="hydrant")] == [12]
    assert log.query(user="wang", action="import") == []
    denied = log.query(outcome="denied")[0]
    assert (denied.user, denied.role, denied.status, denied.path) == (None, "anonymous", 401,
                                                                      "/collections/hydrant/items")
    assert [e.action for e in log.query(limit=2)] == ["denied", "import"]


def test_query_by_time(log: AuditLog) -> None:
    for n in range(5):  # times are to the millisecond: keep them apart
        log.record("export", user=f"user{n}")
        time.sleep(0.003)
    times = [e.time for e in reversed(log.query())]
    assert len(set(times)) == 5
    assert [e.time for e in log.query(since=times[2])] == times[2:][::-1]
    assert [e.time for e in log.query(until=times[1])] == times[:2][::-1]
    assert [e.time for e in log.query(since=times[1], until=times[3])] == times[1:4][::-1]
    assert log.query(since="2999-01-01T00:00:00Z") == []
    assert all(t.endswith("Z") and len(t) == 24 for t in times)  # 2026-11-25T23:56:37.123Z


@pytest.mark.parametrize(("kwargs", "words"), [({"action": "dance"}, "unknown audit action 'dance'"),
                                               ({"limit": 0}, "limit must be 1 to 10000"),
                                               ({"limit": 10_001}, "limit must be 1 to 10000")])
def test_bad_queries_are_refused_clearly(log: AuditLog, kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidQueryError, match=words):
        log.query(**kwargs)  # type: ignore[arg-type]
    assert set(ACTIONS) >= {"login", "import", "edit", "export", "denied"}


def test_events_from_many_threads_are_all_kept_and_survive_a_restart(target: str, catalogue: Catalogue) -> None:
    store = open_store(target, catalogue)
    db = store.access()
    log = AuditLog(db)

    def work(n: int) -> None:
        for i in range(250):
            log.record("export", user=f"user{n}", count=i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    db.close()
    store.close()
    store = open_store(target, catalogue, create=False)
    again = store.access()
    reopened = AuditLog(again)
    try:
        assert len(reopened.query(limit=10_000)) == 2000
        assert sorted(e.count for e in reopened.query(user="user3", limit=10_000)) == list(range(250))
    finally:
        reopened.close()
        again.close()
        store.close()


@pytest.fixture
def client(target: str, catalogue: Catalogue) -> Iterator[TestClient]:
    build_twin(target, catalogue).close()
    settings = TwinSettings(store=target)
    with TestClient(create_app(settings)) as c:
        yield c


def test_admins_query_the_trail_over_http(client: TestClient) -> None:
    gate = client.app.state.gate  # type: ignore[attr-defined]
    admin = {"Authorization": "Bearer " + gate.add_user("root", "admin")}
    planner = {"Authorization": "Bearer " + gate.add_user("wang", "planner")}
    assert client.get("/collections/hydrant/items", params={"f": "csv", "limit": 3}, headers=planner).status_code == 200
    assert client.get("/collections/hydrant/items").status_code == 401
    r = client.get("/audit", params={"action": "export"}, headers=admin)
    assert r.status_code == 200 and r.headers["cache-control"] == "private, no-store"
    (export,) = r.json()["events"]
    assert (export["user"], export["role"], export["layer"], export["count"]) == ("wang", "planner", "hydrant", 3)
    denied = client.get("/audit", params={"outcome": "denied", "layer": "hydrant"}, headers=admin).json()["events"]
    assert denied[0]["status"] == 401 and denied[0]["user"] is None and "needs a token" in denied[0]["detail"]
    users = client.get("/audit", params={"action": "user", "limit": 10}, headers=admin).json()
    assert users["numberReturned"] == 2 and {e["detail"] for e in users["events"]} == {
        "added root (admin)", "added wang (planner)"}
    assert client.get("/audit", params={"since": "2999-01-01T00:00:00Z"}, headers=admin).json()["events"] == []
    bad = client.get("/audit", params={"action": "dance"}, headers=admin)
    assert bad.status_code == 400 and "dance" in bad.json()["description"]


@pytest.mark.parametrize(("role", "status", "words"), [(None, 401, "administrator's token"),
                                                       ("planner", 403, "may not manage users or read the audit")])
@pytest.mark.parametrize("path", ["/audit", "/users"])
def test_only_admins_read_the_trail_and_the_users(client: TestClient, role: str | None, status: int, words: str,
                                                  path: str) -> None:
    gate = client.app.state.gate  # type: ignore[attr-defined]
    headers = {"Authorization": "Bearer " + gate.add_user("someone", role)} if role else {}
    r = client.get(path, headers=headers)
    assert r.status_code == status and words in r.json()["description"]
    gate.audit.flush()
    event = gate.audit.query(outcome="denied", limit=1)[0]
    assert (event.status, event.path, event.user) == (status, path, "someone" if role else None)
