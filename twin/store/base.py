"""The one typed contract every store engine implements, and the values it trades in.

Everything above the store (the query service, the tile engine, access control, maps, the command line) reads
and writes through these protocols and nothing else; only ``twin/store/`` knows which engine answers. Engines:
:class:`~twin.store.gpkg.store.GeoPackageStore` (one file, the embedded default) and
:class:`~twin.store.postgis.store.PostgisStore` (a PostgreSQL schema, for a city's deployment).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import geopandas as gpd
import numpy as np
import orjson
from numpy.typing import NDArray

from twin.catalogue import Catalogue, LayerSpec
from twin.model.area import Area
from twin.model.changes import WHOLE, LayerLog, LogChangeset, Position, Spans, VersionMeta
from twin.model.filter import Filter
from twin.model.query import COUNT_CAP, FeatureQuery, TimeInterval
from twin.model.reports import KeptReport, Report, Reported
from twin.model.rows import GeometryCodec, Hits, Rows, row_columns

BBox = tuple[float, float, float, float]
#: What the current reader must see at least: a store :meth:`~Store.position` taken after their own last write (set
#: by the HTTP layer from the reader's session), so that a read served by a standby never misses it.
READ_AFTER: ContextVar[str | None] = ContextVar("twin_read_after", default=None)
#: How a store writes changeset and validity times: UTC, microseconds, ``Z``.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_now() -> str:
    return datetime.now(UTC).strftime(TIME_FORMAT)


def after(last: str | None) -> str:
    """Now, but strictly after ``last`` (the latest changeset's time), so history intervals never overlap."""
    now = datetime.now(UTC)
    if last is not None:
        before = datetime.strptime(last, TIME_FORMAT).replace(tzinfo=UTC)
        if now <= before:
            now = before + timedelta(microseconds=1)
    return now.strftime(TIME_FORMAT)


@dataclass(frozen=True)
class Changeset:
    """A committed change: who changed what, when and from where, with counts."""

    id: int
    time: str
    author: str
    source: str
    layer: str
    kind: str  # "import", "edit" or "delete"
    inserted: int
    updated: int
    deleted: int
    unchanged: int
    source_crs: str | None = None
    note: str = ""


@dataclass
class WritePlan:
    """What one chunk of a write does (or, in a dry run, would do).

    ``frame`` holds the conformed chunk with its assigned ``key``; ``action`` per row is
    ``insert``, ``update`` or ``unchanged``.
    """

    layer: str
    frame: gpd.GeoDataFrame
    action: NDArray[np.object_]
    fids: NDArray[np.int64]  # existing fid of updated/unchanged rows, -1 for inserts
    fps: NDArray[np.int64]
    delete_fids: list[int] = field(default_factory=list)

    def count(self, action: str) -> int:
        return int((self.action == action).sum())


@dataclass(frozen=True)
class LayerChanges:
    """What changed in a layer since a changeset: boxes to drop and boxes to add, by fid."""

    removed: list[tuple[int, BBox]]
    added: list[tuple[int, BBox]]
    last_changeset: int


#: One aggregate cell of one status: ``cx, cy, status, n`` components, their ``measure`` (m or m²) and the sums
#: ``sx, sy`` of their representative points relative to the cell's corner (Web Mercator).
CellRow = tuple[int, int, str, int, float, float, float]


class Snapshot(Protocol):
    """One consistent view of the store: every read inside sees the same committed state, within a time budget
    (:class:`~twin.errors.QueryTooExpensiveError` past it)."""

    def select(self, query: FeatureQuery) -> Rows:
        """One page of a query (``/collections/{layer}/items``, radius searches, ``/search``)."""
        ...

    def count(self, query: FeatureQuery, cap: int = COUNT_CAP) -> tuple[int, bool]:
        """``numberMatched`` and whether it is exact: counted up to ``cap``, else estimated (a lower bound)."""
        ...

    def by_keys(self, layer: str, keys: Sequence[str], unmasked: frozenset[str] = frozenset()) -> Rows:
        """Rows of the components with these keys (``/collections/{layer}/items/{key}``), in key order given."""
        ...

    def by_fids(self, layer: str, fids: Sequence[int], unmasked: frozenset[str] = frozenset()) -> Rows:
        """Rows of ``fids``, in the order given."""
        ...

    def versions(self, layer: str, keys: Sequence[str]) -> dict[str, int]:
        """The current version of each of these components that exists (an item's ``ETag``)."""
        ...

    def nearest(self, layer: str, lon: float, lat: float, k: int) -> Hits:
        """The ``k`` components nearest to (lon, lat) in metres (:mod:`twin.geodesy`), ties broken by fid."""
        ...

    def area_points(self, layer: str, area: Area, limit: int) -> tuple[NDArray[np.int64], NDArray[np.object_]] | None:
        """Ids and points of a point layer's components meeting ``area``; ``None`` when the layer is not points or
        the area's envelope holds more than ``limit`` of them."""
        ...

    def tile_rows(self, layer: str, box: BBox, flt: Filter | None = None, when: TimeInterval | None = None) -> Rows:
        """``fid, key, status, <fields>, geom`` of the components whose envelope meets ``box`` and that pass."""
        ...

    def members(self, layer: str, boxes: Iterable[BBox]) -> Rows:
        """``fid, status, geom`` of the components whose envelope meets one of ``boxes`` (each once); a box given as
        bounds may be inverted (min above max) to ask for envelopes spanning from one box to another."""
        ...

    def changed(self, layer: str, since: int, *, removed: bool = True) -> Iterator[tuple[int, Rows]]:
        """``(sign, rows of status, geom)`` in chunks: versions superseded or deleted after ``since`` (-1, when
        ``removed``) and current versions written after it (+1)."""
        ...

    def spans(self, layer: str, since: int, conditions: Sequence[Filter | None], fields: Sequence[str] = ()
              ) -> Iterator[Spans]:
        """In chunks, every version of ``layer`` written or ended after changeset ``since`` (current and past), with
        ``fields``, and whether each met each of ``conditions`` (``None``: always): what derived counts kept per
        changeset (:mod:`twin.vitals`) are brought up to date from."""
        ...

    def log_end(self) -> int:
        """The store's latest changeset (of any layer)."""
        ...

    def reports_of(self, layer: str, key: str, start: str, end: str, limit: int) -> list[KeptReport]:
        """The status reports kept of ``key`` observed from ``start`` to ``end`` (store times, inclusive), newest
        observation first, at most ``limit``."""
        ...

    def log_at(self, moment: str) -> int:
        """The latest changeset committed at or before ``moment`` (a store time; 0 before the first)."""
        ...

    def versions_of(self, layer: str, key: str) -> tuple[Rows, list[VersionMeta]]:
        """Every version of one component, oldest first (its row columns), with when each was current."""
        ...

    def log_changesets(self, after: Position, upto: int, layers: Sequence[str], limit: int) -> list[LogChangeset]:
        """The changesets of ``layers`` holding events after ``after``, up to ``upto``, in order (at most ``limit``)."""
        ...

    def layer_log(self, layer: str, after: Position, upto: int, limit: int) -> LayerLog:
        """``layer``'s events after ``after`` up to changeset ``upto``, in log order (each list at most ``limit``)."""
        ...

    def layer_count(self, layer: str) -> int:
        ...

    def extent(self, layer: str) -> BBox | None:
        ...

    def last_changeset(self, layer: str) -> int:
        ...

    def last_change(self, layer: str) -> str | None:
        """Time of the layer's latest changeset."""
        ...

    def aggregate_state(self, layer: str) -> tuple[int, str] | None:
        """The changeset a layer's tile aggregates reflect, with the signature of how they were built."""
        ...

    def cells(self, layer: str, level: int, x: tuple[int, int], y: tuple[int, int]) -> list[CellRow]:
        """Aggregate cells of ``level`` with ``x[0] <= cx <= x[1]`` and ``y[0] <= cy <= y[1]``."""
        ...

    def cells_at(self, layer: str, level: int, cx: NDArray[np.int64], cy: NDArray[np.int64]) -> list[CellRow]:
        """Aggregate cells of ``level`` at the listed positions."""
        ...

    def shapes(self, layer: str, level: int, x: tuple[int, int], y: tuple[int, int]) -> list[tuple[int, int, bytes]]:
        """``(cx, cy, wkb)`` of the generalised shapes (Web Mercator) of ``level`` in the range."""
        ...


class AggregateWriter(Protocol):
    """One transaction on a layer's tile aggregates (the store's tables, under the store's write lock)."""

    def state(self) -> tuple[int, str] | None:
        ...

    def clear(self) -> None:
        ...

    def add_cells(self, level: int, cells: list[CellRow]) -> None:
        """Add these counts and sums to the stored cells; cells reaching zero are dropped."""
        ...

    def shapes_in(self, level: int, x: tuple[int, int], y: tuple[int, int]) -> list[bytes]:
        ...

    def put_shapes(self, level: int, shapes: dict[tuple[int, int], bytes | None]) -> None:
        """Store (or, for ``None``, drop) the shapes of these cells."""
        ...

    def set_state(self, changeset: int, signature: str) -> None:
        ...


#: The access tables every engine keeps (logical names, written ``{users}`` ... in access SQL).
ACCESS_TABLES = ("users", "tokens", "sessions", "codes", "audit")


@dataclass(frozen=True)
class AccessResult:
    """What one access statement returned: its rows (``RETURNING`` or ``SELECT``) and how many rows it touched."""

    rows: list[tuple[Any, ...]]
    rowcount: int


class AccessWriter(Protocol):
    def execute(self, sql: str, params: Sequence[object] = ()) -> AccessResult:
        ...

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        ...


class AccessDB(Protocol):
    """Where users, tokens, sessions, sign-in codes and the audit log are kept, engine by engine.

    Access SQL is written once, portably: ``?`` placeholders, tables as ``{users}``, ``{tokens}``, ``{sessions}``,
    ``{codes}``, ``{audit}``, the column ``"user"`` quoted; each engine fills in its own names and placeholders.
    """

    location: str

    def read(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """One statement's rows, outside any transaction."""
        ...

    def write(self) -> AbstractContextManager[AccessWriter]:
        """One all-or-nothing transaction, serialised with other writers of the access tables."""
        ...

    def close(self) -> None:
        ...


class Feed(Protocol):
    """Every changeset committed by any writer, published once to subscribers (:mod:`twin.store.feed`)."""

    def subscribe(self, callback: Callable[[Changeset], None]) -> None:
        ...

    def unsubscribe(self, callback: Callable[[Changeset], None]) -> None:
        ...

    def sync(self) -> list[Changeset]:
        """Publish now every changeset committed since the last one published (a cheap read of the log)."""
        ...

    def version(self, layer: str) -> int | None:
        ...


@dataclass(frozen=True)
class Part:
    """One part of a store as ``twin store copy`` moves it: ``kind`` is ``changesets``, ``reports``, ``users``,
    ``tokens`` or ``audit`` (the store's own tables), or ``rows``, ``history``, ``aggregate``, ``cells`` or
    ``shapes`` of ``layer``."""

    kind: str
    layer: str | None = None

    @property
    def name(self) -> str:
        return self.kind if self.layer is None else f"{self.kind}:{self.layer}"


#: Columns of each part as dumped and loaded, in engine-neutral values (UTC text times, 0/1 booleans, ISO WKB).
CHANGESET_COLUMNS = ("id", "time", "author", "source", "layer", "kind", "inserted", "updated", "deleted", "unchanged",
                     "source_crs", "note")
#: Columns of the status reports' log (``twin_reports``) as dumped and loaded.
REPORT_PART_COLUMNS = ("id", "layer", "key", "status", "measured", "observed_at", "recorded_at", "source", "author",
                       "changeset", "applied")


def report_part_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A ``reports`` row as both engines dump it: the measured values as JSON with sorted keys, applied as 0/1."""
    i, j = REPORT_PART_COLUMNS.index("measured"), REPORT_PART_COLUMNS.index("applied")
    measured = orjson.dumps(orjson.loads(row[i]), option=orjson.OPT_SORT_KEYS).decode()
    return (*row[:i], measured, *row[i + 1:j], int(row[j]), *row[j + 1:])


ACCESS_COLUMNS = {
    "users": ("name", "role", "area", "created", "revoked"),
    "tokens": ("id", "user", "hash", "created", "expires", "revoked"),
    "audit": ("id", "time", "user", "role", "action", "outcome", "status", "method", "path", "layer", "count",
              "detail"),
}
#: Every current row: these, then the layer's fields, then ``geom`` (ISO WKB).
ROW_COLUMNS = ("fid", "key", "fp", "version", "changeset", "valid_from", "status", "updated_at")
#: Every superseded version: ``hid``, the row columns, the fields, then these, then ``geom``.
HISTORY_COLUMNS = ("valid_to", "changeset_to", "op")
#: A layer's tile aggregates (the layer itself is the part's): cells, shapes and the state they reflect.
TILE_PART_COLUMNS = {"aggregate": ("changeset", "signature"),
                     "cells": ("level", "cx", "cy", "status", "n", "measure", "sx", "sy"),
                     "shapes": ("level", "cx", "cy", "geom")}


@dataclass(frozen=True)
class LayerInfo:
    """A layer's bookkeeping, carried over by a copy: how many components, the next fid to give, the extent."""

    count: int
    next_fid: int
    extent: BBox | None


class Bulk(Protocol):
    """Reading and writing a store part by part, as it is stored (keys, fids, versions and times kept): what
    ``twin store copy`` moves between engines. Loads are idempotent (a row already there is kept), so a copy
    that stopped halfway resumes from the position recorded with its last committed chunk."""

    def parts(self) -> list[Part]:
        ...

    def dump(self, part: Part, after: object, limit: int) -> tuple[list[tuple[Any, ...]], object]:
        """Up to ``limit`` rows of ``part`` after position ``after`` (``None``: from the start), in order, and the
        position of the last one."""
        ...

    def load(self, part: Part, rows: list[tuple[Any, ...]], progress: str) -> None:
        """Add rows to ``part`` and record ``progress`` (the copy's state) in the same transaction."""
        ...

    def progress(self) -> str | None:
        """The copy state recorded by the last :meth:`load` (``None`` when no copy went on here)."""
        ...

    def layer_info(self, layer: str) -> LayerInfo:
        ...

    def finish_layer(self, layer: str, info: LayerInfo) -> None:
        """Build the layer's indexes and set its bookkeeping once its rows are all in."""
        ...

    def checksum(self, part: Part) -> tuple[int, str]:
        """How many rows ``part`` holds and a digest of them all in order (the same for the same data whatever the
        engine), to verify a copy."""
        ...


class RowDigest:
    """A digest of rows in order, the same whatever engine read them and however they were chunked."""

    def __init__(self) -> None:
        self._hash = hashlib.blake2b(digest_size=16)
        self.rows = 0

    def add(self, rows: list[tuple[Any, ...]]) -> None:
        self._hash.update("".join(map(repr, rows)).encode())
        self.rows += len(rows)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def digest_part(bulk: Bulk, part: Part, chunk: int = 50_000) -> tuple[int, str]:
    """How many rows a part holds and their :class:`RowDigest`, read through ``bulk``."""
    digest, after = RowDigest(), None
    while True:
        rows, after = bulk.dump(part, after, chunk)
        digest.add(rows)
        if not rows or part.kind in TILE_PART_COLUMNS:
            return digest.rows, digest.hexdigest()


@runtime_checkable
class Store(Protocol):
    """A store of city components, one table per catalogue layer, keeping every past version."""

    catalogue: Catalogue
    engine: str  # "geopackage" or "postgis"
    location: str  # the file or the URL (without a password), for messages

    @property
    def feed(self) -> Feed:
        ...

    def follow(self) -> None:
        """Start watching for changesets other processes commit (a service does; a command need not)."""
        ...

    @property
    def identity(self) -> str:
        """The store's lineage (:func:`lineage`), for keying caches derived from it."""
        ...

    def read(self, budget_s: float = 5.0, after: str | None = None) -> AbstractContextManager[Snapshot]:
        """One consistent, budgeted view for the reads of a request or a tile, that sees at least the state
        :meth:`position` named as ``after`` (default :data:`READ_AFTER`)."""
        ...

    def position(self) -> str:
        """A token naming the state just committed, for :meth:`read`'s ``after``."""
        ...

    def turn(self) -> AbstractContextManager[object]:
        """The reading and encoding of one request, taken in turn with the other threads of this process where the
        engine runs in it (GeoPackage: SQLite steps each row in this process, letting go of the GIL per row, so
        threads reading at once pass the GIL to and fro per row); at once where it waits on a server (PostGIS)."""
        ...

    def bulk(self, access: Path | None = None) -> Bulk:
        """Part-by-part dump and load of the whole store (with its access tables), for ``twin store copy``."""
        ...

    def access(self, override: Path | None = None) -> AccessDB:
        """The store's access tables (a GeoPackage keeps them in a file beside it, ``override`` to put it elsewhere)."""
        ...

    def exclusive(self, name: str, wait: bool = True) -> AbstractContextManager[bool]:
        """Work named ``name`` done by one thread of one process of the whole deployment at a time (a build every
        server would otherwise repeat); inside, whether it was got (``False`` at once when ``wait`` is false and
        another holds it)."""
        ...

    def aggregate_writer(self, layer: str) -> AbstractContextManager[AggregateWriter | None]:
        """A transaction on ``layer``'s tile aggregates; ``None`` inside when the store cannot keep them (read-only)."""
        ...

    def writer(self, layer: str, *, author: str, source: str, kind: str = "import",
               source_crs: str | None = None, note: str = "", dry_run: bool = False
               ) -> AbstractContextManager[Any]:
        """One all-or-nothing changeset fed in chunks (``w.add(frame) -> WritePlan``); ``twin import``."""
        ...

    def upsert(self, layer: str, frame: gpd.GeoDataFrame, *, author: str, source: str,
               source_crs: str | None = None) -> Changeset:
        ...

    def edit(self, key: str, *, author: str, properties: dict[str, object] | None = None,
             geometry: object | None = None, source: str = "edit", expect_version: int | None = None) -> Changeset:
        """Change one component; with ``expect_version``, only if it is still at that version (checked inside
        the write transaction: :class:`~twin.errors.VersionConflictError` otherwise, nothing written)."""
        ...

    def delete(self, layer: str, keys: Sequence[str], *, author: str, source: str = "delete",
               expect_version: int | None = None) -> Changeset:
        """Delete components (all or none); ``expect_version`` as for :meth:`edit`, for one key."""
        ...

    def report(self, layer: str, reports: Sequence[Report], *, author: str, source: str = "status") -> Reported:
        """Keep a batch of status reports on ``layer`` in one changeset (:mod:`twin.store.reporting` decides): the
        newest report of a component changes it when newer than what it shows, the others are kept as history; the
        refused ones change nothing. A batch with nothing to keep writes nothing."""
        ...

    def features(self, layer: str, *, bbox: BBox | None = None, keys: Sequence[str] | None = None,
                 limit: int | None = None, offset: int = 0, as_of: str | None = None) -> gpd.GeoDataFrame:
        """Components of a layer as a GeoDataFrame, now or as they were at ``as_of`` (ISO 8601 UTC)."""
        ...

    def get(self, key: str, *, as_of: str | None = None) -> gpd.GeoDataFrame:
        ...

    def history(self, key: str) -> gpd.GeoDataFrame:
        ...

    def layer_of(self, key: str) -> str:
        ...

    def changesets(self, *, layer: str | None = None, limit: int = 100) -> list[Changeset]:
        ...

    def count(self, layer: str) -> int:
        ...

    def extent(self, layer: str) -> BBox | None:
        ...

    def last_changeset(self, layer: str) -> int:
        ...

    def changes_since(self, layer: str, changeset: int) -> LayerChanges:
        ...

    def subscribe(self, callback: Callable[[Changeset], None]) -> None:
        ...

    def unsubscribe(self, callback: Callable[[Changeset], None]) -> None:
        ...

    def close(self) -> None:
        ...

    def __enter__(self) -> Store:
        ...

    def __exit__(self, *exc: object) -> None:
        ...


def lineage(first: tuple[object, ...] | None) -> str:
    """A short name of a store's lineage from its first changeset (id, time, author, source), so caches and
    pyramids made from another store whose changeset numbers happen to match are never taken for this one's;
    a copy of a store to another engine keeps it."""
    return "empty" if first is None else hashlib.blake2b(repr(tuple(first)).encode(), digest_size=6).hexdigest()


def estimate_count(query: FeatureQuery, layer_count: int, extent: BBox | None, cap: int) -> int:
    """``numberMatched`` past the cap: the layer's count scaled by how much of its extent the bbox covers (uniform
    density); just the cap when anything else narrows the query."""
    if query.bbox is None or extent is None or query.selective:
        return cap
    area = max((extent[2] - extent[0]) * (extent[3] - extent[1]), 1e-12)
    covered = 0.0
    for b in query.bbox.parts:
        w = max(0.0, min(b[2], extent[2]) - max(b[0], extent[0]))
        h = max(0.0, min(b[3], extent[3]) - max(b[1], extent[1]))
        covered += w * h
    return round(layer_count * min(1.0, covered / area))


def log_spans(column: str, after: Position, upto: int, mark: str = "?") -> list[tuple[str, list[object]]]:
    """Conditions (with parameters) for the rows after ``after`` up to changeset ``upto`` whose changeset is in
    ``column``: the rest of ``after``'s changeset, then the later changesets, each an index range on (changeset,
    fid); ``mark`` is the engine's parameter mark."""
    spans: list[tuple[str, list[object]]] = []
    if after.fid != WHOLE and after.changeset <= upto:
        spans.append((f"{column} = {mark} AND t.fid > {mark}", [after.changeset, after.fid]))
    if after.changeset < upto:
        spans.append((f"{column} > {mark} AND {column} <= {mark}", [after.changeset, upto]))
    return spans


def log_of(spec: LayerSpec, written: list[tuple[Any, ...]], ended: list[tuple[Any, ...]], limit: int,
           codec: GeometryCodec) -> LayerLog:
    """A :class:`LayerLog` from an engine's rows (``written``: row columns, changeset, version; ``ended``: fid, key,
    geom, changeset_to, version, op), each put in log order and cut at ``limit``."""
    written = sorted(written, key=lambda r: (r[-2], r[0]))[:limit]
    ended = sorted(ended, key=lambda r: (r[3], r[0]))[:limit]
    return LayerLog(Rows(spec, row_columns(spec), [r[:-2] for r in written], codec=codec),
                    [(int(r[-2]), int(r[-1])) for r in written],
                    Rows(spec, ("fid", "key", "geom"), [r[:3] for r in ended], codec=codec),
                    [(int(r[3]), int(r[4]), str(r[5])) for r in ended])


def version_rows(spec: LayerSpec, rows: list[tuple[Any, ...]], codec: GeometryCodec) -> tuple[Rows, list[VersionMeta]]:
    """Rows and :class:`VersionMeta` from an engine's rows (row columns, then the six of the meta), oldest first."""
    rows = sorted(rows, key=lambda r: r[-6])
    return (Rows(spec, row_columns(spec), [r[:-6] for r in rows], codec=codec),
            [VersionMeta(int(r[-6]), int(r[-5]), str(r[-4]), None if r[-3] is None else str(r[-3]),
                         None if r[-2] is None else str(r[-2]), str(r[-1])) for r in rows])


def spans_of(rows: Rows, raw: list[tuple[Any, ...]], width: int, conditions: int) -> Spans:
    """A :class:`Spans` chunk from an engine's rows: ``width`` row columns, then start, end and a 0/1 per condition."""
    arr = np.array([r[width:width + 2 + conditions] for r in raw], dtype=np.int64).reshape(len(raw), 2 + conditions)
    return Spans(rows, arr[:, 0], arr[:, 1], arr[:, 2:].astype(bool))
