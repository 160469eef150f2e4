"""Users and API tokens in a real store's access tables: hashed at rest, expiring, revocable, unforgeable."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.engines import ACCESS_ORDER, access_snapshot, fresh, geopackage_only
from twin.access.users import UserRegistry, now, stamp
from twin.catalogue import Catalogue
from twin.errors import AccessConfigError, AuthenticationError
from twin.store import Store, open_store
from twin.store.base import AccessDB
from twin.store.gpkg.access import SqliteAccessDB, access_db_path

TOKEN = re.compile(r"^twin_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@pytest.fixture
def db(store: Store) -> Iterator[AccessDB]:
    access = store.access()
    yield access
    access.close()


@pytest.fixture
def users(db: AccessDB) -> UserRegistry:
    return UserRegistry(db)


def _parts(token: str) -> tuple[str, str]:
    m = TOKEN.match(token)
    assert m, token
    return m.group(1), m.group(2)


def _file_bytes(db: SqliteAccessDB) -> bytes:
    """Everything on disk: the access database and its write-ahead log."""
    return b"".join(p.read_bytes() for p in db.path.parent.glob(db.path.name + "*"))


@geopackage_only  # a PostGIS store keeps its users in its own schema
def test_the_access_database_sits_beside_the_store() -> None:
    assert access_db_path(Path("/data/city.gpkg")) == Path("/data/city.access.db")


def test_a_token_works_and_only_its_hash_is_stored(store: Store, db: AccessDB, users: UserRegistry) -> None:
    token = users.add("wang.jianguo", "planner", None, days=30)
    token_id, secret = _parts(token)
    user = users.authenticate(token)
    assert (user.name, user.role, user.area) == ("wang.jianguo", "planner", None)
    assert db.read("SELECT id, hash FROM {tokens}") == [(token_id, hashlib.sha256(secret.encode()).hexdigest())]
    stored = repr(access_snapshot(store.location, tuple(ACCESS_ORDER)))
    assert secret not in stored and token not in stored and token_id in stored  # the id finds the row
    if isinstance(db, SqliteAccessDB):  # nor anywhere in the file or its write-ahead log
        on_disk = _file_bytes(db)
        assert secret.encode() not in on_disk and token.encode() not in on_disk


def test_every_token_is_new(users: UserRegistry) -> None:
    tokens = [users.add(f"user{i}", "planner", None, days=1) for i in range(20)]
    tokens += [users.issue("user0", days=1) for _ in range(20)]
    assert len({_parts(t)[0] for t in tokens}) == len({_parts(t)[1] for t in tokens}) == 40


def test_an_expired_token_is_refused(db: AccessDB, users: UserRegistry) -> None:
    token = users.add("li", "planner", None, days=90)
    users.authenticate(token)
    past = stamp(now() - timedelta(seconds=1))
    with db.write() as w:
        w.execute("UPDATE {tokens} SET expires = ? WHERE id = ?", (past, _parts(token)[0]))
    with pytest.raises(AuthenticationError, match=f"token expired at {past}"):
        users.authenticate(token)


def test_a_token_lives_the_days_asked(users: UserRegistry) -> None:
    token = users.add("zhao", "planner", None, days=7)
    expires = users.authenticate(token).expires
    assert expires is not None
    assert stamp(now() + timedelta(days=7, seconds=-5)) <= expires <= stamp(now() + timedelta(days=7, seconds=5))
    for days in (0, -1, 3651):
        with pytest.raises(AccessConfigError, match="1 to 3650 days"):
            users.add(f"u{days + 10}", "planner", None, days=days)
    assert [u.name for u in users.list()] == ["zhao"]  # the refused adds left nothing behind


def test_revoking_a_user_revokes_every_token(users: UserRegistry) -> None:
    first = users.add("chen", "planner", None, days=30)
    second = users.issue("chen", days=30)
    other = users.add("zhou", "planner", None, days=30)
    assert users.revoke("chen") == 2
    for token in (first, second):
        with pytest.raises(AuthenticationError, match="token revoked"):
            users.authenticate(token)
    assert users.authenticate(other).name == "zhou"
    assert [u.name for u in users.list()] == ["zhou"]
    revoked = {u.name: u for u in users.list(include_revoked=True)}
    assert revoked["chen"].revoked is not None and revoked["zhou"].revoked is None
    with pytest.raises(AccessConfigError, match="no live user 'chen'"):
        users.revoke("chen")
    with pytest.raises(AccessConfigError, match="no live user 'chen'"):
        users.issue("chen", days=1)


def test_a_revoked_name_can_be_given_out_again_with_new_tokens_only(users: UserRegistry) -> None:
    old = users.add("sun", "planner", None, days=30)
    users.revoke("sun")
    new = users.add("sun", "gis_editor", None, days=30)
    assert users.authenticate(new).role == "gis_editor"
    with pytest.raises(AuthenticationError, match="revoked"):
        users.authenticate(old)


def test_a_live_name_cannot_be_added_twice(users: UserRegistry) -> None:
    users.add("ma", "planner", None, days=30)
    with pytest.raises(AccessConfigError, match="exists"):
        users.add("ma", "admin", None, days=30)
    assert users.get("ma").role == "planner"  # type: ignore[union-attr]


def test_a_new_token_does_not_end_the_old_ones(users: UserRegistry) -> None:
    old = users.add("hu", "planner", None, days=30)
    new = users.issue("hu", days=60)
    assert users.authenticate(old).name == users.authenticate(new).name == "hu"
    assert users.list()[0].expires == users.authenticate(new).expires


def test_a_forged_token_with_a_real_id_is_refused_like_an_unknown_one(users: UserRegistry) -> None:
    token = users.add("guo", "admin", None, days=30)
    token_id, secret = _parts(token)
    forged = f"twin_{token_id}_{'A' * 43}"
    unknown = f"twin_{'0' * 12}_{secret}"
    messages = []
    for bad in (forged, unknown):
        with pytest.raises(AuthenticationError) as err:
            users.authenticate(bad)
        messages.append(str(err.value))
    assert messages == ["unknown token", "unknown token"]  # a guessed id earns no hint


@pytest.mark.parametrize("bad", ["", "twin", "Bearer twin_0123456789ab_" + "a" * 43, "twin_0123456789ab_" + "a" * 42,
                                 "twin_0123456789AB_" + "a" * 43, "twin_0123456789ab_" + "a" * 43 + "\n",
                                 "twin_0123456789ab_" + "a" * 42 + "=", "' OR 1=1 --", "twin_" + "0" * 12,
                                 "x" * 10_000])
def test_malformed_tokens_are_refused_before_any_lookup(users: UserRegistry, bad: str) -> None:
    with pytest.raises(AuthenticationError, match="malformed token"):
        users.authenticate(bad)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> Iterator[UserRegistry]:
    """One registry for every example (a fresh store per example would dominate the run)."""
    with fresh(tmp_path_factory.mktemp("tokens")) as target, open_store(target, catalogue) as store:
        access = store.access()
        yield UserRegistry(access)
        access.close()


_serial = itertools.count()


@settings(max_examples=200, deadline=None)
@given(position=st.integers(0, 60), char=st.sampled_from("0123456789abcdefABCDEF_-xyz"))
def test_changing_any_character_of_a_token_makes_it_fail(shared: UserRegistry, position: int, char: str) -> None:
    token = shared.add(f"u{next(_serial)}", "planner", None, days=1)
    changed = token[:position] + char + token[position + 1:]
    if changed != token:
        with pytest.raises(AuthenticationError):
            shared.authenticate(changed)
    assert shared.authenticate(token).role == "planner"


@pytest.mark.parametrize(("name", "ok"), [("wang.jianguo", True), ("ops@city", True), ("a-b_c", True), ("x" * 64, True),
                                          ("", False), ("x" * 65, False), ("王建国", False), ("a b", False),
                                          ("a;DROP", False), ("../x", False)])
def test_user_names_are_checked(users: UserRegistry, name: str, ok: bool) -> None:
    if ok:
        users.add(name, "planner", None, days=1)
        assert users.get(name) is not None
    else:
        with pytest.raises(AccessConfigError, match="user name"):
            users.add(name, "planner", None, days=1)
        assert users.list() == []


def test_the_access_tables_are_shared_between_connections(store: Store, catalogue: Catalogue) -> None:
    """A user added through one handle (the command line) is seen through another (the server)."""
    other = open_store(store.location, catalogue, create=False)
    one, two = store.access(), other.access()
    try:
        token = UserRegistry(one).add("lin", "planner", None, days=1)
        assert UserRegistry(two).authenticate(token).name == "lin"
        UserRegistry(one).revoke("lin")
        with pytest.raises(AuthenticationError, match="revoked"):
            UserRegistry(two).authenticate(token)
    finally:
        one.close()
        two.close()
        other.close()
