"""The change log as its readers walk it: a position in it (a cursor), and what one layer's part of it holds.

Every changeset is one layer's; inside the log, events are ordered by changeset, then by component id (``fid``):
a version written (a component created or updated) or a version ended by a delete. A position names the last
event read; a reader resumes after it, so a page, a stream and a reconnect see every event once, in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from twin.errors import InvalidQueryError
from twin.model.rows import Rows

#: ``fid`` of a position past every event of its changeset.
WHOLE = 2**62
_CURSOR = re.compile(r"^(\d{1,18})(?:\.(\d{1,18}))?\Z")


class Position(NamedTuple):
    """After the event of component ``fid`` in ``changeset`` (``fid = WHOLE``: after the whole changeset)."""

    changeset: int
    fid: int = WHOLE

    def __str__(self) -> str:
        return str(self.changeset) if self.fid == WHOLE else f"{self.changeset}.{self.fid}"

    @classmethod
    def parse(cls, text: str, *, name: str = "since") -> Position:
        """``"123"`` (after changeset 123) or ``"123.456"`` (after component 456 in it), as this class writes."""
        m = _CURSOR.match(text.strip())
        if m is None:
            raise InvalidQueryError(f"{name} must be a cursor this server gave (like 1234 or 1234.56), not {text!r}")
        return cls(int(m[1]), WHOLE if m[2] is None else int(m[2]))


#: After every event a store can hold: the log read up to it is complete.
BEYOND = Position(WHOLE)


class LogChangeset(NamedTuple):
    """A changeset as the log shows it."""

    id: int
    layer: str
    time: str
    kind: str


@dataclass
class LayerLog:
    """One layer's events after a position, in log order, each list cut at the engine's ``limit``.

    ``written``: the versions written (the layer's usual row columns), with ``written_at`` their ``(changeset,
    version)``; ``ended``: the versions a later changeset ended (``fid, key, geom``), with ``ended_at`` their
    ``(changeset that ended it, version, "update" | "delete")``. An update is a version written and the one it ended,
    at the same position.
    """

    written: Rows
    written_at: list[tuple[int, int]]
    ended: Rows
    ended_at: list[tuple[int, int, str]]


class VersionMeta(NamedTuple):
    """When a version of a component was current, and who wrote it: ``valid_to`` and ``ended`` (``"update"`` or
    ``"delete"``) are ``None`` for the current version."""

    version: int
    changeset: int
    valid_from: str
    valid_to: str | None
    ended: str | None
    author: str


@dataclass
class Spans:
    """Versions of a layer that began or ended after a changeset (a chunk of them): their rows (``fid``, the fields
    asked for, ``geom``), the changeset that wrote each (``start``) and the one that ended it (``end``, 0 while it is
    current), and for each condition asked whether the version met it (``holds``, one column per condition)."""

    rows: Rows
    start: NDArray[np.int64]
    end: NDArray[np.int64]
    holds: NDArray[np.bool_]
