"""Status reports: what a sensor or an officer observed about one component, and when.

Two times are kept: when it happened (``observed_at``, the valid time) and when twin learned it (the changeset's
time, the recorded time). A report changes the component only when it is newer than the last one applied to it; a
late one is kept in the log, in its true place, without rewriting what was recorded since.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class Report(NamedTuple):
    """One report, checked: ``line`` numbers it in its batch (1-based), ``observed_at`` is a store time (µs, UTC)."""

    line: int
    key: str
    status: str | None
    values: dict[str, float]
    observed_at: str
    source: str


class KeptReport(NamedTuple):
    """A report as the log keeps it: both its times (store times, µs, UTC), what it said, who sent it, the changeset
    that recorded it and whether it changed its component (``False``: late, kept as history only)."""

    observed_at: str
    recorded_at: str
    status: str | None
    values: dict[str, float]
    source: str
    author: str
    changeset: int
    applied: bool


class Rejected(NamedTuple):
    """A report refused, and why."""

    line: int
    key: str
    error: str


@dataclass
class Reported:
    """What one batch did: the changesets that recorded it (one per layer; none when nothing was kept), how many reports
    changed their component (``applied``) or were kept as history only (``late``), and the refused ones."""

    changesets: list[int] = field(default_factory=list)
    applied: int = 0
    late: int = 0
    rejected: list[Rejected] = field(default_factory=list)
