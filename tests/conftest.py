"""Shared fixtures: the sample district loaded into a real store, its atlas and an API client.

Loading the sample (`geo load`) costs ~15 s of CPU, so it happens once per run: `pristine_db` is
that load, shared by every xdist worker and never written; every store a test writes to is a
byte copy of it (`copy_sample`, `store`, `writable`), which is what a fresh `geo load` gives.

The suite runs in parallel (``-n auto --dist loadfile`` in pyproject: each module on one worker,
so module fixtures are built once). Modules marked ``slow`` are started first so that the
longest ones do not finish last alone. Markers (registered in pyproject): ``slow`` (kill -9,
Chromium, Schemathesis, real `geo serve` processes), ``browser`` (drives Chromium).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from support import chromium

from geo.atlas import Atlas
from geo.settings import SAMPLE_DIR, Settings

# modules whose tests are slow as a whole: kill -9 of real processes, Schemathesis over every
# operation, `geo serve` subprocesses, Chromium (any test using the ``browser`` fixture is too)
SLOW_MODULES = {
    "test_kill9.py",
    "test_schemathesis.py",
    "test_restore_hostile.py",
    "test_logs.py",
    "test_serving.py",
    "test_real_session.py",
}


# Servers made by tests (create_app, `geo serve` subprocesses) make each layer's tiles on its
# first tile instead of when a version is built (the same bytes): most draw no tile, and each
# version's preparation would cost ~0.8 s of CPU. Tests of the preparation itself ask for it.
os.environ.setdefault("GEO_PREPARE_TILES", "0")

# Hypothesis checks properties, not speed (benchmarks/ does): no per-example deadline, which a
# loaded machine or a parallel run would turn into random failures (DeadlineExceeded)
settings.register_profile("geo", deadline=None)
settings.load_profile("geo")

# the longest modules, longest first: started first so that none is left running alone at the
# end of a parallel run (longest-first is close to the best order for two workers). The slow ones
# (waiting on processes and Chromium) lead; then the longest of the quick loop by CPU seconds
# (measured per test with -n 2, see README "Tests"); the other slow modules follow, then
# the rest in file order. A new module starts after these: add it here once it is long.
FIRST = [
    "test_kill9.py",
    "test_maps_browser.py",
    "test_xss_browser.py",
    "test_schemathesis.py",
    "test_restore_hostile.py",
    # the quick loop's longest (CPU seconds per module, -n 2 with a per-test CPU log, 2026-11-30)
    "test_tiles.py",
    "test_maps.py",  # `geo maps build`: 461 pages, ~50 s
    "test_boundary_api.py",
    "test_sample_scale.py",
    "test_assign_columnar.py",
    "test_import.py",
    "test_split.py",
    "test_store.py",
    "test_replicas.py",
    "test_cli.py",
    "test_sample.py",
    "test_hostile_ids.py",
    "test_store_contract.py",
    "test_osm.py",
    "test_deploy.py",
    "test_sources.py",
    "test_hostile.py",
    "test_ownership.py",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark slow and browser tests; start the long modules first (stable order otherwise)."""
    for item in items:
        browser = "browser" in getattr(item, "fixturenames", ())
        if browser:
            item.add_marker(pytest.mark.browser)
        if browser or item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
    slow_paths = {item.path for item in items if item.get_closest_marker("slow")}

    def rank(item: pytest.Item) -> int:
        if item.path.name in FIRST:
            return FIRST.index(item.path.name)
        return len(FIRST) + (item.path not in slow_paths)

    items.sort(key=rank)


def _shared_dir(factory: pytest.TempPathFactory) -> Path:
    """A folder every xdist worker of this run sees (the base temp folder without xdist)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def pristine_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample district loaded the way `geo load` does, once per run (the first worker loads,
    the others wait for it), as one self-contained file. Read only: never open it for writing,
    copy it (`copy_sample`)."""
    from geo import ready
    from geo.service.backup import backup
    from geo.service.load import load_into
    from geo.store import open_store

    shared = _shared_dir(tmp_path_factory)
    path = shared / "pristine-sample.gpkg"
    with _locked(shared / "pristine-sample.lock"):
        if not path.exists():
            loaded = tmp_path_factory.mktemp("load") / "loaded.gpkg"
            load_into(loaded, SAMPLE_DIR)
            backup(loaded, path)  # one file (no -wal), written aside and renamed into place
            store = open_store(path)
            try:  # its ready atlas, which every copy shares (`copy_sample`)
                ready.locator(store, str(path))
            finally:
                store.close()
    return path


@pytest.fixture(scope="session")
def copy_sample(pristine_db: Path) -> Callable[[str | os.PathLike[str]], str]:
    """``copy_sample(path)``: a new store at ``path`` holding the freshly loaded sample (version
    1, the load's history and audit rows, no users), as `geo load` into a new file makes it;
    the path as a string."""

    from geo import ready

    def copy(path: str | os.PathLike[str]) -> str:
        shutil.copyfile(pristine_db, path)
        # the sample's ready atlas too (a byte copy has the same stamps, so the same index):
        # hard links, since ready files are replaced, never written in place
        folder = Path(os.fspath(path) + ready.SUFFIX)
        for made in Path(os.fspath(pristine_db) + ready.SUFFIX).glob(f"*{ready.SUFFIX}"):
            folder.mkdir(exist_ok=True)
            try:
                os.link(made, folder / made.name)
            except OSError:
                shutil.copyfile(made, folder / made.name)
        return str(path)

    return copy


@pytest.fixture(scope="session")
def sample_db(copy_sample, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A GeoPackage store holding the sample district, loaded the way `geo load` does (this
    worker's own: tests add users to it)."""
    return copy_sample(tmp_path_factory.mktemp("store") / "sample.gpkg")


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


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium per worker (see `support.chromium`); each test opens its own
    context (cookies, storage and viewport of its own)."""
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def writable(copy_sample, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A copy of the sample store of the test module's own (writes allowed) and a planner
    token for it."""
    from geo.store import open_store, users

    db = copy_sample(tmp_path_factory.mktemp("writable") / "store.gpkg")
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
def store(copy_sample, tmp_path: Path):
    """An open store of the test's own: a copy of the sample store (writes allowed)."""
    from geo.store import open_store

    opened = open_store(copy_sample(tmp_path / "store.gpkg"))
    yield opened
    opened.close()
