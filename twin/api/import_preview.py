"""What an import did to each row, for drawing on a map: insert, update, unchanged, or reject.

:func:`twin.io.import_file` reports counts and problems; the web import page also shows every row in
place. :class:`RecordingStore` stands in for the store during the import and watches what passes
through its writer, without changing any behaviour: the plans the store makes (keys and actions)
and the rows it refuses (with their geometries and the reasons).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from twin.errors import SchemaViolationError
from twin.store.geopackage import GeoPackageStore

#: Most rows drawn in a preview; the report's counts always cover the whole file.
MAX_PREVIEW = 5000


class _RecordingWriter:
    """A store ``LayerWriter`` that remembers what each ``add`` planned or refused."""

    def __init__(self, writer: Any, features: list[dict[str, object]]) -> None:
        self._writer = writer
        self._features = features

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)

    def add(self, frame: gpd.GeoDataFrame) -> Any:
        try:
            plan = self._writer.add(frame)
        except SchemaViolationError as exc:
            reasons: dict[int, list[str]] = {}
            for row, name, message in exc.problems:
                reasons.setdefault(row, []).append(f"{name}: {message}")
            geoms = frame.geometry.to_numpy()
            for row, why in sorted(reasons.items()):
                self._keep(geoms[row] if 0 <= row < len(geoms) else None, "reject", None, "; ".join(why))
            raise
        geoms = plan.frame.geometry.to_numpy()
        for i, (key, action) in enumerate(zip(plan.frame["key"].tolist(), plan.action.tolist(), strict=True)):
            self._keep(geoms[i], str(action), str(key), "")
        return plan

    def _keep(self, geom: object, action: str, key: str | None, problems: str) -> None:
        if len(self._features) >= MAX_PREVIEW:
            return
        shape = None if geom is None or shapely.is_missing(geom) else shapely.geometry.mapping(geom)
        self._features.append({"type": "Feature", "geometry": shape,
                               "properties": {"action": action, "key": key, "problems": problems}})


class RecordingStore:
    """The real store, whose writers are watched; everything else passes straight through."""

    def __init__(self, store: GeoPackageStore) -> None:
        self._store = store
        self.features: list[dict[str, object]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @contextmanager
    def writer(self, layer: str, **options: Any) -> Iterator[_RecordingWriter]:
        with self._store.writer(layer, **options) as w:
            yield _RecordingWriter(w, self.features)

    def preview(self) -> dict[str, object]:
        """The rows seen, as a GeoJSON FeatureCollection in lon/lat."""
        counts = dict(zip(*np.unique([f["properties"]["action"] for f in self.features],  # type: ignore[index]
                                     return_counts=True), strict=True)) if self.features else {}
        return {"type": "FeatureCollection", "features": self.features,
                "twin:truncated": len(self.features) >= MAX_PREVIEW,
                "twin:actions": {str(k): int(v) for k, v in counts.items()}}
