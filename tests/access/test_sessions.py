"""Browser sessions and one-time sign-in codes in a real store's access tables: a random id in the cookie, only its
hash stored, ending with its expiry, its token and its user; codes that work once. Also the GeoPackage access
database's schema version (a version-1 database gains the new tables) and the token lifetimes refused."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from tests.engines import ACCESS_ORDER, access_snapshot, clone, drop, fresh, geopackage_only
from tests.query.twin_fixture import build_twin
from twin.access import AccessSettings, Gate
from twin.access.sessions import CODE_HOURS, SESSION_HOURS, SessionStore
from twin.access.users import UserRegistry, now, parse_stamp, split_token, stamp
from twin.catalogue import Catalogue
from twin.errors import AccessConfigError, AuthenticationError, StoreVersionError
from twin.store import open_store
from twin.store.gpkg.access import SCHEMA_VERSION, SqliteAccessDB


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> Iterator[str]:
    with fresh(tmp_path_factory.mktemp("sessions"), "template") as target:
        build_twin(target, catalogue).close()
        yield target


@pytest.fixture
def gate(tmp_path: Path, template: str, catalogue: Catalogue) -> Iterator[Gate]:
    target = clone(template, tmp_path, catalogue, "city")
    store = open_store(target, catalogue, create=False)
    g = Gate(store, AccessSettings())
    yield g
    g.close()
    store.close()
    drop(target)


def _sql(gate: Gate, sql: str, *params: object) -> list[tuple[object, ...]]:
    """One statement on the gate's access tables (named ``{sessions}``, ``{tokens}``, ``{codes}``), committed."""
    with gate.db.write() as w:
        return w.execute(sql, params).rows


def test_a_session_id_is_not_the_token_and_only_its_hash_is_stored(gate: Gate) -> None:
    token = gate.add_user("wang", "planner")
    who, sid, session = gate.sign_in(token)
    assert sid != token and split_token(token)[1] not in sid and len(sid) >= 43
    assert (who.name, session.user, session.role, session.token) == ("wang", "wang", "planner", split_token(token)[0])
    assert _sql(gate, "SELECT hash FROM {sessions}") == [(hashlib.sha256(sid.encode()).hexdigest(),)]
    stored = repr(access_snapshot(gate.store.location, tuple(ACCESS_ORDER)))
    assert sid not in stored and split_token(token)[1] not in stored
    if isinstance(gate.db, SqliteAccessDB):  # nor anywhere in the file or its write-ahead log
        on_disk = b"".join(p.read_bytes() for p in gate.db.path.parent.glob(gate.db.path.name + "*"))
        assert sid.encode() not in on_disk and split_token(token)[1].encode() not in on_disk
    assert gate.session(sid).name == "wang"


def test_a_session_lasts_twelve_hours_at_most_and_never_beyond_its_token(gate: Gate) -> None:
    long = gate.add_user("wang", "planner", days=30)
    ends = parse_stamp(gate.sign_in(long)[2].expires)
    assert abs(ends - (now() + timedelta(hours=SESSION_HOURS))) < timedelta(minutes=1)
    short = gate.add_user("li", "planner")
    soon = now() + timedelta(hours=2)
    _sql(gate, "UPDATE {tokens} SET expires = ? WHERE id = ?", stamp(soon), split_token(short)[0])
    assert gate.sign_in(short)[2].expires == stamp(soon)


def test_an_expired_session_is_refused(gate: Gate) -> None:
    _, sid, _ = gate.sign_in(gate.add_user("wang", "planner"))
    _sql(gate, "UPDATE {sessions} SET expires = ?", stamp(now() - timedelta(seconds=1)))
    with pytest.raises(AuthenticationError, match="session expired"):
        gate.session(sid)


@pytest.mark.parametrize("end", ["revoke the user", "expire the token", "sign out"])
def test_a_session_ends_with_its_user_its_token_or_sign_out(gate: Gate, end: str) -> None:
    token = gate.add_user("wang", "planner")
    _, sid, _ = gate.sign_in(token)
    _, other, _ = gate.sign_in(token)  # a second browser
    if end == "revoke the user":
        gate.revoke_user("wang")
        assert _sql(gate, "SELECT count(*) FROM {sessions}") == [(0,)]  # deleted, not only refused
    elif end == "expire the token":
        _sql(gate, "UPDATE {tokens} SET expires = ?", stamp(now() - timedelta(seconds=1)))
    else:
        gate.sign_out(sid)
        assert gate.session(other).name == "wang"  # the other browser stays signed in
    with pytest.raises(AuthenticationError):
        gate.session(sid)


def test_a_new_user_of_a_revoked_name_does_not_inherit_its_sessions(gate: Gate) -> None:
    _, sid, _ = gate.sign_in(gate.add_user("wang", "admin"))
    gate.revoke_user("wang")
    gate.add_user("wang", "planner")
    with pytest.raises(AuthenticationError):
        gate.session(sid)


def test_a_sign_in_code_opens_one_session_once(gate: Gate) -> None:
    token = gate.add_user("wang", "planner")
    code = gate.sign_in_code(token)
    assert code != token and split_token(token)[1] not in code
    assert _sql(gate, "SELECT hash FROM {codes}") == [(hashlib.sha256(code.encode()).hexdigest(),)]
    who, sid, _ = gate.sign_in_with_code(code)
    assert who.name == "wang" and gate.session(sid).role.name == "planner"
    with pytest.raises(AuthenticationError, match="already used"):
        gate.sign_in_with_code(code)


def test_a_sign_in_code_expires_within_a_day_and_with_its_token(gate: Gate) -> None:
    token = gate.add_user("wang", "planner", days=30)
    gate.sign_in_code(token)
    (expires,) = _sql(gate, "SELECT expires FROM {codes}")[0]
    assert abs(parse_stamp(str(expires)) - (now() + timedelta(hours=CODE_HOURS))) < timedelta(minutes=1)
    late = gate.sign_in_code(token)
    _sql(gate, "UPDATE {codes} SET expires = ?", stamp(now() - timedelta(seconds=1)))
    with pytest.raises(AuthenticationError, match="code expired"):
        gate.sign_in_with_code(late)
    revoked = gate.sign_in_code(gate.add_user("li", "planner"))
    gate.revoke_user("li")
    with pytest.raises(AuthenticationError, match="revoked"):
        gate.sign_in_with_code(revoked)


@pytest.mark.parametrize("days", [0, -1, 3651, 10**12])
def test_a_token_lifetime_outside_1_to_3650_days_is_refused(gate: Gate, days: int) -> None:
    with pytest.raises(AccessConfigError, match=f"1 to 3650 days, not {days}"):
        gate.add_user("wang", "planner", days=days)
    assert gate.list_users() == []
    gate.add_user("li", "planner", days=1)
    with pytest.raises(AccessConfigError, match=f"not {days}"):
        gate.issue_token("li", days)


V1_SCHEMA = """
CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL, area TEXT, created TEXT NOT NULL, revoked TEXT);
CREATE TABLE tokens (id TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name), hash TEXT NOT NULL,
    created TEXT NOT NULL, expires TEXT NOT NULL, revoked TEXT);
CREATE TABLE audit (id INTEGER PRIMARY KEY, time TEXT NOT NULL, user TEXT, role TEXT, action TEXT NOT NULL,
    outcome TEXT NOT NULL, status INTEGER, method TEXT, path TEXT, layer TEXT, count INTEGER, detail TEXT);
"""


@geopackage_only  # a PostGIS store's access tables are versioned with its schema
def test_an_access_database_of_version_1_gains_sessions_and_keeps_its_users(tmp_path: Path) -> None:
    path = tmp_path / "old.access.db"
    secret = "s" * 43
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(V1_SCHEMA)
        conn.execute("INSERT INTO users VALUES ('wang', 'planner', NULL, '2026-01-01T00:00:00Z', NULL)")
        conn.execute("INSERT INTO tokens VALUES ('0123456789ab', 'wang', ?, '2026-01-01T00:00:00Z', ?, NULL)",
                     (hashlib.sha256(secret.encode()).hexdigest(), stamp(now() + timedelta(days=1))))
        conn.commit()
    db = SqliteAccessDB(path)
    try:
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        users = UserRegistry(db)
        assert users.authenticate(f"twin_0123456789ab_{secret}").name == "wang"
        sid, _ = SessionStore(db).open("wang", "planner", None, "token", "0123456789ab", now() + timedelta(hours=1))
        assert SessionStore(db).find(sid).user == "wang"
    finally:
        db.close()


@geopackage_only
def test_an_access_database_from_a_newer_twin_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "new.access.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE future (x)")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreVersionError, match="newer twin"):
        SqliteAccessDB(path)
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("future",)]
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
