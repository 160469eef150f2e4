"""Browser sessions and one-time sign-in codes: random identifiers of which the database keeps only the SHA-256.

The browser's cookie never holds the bearer token. Signing in opens a session: a new 256-bit identifier
for the cookie, stored hashed with the user, role and area, expiring after at most :data:`SESSION_HOURS`
and never after the credential it was opened with. A session ends when it expires, at sign-out, when its
user is revoked and when its token stops working.

A sign-in code is what a printed one-click link carries instead of the token (``/login?code=…``): it opens
one session for its token, once, within :data:`CODE_HOURS`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from twin.access.users import now, stamp
from twin.errors import AuthenticationError
from twin.store.base import AccessDB

#: The longest a browser stays signed in.
SESSION_HOURS = 12
#: The longest a one-click sign-in link stays usable (once).
CODE_HOURS = 24


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """What a session holds: who signed in (name, role, area, how) and with which token, until when."""

    user: str
    role: str
    area: str | None
    via: str  # "token" (twin's own) or "oidc"
    token: str | None  # the id of the twin token it was opened with
    expires: str


class SessionStore:
    """Open, find and end sessions; issue and redeem sign-in codes."""

    def __init__(self, db: AccessDB) -> None:
        self.db = db

    def open(self, user: str, role: str, area: str | None, via: str, token: str | None,
             until: datetime) -> tuple[str, Session]:
        """A new session (its identifier, for the cookie, and what it holds), ending by ``until`` at the latest."""
        moment = now()
        session = Session(user, role, area, via, token, stamp(min(until, moment + timedelta(hours=SESSION_HOURS))))
        sid = secrets.token_urlsafe(32)
        with self.db.write() as w:
            w.execute("DELETE FROM {sessions} WHERE expires <= ?", (stamp(moment),))
            w.execute('INSERT INTO {sessions}(hash, "user", role, area, via, token, created, expires) '
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      (_hash(sid), user, role, area, via, token, stamp(moment), session.expires))
        return sid, session

    def find(self, sid: str) -> Session:
        """The live session ``sid`` names; :class:`AuthenticationError` when it is unknown, ended or expired."""
        rows = self.db.read('SELECT "user", role, area, via, token, expires FROM {sessions} WHERE hash = ?',
                            (_hash(sid),))
        if not rows:
            raise AuthenticationError("unknown or ended session")
        session = Session(*rows[0])
        if session.expires <= stamp(now()):
            raise AuthenticationError(f"session expired at {session.expires}")
        return session

    def end(self, sid: str) -> None:
        """Sign out: the session is deleted, so its cookie stops working everywhere at once."""
        with self.db.write() as w:
            w.execute("DELETE FROM {sessions} WHERE hash = ?", (_hash(sid),))

    def end_user(self, user: str) -> int:
        """End every session of ``user`` (when they are revoked); returns how many there were."""
        with self.db.write() as w:
            return w.execute('DELETE FROM {sessions} WHERE "user" = ?', (user,)).rowcount

    def new_code(self, token: str, until: datetime) -> str:
        """A one-time sign-in code for the twin token with id ``token``, usable by ``until`` at the latest."""
        moment = now()
        code = secrets.token_urlsafe(24)
        expires = stamp(min(until, moment + timedelta(hours=CODE_HOURS)))
        with self.db.write() as w:
            w.execute("DELETE FROM {codes} WHERE expires <= ?", (stamp(moment),))
            w.execute("INSERT INTO {codes}(hash, token, created, expires) VALUES (?, ?, ?, ?)",
                      (_hash(code), token, stamp(moment), expires))
        return code

    def redeem(self, code: str) -> str:
        """The token id a sign-in code was issued for; the code is spent whatever the outcome."""
        with self.db.write() as w:
            rows = w.execute("DELETE FROM {codes} WHERE hash = ? RETURNING token, expires", (_hash(code),)).rows
        row = rows[0] if rows else None
        if row is None:
            raise AuthenticationError("unknown or already used sign-in code: ask for a new link")
        if row[1] <= stamp(now()):
            raise AuthenticationError(f"sign-in code expired at {row[1]}: ask for a new link")
        return str(row[0])
