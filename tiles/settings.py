"""Settings of the tile engine, from ``TWIN_TILES_*`` environment variables (options override them)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TileSettings(BaseSettings):
    """How tiles are drawn, cached and served; ``TWIN_TILES_CACHE_DIR=/var/cache/twin`` and so on."""

    model_config = SettingsConfigDict(env_prefix="TWIN_TILES_", extra="ignore")

    cache_dir: Path | None = Field(None, description="Folder of the on-disk tile cache (none: memory only).")
    memory_mb: int = Field(256, ge=0, description="Bound of the in-memory tile cache, in MiB.")
    disk_mb: int = Field(4096, ge=1, description="Bound of the on-disk tile cache, in MiB.")
    pyramid: Path | None = Field(None, description="A PMTiles pyramid built by `twin tiles build` to serve from.")
    buffer: int = Field(64, ge=0, le=1024, description="Tile buffer, in tile units (of 4096).")
    max_tile_kb: int = Field(500, ge=16, description="No tile is larger than this (KB); richer tiles are thinned.")
    budget_s: float = Field(5.0, gt=0, description="Time budget of one tile's database reads.")
    max_age: int = Field(0, ge=0, description="Cache-Control max-age of tile responses, seconds (0: revalidate).")
    depth: int = Field(4, ge=1, le=6, description="Aggregate cells per tile side are 2**depth.")
    warm: bool = Field(True, description="Catch up with every layer (aggregates) in the background at start-up.")
    max_layers: int = Field(12, ge=1, description="Most layers one combined tile may carry.")
