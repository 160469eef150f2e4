"""Maps of the twin: the planners' web map (served by ``twin serve`` at ``/map``) and folium maps for
notebooks and reports (:func:`build_map`), all of which load nothing from outside twin."""

from twin.maps.assets import LocalFigure
from twin.maps.build import build_map

__all__ = ["LocalFigure", "build_map"]
