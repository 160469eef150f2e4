"""Runtime settings: one :class:`TwinSettings`, read once from ``TWIN_*`` environment variables (by the app factory
or a command), its sections passed down to what they configure.

Sections keep the variables they always had: ``TWIN_QUERY_BUDGET_S`` and the other service settings,
``TWIN_OIDC_*`` for an identity provider, ``TWIN_TILES_*`` for the tile engine, ``TWIN_MAP_*`` for the web map.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The repository's own catalogue, used when ``TWIN_LAYERS`` is not set.
DEFAULT_LAYERS_DIR = Path(__file__).resolve().parent.parent / "layers"
#: The repository's own indicators (城市体征), used when ``TWIN_INDICATORS`` is not set.
DEFAULT_INDICATORS_DIR = Path(__file__).resolve().parent.parent / "indicators"
#: The repository's own risk rules, used when ``TWIN_RULES`` is not set.
DEFAULT_RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
#: A store named by a path (a ``Path`` is taken too) or a URL.
StoreTarget = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, Path) else v)]


class ServiceSettings(BaseSettings):
    """How the service serves: ``TWIN_QUERY_BUDGET_S=1.5``, ``TWIN_THREADS=32`` ..."""

    model_config = SettingsConfigDict(env_prefix="TWIN_", extra="ignore")

    query_budget_s: float = Field(2.0, gt=0, description="Longest a single query may run before a 400.")
    max_upload_mb: int = Field(200, gt=0, description="Largest file accepted by POST .../import.")
    import_enabled: bool = Field(True, description="Accept POST .../import (turn off on a read-only service).")
    threads: int = Field(16, ge=1, le=256, description="Requests served at once per process (each thread keeps "
                                                        "its own read connections, so this bounds memory).")
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64,
                         description="Worker processes of `twin serve` and `twin up` (default: one per core).")
    stream_max_s: float = Field(600.0, gt=0, le=86_400, description="Longest one change stream (/changes/stream) "
                                "lasts before the server ends it; EventSource reconnects at once with "
                                "Last-Event-ID, and the token is checked again (a revoked one stops there).")
    host: str = Field("127.0.0.1", description="Address `twin serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `twin serve` listens on.")


class OidcProviderSettings(BaseSettings):
    """An identity provider whose JWTs are accepted as tokens (``TWIN_OIDC_*``); off unless all three of JWKS,
    issuer and audience are given."""

    model_config = SettingsConfigDict(env_prefix="TWIN_OIDC_", extra="ignore")

    jwks: str | None = Field(None, description="The provider's JWKS (file path or intranet URL).")
    issuer: str | None = Field(None, description="The required `iss` claim.")
    audience: str | None = Field(None, description="The required `aud` claim.")
    role_claim: str = Field("twin_role", description="The claim holding the role(s).")
    area_claim: str = Field("twin_area", description="The claim holding the area key.")
    role_map: dict[str, str] = Field(default_factory=dict, description="The provider's role names to twin's, as "
                                                                       'JSON: {"gis-admins": "admin"}.')


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


class MapSettings(BaseSettings):
    """Web-map settings from ``TWIN_MAP_*`` variables; the default map needs no network at all."""

    model_config = SettingsConfigDict(env_prefix="TWIN_MAP_", extra="ignore")

    basemaps: str = Field("", description="Comma-separated online basemaps to offer: osm, tianditu, amap "
                                          "(none by default: intranets have no internet).")
    tianditu_key: str = Field("", description="Your Tianditu (天地图) key (tk), needed for the tianditu basemap.")
    geojson_max: int = Field(5000, ge=0, description="Layers with at most this many components are sent whole "
                                                     "as GeoJSON; bigger ones are drawn from vector tiles.")


class TwinSettings(BaseSettings):
    """Settings for the store, the catalogue and the service, with their sections.

    Every value can be set with an environment variable of the same name prefixed with
    ``TWIN_`` (``TWIN_STORE=/data/city.gpkg``); command-line options override them.
    """

    model_config = SettingsConfigDict(env_prefix="TWIN_", extra="ignore")

    store: StoreTarget = Field("twin.gpkg", description="The store: a GeoPackage file, or a PostGIS database as "
                                                        "postgresql://USER@HOST:PORT/DB[?schema=NAME].")
    store_read: str | None = Field(None, description="PostGIS only: a hot standby that serves reads, as a URL "
                                                     "(a reader's own writes are still seen at once).")
    layers: Path = Field(DEFAULT_LAYERS_DIR, description="Folder of the layer catalogue (*.yaml).")
    indicators: Path = Field(DEFAULT_INDICATORS_DIR, description="Folder of the city's indicators (城市体征, *.yaml; "
                                                                 "none when it does not exist).")
    rules: Path = Field(DEFAULT_RULES_DIR, description="Folder of the risk rules (*.yaml; none when it does not "
                                                       "exist).")
    author: str = Field("twin", description="Author recorded on changesets made by this process.")
    city_bbox: tuple[float, float, float, float] = Field(
        (120.85, 30.67, 122.25, 31.88), description="The city's extent in lon/lat (Shanghai by default)."
    )
    access_db: Path | None = Field(None, description="A GeoPackage store's users, hashed tokens and audit log "
                                                     "(default: beside it, city.gpkg -> city.access.db).")
    access_policy: Path | None = Field(None, description="Access policy YAML: roles, their layers and unmasked "
                                                         "fields (default: twin/access/policy.yaml).")
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    oidc: OidcProviderSettings = Field(default_factory=OidcProviderSettings)
    tiles: TileSettings = Field(default_factory=TileSettings)
    map: MapSettings = Field(default_factory=MapSettings)
