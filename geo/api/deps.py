"""Dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from geo.atlas import Atlas
from geo.settings import Settings


async def atlas(request: Request) -> Atlas:
    """The atlas this request reads from (one version for the whole request).

    Between store checks it is taken on the event loop; when a check is due (it may rebuild
    the atlas) the check runs in the thread pool.
    """
    holder = request.app.state.atlas
    return holder.fresh() or await run_in_threadpool(holder.current)


def settings(request: Request) -> Settings:
    """The settings the app was made with."""
    return request.app.state.settings
