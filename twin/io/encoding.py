"""Which text encoding a file's attributes are in, so Chinese values arrive intact.

Shapefiles from Chinese desktop GIS are very often GBK with neither a ``.cpg`` nor a code page in
the ``.dbf`` header. The order of evidence is: ``--encoding``; the ``.cpg`` file; the ``.dbf``
language-driver id (LDID, byte 29 of the header); and finally the text bytes themselves: if they
decode as strict UTF-8 they are UTF-8, otherwise GB18030 (a superset of GBK and GB2312).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from twin.errors import ImportRejectedError

#: How many bytes of text to look at when guessing.
SNIFF_BYTES = 8 * 1024**2
#: dBASE language-driver ids and the code pages they stand for (ESRI's table). 0x57 means "the
#: writer's Windows code page", which says nothing, so it is sniffed like a missing one.
LDID_CODEPAGES = {
    0x01: "CP437", 0x02: "CP850", 0x03: "CP1252", 0x13: "CP932", 0x26: "CP866", 0x4D: "GB18030",
    0x4E: "CP949", 0x4F: "CP950", 0x58: "CP1252", 0x59: "CP1252", 0x64: "CP852", 0x65: "CP866",
    0x78: "CP950", 0x79: "CP949", 0x7A: "GB18030", 0x7B: "CP932", 0xC8: "CP1250", 0xC9: "CP1251",
}
#: Chinese code pages are read as GB18030, which decodes everything GBK and GB2312 do.
_ALIASES = {"gbk": "GB18030", "gb2312": "GB18030", "cp936": "GB18030", "936": "GB18030", "gb18030": "GB18030",
            "utf8": "UTF-8", "utf-8": "UTF-8", "65001": "UTF-8", "88591": "ISO-8859-1", "latin1": "ISO-8859-1"}
_DESTROYED = re.compile(r"\?{2,}|\ufffd")


@dataclass(frozen=True)
class EncodingGuess:
    """The encoding to read text with, and the evidence it came from (shown in the report)."""

    encoding: str
    how: str


def normalise(name: str, where: str) -> str:
    """A code-page name as GDAL and Python both understand it (``936`` and ``GBK`` become GB18030)."""
    raw = name.strip().replace("ANSI ", "").replace("ansi ", "")
    key = raw.lower().replace("_", "-")
    if key in _ALIASES:
        return _ALIASES[key]
    candidate = f"CP{raw}" if raw.isdigit() else raw
    try:
        codecs.lookup(candidate)
    except LookupError:
        raise ImportRejectedError(f"{where}: unknown text encoding {name!r} (try UTF-8, GBK or GB18030)") from None
    return candidate.upper()


def sniff_bytes(data: bytes) -> str:
    """``UTF-8`` when ``data`` decodes as strict UTF-8 (or is ASCII), else ``GB18030``.

    A few bad sequences are tolerated as UTF-8: fixed-width fields cut multi-byte characters in
    half, whereas GBK text fails UTF-8 on nearly every Chinese character.
    """
    if data.isascii():
        return "UTF-8"
    try:
        codecs.getincrementaldecoder("utf-8")(errors="strict").decode(data, final=False)
        return "UTF-8"
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", errors="replace")
    non_ascii = sum(1 for c in text if ord(c) > 127)
    if text.count("\ufffd") <= 0.02 * non_ascii:
        return "UTF-8"
    return "GB18030"


def _dbf_text_bytes(dbf: Path) -> tuple[int, bytes]:
    """The LDID byte and a sample of the text (field names and records) of a ``.dbf``."""
    with open(dbf, "rb") as fh:
        head = fh.read(32)
        if len(head) < 32:
            raise ImportRejectedError(f"{dbf.name}: the .dbf attribute table is truncated or damaged")
        header_len = int.from_bytes(head[8:10], "little")
        names = fh.read(max(header_len - 32, 0))
        return head[29], names + fh.read(SNIFF_BYTES)


def shapefile_encoding(dbf: Path, cpg: Path | None, override: str | None) -> EncodingGuess:
    """The encoding of a shapefile's attributes, with the evidence."""
    where = dbf.name
    if override:
        return EncodingGuess(normalise(override, where), "--encoding")
    if cpg is not None:
        text = cpg.read_bytes().decode("ascii", errors="ignore").strip()
        if text:
            return EncodingGuess(normalise(text, cpg.name), f".cpg file ({text})")
    ldid, sample = _dbf_text_bytes(dbf)
    if ldid in LDID_CODEPAGES:
        return EncodingGuess(LDID_CODEPAGES[ldid], f".dbf code page (LDID 0x{ldid:02X})")
    guess = sniff_bytes(sample)
    return EncodingGuess(guess, f"detected from the text bytes (no .cpg, {'no' if ldid == 0 else 'generic'} "
                                "code page in the .dbf)")


def text_file_encoding(path: Path, override: str | None) -> EncodingGuess:
    """The encoding of a CSV (or GeoJSON) file: byte-order mark, else strict UTF-8, else GB18030."""
    if override:
        return EncodingGuess(normalise(override, path.name), "--encoding")
    with open(path, "rb") as fh:
        sample = fh.read(SNIFF_BYTES)
    if sample.startswith(codecs.BOM_UTF8):
        return EncodingGuess("utf-8-sig", "UTF-8 byte-order mark")
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return EncodingGuess("utf-16", "UTF-16 byte-order mark")
    guess = sniff_bytes(sample)
    return EncodingGuess(guess, "detected from the text bytes")


def transcode(path: Path, encoding: str, target: Path) -> Path:
    """Copy a text file into UTF-8 (for readers such as GDAL's GeoJSON that only take UTF-8)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with open(path, "rb") as src, open(target, "w", encoding="utf-8") as dst:
            while block := src.read(1024**2):
                dst.write(decoder.decode(block))
            dst.write(decoder.decode(b"", final=True))
    except UnicodeDecodeError as exc:
        raise ImportRejectedError(f"{path.name}: the text is neither UTF-8 nor {encoding} ({exc.reason} at byte "
                                  f"{exc.start}); pass --encoding") from None
    return target


def destroyed_text(frame: pd.DataFrame, rows: np.ndarray) -> list[tuple[str, int, int, str]]:
    """String fields with runs of ``?`` or replacement characters: text lost before it reached twin.

    Returns ``(field, count, first_file_row, example)`` per affected field. Each column is first
    searched as one joined string, so clean data (nearly all of it) costs one pass at C speed.
    """
    out = []
    for name in frame.columns:
        col = frame[name]
        if col.dtype.kind in "biufcmM":
            continue
        values = col.tolist()
        joined = "\x00".join(v for v in values if isinstance(v, str))
        if "??" not in joined and "\ufffd" not in joined:
            continue
        idx = [i for i, v in enumerate(values) if isinstance(v, str) and _DESTROYED.search(v)]
        if idx:
            out.append((str(name), len(idx), int(rows[idx[0]]), str(values[idx[0]])[:40]))
    return out
