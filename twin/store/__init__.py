"""Stores of city components: the typed contract (:mod:`twin.store.base`) and its engines.

``open_store(target, catalogue)`` is the one way in: a path opens (or creates) a GeoPackage file, a
``postgresql://`` URL a PostGIS store. Nothing outside ``twin/store/`` imports an engine.
"""

from __future__ import annotations

from pathlib import Path

from twin.catalogue import Catalogue
from twin.errors import StoreError
from twin.store.base import READ_AFTER, Changeset, Snapshot, Store, WritePlan


def is_url(target: str | Path) -> bool:
    """Whether ``target`` names a PostGIS store (a ``postgresql://`` URL) rather than a file."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def open_store(target: str | Path, catalogue: Catalogue, *, create: bool = True, read: str | None = None,
               pool_size: int = 16) -> Store:
    """Open the store at ``target``: a GeoPackage path, or a PostGIS URL; ``create`` makes it when missing.

    For PostGIS, ``read`` names a hot standby to serve reads, and ``pool_size`` bounds the connections each of
    the primary and the standby gets from this process (besides one for the change listener and one per write).
    """
    if is_url(target):
        from twin.store.postgis.store import PostgisStore

        return PostgisStore(str(target), catalogue, create=create, read_url=read, pool_size=pool_size)
    if read:
        raise StoreError(f"{target}: a read replica ({read}) serves PostGIS stores only")
    from twin.store.gpkg.store import GeoPackageStore

    return GeoPackageStore(Path(target), catalogue, create=create)


def exists(target: str | Path) -> bool:
    """Whether a store is there: a non-empty file, or a schema holding one (a database that cannot be reached is a
    :class:`~twin.errors.StoreUnavailableError`)."""
    if is_url(target):
        from twin.store.postgis.store import store_exists

        return store_exists(str(target))
    path = Path(target)
    return path.is_file() and path.stat().st_size > 0


def remove(target: str | Path) -> None:
    """Delete the store at ``target`` with everything in it (``twin demo --force``); a missing one is no error."""
    if is_url(target):
        from twin.store.postgis.store import drop_store

        drop_store(str(target))
        return
    for suffix in ("", "-wal", "-shm", "-journal", ".lock"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)


__all__ = ["READ_AFTER", "Changeset", "Snapshot", "Store", "WritePlan", "exists", "is_url", "open_store", "remove"]
