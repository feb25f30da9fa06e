"""Who is calling, and what they may do: bearer tokens, roles, one policy for every route.

Roles, in increasing trust: ``anonymous`` < ``officer`` < ``planner`` < ``admin``.

* anonymous: locate, owner look-ups, OGC features, tiles, maps, coverage, grids/officers
  without personal data (officers' phone numbers are absent, not null).
* officer: plus the team's phone numbers and enterprise details (employees).
* planner: plus every write (boundary build/preview/create/put/revert, grid split/commit).
  Build, preview and split propose write nothing but are planner tools (they are costly and
  show unpublished plans), so they need ``planner`` too.
* admin: plus users and tokens (``/users``) and the audit log (``/audit``).

The mechanism: `policy` is an app-wide dependency (``FastAPI(dependencies=[Depends(policy)])``)
that runs for every route. It resolves the caller once per request (`authenticate`: a bad,
revoked or malformed token is a 401 everywhere, with ``WWW-Authenticate: Bearer``) and enforces
the route's declared role: a role declared with ``Depends(require(role))`` on the router, the
route decorator or a parameter; undeclared routes are open to reads (GET, HEAD, OPTIONS) and
need ``planner`` for anything else (deny by default: a new write route is protected before
anyone thinks of it). ``POST /locate`` declares ``require("anonymous")``. Too low a role is a
403, no token where one is needed a 401. `caller_role` tells a route the caller's role; the
fields each role may see are in one table, `geo.visibility`.

`document_security` describes the same policy in ``/openapi.json``: an HTTP bearer scheme (the
Authorize button of ``/docs``) and, per operation, the role it needs.

Tokens come only in the ``Authorization: Bearer <token>`` header; a token in the URL
(``?access_token=``/``?token=``) is refused with 400 so it does not end up in logs. Tokens are
never logged. A successful check is remembered per token id (a SHA-256 of the token, in memory)
so PBKDF2 runs once per token and process; revocation still takes effect at once, since every
request reads the token's row.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any

import fastapi.routing
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from geo.errors import BadRequest, Forbidden, Unauthorized
from geo.store import users as users_store
from geo.store.users import ROLES, USER_ROLES, User

RANK = {role: i for i, role in enumerate(ROLES)}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WRITE_ROLE = "planner"  # what an undeclared non-read route needs
_URL_TOKEN_PARAMS = ("access_token", "token")
_ANONYMOUS = object()


class _Verified:
    """token id → SHA-256 of the token last verified with PBKDF2 (bounded, thread-safe)."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._d: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def check(self, store, token: str) -> User | None:
        parts = users_store.split_token(token)
        if parts is None:
            return None
        record = users_store.token_record(store, parts[0])  # active user and token, or None
        if record is None:
            return None
        name, role, salt, digest = record
        quick = hashlib.sha256(token.encode() + digest).digest()
        with self._lock:
            known = self._d.get(parts[0])
        if known is not None and hmac.compare_digest(known, quick):
            return User(name, role)
        if not hmac.compare_digest(users_store.hash_secret(parts[1], salt), digest):
            return None
        with self._lock:
            if len(self._d) >= self.size:
                self._d.clear()
            self._d[parts[0]] = quick
        return User(name, role)


_verified = _Verified()


def _store(request: Request):
    return request.app.state.atlas.store


async def authenticate(request: Request) -> User | None:
    """The caller (None: anonymous), resolved once per request; 401 for a bad token."""
    cached = getattr(request.state, "user", _ANONYMOUS)
    if cached is not _ANONYMOUS:
        return cached
    if any(p in request.query_params for p in _URL_TOKEN_PARAMS):
        raise BadRequest(
            "tokens are not accepted in URLs (they end up in logs and browser history): "
            "send them as the header Authorization: Bearer <token>",
        )
    header = request.headers.get("authorization")
    user = None
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("send the token as Authorization: Bearer <token>")
        user = await run_in_threadpool(_verified.check, _store(request), token.strip())
        if user is None:
            raise Unauthorized(
                "the bearer token is not valid (unknown, mistyped or revoked): ask an admin "
                "for a token (`geo users add NAME --role ROLE`)"
            )
    request.state.user = user
    return user


def at_least(user: User | None, role: str) -> bool:
    """Whether ``user`` (None: anonymous) has ``role`` or a more trusted one."""
    return RANK[user.role if user else "anonymous"] >= RANK[role]


def _enforce(user: User | None, role: str) -> None:
    if at_least(user, role):
        return
    if user is None:
        raise Unauthorized(f"this needs a {role} token: send Authorization: Bearer <token>")
    raise Forbidden(f"this needs the role {role}; {user.name} is {user.role}")


def require(role: str) -> Callable[[Request], Coroutine[Any, Any, User | None]]:
    """A dependency that lets callers of at least ``role`` through and returns the caller.

    Use on a router (``APIRouter(dependencies=[Depends(require("admin"))])``), a route
    decorator or as a parameter (``user: Annotated[User, Depends(require("planner"))]``).
    The returned callables are cached per role, so FastAPI resolves them once per request.
    """
    if role not in RANK:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    if role in _REQUIRE:
        return _REQUIRE[role]

    async def dependency(request: Request) -> User | None:
        user = await authenticate(request)
        _enforce(user, role)
        return user

    dependency.geo_role = role  # type: ignore[attr-defined]  # read by `policy`
    dependency.__name__ = f"require_{role}"
    _REQUIRE[role] = dependency
    return dependency


_REQUIRE: dict[str, Callable[[Request], Coroutine[Any, Any, User | None]]] = {}


def declared_role(route: Any) -> str | None:
    """The highest role a route declares through `require` (router, decorator or parameter)."""
    dependant = getattr(route, "dependant", None)
    roles = [
        getattr(d.call, "geo_role", None) for d in (dependant.dependencies if dependant else ())
    ]
    roles = [r for r in roles if r]
    return max(roles, key=RANK.__getitem__) if roles else None


def effective_role(route: Any, method: str) -> str:
    """The role ``method`` on ``route`` needs: the declared one, else anonymous for reads and
    `WRITE_ROLE` for anything else (deny by default)."""
    role = declared_role(route)
    if role is not None:
        return role
    return "anonymous" if method.upper() in SAFE_METHODS else WRITE_ROLE


async def policy(request: Request) -> None:
    """The app-wide dependency: authenticate, then enforce the route's role (deny by default)."""
    user = await authenticate(request)
    _enforce(user, effective_role(request.scope.get("route"), request.method))


async def caller_role(request: Request) -> str:
    """The caller's role (``anonymous`` without a token): which fields it may see is
    `geo.visibility`'s table (officers' phones, enterprises' employees)."""
    user = await authenticate(request)
    return user.role if user else "anonymous"


Role = Annotated[str, Depends(caller_role)]
Planner = Annotated[User, Depends(require("planner"))]


def audit_context(request: Request, *, target: str | None = None) -> dict[str, Any]:
    """What the store writes into the audit row of this request's write: the caller (as
    `authenticate` resolved it), the method and path, the target id and the request id
    (`geo.api.audit.RequestIdMiddleware`)."""
    user = getattr(request.state, "user", None)
    return {
        "actor": user.name if user else "anonymous",
        "role": user.role if user else "anonymous",
        "method": request.method,
        "path": request.url.path,
        "target": target,
        "request_id": getattr(request.state, "request_id", None),
    }


# ------------------------------------------------------------------------ OpenAPI (/docs)

SECURITY_SCHEME = "bearerAuth"


def _operations(app: FastAPI) -> Iterator[tuple[str, str, Any]]:
    """(path, method, route) of every documented operation, as FastAPI lists them in the
    schema (routers included lazily too, with their effective paths)."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)  # lazy includes
    for route in iterate(app.routes) if iterate else app.routes:
        original = getattr(route, "original_route", route)
        if isinstance(original, APIRoute) and original.include_in_schema:
            for method in route.methods:
                yield route.path_format, method.lower(), route


def document_security(app: FastAPI) -> None:
    """Describe the bearer tokens in ``/openapi.json`` (an Authorize button in ``/docs``): an
    HTTP bearer scheme, and per operation the role `policy` enforces. Anonymous operations take
    an optional token (it may add personal fields); the others require one, and their
    description ends with the role. Wraps ``app.openapi`` like `geo.api.limits`, so both apply."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[SECURITY_SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "a token from `geo users add NAME --role ROLE` (or `geo users token`)",
        }
        paths = schema.get("paths", {})
        for path, method, route in _operations(app):
            operation = paths.get(path, {}).get(method)
            if operation is None:
                continue
            role = effective_role(route, method)
            if role == "anonymous":
                operation["security"] = [{}, {SECURITY_SCHEME: []}]
                continue
            operation["security"] = [{SECURITY_SCHEME: []}]
            note = f"Role: {role} (send `Authorization: Bearer <token>`)."
            text = operation.get("description", "")
            operation["description"] = f"{text}\n\n{note}" if text else note
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


# ---------------------------------------------------------------------------- users (admin)

router = APIRouter(tags=["users"], dependencies=[Depends(require("admin"))])


class NewUser(BaseModel):
    """A user to create: its name (the author of its edits) and its role."""

    name: str = Field(min_length=1, max_length=100)
    role: str = Field(description=f"one of {', '.join(USER_ROLES)}")


@router.get("/users", summary="Users, their roles and active token counts (admin)")
def list_users(request: Request) -> dict[str, Any]:
    """Every user, active or revoked, with its role and number of active tokens."""
    return {"users": users_store.list_users(_store(request))}


@router.post(
    "/users",
    status_code=201,
    summary="Create a user and its first token (admin); the token is shown only in this answer",
)
def add_user(request: Request, body: NewUser) -> dict[str, Any]:
    """Create a user (409 if the name is taken by an active user) and return its first token."""
    token = users_store.add_user(
        _store(request), body.name, body.role, audit=audit_context(request, target=body.name)
    )
    return {"name": body.name.strip(), "role": body.role, "token": token}


@router.delete("/users/{name}", summary="Revoke a user and all its tokens (admin)")
def revoke_user(request: Request, name: str) -> dict[str, Any]:
    """Revoke an active user (404 if there is none by that name) and every token of theirs."""
    users_store.revoke_user(_store(request), name, audit=audit_context(request, target=name))
    return {"name": name, "revoked": True}
