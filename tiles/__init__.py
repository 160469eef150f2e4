"""twin's vector-tile engine: dynamic Mapbox Vector Tiles with low-zoom aggregates, a precisely invalidated
cache and pre-built PMTiles pyramids. No HTTP here; ``twin.api.tiles`` is a thin layer over it."""

from tiles.engine import TileEngine, TileResult
from tiles.grid import TileID, parse_tile
from tiles.query import TileFilter
from tiles.settings import TileSettings

__all__ = ["TileEngine", "TileFilter", "TileID", "TileResult", "TileSettings", "parse_tile"]
