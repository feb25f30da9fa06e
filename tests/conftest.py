"""Shared fixtures: the sample district loaded into a real store, its atlas and an API client."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import chromium

from geo.atlas import Atlas
from geo.settings import SAMPLE_DIR, Settings


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A GeoPackage store holding the sample district, loaded the way `geo load` does."""
    from geo.service.load import load_into

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


def _headers(db: str, role: str, name: str | None = None) -> dict[str, str]:
    """Create a user with ``role`` in the store at ``db``; the headers that carry its token."""
    from geo.store import open_store
    from geo.store.users import add_user

    store = open_store(db)
    try:
        token = add_user(store, name or f"test-{role}", role)
    finally:
        store.close()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def issue_headers():
    """``issue_headers(db, role, name=None)``: a new user's ``Authorization`` header."""
    return _headers


@pytest.fixture(scope="session")
def auth_headers(sample_db: str) -> dict[str, dict[str, str]]:
    """Headers per caller of the sample store: anonymous, officer, planner, admin, bad, revoked."""
    from geo.store import open_store
    from geo.store.users import revoke_user

    out = {"anonymous": {}}
    for role in ("officer", "planner", "admin"):
        out[role] = _headers(sample_db, role)
    out["revoked"] = _headers(sample_db, "admin", "test-revoked")
    store = open_store(sample_db)
    try:
        revoke_user(store, "test-revoked")
    finally:
        store.close()
    token_id = out["planner"]["Authorization"].split()[1].split(".")[0]
    out["bad"] = {"Authorization": f"Bearer {token_id}.not-the-secret"}
    return out


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for a browser test module (see `support.chromium`)."""
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def writable(sample_db: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A copy of the sample store of the test module's own (writes allowed) and a planner
    token for it."""
    from geo.service.backup import backup
    from geo.store import open_store, users

    db = str(tmp_path_factory.mktemp("writable") / "store.gpkg")
    backup(sample_db, db)
    store = open_store(db)
    try:
        token = users.add_user(store, "writable-planner", "planner")
    finally:
        store.close()
    return db, token


@pytest.fixture(scope="module")
def hc(writable):
    """An HTTP client of the app on `writable`, sending its planner token; server errors are
    answers (500), not exceptions."""
    from fastapi.testclient import TestClient

    from geo.api.app import create_app
    from geo.store import open_store

    db, token = writable
    app = create_app(open_store(db), Settings(db=db))
    with TestClient(
        app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"}
    ) as c:
        yield c


@pytest.fixture()
def store(sample_db: str, tmp_path: Path):
    """An open store of the test's own: a copy of the sample store (writes allowed)."""
    from geo.service.backup import backup
    from geo.store import open_store

    copy = tmp_path / "store.gpkg"
    backup(sample_db, copy)
    opened = open_store(str(copy))
    yield opened
    opened.close()
