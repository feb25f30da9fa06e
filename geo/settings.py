"""Settings from ``GEO_``-prefixed environment variables; CLI flags override them."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

# the sample district, shipped inside the package (package data) so `geo serve` finds it installed
SAMPLE_DIR = Path(__file__).resolve().parent / "data" / "sample"
DATA_ATTRIBUTION = "© OpenStreetMap contributors, ODbL 1.0 (openstreetmap.org/copyright)"


class Settings(BaseSettings):
    """``GEO_DB``: the store (a .gpkg path or a postgresql:// URL); ``GEO_DATA``: what
    `geo serve` loads into a new one."""

    model_config = SettingsConfigDict(env_prefix="GEO_")

    db: str = "geo.gpkg"
    data: Path = SAMPLE_DIR
    host: str = "127.0.0.1"
    port: int = 8000
    # uvicorn's per-request access log on stderr (writes are audited in the store either way)
    access_log: bool = True
    # How often (seconds) a serving process checks the store for a newer committed version (a
    # background thread; 0: check before every request instead).
    refresh_seconds: float = 0.05
    # How long a write's answer waits for every serving process to answer from its version.
    publish_timeout_seconds: float = 10.0
    # A serving process refreshes its heartbeat in the store three times per TTL; a write does not
    # wait for a replica silent for longer than this (and says so in its warnings).
    heartbeat_ttl_seconds: float = 15.0
    # Make every layer's tiles (encoded attributes, z8–z17 geometry) when a version is built,
    # so no tile request pays for them; false: each layer is made by its first tile (the same
    # bytes; for tools and test runs that draw few tiles and start many servers).
    prepare_tiles: bool = True
    max_batch_points: int = 100_000
    # Request limits (geo.api.limits): a larger body is a 413, a geometry with more vertices or
    # an upload with more features a 422, a request slower than the timeout a 503.
    max_body_bytes: int = 16 * 1024 * 1024
    max_vertices: int = 100_000
    max_features: int = 50_000
    request_timeout_seconds: float = 30.0
    # Load shedding (geo.api.server, geo.api.shedding). A client has header_timeout_seconds to
    # send a request's line and headers, else 408 and the connection is closed (0: no limit).
    header_timeout_seconds: float = 10.0
    # Heavy requests: POST /locate with a body over heavy_body_bytes, and the planner's
    # boundary build/preview and grid split. Each client (a token's user, else the address)
    # may run heavy_per_client of them at once and start heavy_rate a second (bursts of
    # heavy_burst); over that: 429 with Retry-After. A token's user gets heavy_user_factor times
    # those limits (0: none); admins none. At most
    # heavy_concurrency run at once in a process (0: one less than the cores, at least one);
    # the rest wait up to heavy_queue_seconds for a turn, then 503 with Retry-After.
    # 0 turns a per-client limit off.
    heavy_body_bytes: int = 64 * 1024
    heavy_per_client: int = 2
    heavy_rate: float = 2.0
    heavy_burst: int = 10
    heavy_user_factor: int = 10
    heavy_concurrency: int = 0
    heavy_queue_seconds: float = 10.0
    # Tianditu (天地图) key for the maps' `?basemap=tianditu` (GEO_TIANDITU_KEY); none: unavailable.
    tianditu_key: str | None = None
    # Origins allowed to call the API from a browser (GEO_CORS_ORIGINS, comma-separated, e.g.
    # "https://a.example,https://b.example"; "*" for any). Empty: CORS off (same origin only).
    cors_origins: str = ""
    # Credit for the data, shown on every map and on the OGC landing page (GEO_DATA_ATTRIBUTION).
    # The sample district and `geo import osm` derive from OpenStreetMap (ODbL 1.0); a district
    # serving its own survey data names it here.
    data_attribution: str = DATA_ATTRIBUTION
