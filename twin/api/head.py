"""``HEAD`` on every ``GET`` route (RFC 9110 §9.3.2): the same status and headers, no body.

Clients ask ``HEAD`` for an item's ``ETag`` before a conditional write, and for a tile's or an export's size;
FastAPI routes answer only the methods they declare, so this middleware runs a ``HEAD`` as a ``GET`` and drops
what the answer's body would have been.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """ASGI middleware: a ``HEAD`` request is answered as its ``GET``, without the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
