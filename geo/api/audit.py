"""The audit log over HTTP (admin only) and the request id every response carries.

Every write appends one row to the store's append-only ``geo_audit`` table *in the same
transaction as the write* (`geo.store.users`): who (the authenticated user and role), when,
what (method, path, target id), the store version before and after, and the request id. The
routes hand the store `context(request, target=...)` (`geo.api.auth.audit_context`: the
caller and the request, kept beside the authentication that resolves the caller, so this
module depends on `geo.api.auth` and not the other way round); the CLI's writes are recorded with
method ``cli``. There is no API to change or delete audit rows, and the store refuses
UPDATE/DELETE on the table (SQLite triggers).

`RequestIdMiddleware` echoes a client's ``X-Request-ID`` (when it is 1-128 characters of
``A-Z a-z 0-9 . _ -``) or makes one up (a UUID4), sets it on ``request.state.request_id`` and
sends it back in the ``X-Request-ID`` response header.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo.api.auth import audit_context as context
from geo.api.auth import require
from geo.store import users as users_store

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

__all__ = ["RequestIdMiddleware", "audit_log", "context", "router"]

router = APIRouter(tags=["audit"], dependencies=[Depends(require("admin"))])


class RequestIdMiddleware:
    """Pure ASGI middleware: the ``X-Request-ID`` of every HTTP request and response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with its id in ``scope["state"]``; add the id to the answer."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", rid.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


@router.get("/audit", summary="The audit log of every write, newest first (admin)")
def audit_log(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """A page of the audit log: ``total`` rows, ``items`` from ``offset``, newest first."""
    total, rows = users_store.audit_rows(request.app.state.atlas.store, limit, offset)
    return {"total": total, "offset": offset, "limit": limit, "items": rows}
