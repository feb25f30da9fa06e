"""The command line's ``publish`` for the actions: a new version reaches the running servers."""

from __future__ import annotations

from geo.cli.common import err
from geo.settings import Settings
from geo.store.base import Store


def served(store: Store, version: int) -> list[str]:
    """Wait until every running `geo serve` process answers from ``version``; a warning if not."""
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
