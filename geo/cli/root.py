"""The `geo` command group every command module adds itself to."""

from __future__ import annotations

import typer

from geo.cli.common import GeoGroup

app = typer.Typer(
    cls=GeoGroup,
    help="Industrial communities (产业社区): boundaries, grids, enterprise ownership.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
