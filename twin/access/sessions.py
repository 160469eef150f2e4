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

from twin.access.db import AccessDB
from twin.access.users import now, stamp
from twin.errors import AuthenticationError

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
        conn = self.db.conn()
        with conn:
            conn.execute("DELETE FROM sessions WHERE expires <= ?", (stamp(moment),))
            conn.execute("INSERT INTO sessions(hash, user, role, area, via, token, created, expires) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (_hash(sid), user, role, area, via, token, stamp(moment), session.expires))
        return sid, session

    def find(self, sid: str) -> Session:
        """The live session ``sid`` names; :class:`AuthenticationError` when it is unknown, ended or expired."""
        row = self.db.conn().execute("SELECT user, role, area, via, token, expires FROM sessions WHERE hash = ?",
                                     (_hash(sid),)).fetchone()
        if row is None:
            raise AuthenticationError("unknown or ended session")
        session = Session(*row)
        if session.expires <= stamp(now()):
            raise AuthenticationError(f"session expired at {session.expires}")
        return session

    def end(self, sid: str) -> None:
        """Sign out: the session is deleted, so its cookie stops working everywhere at once."""
        conn = self.db.conn()
        with conn:
            conn.execute("DELETE FROM sessions WHERE hash = ?", (_hash(sid),))

    def end_user(self, user: str) -> int:
        """End every session of ``user`` (when they are revoked); returns how many there were."""
        conn = self.db.conn()
        with conn:
            return conn.execute("DELETE FROM sessions WHERE user = ?", (user,)).rowcount

    def new_code(self, token: str, until: datetime) -> str:
        """A one-time sign-in code for the twin token with id ``token``, usable by ``until`` at the latest."""
        moment = now()
        code = secrets.token_urlsafe(24)
        expires = stamp(min(until, moment + timedelta(hours=CODE_HOURS)))
        conn = self.db.conn()
        with conn:
            conn.execute("DELETE FROM sign_in_codes WHERE expires <= ?", (stamp(moment),))
            conn.execute("INSERT INTO sign_in_codes(hash, token, created, expires) VALUES (?, ?, ?, ?)",
                         (_hash(code), token, stamp(moment), expires))
        return code

    def redeem(self, code: str) -> str:
        """The token id a sign-in code was issued for; the code is spent whatever the outcome."""
        conn = self.db.conn()
        with conn:
            row = conn.execute("DELETE FROM sign_in_codes WHERE hash = ? RETURNING token, expires",
                               (_hash(code),)).fetchone()
        if row is None:
            raise AuthenticationError("unknown or already used sign-in code: ask for a new link")
        if row[1] <= stamp(now()):
            raise AuthenticationError(f"sign-in code expired at {row[1]}: ask for a new link")
        return row[0]
