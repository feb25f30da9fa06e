"""`geo backup` and `geo restore`: copy a store with SQLite's online backup API.

* `backup` copies the store into a new single-file GeoPackage (no ``-wal``) while the service
  keeps serving and writing: the copy is taken in one step inside one read transaction, so it is
  exactly one committed version (WAL readers never block the writer, nor it them). The copy is
  written aside, checked (`validate`) and renamed into place, so ``OUT`` is never half written.
* `restore` first checks that ``IN`` is a geo GeoPackage (SQLite integrity, the GeoPackage
  ``application_id``, geo's ``geo_meta``/``geo_versions`` and every layer table, a schema this
  geo understands), then copies it *into* the store with the same backup API: one write
  transaction, so every reader (a running `geo serve` included) sees either the old store or the
  restored one, and a crash or ``kill -9`` mid-restore leaves the old store. Running servers
  notice the restored version within ``GEO_REFRESH_SECONDS`` (its version number differs).
  A missing store is created by writing aside and renaming.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from geo.errors import InvalidInput
from geo.model import TABLES
from geo.store.sqlite import BUSY_TIMEOUT_S, GPKG_APPLICATION_ID, SCHEMA_VERSION


class BackupError(InvalidInput):
    """A file that is not a geo GeoPackage, or a copy that failed (the message says why)."""


@dataclass(frozen=True)
class Checked:
    """A checked geo GeoPackage: where it is, the store version and schema it holds."""

    path: Path
    version: int  # the store version the file holds
    schema_version: int
    communities: int


def validate(path: str | os.PathLike[str]) -> Checked:
    """Check that ``path`` is a geo GeoPackage this geo can open; raise `BackupError` if not."""
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
        row = conn.execute("SELECT value FROM geo_meta WHERE key='schema_version'").fetchone()
        schema = int(row[0]) if row else 0
        if not 1 <= schema <= SCHEMA_VERSION:
            raise BackupError(
                f"{path} has store schema version {schema}; this geo understands 1 to "
                f"{SCHEMA_VERSION}"
            )
        version = conn.execute("SELECT COALESCE(MAX(version), 0) FROM geo_versions").fetchone()[0]
        communities = conn.execute("SELECT COUNT(*) FROM communities").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} cannot be read as a geo store: {exc}") from exc
    finally:
        conn.close()
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
    """Replace the store ``db`` with the backup ``src`` atomically; return what it now holds."""
    src, db = Path(src), Path(db)
    if db.exists() and src.resolve() == db.resolve():
        raise BackupError("the backup and the store are the same file")
    checked = validate(src)
    source = sqlite3.connect(f"{src.resolve().as_uri()}?mode=ro", uri=True)
    try:
        if not db.exists():
            if not db.parent.is_dir():
                raise BackupError(f"directory {db.parent} does not exist")
            part = _aside(db)
            try:
                _copy(source, part)
                os.replace(part, db)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    part.unlink()
        else:
            validate(db)  # never overwrite something that is not a geo store
            target = sqlite3.connect(db, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            try:
                target.execute("PRAGMA journal_mode=WAL")
                target.execute("PRAGMA synchronous=FULL")
                source.backup(target)  # one write transaction on the live store
                # keep WAL mode: the backup copies the source's header (journal_mode=DELETE)
                target.execute("PRAGMA journal_mode=WAL")
            finally:
                target.close()
    except sqlite3.Error as exc:
        raise BackupError(f"restore of {db} from {src} failed: {exc}") from exc
    finally:
        source.close()
    return Checked(db, checked.version, checked.schema_version, checked.communities)
