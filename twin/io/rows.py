"""Turning each chunk of a file into rows for the store: map, reproject, repair, check, write.

Per-row problems are recorded against the file's own row numbers; rows the store itself refuses
(``SchemaViolationError``, whose rows count from 0 within the chunk written) are translated back to
file rows, set aside, and the rest of the chunk is written. A :class:`RowObserver` may watch what
happens to each row (the web import page draws it); it never changes what is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from twin.catalogue import LayerSpec
from twin.crs import LONLAT, TwinCRS, transform_geoms
from twin.errors import ImportRejectedError, SchemaViolationError
from twin.io import checks, encoding
from twin.io.duplicates import DuplicateCheck
from twin.io.mapping import FieldMapping
from twin.io.readers import Chunk
from twin.io.repair import check_geometries
from twin.io.report import SAMPLE_ROWS, ImportReport
from twin.store.base import WritePlan

if TYPE_CHECKING:
    from twin.io.importer import ImportOptions

#: A value this long is not data but a damaged or hostile file: the whole file is refused.
ABSURD_CHARS = 1_000_000


class RowObserver(Protocol):
    """Told what becomes of each row that is read: planned (with its key and action) or rejected."""

    def planned(self, plan: WritePlan) -> None:
        """Rows the store planned: ``plan.frame`` (with ``key``) and ``plan.action`` per row."""

    def rejected(self, geoms: NDArray[np.object_], reasons: list[str]) -> None:
        """Rows set aside, with their geometries (``None`` when missing) and why."""


def _text_lengths(col: pd.Series) -> np.ndarray:
    """The characters of each text value (0 for any other value); a text column's distinct values measured once."""
    if pd.api.types.infer_dtype(col, skipna=True) not in ("string", "empty"):  # mixed, lists: one by one
        return np.fromiter((len(v) if isinstance(v, str) else 0 for v in col.tolist()), np.int64, len(col))
    codes, uniques = pd.factorize(col)  # missing values get code -1, which picks the 0 appended last
    return np.append(np.fromiter(map(len, uniques.tolist()), np.int64, len(uniques)), 0)[codes]


class ChunkWriter:
    """Feeds a file's chunks to a store writer, keeping the report up to date."""

    def __init__(self, spec: LayerSpec, mapping: FieldMapping, crs: TwinCRS, options: ImportOptions,
                 report: ImportReport, total: int, *, duplicates: DuplicateCheck | None = None,
                 observer: RowObserver | None = None) -> None:
        self.spec, self.mapping, self.crs, self.options, self.report = spec, mapping, crs, options, report
        self.sample = checks.CoordinateSample(total)
        self.destroyed: dict[str, list[Any]] = {}
        self.duplicates, self.observer = duplicates, observer

    def add(self, writer: Any, chunk: Chunk) -> None:
        """Check one chunk and hand its good rows to ``writer`` (a store ``LayerWriter``)."""
        report = self.report
        report.read += len(chunk.rows)
        attrs = self.mapping.apply(chunk.frame).reset_index(drop=True)
        self._absurd(attrs, chunk.rows)
        self._destroyed(attrs, chunk.rows)
        keep = np.ones(len(chunk.rows), dtype=bool)
        reasons = dict(chunk.unreadable)
        geoms = transform_geoms(chunk.geoms, self.crs, LONLAT)
        checked = check_geometries(geoms, self.spec.geometry)
        if checked.wrong_kind:
            self._mixed(checked.wrong_kind, chunk.rows, checked.geoms)
        for pos, why in checked.rejected.items():
            reasons.setdefault(pos, why)
        self._reject(sorted(reasons.items()), chunk.rows, checked.geoms, keep)
        for pos, why in checked.repaired.items():
            report.repair(chunk.rows[pos], why)
        self._extent(checked.geoms, chunk.rows, keep)
        frame = gpd.GeoDataFrame(attrs[keep].reset_index(drop=True),
                                 geometry=gpd.GeoSeries(checked.geoms[keep], crs="EPSG:4326"))
        self._write(writer, frame, chunk.rows[keep])

    def _reject(self, reasons: list[tuple[int, str]], rows: np.ndarray, geoms: np.ndarray, keep: np.ndarray) -> None:
        """Set aside the rows at the positions in ``reasons``, whose geometry could not be used."""
        for pos, why in reasons:
            keep[pos] = False
            self.report.rejected += 1
            self.report.problem(rows[pos], "geometry", why)
        if reasons and self.observer is not None:
            at = np.array([pos for pos, _ in reasons], dtype=np.int64)
            self.observer.rejected(geoms[at], [f"geometry: {why}" for _, why in reasons])

    def _absurd(self, attrs: pd.DataFrame, rows: np.ndarray) -> None:
        for name in attrs.columns:
            col = attrs[name]
            if col.dtype.kind in "biufcmM":
                continue
            lengths = _text_lengths(col)
            if len(lengths) and lengths.max() > ABSURD_CHARS:
                r = int(lengths.argmax())
                raise ImportRejectedError(
                    f"{self.report.source}: row {rows[r]}, field {name!r}: a value of {int(lengths[r]):,} characters; "
                    "the file is damaged or is not what it claims to be; nothing was imported"
                )

    def _destroyed(self, attrs: pd.DataFrame, rows: np.ndarray) -> None:
        for name, count, row, example in encoding.destroyed_text(attrs, rows):
            seen = self.destroyed.setdefault(name, [0, row, example])
            seen[0] += count

    def _mixed(self, wrong: dict[int, str], rows: np.ndarray, geoms: np.ndarray) -> None:
        pos, kind = next(iter(sorted(wrong.items())))
        types = sorted({str(t) for t in shapely.get_type_id(geoms[~shapely.is_missing(geoms)]).tolist()})
        raise ImportRejectedError(
            f"{self.report.source}: row {rows[pos]} is a {kind} but layer {self.spec.id!r} takes "
            f"{self.spec.geometry.value.replace('_', ' ')} geometries ({len(wrong):,} such rows in features "
            f"{rows[0]:,}–{rows[-1]:,}; geometry type ids seen: {', '.join(types)}); the file mixes geometry "
            "kinds, so nothing was imported: split it by geometry type and import each part into its layer"
        )

    def _extent(self, geoms: np.ndarray, rows: np.ndarray, keep: np.ndarray) -> None:
        if self.options.allow_outside or not keep.any():
            return
        idx = np.flatnonzero(keep)
        out = idx[checks.outside(geoms[idx], self.options.extent)]
        ext = ", ".join(f"{v:g}" for v in self.options.extent)
        for pos in out.tolist():
            keep[pos] = False
            self.report.held_back += 1
            self.report.problem(rows[pos], "geometry", f"outside the city extent ({ext}); held back "
                                                       "(--allow-outside imports it, --extent changes the extent)")

    def _write(self, writer: Any, frame: gpd.GeoDataFrame, rows: np.ndarray) -> None:
        if not len(frame):
            return
        try:
            plan = writer.add(frame)
        except SchemaViolationError as exc:
            why: dict[int, list[str]] = {}
            for r, name, message in exc.problems:
                self.report.problem(rows[r], name, message)
                why.setdefault(r, []).append(f"{name}: {message}")
            bad = sorted(why)
            self.report.rejected += len(bad)
            if self.observer is not None:
                self.observer.rejected(frame.geometry.to_numpy()[bad], ["; ".join(why[r]) for r in bad])
            good = np.setdiff1d(np.arange(len(frame)), bad)
            frame, rows = frame.iloc[good].reset_index(drop=True), rows[good]
            if not len(frame):
                return
            try:
                plan = writer.add(frame)
            except SchemaViolationError as again:
                raise ImportRejectedError(f"{self.report.source}: the store refused the rows again: {again}") from None
        self._record(plan, rows)

    def _record(self, plan: WritePlan, rows: np.ndarray) -> None:
        report = self.report
        for action, attr in (("insert", "inserted"), ("update", "updated"), ("unchanged", "unchanged")):
            setattr(report, attr, getattr(report, attr) + plan.count(action))
            room = SAMPLE_ROWS - len(report.samples.get(action, []))
            for i in np.flatnonzero(plan.action == action)[:max(room, 0)].tolist():
                report.sample(action, _sample_row(plan.frame, i, int(rows[i])))
        geoms = plan.frame.geometry.to_numpy()
        report.grow_bbox(tuple(shapely.total_bounds(geoms).tolist()))
        self.sample.add(geoms)
        if self.duplicates is not None:
            self.duplicates.add(plan, rows)
        if self.observer is not None:
            self.observer.planned(plan)

    def finish(self) -> None:
        """Turn what was collected into warnings, and fail the file when the policy says so."""
        report = self.report
        for name, (count, row, example) in self.destroyed.items():
            report.warnings.append(
                f"field {name!r}: {count:,} value(s) contain runs of '?' or replacement characters (first at row "
                f"{row}: {example!r}); the text was destroyed before it reached twin (saved in a code page without "
                "Chinese): fix the source file, twin cannot restore it")
        importable = report.inserted + report.updated + report.unchanged
        if report.read and not importable:
            first = report.problems[0]
            raise ImportRejectedError(
                f"{report.source}: no row of the file can be imported ({report.rejected:,} rejected, "
                f"{report.held_back:,} outside the city extent; first: row {first.row}, {first.field}: "
                f"{first.message})")
        if self.options.strict and (report.rejected or report.held_back):
            first = report.problems[0]
            raise ImportRejectedError(
                f"{report.source}: --strict: {report.rejected + report.held_back:,} row(s) have problems (first: "
                f"row {first.row}, {first.field}: {first.message}); nothing was imported")


def _sample_row(frame: gpd.GeoDataFrame, i: int, row: int) -> dict[str, Any]:
    values = {str(k): v for k, v in frame.iloc[i].drop(labels=[frame.geometry.name]).items() if v is not None}
    wkt = shapely.to_wkt(frame.geometry.iloc[i], rounding_precision=6)
    return {"row": row, **{k: (v if isinstance(v, int | float | str) else str(v)) for k, v in values.items()},
            "geometry": wkt if len(wkt) <= 80 else wkt[:77] + "..."}
