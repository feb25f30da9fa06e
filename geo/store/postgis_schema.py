"""The PostGIS store's tables, created (or completed) when the store is opened.

One table per layer of `geo.model.LAYERS` (``fid`` bigserial, ``geom geometry(Geometry, 4326)``
with a GiST index, one column per model field, ``id`` UNIQUE), ``officers`` without geometry,
``community_history`` (the versions of each boundary), ``geo_meta`` (``schema_version``),
``geo_versions``, ``geo_table_stamps``, ``geo_users``, ``geo_tokens``, ``geo_audit`` (append-only:
a trigger raises on any UPDATE, DELETE or TRUNCATE, whoever runs it) and ``geo_serving`` (the
registry of serving replicas and their heartbeats, by the database's clock).

The write guard (as `geo.store.gpkg_guard` for the GeoPackage): every table geo serves or keeps
books in carries a statement trigger ``geo_guard`` (BEFORE INSERT, UPDATE, DELETE, TRUNCATE;
INSERT only on ``geo_audit``) that raises unless the transaction set ``geo.writer`` to ``on``
(``set_config('geo.writer', 'on', true)``, transaction-local, which every write of
`geo.store.postgis.PostGISStore` does after taking the write lock). So ``psql``, QGIS or a
script writing into the tables is refused with a sentence saying what to do instead; reading is
untouched. Triggers found missing when a store opens are logged and created again.
"""

from __future__ import annotations

import logging
from typing import Any

from geo.model import TABLES, LayerSpec
from geo.store import postgis_admin
from geo.store.base import SRS_ID, StoreSchemaError
from geo.store.schema import HISTORY_COLUMNS, HISTORY_TABLE, SCHEMA_VERSION, quote

_PG_TYPES = {"str": "text", "int": "bigint", "float": "double precision", "bool": "boolean"}
# a fixed key for pg_advisory_xact_lock: every write of every replica takes it, so writes to one
# database serialize (readers never take it)
WRITE_LOCK_KEY = 0x67656F5F7772  # "geo_wr"
CHANNEL = "geo_version"  # NOTIFY'd with the new version inside every write transaction

log = logging.getLogger("geo.store")
GUARD_SETTING = "geo.writer"  # set to 'on' (transaction-local) inside every write of geo
GUARD_MESSAGE = (
    "this database is managed by geo and refuses writes from other programs: edit through the "
    'geo API (QGIS: an OGC API - Features layer) or the geo commands; see README "Editing in '
    'QGIS"'
)
# the tables every write of which is guarded; geo_audit: INSERT (its append-only triggers
# refuse the rest); not geo_meta (schema version) nor geo_serving (runtime state)
_GUARDED_ALL = (*TABLES, HISTORY_TABLE, "geo_versions", "geo_table_stamps", "geo_users")
GUARDED = {
    **{t: "INSERT OR UPDATE OR DELETE OR TRUNCATE" for t in (*_GUARDED_ALL, "geo_tokens")},
    "geo_audit": "INSERT",
}
_GUARD_FUNCTION = (
    "CREATE OR REPLACE FUNCTION geo_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    f"IF current_setting('{GUARD_SETTING}', true) IS DISTINCT FROM 'on' THEN "
    "RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege', MESSAGE = format("
    "'geo refused this %s on %s: %s', TG_OP, TG_TABLE_NAME, "
    + "'"
    + GUARD_MESSAGE.replace("'", "''")
    + "'"
    + "); END IF; RETURN NULL; END $$"
)


def _guard_ddl(table: str) -> list[str]:
    """The guard trigger of one table (created again: its events may have changed)."""
    return [
        f"DROP TRIGGER IF EXISTS geo_guard ON {quote(table)}",
        f"CREATE TRIGGER geo_guard BEFORE {GUARDED[table]} ON {quote(table)} "
        "FOR EACH STATEMENT EXECUTE FUNCTION geo_guard()",
    ]


_DDL = (
    "CREATE TABLE IF NOT EXISTS geo_meta (key text PRIMARY KEY, value text)",
    "CREATE TABLE IF NOT EXISTS geo_versions (version integer PRIMARY KEY, "
    "author text NOT NULL, time text NOT NULL, reason text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS geo_table_stamps (table_name text PRIMARY KEY, "
    "stamp text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS geo_users (name text PRIMARY KEY, role text NOT NULL, "
    "created text NOT NULL, revoked text)",
    "CREATE TABLE IF NOT EXISTS geo_tokens (token_id text PRIMARY KEY, "
    "user_name text NOT NULL REFERENCES geo_users(name), salt bytea NOT NULL, "
    "hash bytea NOT NULL, created text NOT NULL, revoked text)",
    "CREATE TABLE IF NOT EXISTS geo_audit (seq bigserial PRIMARY KEY, time text NOT NULL, "
    "actor text NOT NULL, role text, method text NOT NULL, path text NOT NULL, target text, "
    "version_before integer, version_after integer, request_id text, detail text)",
    "CREATE OR REPLACE FUNCTION geo_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'geo_audit is append-only' USING ERRCODE = 'insufficient_privilege'; "
    "END $$",
    "DROP TRIGGER IF EXISTS geo_audit_no_change ON geo_audit",
    "CREATE TRIGGER geo_audit_no_change BEFORE UPDATE OR DELETE ON geo_audit "
    "FOR EACH ROW EXECUTE FUNCTION geo_audit_append_only()",
    "DROP TRIGGER IF EXISTS geo_audit_no_truncate ON geo_audit",
    "CREATE TRIGGER geo_audit_no_truncate BEFORE TRUNCATE ON geo_audit "
    "FOR EACH STATEMENT EXECUTE FUNCTION geo_audit_append_only()",
    "CREATE TABLE IF NOT EXISTS geo_serving (worker text PRIMARY KEY, host text NOT NULL, "
    "pid integer NOT NULL, version integer NOT NULL, seen timestamptz NOT NULL)",
)


def _layer_ddl(name: str, spec: LayerSpec) -> list[str]:
    """CREATE TABLE (and indexes) of one table of the model."""
    cols = ["fid bigserial PRIMARY KEY"]
    if spec.geometry:
        cols.append(f"geom geometry(Geometry, {SRS_ID}) NOT NULL")
    cols += [f"{quote(f.name)} {_PG_TYPES[f.type]}" for f in spec.fields]
    out = [f"CREATE TABLE IF NOT EXISTS {quote(name)} ({', '.join(cols)})"]
    out.append(
        f"CREATE UNIQUE INDEX IF NOT EXISTS {quote(name + '_id_unique')} ON {quote(name)} (id)"
    )
    if spec.geometry:
        out.append(
            f"CREATE INDEX IF NOT EXISTS {quote(name + '_geom_gist')} ON {quote(name)} "
            "USING gist (geom)"
        )
    out += [
        f"ALTER TABLE {quote(name)} ADD COLUMN IF NOT EXISTS {quote(f.name)} {_PG_TYPES[f.type]}"
        for f in spec.fields
    ]
    return out


def _history_ddl() -> list[str]:
    cols = ", ".join(
        f"{quote(n)} {t.replace('TEXT', 'text').replace('INTEGER', 'integer')}"
        for n, t in HISTORY_COLUMNS
    )
    return [
        f"CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (fid bigserial PRIMARY KEY, "
        f"geom geometry(Geometry, {SRS_ID}) NOT NULL, {cols}, UNIQUE (community_id, version))"
    ]


def _complete(cur: Any) -> bool:
    """Whether every table, column and trigger of this geo exists already."""
    rows = cur.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema()"
    ).fetchall()
    have = {(t, c) for t, c in rows}
    want = {(name, f.name) for name, spec in TABLES.items() for f in spec.fields}
    want |= {(HISTORY_TABLE, n) for n, _ in HISTORY_COLUMNS}
    want |= {(t, "seq" if t == "geo_audit" else "worker" if t == "geo_serving" else "name")
             for t in ("geo_audit", "geo_serving", "geo_users")}  # fmt: skip
    want |= {("geo_tokens", "token_id"), ("geo_versions", "version"), ("geo_table_stamps", "stamp")}
    triggers = cur.execute(
        "SELECT count(*) FROM pg_trigger WHERE tgname IN "
        "('geo_audit_no_change', 'geo_audit_no_truncate')"
    ).fetchone()[0]
    return want <= have and triggers == 2 and not _unguarded(cur)


GUARD_COUNT = (  # the guard triggers present (len(GUARDED) when the guard is whole)
    "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
    "WHERE t.tgname = 'geo_guard' AND c.relnamespace = current_schema()::text::regnamespace"
)


def _unguarded(cur: Any) -> list[str]:
    """The guarded tables present that lack their guard trigger (all, in a store made before)."""
    rows = cur.execute(
        "SELECT c.relname, EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid "
        "AND t.tgname = 'geo_guard') FROM pg_class c WHERE c.relkind IN ('r', 'p') "
        "AND c.relnamespace = current_schema()::text::regnamespace"
    ).fetchall()
    return sorted(name for name, guarded in rows if name in GUARDED and not guarded)


def initialise(cur: Any) -> None:
    """Create or check the schema (inside the caller's write transaction, under the lock)."""
    have = cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone()
    if have is None:
        try:
            cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        except Exception as exc:  # psycopg.errors.InsufficientPrivilege, …
            raise StoreSchemaError(
                "the database has no PostGIS: run `CREATE EXTENSION postgis;` in it as a "
                f"superuser (or install postgresql-15-postgis-3): {exc}"
            ) from None
    cur.execute(_DDL[0])
    row = cur.execute("SELECT value FROM geo_meta WHERE key = 'schema_version'").fetchone()
    if row is not None and int(row[0]) > SCHEMA_VERSION:
        raise StoreSchemaError(
            f"the database has store schema version {row[0]}, newer than the {SCHEMA_VERSION} "
            "this geo understands: upgrade geo to open it"
        )
    if _complete(cur):  # the usual case: nothing to create, no lock taken on any table
        return
    for statement in _DDL[1:]:
        cur.execute(statement)
    cur.execute(  # an older database is upgraded (what it lacks is added here)
        "INSERT INTO geo_meta (key, value) VALUES ('schema_version', %s) ON CONFLICT (key) "
        "DO UPDATE SET value = excluded.value WHERE geo_meta.value::integer < %s",
        (str(SCHEMA_VERSION), SCHEMA_VERSION),
    )
    for name, spec in TABLES.items():
        for statement in _layer_ddl(name, spec):
            cur.execute(statement)
        cur.execute(
            "INSERT INTO geo_table_stamps (table_name, stamp) VALUES (%s, md5(random()::text)) "
            "ON CONFLICT DO NOTHING",
            (name,),
        )
    for statement in _history_ddl():
        cur.execute(statement)
    guard(cur)


def guard(cur: Any) -> None:
    """Create the write guard where it is missing; a guard someone dropped is logged and
    recorded in the audit log (inside the caller's write transaction)."""
    had_function = cur.execute(
        "SELECT 1 FROM pg_proc WHERE proname = 'geo_guard' "
        "AND pronamespace = current_schema()::text::regnamespace"
    ).fetchone()
    missing = _unguarded(cur)
    cur.execute(_GUARD_FUNCTION)
    for table in missing:
        for statement in _guard_ddl(table):
            cur.execute(statement)
    if not (had_function and missing):
        return  # a new database, or one made before the guard: nothing to report
    detail = (
        f"the trigger geo_guard was missing on {', '.join(missing)}; restored. Writes made "
        "meanwhile by other programs are in no version, history or audit row"
    )
    log.warning("the database's write guard was tampered with: %s", detail)
    (v,) = cur.execute("SELECT COALESCE(MAX(version), 0) FROM geo_versions").fetchone()
    postgis_admin.append_audit(
        cur, None, actor="geo", before=int(v), after=int(v), default_path="guard restored",
        detail=detail,
    )  # fmt: skip
