"""Roles and bearer tokens: one table of (caller × endpoint family) → status, personal fields,
tokens stored hashed, deny-by-default for writes, CORS, request ids and the `geo users` CLI."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from geo.api.app import create_app
from geo.api.auth import RANK, SAFE_METHODS, declared_role
from geo.cli import app as cli_app
from geo.settings import Settings
from geo.store import open_store

TORCH = "东至信诚路、南至南环路、西至东信大道、北至江南大道"
WEST = "东至信诚路、南至南环路、西至伟业路、北至江南大道"  # an edit: the western edge on 伟业路
CALLERS = ("anonymous", "officer", "planner", "admin", "bad", "revoked")

# (family, method, path, kwargs, least role, status when allowed). Writes are sent so that they
# pass authorisation and then stop before writing (no If-Match → 428, a stale one → 412), so the
# shared sample store is never changed.
ENDPOINTS = [
    ("health", "GET", "/health", {}, "anonymous", 200),
    ("locate", "GET", "/locate", {"params": {"lon": 120.172, "lat": 30.187}}, "anonymous", 200),
    ("locate", "POST", "/locate", {"json": {"points": [[120.172, 30.187]]}}, "anonymous", 200),
    ("owner", "GET", "/enterprises/E000001/owner", {}, "anonymous", 200),
    ("features", "GET", "/collections/grids/items", {"params": {"limit": 1}}, "anonymous", 200),
    ("tiles", "GET", "/tiles/grids.json", {}, "anonymous", 200),
    ("tiles", "GET", "/tiles/grids/14/13661/6749.mvt", {}, "anonymous", 200),
    ("maps", "GET", "/maps/community/C01", {"params": {"basemap": "none"}}, "anonymous", 200),
    ("people", "GET", "/grids/C01-G01", {}, "anonymous", 200),
    ("people", "GET", "/officers/O0001", {}, "anonymous", 200),
    ("coverage", "GET", "/coverage", {"params": {"level": "community", "id": "C02"}},
     "anonymous", 200),
    ("boundary", "GET", "/communities/C01", {}, "anonymous", 200),
    ("boundary", "POST", "/boundaries/build", {"json": {"four_to": TORCH}}, "planner", 200),
    ("boundary", "POST", "/communities/C01/boundary/preview", {"json": {"four_to": WEST}},
     "planner", 200),
    ("boundary", "PUT", "/communities/C01/boundary", {"json": {"four_to": WEST}}, "planner", 428),
    ("boundary", "POST", "/communities/C01/boundary/revert", {"json": {"version": 1}},
     "planner", 428),
    ("boundary", "POST", "/communities", {"json": {}}, "planner", 422),
    ("grids", "POST", "/communities/C02/grids/split", {"json": {"count": 3}}, "planner", 200),
    ("grids", "POST", "/communities/C02/grids/commit",
     {"json": {"count": 3}, "headers": {"If-Match": "0"}}, "planner", 412),
    ("audit", "GET", "/audit", {}, "admin", 200),
    ("users", "GET", "/users", {}, "admin", 200),
    ("users", "POST", "/users", {"json": {"name": "", "role": "officer"}}, "admin", 422),
    ("users", "DELETE", "/users/nobody", {}, "admin", 404),
]  # fmt: skip


def expected(caller: str, least: str, allowed: int) -> int:
    if caller in ("bad", "revoked"):
        return 401
    if RANK[caller] >= RANK[least]:
        return allowed
    return 401 if caller == "anonymous" else 403


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(
    ("family", "method", "path", "kwargs", "least", "allowed"),
    ENDPOINTS,
    ids=[f"{e[1]} {e[2]}" for e in ENDPOINTS],
)
def test_role_table(
    client: TestClient,
    auth_headers: dict,
    caller: str,
    family: str,
    method: str,
    path: str,
    kwargs: dict,
    least: str,
    allowed: int,
) -> None:
    headers = {**kwargs.get("headers", {}), **auth_headers[caller]}
    rest = {k: v for k, v in kwargs.items() if k != "headers"}
    r = client.request(method, path, headers=headers, **rest)
    want = expected(caller, least, allowed)
    assert r.status_code == want, (family, caller, r.status_code, r.text[:300])
    if want == 401:
        assert r.headers["WWW-Authenticate"] == "Bearer"
        assert "token" in r.json()["detail"]
    assert r.headers["X-Request-ID"]


def _api_routes(routes):
    """Every APIRoute, also inside routers FastAPI includes lazily (``original_router``)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)


def test_every_write_route_needs_a_declared_or_planner_role(client: TestClient) -> None:
    """Deny by default: the only route open to anonymous writes is the read-only POST /locate."""
    open_writes = []
    for route in _api_routes(client.app.routes):
        if not (route.methods - SAFE_METHODS):
            continue
        role = declared_role(route) or "planner"
        if role == "anonymous":
            open_writes.append(route.path)
        else:
            assert RANK[role] >= RANK["planner"], route.path
    assert open_writes == ["/locate"]
    assert len(list(_api_routes(client.app.routes))) > 30


def test_openapi_documents_bearer_tokens_and_each_routes_role(client: TestClient) -> None:
    """/openapi.json has the bearer scheme (the Authorize button of /docs) and, per operation,
    the role `policy` enforces; the 422 documentation of geo.api.errors still applies."""
    schema = client.get("/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    props = schema["components"]["schemas"]["HTTPValidationError"]["properties"]
    assert props["detail"]["type"] == "string" and "errors" in props  # both wrappers apply
    put = schema["paths"]["/communities/{community_id}/boundary"]["put"]
    assert put["security"] == [{"bearerAuth": []}]
    assert put["description"].endswith("Role: planner (send `Authorization: Bearer <token>`).")
    assert "Role: admin" in schema["paths"]["/audit"]["get"]["description"]
    assert schema["paths"]["/locate"]["get"]["security"] == [{}, {"bearerAuth": []}]
    assert "Role:" not in schema["paths"]["/locate"]["get"].get("description", "")
    checked = 0
    for route in _api_routes(client.app.routes):
        if not route.include_in_schema:
            continue
        for method in route.methods:
            role = declared_role(route) or ("anonymous" if method in SAFE_METHODS else "planner")
            op = schema["paths"][route.path_format][method.lower()]
            required = op["security"] == [{"bearerAuth": []}]
            assert required == (role != "anonymous"), (method, route.path, op["security"])
            assert required == (f"Role: {role} " in op.get("description", "")), route.path
            checked += 1
    assert checked > 30


def test_docs_page_renders(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in r.text and "/openapi.json" in r.text


def _team_owner(client: TestClient, headers: dict) -> dict:
    items = client.get("/collections/enterprises/items", params={"limit": 300}).json()
    for f in items["features"]:
        body = client.get(f"/enterprises/{f['id']}/owner", headers=headers).json()
        if body["team"]:
            return body
    raise AssertionError("no enterprise of the sample has a team")


def test_phones_only_for_officers_and_up(client: TestClient, auth_headers: dict) -> None:
    anon = client.get("/grids/C01-G01").json()
    assert anon["officers"] and all("phone" not in o for o in anon["officers"])
    assert all("phone" not in o for m in anon["microgrids"] for o in m["team"])
    for role in ("officer", "planner", "admin"):
        body = client.get("/grids/C01-G01", headers=auth_headers[role]).json()
        assert all(o["phone"] for o in body["officers"])
        assert all(o["phone"] for m in body["microgrids"] for o in m["team"])
    officer = client.get("/officers/O0001").json()["officer"]
    assert "phone" not in officer
    officer = client.get("/officers/O0001", headers=auth_headers["officer"]).json()["officer"]
    assert officer["phone"]
    owner = _team_owner(client, {})
    assert all("phone" not in o for o in owner["team"])
    assert "employees" not in owner["enterprise"]
    eid = owner["enterprise"]["id"]
    full = client.get(f"/enterprises/{eid}/owner", headers=auth_headers["officer"]).json()
    assert all(o["phone"] for o in full["team"]) and "employees" in full["enterprise"]
    # tiles and maps are the same for everyone and never carry phone numbers
    phone = full["team"][0]["phone"]
    page = client.get("/maps/community/C01", params={"basemap": "none"}).text
    assert phone not in page
    authed = client.get(
        "/maps/community/C01", params={"basemap": "none"}, headers=auth_headers["admin"]
    )
    assert phone not in authed.text


def test_token_is_stored_hashed(sample_db: str, auth_headers: dict) -> None:
    token = auth_headers["planner"]["Authorization"].split()[1]
    token_id, secret = token.split(".", 1)
    con = sqlite3.connect(sample_db)
    try:
        rows = con.execute("SELECT token_id, user_name, salt, hash FROM geo_tokens").fetchall()
        dump = "\n".join(con.iterdump())
    finally:
        con.close()
    assert secret not in dump and token not in dump
    (row,) = [r for r in rows if r[0] == token_id]
    assert row[1] == "test-planner" and len(row[2]) == 16 and len(row[3]) == 32
    from geo.store.users import PBKDF2_ITERATIONS

    assert row[3] == hashlib.pbkdf2_hmac("sha256", secret.encode(), row[2], PBKDF2_ITERATIONS)
    assert len({r[2] for r in rows}) == len(rows)  # a salt per token


def test_tokens_only_in_the_authorization_header(client: TestClient, auth_headers: dict) -> None:
    token = auth_headers["admin"]["Authorization"].split()[1]
    r = client.get("/audit", params={"access_token": token})
    assert r.status_code == 400 and "Authorization: Bearer" in r.json()["detail"]
    assert token not in r.text
    r = client.get("/audit", headers={"Authorization": f"Token {token}"})
    assert r.status_code == 401
    r = client.get("/audit", headers={"Authorization": "Bearer"})
    assert r.status_code == 401
    r = client.get("/audit", headers={"Authorization": "Bearer no-dot-here"})
    assert r.status_code == 401
    assert client.get("/audit", headers=auth_headers["admin"]).status_code == 200


def test_request_id_is_echoed_or_made_up(client: TestClient) -> None:
    r = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123"
    made = client.get("/health", headers={"X-Request-ID": "bad id\nwith newline"})
    assert made.headers["X-Request-ID"] not in ("", "bad id\nwith newline")
    assert len(made.headers["X-Request-ID"]) == 32


def test_cors_is_off_by_default_and_configurable(sample_db: str) -> None:
    preflight = {
        "Origin": "https://maps.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization",
    }
    with TestClient(create_app(open_store(sample_db), Settings(db=sample_db))) as c:
        r = c.get("/health", headers={"Origin": "https://maps.example"})
        assert "access-control-allow-origin" not in r.headers
    settings = Settings(db=sample_db, cors_origins="https://maps.example, https://b.example")
    with TestClient(create_app(open_store(sample_db), settings)) as c:
        r = c.options("/health", headers=preflight)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://maps.example"
        assert "authorization" in r.headers["access-control-allow-headers"].lower()
        other = c.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        # an OGC API Part 4 editor in a browser: PATCH with Content-Crs, reads Location back
        patch = {
            **preflight,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "Authorization, Content-Crs, If-Match",
        }
        r = c.options("/collections/parks/items/P001", headers=patch)
        assert r.status_code == 200, r.text
        assert "PATCH" in r.headers["access-control-allow-methods"]
        made = c.get("/health", headers={"Origin": "https://maps.example"})
        assert "location" in made.headers["access-control-expose-headers"].lower()


def test_cli_users_add_list_revoke(tmp_path, copy_sample) -> None:
    db = copy_sample(tmp_path / "users.gpkg")
    runner = CliRunner()
    r = runner.invoke(cli_app, ["users", "add", "wang", "--role", "planner", "--db", db])
    assert r.exit_code == 0, r.output
    token = r.stdout.strip()
    assert "." in token and len(token) > 40
    again = runner.invoke(cli_app, ["users", "add", "wang", "--role", "admin", "--db", db])
    assert again.exit_code == 2 and "exists" in again.stderr
    bad = runner.invoke(cli_app, ["users", "add", "li", "--role", "boss", "--db", db])
    assert bad.exit_code == 2 and "unknown role" in bad.stderr
    listed = runner.invoke(cli_app, ["users", "list", "--db", db])
    assert "wang\tplanner" in listed.stdout and "1 token(s)" in listed.stdout
    assert token.split(".", 1)[1] not in listed.stdout

    with TestClient(create_app(open_store(db), Settings(db=db))) as c:
        auth = {"Authorization": f"Bearer {token}"}
        body = {"four_to": WEST}
        assert c.post("/communities/C01/boundary/preview", json=body, headers=auth).status_code == (
            200
        )
        assert c.get("/users", headers=auth).status_code == 403
        r = runner.invoke(cli_app, ["users", "revoke", "wang", "--db", db])
        assert r.exit_code == 0, r.output
        r = c.post("/communities/C01/boundary/preview", json=body, headers=auth)
        assert r.status_code == 401  # at once, though this process verified the token before
    listed = runner.invoke(cli_app, ["users", "list", "--db", db])
    assert "revoked" in listed.stdout
    assert runner.invoke(cli_app, ["users", "revoke", "wang", "--db", db]).exit_code == 2
