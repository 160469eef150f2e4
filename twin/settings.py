"""Runtime settings, read once from ``TWIN_*`` environment variables and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The repository's own catalogue, used when ``TWIN_LAYERS`` is not set.
DEFAULT_LAYERS_DIR = Path(__file__).resolve().parent.parent / "layers"


#: A store named by a path (a ``Path`` is taken too) or a URL.
StoreTarget = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, Path) else v)]


class TwinSettings(BaseSettings):
    """Settings for the store, the catalogue and the service.

    Every value can be set with an environment variable of the same name prefixed with
    ``TWIN_`` (``TWIN_STORE=/data/city.gpkg``); command-line options override them.
    """

    model_config = SettingsConfigDict(env_prefix="TWIN_", extra="ignore")

    store: StoreTarget = Field("twin.gpkg", description="The store: a GeoPackage file, or a PostGIS database as "
                                                 "postgresql://USER@HOST:PORT/DB[?schema=NAME].")
    store_read: str | None = Field(None, description="PostGIS only: a hot standby that serves reads, as a URL "
                                                     "(a reader's own writes are still seen at once).")
    layers: Path = Field(DEFAULT_LAYERS_DIR, description="Folder of the layer catalogue (*.yaml).")
    author: str = Field("twin", description="Author recorded on changesets made by this process.")
    city_bbox: tuple[float, float, float, float] = Field(
        (120.85, 30.67, 122.25, 31.88), description="The city's extent in lon/lat (Shanghai by default)."
    )
    access_db: Path | None = Field(None, description="Users, hashed tokens and the audit log (default: beside the "
                                                     "store, city.gpkg -> city.access.db).")
    access_policy: Path | None = Field(None, description="Access policy YAML: roles, their layers and unmasked "
                                                         "fields (default: twin/access/policy.yaml).")
