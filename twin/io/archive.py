"""Safe extraction of the one dataset a GIS user zipped up, bounded against hostile archives.

Only the members of the chosen dataset are extracted (a shapefile's sidecars, or one GeoPackage,
GeoJSON, FlatGeobuf or CSV file), never the whole archive. Entries that climb out of the target
folder (``../``), absolute paths and links are refused, and so are archives whose declared sizes or
compression ratios are out of bounds; the bytes actually written are counted too, so a member that
lies about its size cannot fill the disk.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from twin.errors import ImportRejectedError

#: Refuse archives that would unpack to more than this many bytes in total.
MAX_UNPACKED_BYTES = 4 * 1024**3
#: Refuse members that expand more than this many times (zip bombs reach thousands).
MAX_RATIO = 200
#: Ratios are only checked above this size: tiny, very compressible sidecar files are normal.
RATIO_FLOOR_BYTES = 1024**2
_COPY_BLOCK = 1024**2


@dataclass(frozen=True)
class Limits:
    """Bounds on what an archive may unpack to."""

    max_bytes: int = MAX_UNPACKED_BYTES
    max_ratio: float = MAX_RATIO


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's name, decoded the way Chinese zip tools wrote it.

    Zip entries without the UTF-8 flag carry bytes in the creator's code page: on Chinese Windows
    that is GBK, which :mod:`zipfile` mis-decodes as CP437. Re-read those bytes as UTF-8, else GB18030.
    """
    if info.flag_bits & 0x800:
        return info.filename
    raw = info.filename.encode("cp437", errors="replace")
    for enc in ("utf-8", "gb18030"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return info.filename


def _safe_parts(archive: Path, name: str) -> tuple[str, ...]:
    posix = name.replace("\\", "/")
    path = PurePosixPath(posix)
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":") or ".." in path.parts:
        raise ImportRejectedError(
            f"{archive.name}: refusing the archive: entry {name!r} points outside the archive "
            "(absolute path or '..'); re-create the zip from the files themselves"
        )
    return tuple(p for p in path.parts if p not in ("", "."))


def list_members(archive: Path, limits: Limits) -> dict[str, zipfile.ZipInfo]:
    """The archive's file entries by decoded, checked relative name; refuses unsafe or oversized archives."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportRejectedError(f"{archive.name}: not a readable zip archive ({exc})") from None
    with zf:
        members: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in zf.infolist():
            name = member_name(info)
            parts = _safe_parts(archive, name)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ImportRejectedError(f"{archive.name}: refusing the archive: entry {name!r} is a link")
            if info.is_dir() or not parts:
                continue
            total += info.file_size
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > RATIO_FLOOR_BYTES and ratio > limits.max_ratio:
                raise ImportRejectedError(
                    f"{archive.name}: refusing the archive: entry {name!r} expands {ratio:,.0f} times "
                    f"(limit {limits.max_ratio:,.0f}); this looks like a zip bomb"
                )
            if total > limits.max_bytes:
                raise ImportRejectedError(
                    f"{archive.name}: refusing the archive: it unpacks to more than {limits.max_bytes:,} bytes; "
                    "unzip it yourself and import the dataset file"
                )
            members["/".join(parts)] = info
    return members


def extract(archive: Path, members: dict[str, zipfile.ZipInfo], names: list[str], target: Path,
            limits: Limits) -> list[Path]:
    """Extract ``names`` (keys of :func:`list_members`) into ``target``, counting every byte written."""
    written = 0
    out: list[Path] = []
    with zipfile.ZipFile(archive) as zf:
        for name in names:
            dest = target.joinpath(*name.split("/"))
            dest.parent.mkdir(parents=True, exist_ok=True)
            info = members[name]
            try:
                with zf.open(info) as src, open(dest, "wb") as dst:
                    while block := src.read(_COPY_BLOCK):
                        written += len(block)
                        if written > limits.max_bytes:
                            raise ImportRejectedError(
                                f"{archive.name}: refusing the archive: it unpacks to more than "
                                f"{limits.max_bytes:,} bytes")
                        dst.write(block)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                raise ImportRejectedError(f"{archive.name}: entry {name!r} is damaged ({exc})") from None
            out.append(dest)
    return out


def remove_tree(path: Path) -> None:
    """Remove an extraction folder, ignoring what is already gone."""
    shutil.rmtree(path, ignore_errors=True)
