"""Shared fixtures: the sample district loaded into a real store, its atlas and an API client."""

from __future__ import annotations

from pathlib import Path

import pytest

from geo.atlas import Atlas
from geo.settings import SAMPLE_DIR, Settings


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A GeoPackage store holding the sample district, loaded the way `geo load` does."""
    from geo.cli import load_into

    db = str(tmp_path_factory.mktemp("store") / "sample.gpkg")
    load_into(db, SAMPLE_DIR)
    return db


@pytest.fixture(scope="session")
def atlas(sample_db: str) -> Atlas:
    from geo.store import open_store

    store = open_store(sample_db)
    try:
        return Atlas(store.snapshot())
    finally:
        store.close()


@pytest.fixture(scope="session")
def client(sample_db: str):
    from fastapi.testclient import TestClient

    from geo.api.app import create_app
    from geo.store import open_store

    settings = Settings(db=sample_db, max_batch_points=1000)
    with TestClient(create_app(open_store(sample_db), settings)) as c:
        yield c


@pytest.fixture()
def sample_dir() -> Path:
    return SAMPLE_DIR
