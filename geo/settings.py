"""Settings from ``GEO_``-prefixed environment variables; CLI flags override them."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "geojson"


class Settings(BaseSettings):
    """``GEO_DB``: the store (a .gpkg path); ``GEO_DATA``: what `geo serve` loads into a new one."""

    model_config = SettingsConfigDict(env_prefix="GEO_")

    db: str = "geo.gpkg"
    data: Path = SAMPLE_DIR
    host: str = "127.0.0.1"
    port: int = 8000
    # How often (seconds) a serving process checks the store for a newer committed version.
    refresh_seconds: float = 1.0
    max_batch_points: int = 100_000
    # Tianditu (天地图) key for the maps' `?basemap=tianditu` (GEO_TIANDITU_KEY); none: unavailable.
    tianditu_key: str | None = None
