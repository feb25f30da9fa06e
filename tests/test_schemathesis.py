"""Schemathesis over every operation of ``/openapi.json``: no 5xx, answers match their schema.

Runs in-process against the ASGI app on a private copy of the sample store (the generated
requests write: communities, grid commits, users), as an admin so that every operation gets past
authentication and reaches its handler. ``GEO_SCHEMATHESIS_EXAMPLES`` (default 25) bounds the
examples per operation. Nothing is excluded.
"""

from __future__ import annotations

import os

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from geo.settings import Settings  # noqa: E402

EXAMPLES = int(os.environ.get("GEO_SCHEMATHESIS_EXAMPLES", "25"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def _api(sample_db: str, tmp_path_factory: pytest.TempPathFactory):
    from geo.api.app import create_app
    from geo.service.backup import backup
    from geo.store import open_store, users

    db = str(tmp_path_factory.mktemp("schemathesis") / "store.gpkg")
    backup(sample_db, db)
    store = open_store(db)
    token = users.add_user(store, "schemathesis-admin", "admin")
    app = create_app(store, Settings(db=db, max_batch_points=1000, refresh_seconds=0.2))
    yield app, token
    store.close()


@pytest.fixture(scope="module")
def api_schema(_api):
    return schemathesis.openapi.from_asgi("/openapi.json", _api[0])


@pytest.fixture(scope="module")
def token(_api) -> str:
    return _api[1]


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_api(case, token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
