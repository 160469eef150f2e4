"""Turning what a user typed into :class:`ImportOptions`: the one place ``twin import`` and the HTTP form share.

Both front ends pass the same typed arguments, as text where the user typed text (an extent, ``--map``
pairs, a YAML mapping document), so both accept and refuse exactly the same input with the same words.
"""

from __future__ import annotations

from collections.abc import Sequence

from twin.errors import InvalidQueryError
from twin.io.importer import ImportOptions
from twin.io.mapping import parse_mapping, parse_pairs
from twin.store.base import BBox


def parse_bbox(text: str, flag: str) -> BBox:
    """``minx,miny,maxx,maxy`` as four floats in order, or a clear error naming ``flag``."""
    try:
        v = [float(p) for p in text.split(",")]
    except ValueError:
        v = []
    if len(v) != 4 or v[0] >= v[2] or v[1] >= v[3]:
        raise InvalidQueryError(f"{flag} {text!r}: give minx,miny,maxx,maxy in lon/lat, such as 121.4,31.1,121.6,31.3")
    return v[0], v[1], v[2], v[3]


def _given(text: str | None) -> str | None:
    """``None`` for an option left empty (an HTML form sends empty fields)."""
    return text.strip() if text is not None and text.strip() else None


def import_options(*, city_bbox: BBox, author: str, source_layer: str | None = None, encoding: str | None = None,
                   crs: str | None = None, lon: str | None = None, lat: str | None = None,
                   maps: Sequence[str] = (), mapping: str | None = None, mapping_name: str = "mapping",
                   extent: str | None = None, allow_outside: bool = False, dry_run: bool = False,
                   strict: bool = False, note: str = "") -> ImportOptions:
    """The options of one import.

    Parameters
    ----------
    city_bbox
        The configured city extent, used unless ``extent`` (``minx,miny,maxx,maxy``) is given.
    maps
        ``SOURCE_COLUMN=field`` pairs; they override the pairs of ``mapping``.
    mapping, mapping_name
        A YAML mapping document (``fields:`` and ``values:``) and how to name it in errors (its file name).
    """
    doc = _given(mapping)
    pairs, values = parse_mapping(doc, mapping_name) if doc else ({}, {})
    pairs.update(parse_pairs(list(maps)))
    area = _given(extent)
    return ImportOptions(
        source_layer=_given(source_layer), encoding=_given(encoding), crs=_given(crs), lon=_given(lon),
        lat=_given(lat), mapping=pairs, values=values,
        extent=parse_bbox(area, "--extent") if area else city_bbox, allow_outside=allow_outside,
        dry_run=dry_run, strict=strict, author=author, note=note.strip())
