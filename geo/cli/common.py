"""What every command shares: the consoles, the store and its atlas, options, the per-row report.

Errors: a `GeoError` raised anywhere under a command ends it with ``error: message`` and the
error's exit code (`GeoGroup`, the one place that maps them); `fail` is for the command line's
own mistakes (a malformed option).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer
from rich.console import Console
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer.core import TyperGroup
from typer.exceptions import Abort

from geo.errors import GeoError

if TYPE_CHECKING:  # each command imports what it needs when it runs: `geo locate` starts fast
    from geo import io as geo_io
    from geo.atlas import Atlas, Locator
    from geo.settings import Settings

#: the store when neither ``--db`` nor ``GEO_DB`` says (`geo.settings.Settings.db`'s default)
DEFAULT_DB = "geo.gpkg"

out = Console(soft_wrap=True)  # messages are never wrapped: paths stay whole, greppable
err = Console(stderr=True, soft_wrap=True)


class GeoGroup(TyperGroup):
    """The `geo` command group: a `GeoError` from any command is its message and exit code; a
    usage error (an unknown option, a value that is not a number) is ``Usage:``, the hint and
    one ``error:`` line, never wrapped nor boxed; help shows no type for flags."""

    _tidied = False

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Run the command line; usage errors as plain lines (exit 2), not typer's panel."""
        if not self._tidied:
            _flags_without_type(self)
            self._tidied = True
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except ClickException as exc:
            if not isinstance(exc, NoArgsIsHelpError):  # the help is shown already
                _usage_error(exc)
            sys.exit(exc.exit_code)
        except Abort:
            err.print("aborted", highlight=False, markup=False)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context):
        """Run the command; a `GeoError` becomes ``error: message`` and its exit code."""
        try:
            return super().invoke(ctx)
        except GeoError as exc:
            err.print(f"[red]error:[/red] {exc.detail}", highlight=False)
            raise typer.Exit(exc.exit_code) from exc


def _usage_error(exc: ClickException) -> None:
    """A usage error as click words it, on whole lines: usage, hint, ``error: message``."""
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        err.print(ctx.get_usage(), highlight=False, markup=False)
        if ctx.command.get_help_option(ctx) is not None:
            hint = f"Try '{ctx.command_path} {ctx.help_option_names[0]}' for help."
            err.print(hint, highlight=False, markup=False)
    err.print(f"error: {exc.format_message()}", highlight=False, markup=False)


def _flags_without_type(command) -> None:
    """No ``<bool>`` after a flag (``--commit``, ``--help``) in help: a flag takes no value."""
    ctx = command.context_class(command)
    for param in command.get_params(ctx):
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _flags_without_type(sub)


_WARNINGS_SHOWN = 10
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db", help="store: a .gpkg path or a postgresql:// URL (env GEO_DB; default ./geo.gpkg)"
    ),
]


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` and return the exit (code 2) to raise."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(2)


def settings_for(db: str | None) -> Settings:
    """The settings from ``GEO_`` variables, with ``--db`` over ``GEO_DB`` when given."""
    from geo.settings import Settings

    settings = Settings()
    return settings.model_copy(update={"db": db}) if db else settings


def store_location(db: str | None) -> str:
    """The store: ``--db``, else ``GEO_DB`` (any case, as `settings_for` reads it), else
    `DEFAULT_DB`, without loading the settings machinery (pydantic-settings)."""
    if db:
        return db
    for name, value in os.environ.items():
        if name.upper() == "GEO_DB":
            return value
    return DEFAULT_DB


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


def atlas_at(db: str) -> Atlas:
    """The atlas of the store's latest version (exit 2 when there is no store); its ownership
    index from the store's ready file when there is one (`geo.ready`)."""
    from geo import ready

    store = existing_store(db)
    try:
        return ready.atlas(store.snapshot(), db)
    finally:
        store.close()


def locator_at(db: str) -> Locator:
    """Ownership at the store's latest version, for commands that only locate (`geo locate`,
    `geo assign`): loaded from the store's ready file (`geo.ready`) in milliseconds, else
    built from the polygon tables alone and written for the next command."""
    from geo import ready

    store = existing_store(db)
    try:
        return ready.locator(store, db)
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
    from geo import io as geo_io

    frame, issues, _ = geo_io.read_layer_source(path, layer, source_layer=source_layer)
    for issue in issues:
        err.print(f"[yellow]warning[/yellow] {path}: {issue_line(issue)}", highlight=False)
    return frame


def print_json(obj) -> None:
    """Write ``obj`` as one line of JSON to stdout (CJK as is)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def served(store, version: int) -> list[str]:
    """The CLI's ``publish``: wait until every running `geo serve` process answers from
    ``version``; warnings for those still behind and for replicas not waited for (silent)."""
    from geo.store import serving

    timeout = settings_for(None).publish_timeout_seconds
    return serving.wait_published(store, version, timeout).warnings(timeout)


def show_warnings(messages: list[str]) -> None:
    """Print each message as a ``warning`` line on stderr."""
    for message in messages:
        err.print(f"[yellow]warning[/yellow] {message}", highlight=False)
