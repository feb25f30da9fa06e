"""The `geo` command group every command module adds itself to, and its own options."""

from __future__ import annotations

from typing import Annotated

import typer

from geo import __version__
from geo.cli.common import GeoGroup

app = typer.Typer(
    cls=GeoGroup,
    help="Industrial communities (产业社区): boundaries, grids, enterprise ownership.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"show_default": True},  # every option's default in --help
)


def _print_version(value: bool) -> None:
    """``--version``: print ``geo <version>`` and exit."""
    if value:
        print(f"geo {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Industrial communities (产业社区): boundaries, grids, enterprise ownership."""
