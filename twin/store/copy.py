"""``twin store copy SRC DST``: a whole twin moved between engines (GeoPackage and PostGIS, either way).

Everything moves as it is stored: changesets, users, tokens and the audit trail, every layer's current rows and
its history (keys, fids, versions and validity times kept), and the tile aggregates. The copy goes part by part
in chunks; each chunk is committed with a note of how far the copy got, so an interrupted copy run again resumes
where it stopped. Reading the next chunk overlaps writing the last (two threads: SQLite and PostgreSQL both let
Python go while they work); indexes and keys are built once a layer is in. At the end every part is verified: the
same number of rows and the same digest of their values, read back from both stores at once.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin.errors import StoreError
from twin.store.base import Bulk, Part, Store

#: Rows per chunk: large enough for COPY to pay off, small enough to bound memory (a few hundred MB at most).
CHUNK = 50_000
Progress = Callable[[str, int, int], None]  # (part, rows copied in it so far, rows it holds)


@dataclass(frozen=True)
class Check:
    """One verified part: its row count and digest in the source and in the copy."""

    part: str
    rows: int
    same: bool
    source: str
    copy: str


def copy_store(src: Store, dst: Store, *, progress: Progress | None = None, access: Path | None = None,
               chunk: int = CHUNK) -> list[Check]:
    """Copy ``src`` into ``dst`` (empty, or holding an interrupted copy of ``src``), then verify it; ``access`` is the
    access database of a GeoPackage source kept elsewhere than beside it."""
    source, target = src.bulk(access), dst.bulk()
    state = _state(src, dst, target)
    done: list[str] = state["done"]  # type: ignore[assignment]
    for part in source.parts():
        if part.name not in done:
            _copy_part(source, target, part, state, chunk, progress)
            done.append(part.name)
            state["at"] = None
    for layer in src.catalogue:  # indexes and bookkeeping once a layer's parts are all in (again on a resume)
        if progress is not None:
            progress(f"indexes of {layer}", 0, -1)
        target.finish_layer(layer, source.layer_info(layer))
    return verify(source, target, progress)


def _state(src: Store, dst: Store, target: Bulk) -> dict[str, object]:
    """Where the copy stands in ``dst``: a fresh start in an empty store, or the resume point of one of ``src``."""
    noted = target.progress()
    if noted is not None:
        state: dict[str, object] = json.loads(noted)
        if state.get("source") != src.identity:
            raise StoreError(f"{dst.location} holds part of a copy of another store ({state.get('source')}); "
                             "copy into an empty store")
        return state
    if dst.changesets(limit=1):
        raise StoreError(f"{dst.location} is not empty: copy into a new store (a new file, or an empty schema "
                         "named with ?schema=NAME)")
    return {"source": src.identity, "done": [], "at": None}


def _copy_part(source: Bulk, target: Bulk, part: Part, state: dict[str, object], chunk: int,
               progress: Progress | None) -> None:
    """Move one part in chunks: a reader thread fetches the next chunk while this thread writes the last."""
    chunks: queue.Queue[tuple[list[tuple[Any, ...]], object] | BaseException | None] = queue.Queue(maxsize=2)
    start = state["at"]

    def read() -> None:
        after = start
        try:
            while True:
                rows, after = source.dump(part, after, chunk)
                if not rows:
                    break
                chunks.put((rows, after))
                if part.kind in ("aggregate", "cells", "shapes"):
                    break  # read whole
            chunks.put(None)
        except BaseException as exc:  # handed to the writer, which raises it
            chunks.put(exc)

    reader = threading.Thread(target=read, name=f"twin-copy-{part.name}", daemon=True)
    reader.start()
    done = 0
    while (item := chunks.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        rows, position = item
        state["at"] = position
        target.load(part, rows, json.dumps(state, default=str))
        done += len(rows)
        if progress is not None:
            progress(part.name, done, -1)
    reader.join()


def verify(source: Bulk, target: Bulk, progress: Progress | None = None) -> list[Check]:
    """Every part's row count and digest in the source and in the copy (both read at once, one thread each)."""
    out = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="twin-verify") as pool:
        for part in source.parts():
            if progress is not None:
                progress(f"verifying {part.name}", 0, -1)
            theirs = pool.submit(target.checksum, part)
            n, a = source.checksum(part)
            m, b = theirs.result()
            out.append(Check(part.name, n, n == m and a == b, a, b))
    return out
