"""Read-your-writes when reads may be served by a standby: the position of a user's last write follows them.

After a write, the store's :meth:`~twin.store.base.Store.position` is remembered for the user in this process,
and handed to the client as the ``Twin-Position`` header (and a cookie for browsers). A later request of the user
carries it back (``Twin-After`` header, or the cookie) or finds it remembered here; its reads then see at least
that state (:data:`~twin.store.base.READ_AFTER`), from a standby that has replayed it or else from the primary.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict

from fastapi import Request
from fastapi.responses import Response

from twin.store import READ_AFTER

HEADER_IN = "Twin-After"
HEADER_OUT = "Twin-Position"
COOKIE = "twin_after"
#: How long a user's last write steers their reads (a standby lags seconds behind at most, when healthy).
KEEP_S = 300
_MAX_USERS = 10_000
#: A PostgreSQL log position (``16/B374D848``) or a GeoPackage changeset id.
_POSITION = re.compile(r"^(?:[0-9A-F]{1,8}/[0-9A-F]{1,8}|\d{1,19})\Z")


class Positions:
    """The position of each user's last write in this process, forgotten after :data:`KEEP_S`."""

    def __init__(self) -> None:
        self._last: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, user: str, position: str) -> None:
        with self._lock:
            self._last[user] = (time.monotonic(), position)
            self._last.move_to_end(user)
            while len(self._last) > _MAX_USERS:
                self._last.popitem(last=False)

    def get(self, user: str) -> str | None:
        with self._lock:
            found = self._last.get(user)
        return found[1] if found is not None and time.monotonic() - found[0] < KEEP_S else None


async def read_after(request: Request) -> None:
    """Set what this request's reads must see at least (runs after authentication, in the request's task)."""
    given = request.headers.get(HEADER_IN) or request.cookies.get(COOKIE)
    position = given if given is not None and _POSITION.match(given) else None
    who = getattr(request.state, "principal", None)
    if position is None and who is not None:
        position = request.app.state.positions.get(who.name)
    READ_AFTER.set(position)


def after_write(request: Request, response: Response) -> None:
    """Remember the state a user's write just committed, and hand it to the client."""
    position = request.app.state.service.store.position()
    who = getattr(request.state, "principal", None)
    if who is not None:
        request.app.state.positions.remember(who.name, position)
    response.headers[HEADER_OUT] = position
    response.set_cookie(COOKIE, position, max_age=KEEP_S, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
