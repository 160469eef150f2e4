"""What an import did to each row, for drawing on a map: insert, update, unchanged, or reject.

:func:`twin.io.import_file` reports counts and problems; the web import page also shows every row in
place. :class:`ImportPreview` is handed to the import as its row observer (the same import the
command line runs, with the real store): it is told the plan the store made for every row (key and
action) and every row set aside (geometry and reasons), and keeps them as GeoJSON.
"""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import NDArray

from twin.store.base import WritePlan

#: Most rows drawn in a preview; the report's counts always cover the whole file.
MAX_PREVIEW = 5000


class ImportPreview:
    """A :class:`twin.io.rows.RowObserver` that keeps up to :data:`MAX_PREVIEW` rows as GeoJSON features."""

    def __init__(self) -> None:
        self.features: list[dict[str, object]] = []
        self.actions: dict[str, int] = {}

    def planned(self, plan: WritePlan) -> None:
        room = max(MAX_PREVIEW - len(self.features), 0)
        self._count(plan.action.tolist())
        self._keep(plan.frame.geometry.to_numpy()[:room], [str(a) for a in plan.action[:room]],
                   [str(k) for k in plan.frame["key"].to_numpy()[:room]], [""] * min(room, len(plan.action)))

    def rejected(self, geoms: NDArray[np.object_], reasons: list[str]) -> None:
        room = max(MAX_PREVIEW - len(self.features), 0)
        self._count(["reject"] * len(reasons))
        self._keep(geoms[:room], ["reject"] * min(room, len(reasons)), [None] * min(room, len(reasons)),
                   reasons[:room])

    def _count(self, actions: list[str]) -> None:
        for action in actions:
            self.actions[action] = self.actions.get(action, 0) + 1

    def _keep(self, geoms: NDArray[np.object_], actions: list[str], keys: list[str | None],
              problems: list[str]) -> None:
        for geom, action, key, why in zip(geoms, actions, keys, problems, strict=True):
            shape = None if geom is None or shapely.is_missing(geom) else shapely.geometry.mapping(geom)
            self.features.append({"type": "Feature", "geometry": shape,
                                  "properties": {"action": action, "key": key, "problems": why}})

    def collection(self) -> dict[str, object]:
        """The rows seen, as a GeoJSON FeatureCollection in lon/lat, with the count of every action."""
        return {"type": "FeatureCollection", "features": self.features,
                "twin:truncated": sum(self.actions.values()) > len(self.features),
                "twin:actions": dict(self.actions)}
