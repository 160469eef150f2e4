"""Stores of city components: the typed interface and its backends."""

from twin.store.base import Changeset, Store, WritePlan
from twin.store.geopackage import GeoPackageStore, open_store

__all__ = ["Changeset", "GeoPackageStore", "Store", "WritePlan", "open_store"]
