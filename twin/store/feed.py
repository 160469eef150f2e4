"""The change feed: every committed changeset, published once per process, in order, to whoever subscribed.

Caches derived from the store (the nearest-k index, tiles, aggregates, area outlines) subscribe here instead of
each polling the store. The feed learns of changesets from the store's own log (``twin_changesets``), so it sees
those of every writer alike: this process's (published right after their commit), another process's or another
machine's (found by a background watcher: a light poll on GeoPackage, ``LISTEN/NOTIFY`` on PostGIS), each exactly
once and in id order. :meth:`ChangeFeed.sync` catches up at once, for a reader that must not miss a write that
has just been committed elsewhere.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from twin.store.base import Changeset

log = logging.getLogger(__name__)
Subscriber = Callable[[Changeset], None]


class ChangeFeed:
    """Publishes the changesets that ``newer(after_id)`` reads from the store's log, in id order, each once."""

    def __init__(self, newer: Callable[[int], list[Changeset]], start: int) -> None:
        self._newer = newer
        self._seen = start
        self._latest: dict[str, int] = {}
        self._subscribers: list[Subscriber] = []
        self._lock = threading.RLock()

    @property
    def seen(self) -> int:
        """The id of the last changeset published."""
        return self._seen

    def version(self, layer: str) -> int | None:
        """The last changeset of ``layer`` published since the feed started (``None``: none yet)."""
        return self._latest.get(layer)

    def subscribe(self, callback: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(callback)

    def unsubscribe(self, callback: Subscriber) -> None:
        with self._lock:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

    def sync(self) -> list[Changeset]:
        """Publish every changeset committed since the last one published; returns them."""
        with self._lock:
            found = self._newer(self._seen)
            for cs in found:
                self._seen = max(self._seen, cs.id)
                self._latest[cs.layer] = cs.id
                for callback in list(self._subscribers):
                    try:
                        callback(cs)
                    except Exception:  # the write is committed: a failing cache must not make it look failed
                        log.exception("subscriber %r failed on changeset %s", callback, cs.id)
            return found


class Watcher:
    """A daemon thread that calls ``wait()`` (returns when something may have changed, or after a while) and then
    :meth:`ChangeFeed.sync`, until stopped; failures are logged and retried after a pause."""

    def __init__(self, feed: ChangeFeed, wait: Callable[[threading.Event], object], name: str) -> None:
        self._feed = feed
        self._wait = wait
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._wait(self._stop)
                if not self._stop.is_set():
                    self._feed.sync()
            except Exception:
                log.exception("following the store's changes failed; trying again shortly")
                self._stop.wait(2.0)
