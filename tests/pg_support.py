"""A PostGIS server for the tests: fresh databases cloned from a template, or a clear skip.

``GEO_TEST_PG`` (default: the cluster `.ci/postgres` starts, postgresql://geo:geo@127.0.0.1:5432/geo)
names a database the role may connect to; the role needs CREATEDB. Without a reachable server
the tests skip with the reason, and FAIL when ``CI=true``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator

import psycopg
import pytest

DEFAULT_URL = "postgresql://geo:geo@127.0.0.1:5432/geo"
TEMPLATE = "geo_test_template"


def admin_url() -> str:
    """The URL of the database the tests connect to for CREATE/DROP DATABASE."""
    return os.environ.get("GEO_TEST_PG", DEFAULT_URL)


def with_dbname(url: str, dbname: str) -> str:
    """``url`` pointing at another database of the same server."""
    from psycopg import conninfo

    info = conninfo.conninfo_to_dict(url)
    info["dbname"] = dbname
    host, port = info.get("host", "127.0.0.1"), info.get("port", 5432)
    user, password = info.get("user", ""), info.get("password", "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgresql://{auth}{host}:{port}/{dbname}"


def unreachable() -> str | None:
    """Why PostGIS cannot be used here (None: it can)."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    try:
        with psycopg.connect(admin_url(), connect_timeout=3, autocommit=True) as conn:
            row = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'"
            ).fetchone()
            if row is None:
                return (
                    "the PostgreSQL server has no PostGIS (apt-get install postgresql-15-postgis-3)"
                )
    except psycopg.Error as exc:
        return (
            f"no PostgreSQL at GEO_TEST_PG={admin_url().split('@')[-1]} "
            f"({str(exc).strip()[:120]}); "
            "start one with `export GEO_TEST_PG=$(.ci/postgres)`"
        )
    return None


def require_postgis() -> None:
    """Skip (FAIL when ``CI=true``) without a reachable PostGIS."""
    reason = unreachable()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostGIS tests cannot run on CI: {reason}")
        pytest.skip(reason)


def _execute(sql: str) -> None:
    import psycopg

    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(sql)


def ensure_template() -> None:
    """A template database with PostGIS and geo's (empty) schema, made once per server."""
    import psycopg

    from geo.store.postgis import PostGISStore

    with psycopg.connect(admin_url(), autocommit=True) as conn:
        have = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TEMPLATE,)).fetchone()
    if have is not None:
        return
    name = f"{TEMPLATE}_{secrets.token_hex(4)}"
    _execute(f"CREATE DATABASE {name}")
    PostGISStore(with_dbname(admin_url(), name)).close()  # creates the extension and tables
    with contextlib.suppress(psycopg.errors.DuplicateDatabase):
        _execute(f"ALTER DATABASE {name} RENAME TO {TEMPLATE}")
        return
    _execute(f"DROP DATABASE IF EXISTS {name}")


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new database cloned from the template (dropped afterwards); yields its URL."""
    require_postgis()
    ensure_template()
    name = f"geo_t_{secrets.token_hex(6)}"
    _execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    try:
        yield with_dbname(admin_url(), name)
    finally:
        _drop(name)


def _drop(name: str) -> None:
    """Drop a test database; a role that may not end an autovacuum worker connected to it
    (no pg_signal_backend, see .ci/postgres) waits for the worker to finish instead."""
    for attempt in range(50):
        try:
            _execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
            if attempt == 49:
                raise
            time.sleep(0.2)
