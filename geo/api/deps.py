"""Dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request

from geo.atlas import Atlas
from geo.settings import Settings


def atlas(request: Request) -> Atlas:
    """The atlas this request reads from (one version for the whole request)."""
    return request.app.state.atlas.current()


def settings(request: Request) -> Settings:
    return request.app.state.settings
