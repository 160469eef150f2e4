"""What an import did (or, in a dry run, would do): counts, CRS, encoding, and every per-row problem.

The report is plain data; ``twin import`` renders it with rich and ``--report FILE.json`` writes
:meth:`ImportReport.to_dict` as JSON. Row numbers are the file's: the feature number (1-based) for GIS
formats and the line number for CSV.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

#: Per-row problems kept in full; beyond this only the counts grow.
MAX_PROBLEMS = 1000
#: Sample rows kept per action for dry runs.
SAMPLE_ROWS = 5


@dataclass(frozen=True)
class Problem:
    """One problem with one row: the file row number, the field (or ``geometry``) and what is wrong."""

    row: int
    field: str
    message: str


@dataclass
class ImportReport:
    """Everything an import did or would do; counts refer to file rows."""

    source: str
    layer: str
    format: str = ""
    encoding: str | None = None
    encoding_how: str | None = None
    crs: str = ""
    crs_how: str = ""
    coordinates: dict[str, str] = field(default_factory=dict)  # CSV: {"lon": column, "lat": column} or {"wkt": ...}
    coordinates_how: str = ""
    dry_run: bool = False
    strict: bool = False
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    held_back: int = 0
    repaired: int = 0
    duplicates: int = 0
    bbox: tuple[float, float, float, float] | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    repairs: list[Problem] = field(default_factory=list)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    changeset: int | None = None
    seconds: float = 0.0

    def problem(self, row: int, field_name: str, message: str) -> None:
        """Record one per-row problem (kept in full up to :data:`MAX_PROBLEMS`)."""
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(int(row), field_name, message))

    def repair(self, row: int, message: str) -> None:
        """Record one repaired geometry."""
        self.repaired += 1
        if len(self.repairs) < MAX_PROBLEMS:
            self.repairs.append(Problem(int(row), "geometry", f"repaired: {message}"))

    def sample(self, action: str, row: dict[str, Any]) -> None:
        """Keep a few example rows per action (insert, update, unchanged, rejected) for dry runs."""
        rows = self.samples.setdefault(action, [])
        if len(rows) < SAMPLE_ROWS:
            rows.append(row)

    def grow_bbox(self, bounds: tuple[float, float, float, float]) -> None:
        """Widen the bounding box of the rows that go into the store."""
        if self.bbox is None:
            self.bbox = bounds
        else:
            b = self.bbox
            self.bbox = (min(b[0], bounds[0]), min(b[1], bounds[1]), max(b[2], bounds[2]), max(b[3], bounds[3]))

    def summary(self) -> str:
        """One line for the audit trail: what was done to which file, with the counts."""
        what = "dry run" if self.dry_run else f"changeset {self.changeset}"
        return (f"{what} of {self.source}: read {self.read}, inserted {self.inserted}, updated {self.updated}, "
                f"rejected {self.rejected}")

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        data = asdict(self)
        data["problems_truncated"] = self.problem_count > len(self.problems)
        return data

    def write_json(self, path: Path) -> None:
        """Write the report as JSON (UTF-8, Chinese kept readable)."""
        path.write_bytes(orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2, default=str))


@dataclass
class ExportReport:
    """What an export wrote."""

    layer: str
    format: str
    paths: list[str]
    count: int
    crs: str
    renamed_fields: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
