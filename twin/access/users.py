"""Users and their API tokens: created by ``twin user add``, stored hashed, expiring, revocable.

A token reads ``twin_<id>_<secret>``: the id finds the row, the secret is compared (in constant time)
with its SHA-256, which is all the database keeps. Secrets are 256 random bits, so a plain hash is
enough; a stolen database gives no usable token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from twin.catalogue import IDENT
from twin.errors import AccessConfigError, AuthenticationError
from twin.store.base import AccessDB, AccessWriter

_TOKEN = re.compile(r"^twin_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
#: The longest a token may live, in days.
MAX_DAYS = 3650


def now() -> datetime:
    return datetime.now(UTC)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str) -> datetime:
    """A time stamp written by :func:`stamp` (``2026-11-25T08:00:00Z``), as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class User:
    """A user as stored: name, role, area key (or none) and when they were created or revoked."""

    name: str
    role: str
    area: str | None
    created: str
    revoked: str | None = None
    expires: str | None = None  # the latest expiry among the user's live tokens


class UserRegistry:
    """Add, list, revoke and authenticate users of one access database."""

    def __init__(self, db: AccessDB) -> None:
        self.db = db

    def add(self, name: str, role: str, area: str | None, days: int) -> str:
        """Create ``name`` and return its first token (shown once; only its hash is kept)."""
        if not _NAME.fullmatch(name):  # not match(): "$" lets a trailing newline through
            raise AccessConfigError(f"user name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'")
        if not re.fullmatch(IDENT, role):
            raise AccessConfigError(f"role {role!r} is not a role name")
        check_days(days)
        with self.db.write() as w:
            row = w.execute("SELECT revoked FROM {users} WHERE name = ?", (name,)).rows
            if row and row[0][0] is None:
                raise AccessConfigError(f"user {name!r} exists; revoke it first or pick another name")
            w.execute("INSERT INTO {users}(name, role, area, created, revoked) VALUES (?, ?, ?, ?, NULL) "
                      "ON CONFLICT (name) DO UPDATE SET role = excluded.role, area = excluded.area, "
                      "created = excluded.created, revoked = NULL", (name, role, area, stamp(now())))
            return self._issue(w, name, days)

    def issue(self, name: str, days: int) -> str:
        """A new token for an existing, live user (older tokens keep working until they expire)."""
        check_days(days)
        with self.db.write() as w:
            row = w.execute("SELECT revoked FROM {users} WHERE name = ?", (name,)).rows
            if not row or row[0][0] is not None:
                raise AccessConfigError(f"no live user {name!r}")
            return self._issue(w, name, days)

    @staticmethod
    def _issue(w: AccessWriter, name: str, days: int) -> str:
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        created = now()
        w.execute('INSERT INTO {tokens}(id, "user", hash, created, expires) VALUES (?, ?, ?, ?, ?)',
                  (token_id, name, _hash(secret), stamp(created), stamp(created + timedelta(days=days))))
        return f"twin_{token_id}_{secret}"

    def revoke(self, name: str) -> int:
        """Revoke ``name`` and every token it holds; returns how many tokens were live."""
        with self.db.write() as w:
            done = w.execute("UPDATE {users} SET revoked = ? WHERE name = ? AND revoked IS NULL", (stamp(now()), name))
            if done.rowcount == 0:
                raise AccessConfigError(f"no live user {name!r}")
            return w.execute('UPDATE {tokens} SET revoked = ? WHERE "user" = ? AND revoked IS NULL',
                             (stamp(now()), name)).rowcount

    def list(self, *, include_revoked: bool = False) -> list[User]:
        sql = ("SELECT u.name, u.role, u.area, u.created, u.revoked, "
               '(SELECT max(expires) FROM {tokens} t WHERE t."user" = u.name AND t.revoked IS NULL) FROM {users} u'
               + ("" if include_revoked else " WHERE u.revoked IS NULL") + " ORDER BY u.name")
        return [User(*row) for row in self.db.read(sql)]

    def get(self, name: str) -> User | None:
        rows = self.db.read("SELECT name, role, area, created, revoked FROM {users} WHERE name = ?", (name,))
        return User(*rows[0]) if rows else None

    def authenticate(self, token: str) -> User:
        """The live user holding ``token``; :class:`AuthenticationError` saying why not otherwise."""
        token_id, secret = split_token(token)
        row = self._holding(token_id)  # one look-up: the hash and the holder together
        if row is None or not hmac.compare_digest(row[7], _hash(secret)):
            raise AuthenticationError("unknown token")
        return self._live(row)

    def holder(self, token_id: str) -> User:
        """The live user holding the token with id ``token_id`` (its secret already checked, or not needed:
        a session or sign-in code opened with it); :class:`AuthenticationError` once it is revoked or expired."""
        row = self._holding(token_id)
        if row is None:
            raise AuthenticationError("unknown token")
        return self._live(row)

    def _holding(self, token_id: str) -> tuple[Any, ...] | None:
        rows = self.db.read(
            "SELECT t.expires, t.revoked, u.name, u.role, u.area, u.created, u.revoked, t.hash "
            'FROM {tokens} t JOIN {users} u ON u.name = t."user" WHERE t.id = ?', (token_id,))
        return rows[0] if rows else None

    @staticmethod
    def _live(row: tuple[Any, ...]) -> User:
        if row[1] is not None or row[6] is not None:
            raise AuthenticationError("token revoked")
        if row[0] <= stamp(now()):
            raise AuthenticationError(f"token expired at {row[0]}")
        return User(row[2], row[3], row[4], row[5], expires=row[0])


def split_token(token: str) -> tuple[str, str]:
    """A twin token's id and secret; :class:`AuthenticationError` when it does not read ``twin_<id>_<secret>``."""
    m = _TOKEN.fullmatch(token)  # not match(): "$" would let a trailing newline through
    if m is None:
        raise AuthenticationError("malformed token: twin tokens read twin_<id>_<secret>")
    return m.group(1), m.group(2)


def check_days(days: int) -> int:
    """``days`` if a token may live that long (1 to :data:`MAX_DAYS`); :class:`AccessConfigError` otherwise."""
    if not 1 <= days <= MAX_DAYS:
        raise AccessConfigError(f"a token lives 1 to {MAX_DAYS} days, not {days}")
    return days
