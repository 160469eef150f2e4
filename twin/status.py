"""Status reports in (``POST /status``, ``twin status push``): read line by line, checked one by one, kept by the
store in batches — one changeset per layer and batch. A bad report is refused with its line and why; the good ones
around it are kept."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson

from twin.access.principal import Principal
from twin.catalogue import Catalogue, FieldType, LayerSpec
from twin.errors import InvalidQueryError, TwinError
from twin.keys import parse_key
from twin.model.reports import Rejected, Report, Reported
from twin.query.model import instant
from twin.query.search import in_area
from twin.store import Store

#: Reports kept per store batch (one changeset per layer each).
BATCH = 5_000
#: How far ahead of this server's clock an observation may be (clocks drift) before it is "in the future".
CLOCK_SLACK = timedelta(seconds=60)
_MAX_SOURCE = 200


def lines_of(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Numbered non-blank lines of an NDJSON body arriving in chunks."""
    number, rest = 0, b""
    for chunk in chunks:
        rest += chunk
        *whole, rest = rest.split(b"\n")
        for line in whole:
            number += 1
            if line.strip():
                yield number, line
    if rest.strip():
        yield number + 1, rest


def items_of(body: bytes) -> Iterator[tuple[int, bytes]]:
    """Numbered reports of a JSON body: an array of reports, or ``{"reports": [...]}``."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidQueryError(f"the body is not JSON: {exc}; send an array of reports, or NDJSON "
                                "(one report per line) as application/x-ndjson") from None
    if isinstance(doc, dict) and isinstance(doc.get("reports"), list):
        doc = doc["reports"]
    if not isinstance(doc, list):
        raise InvalidQueryError('the body must be an array of reports or {"reports": [...]}')
    for i, item in enumerate(doc, start=1):
        yield i, orjson.dumps(item)


class Intake:
    """Checks reports and hands them to the store, batch by batch, as one user."""

    def __init__(self, store: Store, who: Principal, *, author: str, source: str = "status") -> None:
        self.store = store
        self.catalogue: Catalogue = store.catalogue
        self.who = who
        self.author = author
        self.source = source

    def push(self, lines: Iterable[tuple[int, bytes]]) -> Reported:
        """Keep every good report of ``lines``; the refused ones are listed by line in the answer."""
        total = Reported()
        batch: list[tuple[int, bytes]] = []
        seen = 0
        for item in lines:
            batch.append(item)
            seen += 1
            if len(batch) >= BATCH:
                self._merge(total, self._batch(batch))
                batch = []
        if batch:
            self._merge(total, self._batch(batch))
        if not seen:
            raise InvalidQueryError("no report in the body: send reports as a JSON array or one per line (NDJSON)")
        total.rejected.sort()
        return total

    @staticmethod
    def _merge(total: Reported, part: Reported) -> None:
        total.changesets += part.changesets
        total.applied += part.applied
        total.late += part.late
        total.rejected += part.rejected

    def _batch(self, items: list[tuple[int, bytes]]) -> Reported:
        out = Reported()
        now = datetime.now(UTC)
        by_layer: dict[str, list[Report]] = defaultdict(list)
        for line, raw in items:
            try:
                spec, report = self._check(line, raw, now)
            except TwinError as exc:
                out.rejected.append(Rejected(line, _key_of(raw), str(exc)))
                continue
            by_layer[spec.id].append(report)
        for layer, reports in by_layer.items():
            reports = self._in_area(layer, reports, out)
            if reports:
                self._merge(out, self.store.report(layer, reports, author=self.author, source=self.source))
        return out

    def _check(self, line: int, raw: bytes, now: datetime) -> tuple[LayerSpec, Report]:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidQueryError(f"not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise InvalidQueryError("a report is a JSON object with key, status and/or values, observed_at")
        unknown = set(doc) - {"key", "status", "values", "observed_at", "source"}
        if unknown:
            raise InvalidQueryError(f"unknown member {sorted(unknown)[0]!r}; a report has key, status, values, "
                                    "observed_at and source")
        key = doc.get("key")
        if not isinstance(key, str):
            raise InvalidQueryError("key is missing (the component's location key)")
        spec = self.catalogue.by_code(parse_key(key).code)
        if not self.who.role.writes(spec.id):
            raise InvalidQueryError(f"role {self.who.role.name!r} may not report on layer {spec.id!r}")
        status, values = doc.get("status"), doc.get("values") or {}
        if status is not None and status not in spec.statuses:
            raise InvalidQueryError(f"status {status!r} is not one of {spec.id}'s: {', '.join(spec.statuses)}")
        if not isinstance(values, dict):
            raise InvalidQueryError("values must be an object of measured fields, such as {\"pressure\": 0.3}")
        if status is None and not values:
            raise InvalidQueryError("a report needs a status, values, or both")
        checked = {name: _measured(spec, name, value) for name, value in values.items()}
        when = doc.get("observed_at")
        if not isinstance(when, str):
            raise InvalidQueryError("observed_at is missing: when it was observed (RFC 3339 with a time zone)")
        observed = instant(when, name="observed_at")[0].removesuffix("Z") + "000Z"  # a store time, to the µs
        if observed > (now + CLOCK_SLACK).strftime("%Y-%m-%dT%H:%M:%S.%fZ"):
            raise InvalidQueryError(f"observed_at {when} is in the future (this server's clock: "
                                    f"{now.isoformat(timespec='seconds')})")
        source = doc.get("source", self.source)
        if not isinstance(source, str) or not 0 < len(source) <= _MAX_SOURCE:
            raise InvalidQueryError(f"source must be a text of 1 to {_MAX_SOURCE} characters")
        return spec, Report(line, key, status, checked, observed, source)

    def _in_area(self, layer: str, reports: list[Report], out: Reported) -> list[Report]:
        """The reports on components inside the user's area (all of them for a user without one)."""
        if self.who.area is None:
            return reports
        keys = sorted({r.key for r in reports})
        with self.store.read() as snap:
            rows = snap.by_keys(layer, keys)
        inside = {str(k) for k, ok in zip(rows.column("key"), in_area(rows, self.who), strict=True) if ok}
        found = {str(k) for k in rows.column("key")}
        outside = [r for r in reports if r.key in found and r.key not in inside]
        out.rejected += [Rejected(r.line, r.key, "outside your area") for r in outside]
        return [r for r in reports if r.key in inside or r.key not in found]  # the store refuses unknown keys


def _measured(spec: LayerSpec, name: str, value: object) -> float:
    field = next((f for f in spec.fields if f.name == name), None)
    if field is None or not field.measured:
        allowed = [f.name for f in spec.fields if f.measured]
        raise InvalidQueryError(f"values: {name!r} is not a measured field of {spec.id} "
                                f"({', '.join(allowed) if allowed else 'it has none'})")
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise InvalidQueryError(f"values: {name} must be a number, not {value!r}")
    if field.type is FieldType.integer and not float(value).is_integer():
        raise InvalidQueryError(f"values: {name} must be a whole number, not {value!r}")
    return value


def _key_of(raw: bytes) -> str:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return ""
    key = doc.get("key") if isinstance(doc, dict) else None
    return key if isinstance(key, str) else ""
