"""The `geo` command line: load, import, serve, locate, assign, export, check, boundary, grids.

Each module holds one family of commands and adds them to `geo.cli.root.app`; they parse
options, call an action and render its result. Errors in the input end the command with exit
code 2 and a message that says what to fix (`geo.cli.common.GeoGroup`).
"""

from __future__ import annotations

import sys

from geo.cli import boundary, data, grids, maps, quality, serve, users  # noqa: F401 - registers
from geo.cli.root import app

__all__ = ["app", "main"]


def main() -> None:
    """The `geo` console script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
