"""What every command shares: the consoles, the store and its atlas, options, the per-row report.

Errors: a `GeoError` raised anywhere under a command ends it with ``error: message`` and the
error's exit code (`GeoGroup`, the one place that maps them); `fail` is for the command line's
own mistakes (a malformed option).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from geo import io as geo_io
from geo.errors import GeoError
from geo.settings import Settings

out = Console(soft_wrap=True)  # messages are never wrapped: paths stay whole, greppable
err = Console(stderr=True, soft_wrap=True)


class GeoGroup(TyperGroup):
    """The `geo` command group: a `GeoError` from any command is its message and exit code."""

    def invoke(self, ctx: click.Context):
        """Run the command; a `GeoError` becomes ``error: message`` and its exit code."""
        try:
            return super().invoke(ctx)
        except GeoError as exc:
            err.print(f"[red]error:[/red] {exc.detail}", highlight=False)
            raise typer.Exit(exc.exit_code) from exc


_WARNINGS_SHOWN = 10
DbOption = Annotated[
    str | None,
    typer.Option("--db", help="store: a .gpkg path or a postgresql:// URL (env GEO_DB)"),
]


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` and return the exit (code 2) to raise."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(2)


def settings_for(db: str | None) -> Settings:
    """The settings from ``GEO_`` variables, with ``--db`` over ``GEO_DB`` when given."""
    settings = Settings()
    return settings.model_copy(update={"db": db}) if db else settings


def open_store_at(db: str):
    """The store at ``db`` (an unknown kind of store is a `GeoError`: exit 2)."""
    from geo.store import open_store

    return open_store(db)


def existing_store(db: str):
    """The store at ``db``, which must exist (exit 2 and how to make one if it does not)."""
    from geo.store import is_database_url

    if not is_database_url(db) and not Path(db).exists():
        raise fail(f"no store at {db}: run `geo load DIR --db {db}` (or `geo serve`) first")
    return open_store_at(db)


def atlas_at(db: str):
    """The atlas of the store's latest version (exit 2 when there is no store)."""
    from geo.atlas import Atlas

    store = existing_store(db)
    try:
        return Atlas(store.snapshot())
    finally:
        store.close()


def issue_line(issue: geo_io.Issue) -> str:
    """One reader's issue as a line: table, row, id and reason."""
    where = f"row {issue.row}" if issue.row else "file"
    return f"{issue.table} {where}" + (f" ({issue.id})" if issue.id else "") + f": {issue.reason}"


def report(warnings: list, rejected: list, verbose: bool) -> None:
    """The per-row report: warnings (the first few unless ``verbose``), then rejected rows."""
    shown = warnings if verbose else warnings[:_WARNINGS_SHOWN]
    for issue in shown:
        err.print(f"[yellow]warning[/yellow] {issue_line(issue)}", highlight=False)
    if len(shown) < len(warnings):
        err.print(f"… and {len(warnings) - len(shown)} more warnings (--verbose lists all)")
    for issue in rejected:
        err.print(f"[red]rejected[/red] {issue_line(issue)}", highlight=False)


def parse_fields(pairs: list[str] | None) -> dict[str, str] | None:
    """``--field ours=theirs`` options as a mapping (exit 2 on a malformed one)."""
    if not pairs:
        return None
    fields = {}
    for pair in pairs:
        ours, sep, theirs = pair.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise fail(f"--field {pair!r}: write ours=theirs, e.g. --field name=道路名称")
        fields[ours.strip()] = theirs.strip()
    return fields


FieldOption = Annotated[
    list[str] | None,
    typer.Option("--field", help="ours=theirs: read our field from their column (repeatable)"),
]
SourceCrsOption = Annotated[
    str | None,
    typer.Option("--crs", help="CRS of files that have none (or a wrong one): gcj02, EPSG:4549 …"),
]
SourceLayerOption = Annotated[
    str | None, typer.Option("--layer", help="layer of a GeoPackage/FileGDB, or sheet of a .xlsx")
]


def read_layer(path: str, layer: str, source_layer: str | None = None):
    """A layer from any source (columns found, ids derived); its issues printed as warnings."""
    frame, issues, _ = geo_io.read_layer_source(path, layer, source_layer=source_layer)
    for issue in issues:
        err.print(f"[yellow]warning[/yellow] {path}: {issue_line(issue)}", highlight=False)
    return frame


def print_json(obj) -> None:
    """Write ``obj`` as one line of JSON to stdout (CJK as is)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def served(store, version: int) -> list[str]:
    """The CLI's ``publish``: wait until every running `geo serve` process answers from
    ``version``; a warning for those that do not yet."""
    from geo.store import serving

    behind = serving.wait_served(store, version, Settings().publish_timeout_seconds)
    if not behind:
        return []
    return [
        f"{len(behind)} server process(es) still answer from an older version; they will catch up"
    ]


def show_warnings(messages: list[str]) -> None:
    """Print each message as a ``warning`` line on stderr."""
    for message in messages:
        err.print(f"[yellow]warning[/yellow] {message}", highlight=False)
