"""`geo backup` and `geo restore`: copy a store with SQLite's online backup API.

* `backup` copies the store into a new single-file GeoPackage (no ``-wal``) while the service
  keeps serving and writing: the copy is taken in one step inside one read transaction, so it is
  exactly one committed version (WAL readers never block the writer, nor it them). The copy is
  written aside, cleared of serving state (``geo_serving``: which server processes answer from
  which version, meaningless anywhere else), checked (`validate`) and renamed into place, so
  ``OUT`` is never half written.
* `restore` first checks that ``IN`` is a geo GeoPackage holding only what geo writes
  (`geo.service.backup_checks`: schema version, no foreign trigger, view or other object,
  every layer's columns, every row and geometry as a write would accept it). It copies ``IN``
  aside, drops the serving state it carries, gives every table a new stamp and appends one new
  store version, *greater than the live store's* (author ``restore``, the reason naming the
  file), then copies that into the store with the same backup API: one write transaction, so
  every reader (a running `geo serve` included) sees either the old store or the restored one,
  and a crash or ``kill -9`` mid-restore leaves the old store. Servers watch the version
  number, so they pick up every restore within ``GEO_REFRESH_SECONDS`` even when the backup's
  own version equals the live one. The live store's serving registry is kept, so writers still
  wait for the servers that run. A missing store is created by writing aside and renaming.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from geo.model import TABLES
from geo.service import backup_checks
from geo.service.backup_checks import BackupError
from geo.store import is_database_url, open_store
from geo.store.gpkg_copy import as_new_version, clear_serving, editing, live_state
from geo.store.schema import GPKG_APPLICATION_ID
from geo.store.sqlite import BUSY_TIMEOUT_S, SQLiteStore

__all__ = ["BackupError", "Checked", "backup", "restore", "validate"]

RESTORE_AUTHOR = "restore"


@dataclass(frozen=True)
class Checked:
    """A checked geo GeoPackage: where it is, the store version and schema it holds."""

    path: Path
    version: int  # the store version the file holds
    schema_version: int
    communities: int
    source_version: int | None = None  # a restore: the version the backup held


def validate(path: str | os.PathLike[str], *, strict: bool = False) -> Checked:
    """Check that ``path`` is a geo GeoPackage this geo can open; raise `BackupError` if not.

    ``strict`` (a file to restore): also refuse objects geo does not create, wrong columns and
    rows a write would refuse (`geo.service.backup_checks`).
    """
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    with path.open("rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            raise BackupError(f"{path} is not an SQLite/GeoPackage file")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {path}: {exc}") from exc
    try:
        return _checked(conn, path, strict)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} cannot be read as a geo store: {exc}") from exc
    finally:
        conn.close()


def _checked(conn: sqlite3.Connection, path: Path, strict: bool) -> Checked:
    """`validate` on an open read-only connection."""
    ok = conn.execute("PRAGMA quick_check").fetchone()[0]
    if ok != "ok":
        raise BackupError(f"{path} is damaged (SQLite quick_check: {ok})")
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if app_id != GPKG_APPLICATION_ID:
        raise BackupError(
            f"{path} is an SQLite file but not a GeoPackage (application_id {app_id:#x})"
        )
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    missing = sorted({"geo_meta", "geo_versions", "gpkg_contents", *TABLES} - tables)
    if missing:
        raise BackupError(
            f"{path} is a GeoPackage but not a geo store: no table {', '.join(missing)}"
        )
    schema = backup_checks.schema_version(conn, path)
    if strict:
        backup_checks.check_objects(conn, path)
        backup_checks.check_columns(conn, path)
        backup_checks.check_rows(conn, path)
    version = conn.execute("SELECT COALESCE(MAX(version), 0) FROM geo_versions").fetchone()[0]
    communities = conn.execute("SELECT COUNT(*) FROM communities").fetchone()[0]
    return Checked(path, int(version), schema, int(communities))


def _copy(src: sqlite3.Connection, dst_path: Path) -> None:
    """``src`` into a new file ``dst_path`` as one self-contained file (rollback journal)."""
    dst = sqlite3.connect(dst_path)
    try:
        src.backup(dst)  # pages=-1: one step, one read transaction on src
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()


def _aside(target: Path) -> Path:
    """The temporary name ``target`` is written under before it is renamed into place."""
    return target.with_name(f".{target.name}.{os.getpid()}.part")


def backup(db: str | os.PathLike[str], out: str | os.PathLike[str]) -> Checked:
    """Copy the store ``db`` to ``out`` (replaced atomically); return what ``out`` holds."""
    if is_database_url(db):
        return _backup_database(str(db), Path(out))
    db, out = Path(db), Path(out)
    if not db.is_file():
        raise BackupError(f"no store at {db}")
    if out.resolve() == db.resolve():
        raise BackupError("the backup must be another file than the store")
    if not out.parent.is_dir():
        raise BackupError(f"directory {out.parent} does not exist")
    validate(db)
    part = _aside(out)
    src = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    try:
        _copy(src, part)
        with editing(part) as cur:
            clear_serving(cur)
        checked = validate(part)
        os.replace(part, out)
    except sqlite3.Error as exc:
        raise BackupError(f"backup of {db} failed: {exc}") from exc
    finally:
        src.close()
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    return Checked(out, checked.version, checked.schema_version, checked.communities)


def restore(src: str | os.PathLike[str], db: str | os.PathLike[str]) -> Checked:
    """Replace the store ``db`` with the backup ``src`` atomically, as a new store version
    above the live one; return what the store now holds."""
    if is_database_url(db):
        return _restore_database(Path(src), str(db))
    src, db = Path(src), Path(db)
    if db.exists() and src.resolve() == db.resolve():
        raise BackupError("the backup and the store are the same file")
    checked = validate(src, strict=True)
    if db.exists():
        validate(db)  # never overwrite something that is not a geo store
    elif not db.parent.is_dir():
        raise BackupError(f"directory {db.parent} does not exist")
    part = _aside(db)
    try:
        source = sqlite3.connect(f"{src.resolve().as_uri()}?mode=ro", uri=True)
        try:
            _copy(source, part)
        finally:
            source.close()
        version = _into_store(part, src, checked, db)
    except sqlite3.Error as exc:
        raise BackupError(f"restore of {db} from {src} failed: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    return Checked(db, version, checked.schema_version, checked.communities, checked.version)


def _reason(src: Path, checked: Checked) -> str:
    """The version row's reason of a restore."""
    return f"restored from {src.name} (its version {checked.version})"


def _into_store(part: Path, src: Path, checked: Checked, db: Path) -> int:
    """Turn ``part`` into the next version of ``db`` and put it in place; the version."""
    if not db.exists():
        version = as_new_version(
            part, RESTORE_AUTHOR, _reason(src, checked), checked.version, 0, []
        )
        os.replace(part, db)
        return version
    # read the live version as late as possible: the restore commits the one above it
    live_version, live_servers = live_state(db)
    version = as_new_version(
        part, RESTORE_AUTHOR, _reason(src, checked), checked.version, live_version, live_servers
    )
    copy = sqlite3.connect(part)
    target = sqlite3.connect(db, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        target.execute("PRAGMA journal_mode=WAL")
        target.execute("PRAGMA synchronous=FULL")
        copy.backup(target)  # one write transaction on the live store
        # keep WAL mode: the backup copies the source's header (journal_mode=DELETE)
        target.execute("PRAGMA journal_mode=WAL")
    finally:
        target.close()
        copy.close()
    return version


# ------------------------------------------------------------------ a database store (PostGIS)


def _remove_with_journals(path: Path) -> None:
    """Remove a GeoPackage written aside and any WAL files beside it."""
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def _backup_database(url: str, out: Path) -> Checked:
    """Back up a database store through the `Store` protocol: everything it holds, read at one
    version (`Store.export`), written into a new GeoPackage store aside, checked and renamed."""
    if not out.parent.is_dir():
        raise BackupError(f"directory {out.parent} does not exist")
    part = _aside(out)
    _remove_with_journals(part)
    source = open_store(url)
    try:
        dump = source.export()
    finally:
        source.close()
    try:
        with SQLiteStore(part) as copy:
            copy.import_dump(dump, copy=True, author=RESTORE_AUTHOR, reason="backup")
        with contextlib.closing(sqlite3.connect(part)) as conn:
            conn.execute("PRAGMA journal_mode=DELETE")
        checked = validate(part)
        os.replace(part, out)
    except sqlite3.Error as exc:
        raise BackupError(f"backup of the database store failed: {exc}") from exc
    finally:
        _remove_with_journals(part)
    return Checked(out, checked.version, checked.schema_version, checked.communities)


def _restore_database(src: Path, url: str) -> Checked:
    """Restore the backup ``src`` into a database store in one transaction: the backup's
    tables, community history, users and tokens; the store keeps its versions and its
    (append-only) audit log and gains one version above both, with its audit row."""
    checked = validate(src, strict=True)
    part = _aside(src.resolve().parent / f"restore-{secrets.token_hex(4)}.gpkg")
    try:
        with contextlib.closing(
            sqlite3.connect(f"{src.resolve().as_uri()}?mode=ro", uri=True)
        ) as s:
            _copy(s, part)
        with SQLiteStore(part) as copy:  # opening adds what an older file lacks
            dump = copy.export()
    except sqlite3.Error as exc:
        raise BackupError(f"restore from {src} failed: {exc}") from exc
    finally:
        _remove_with_journals(part)
    reason = _reason(src, checked)
    target = open_store(url)
    try:
        version = target.import_dump(dump, copy=False, author=RESTORE_AUTHOR, reason=reason)
    finally:
        target.close()
    return Checked(src, version, checked.schema_version, checked.communities, checked.version)
