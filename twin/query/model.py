"""Reading what a client wrote into query values (:mod:`twin.model.query`): boxes, time intervals, page sizes.

Parsing takes the CRS the caller wrote in and converts to lon/lat, so nothing after it thinks about axis order.
Times become twin's UTC text (milliseconds and a ``Z``), as the store keeps ``updated_at``.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time

from twin.crs import TwinCRS
from twin.errors import InvalidQueryError
from twin.model.query import MAX_LIMIT, BBox, TimeInterval
from twin.query.crs import to_lonlat_box

#: A '+08:00' offset whose '+' was not URL-encoded arrives as ' 08:00'.
_SPACED_OFFSET = re.compile(r" (\d{2}:\d{2})$")
_LAST_MILLISECOND = time(23, 59, 59, 999_000)


def parse_bbox(text: str, crs: TwinCRS, *, name: str = "bbox") -> BBox:
    """Read ``minx,miny,maxx,maxy`` (or six numbers with heights) written in ``crs``'s axis order."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) not in (4, 6):
        raise InvalidQueryError(f"{name} needs 4 numbers (or 6 with heights) separated by commas, "
                                f"got {len(parts)}: {text[:80]!r}")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise InvalidQueryError(f"{name} must be numbers separated by commas, got {text[:80]!r}") from None
    if not all(math.isfinite(v) for v in nums):
        raise InvalidQueryError(f"{name} must be finite numbers, got {text[:80]!r}")
    if len(nums) == 6:
        if nums[2] > nums[5]:
            raise InvalidQueryError(f"{name}: the lower height {nums[2]} is above the upper one {nums[5]}")
        nums = [nums[0], nums[1], nums[3], nums[4]]
    return BBox(*to_lonlat_box(nums, crs, name))


def parse_interval(text: str) -> TimeInterval:
    """An RFC 3339 instant, a date, or an interval ``start/end`` with ``..`` for open ends."""
    raw = str(text).strip()
    if "/" not in raw:
        start, end = instant(raw, name="datetime")
        return TimeInterval(start, end)
    pieces = raw.split("/")
    if len(pieces) != 2:
        raise InvalidQueryError(f"datetime {raw[:80]!r}: an interval has exactly one '/'")
    lo = None if pieces[0] in ("..", "") else instant(pieces[0], name="datetime start")[0]
    hi = None if pieces[1] in ("..", "") else instant(pieces[1], name="datetime end")[1]
    if lo is None and hi is None:
        raise InvalidQueryError("datetime: an interval needs at least one bound ('../..' is not allowed)")
    if lo is not None and hi is not None and lo > hi:
        raise InvalidQueryError(f"datetime {raw[:80]!r}: the interval ends before it starts")
    return TimeInterval(lo, hi)


def gpkg_time(moment: datetime | date) -> str:
    """A date or time as the store writes ``updated_at``: UTC, milliseconds, ``Z``.

    An instant whose UTC time falls outside the years 1 to 9999 (``9999-12-31T23:00:00-02:00``) is an
    :class:`InvalidQueryError`.
    """
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time(), tzinfo=UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise InvalidQueryError(f"{moment.isoformat()} lies outside the years 1 to 9999 once in UTC") from None
    return utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def instant(text: str, *, name: str) -> tuple[str, str]:
    """The first and last millisecond an RFC 3339 instant covers (a whole day for a date), as the store writes
    ``updated_at``; an :class:`InvalidQueryError` naming ``name`` if the text is neither."""
    raw = _SPACED_OFFSET.sub(r"+\1", text.strip())
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return gpkg_time(day), gpkg_time(datetime.combine(day, _LAST_MILLISECOND, tzinfo=UTC))
        moment = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise InvalidQueryError(f"{name} {raw[:80]!r} is not an RFC 3339 date-time such as "
                                "2024-05-01T08:00:00Z, a date such as 2024-05-01, or '..'") from None
    if moment.tzinfo is None:
        raise InvalidQueryError(f"{name} {raw[:80]!r} needs a time zone (add Z for UTC or +08:00)")
    stamp = gpkg_time(moment)
    return stamp, stamp


def clamp_limit(value: int) -> int:
    """A page size between 1 and :data:`MAX_LIMIT`; below 1 is an error, above the maximum is clamped."""
    if value < 1:
        raise InvalidQueryError(f"limit must be at least 1, not {value}")
    return min(value, MAX_LIMIT)


def parse_offset(value: int) -> int:
    """A non-negative offset."""
    if value < 0:
        raise InvalidQueryError(f"offset must be 0 or more, not {value}")
    if value > 2**62:
        raise InvalidQueryError(f"offset {value} is too large")
    return value
