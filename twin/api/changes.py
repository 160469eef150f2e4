"""The change feed over HTTP: ``/changes`` (pages after a cursor) and ``/changes/stream`` (Server-Sent Events).

Both carry only what the caller may see: the layers their role reads, the components in their area, personal fields
masked as their role requires (:mod:`twin.query.changes`). A stream resumes from ``Last-Event-ID`` (or ``since``)
with nothing missed and nothing repeated; a cursor this store cannot resume from is a 410.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from twin.access import Principal
from twin.api import render
from twin.api.auth import Who
from twin.model.changes import Position
from twin.query.changes import DEFAULT_PAGE, MAX_PAGE, ChangePage, ChangeReader, diff
from twin.query.crs import CRS84
from twin.query.model import parse_bbox
from twin.query.versions import as_of_stamp
from twin.store import Changeset

router = APIRouter(tags=["Change feed"])
#: Seconds between two keep-alive comments of an idle stream (proxies close silent connections).
HEARTBEAT_S = 15.0
#: Events read per page while a stream catches up.
STREAM_PAGE = 500

Since = Annotated[str | None, Query(description="A cursor from an earlier answer (`next`, or an event's `id`); "
                                                "0 for the whole history; omitted: from now on")]
Layers = Annotated[str | None, Query(description="Comma-separated layer ids (default: every layer you may read)")]


def reader(request: Request) -> ChangeReader:
    return request.app.state.changes  # type: ignore[no-any-return]


def _layers(text: str | None) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


def _start(request: Request, since: str | None) -> Position:
    return reader(request).end() if since is None else Position.parse(since)


@router.get("/changes", summary="What changed after a cursor, in your area, as you may see it")
def changes(request: Request, who: Who, since: Since = None, layers: Layers = None,
            limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE) -> Response:
    page = reader(request).page(who, _start(request, since), limit, _layers(layers))
    nxt = request.url.include_query_params(since=str(page.next))
    return render.json_response({"changes": page.changes, "next": str(page.next), "caughtUp": page.caught_up,
                                 "links": [render.link(nxt, "next", "application/json", "the events after these")]})


@router.get("/changes/diff", summary="What differs between two instants, in your area, as you may see it")
def changes_diff(request: Request, who: Who,
                 start: Annotated[str, Query(alias="from", description="An instant (RFC 3339, or a date: its end)")],
                 end: Annotated[str, Query(alias="to", description="A later instant")],
                 layers: Layers = None,
                 bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat: only components meeting "
                                                               "it at either end")] = None,
                 limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE) -> Response:
    box = None if bbox is None else parse_bbox(bbox, CRS84).parts[0]
    found = diff(reader(request), who, as_of_stamp(start), as_of_stamp(end), _layers(layers), box, limit)
    return render.json_response({"from": start, "to": end, "changesets": [found.start + 1, found.end],
                                 "changes": found.entries, "truncated": found.truncated})


@router.get("/changes/stream", summary="Changes as they happen (Server-Sent Events), resumable",
            response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def stream(request: Request, who: Who, since: Since = None, layers: Layers = None,
                 last_event_id: Annotated[str | None, Header(description="The last event id received (set by "
                                                                         "EventSource on reconnecting)")] = None
                 ) -> Response:
    start = last_event_id if last_event_id else since
    position = await run_in_threadpool(_start, request, start)
    names = _layers(layers)
    first = await run_in_threadpool(reader(request).page, who, position, STREAM_PAGE, names)  # refusals before 200
    return StreamingResponse(_events(request, who, first, names), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _events(request: Request, who: Principal, page: ChangePage, layers: list[str] | None
                  ) -> AsyncIterator[bytes]:
    """The stream: pages until caught up, then a wait for the next commit (or a keep-alive comment)."""
    store = reader(request).store
    loop = asyncio.get_running_loop()
    ends = loop.time() + request.app.state.settings.service.stream_max_s
    woken = asyncio.Event()

    def wake(_: Changeset) -> None:
        loop.call_soon_threadsafe(woken.set)

    store.feed.subscribe(wake)
    woken.set()  # a commit between the first page and the subscription must not wait for the next one
    try:
        yield b"retry: 2000\n\n"
        while True:
            yield _encode(page)
            left = ends - loop.time()
            if left <= 0:
                return  # EventSource reconnects with Last-Event-ID: nothing is lost, the token is checked again
            if page.caught_up:
                try:
                    await asyncio.wait_for(woken.wait(), min(HEARTBEAT_S, left))
                except TimeoutError:
                    yield b": keep-alive\n\n"
                woken.clear()
            page = await run_in_threadpool(reader(request).page, who, page.next, STREAM_PAGE, layers)
    finally:
        store.feed.unsubscribe(wake)


def _encode(page: ChangePage) -> bytes:
    """One SSE event per change; then, when the cursor moved past events the user may not see, an ``id`` alone
    (it moves the client's ``Last-Event-ID`` without firing an event)."""
    out = [b"id: %s\nevent: change\ndata: %s\n\n" % (str(c["id"]).encode(), orjson.dumps(c)) for c in page.changes]
    if not page.changes or page.changes[-1]["id"] != str(page.next):
        out.append(b"id: %s\n\n" % str(page.next).encode())
    return b"".join(out)
