"""twin's vector-tile engine: dynamic Mapbox Vector Tiles with low-zoom aggregates, a precisely invalidated
cache and pre-built PMTiles pyramids, drawn per caller's view (area scope, masked fields). No HTTP here;
``twin.api.tiles`` is a thin layer over it."""

from tiles.engine import TileEngine, TileResult
from tiles.grid import TileID, parse_tile
from tiles.query import TileFilter
from tiles.view import MASKED, View
from twin.settings import TileSettings

__all__ = ["MASKED", "TileEngine", "TileFilter", "TileID", "TileResult", "TileSettings", "View", "parse_tile"]
