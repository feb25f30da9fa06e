"""One error family, mapped once: every GeoError kind answers with its status over HTTP and its
exit code on the command line, and the house keeps its rooms (no HTTP below the API, no
framework in the actions)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import typer
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from geo import errors
from geo.api import errors as api_errors
from geo.cli.common import GeoGroup

GEO = Path(__file__).resolve().parent.parent / "geo"
KINDS = [
    (errors.BadRequest, 400, 2),
    (errors.Unauthorized, 401, 2),
    (errors.Forbidden, 403, 2),
    (errors.NotFound, 404, 2),
    (errors.Conflict, 409, 2),
    (errors.PreconditionFailed, 412, 2),
    (errors.PayloadTooLarge, 413, 2),
    (errors.InvalidInput, 422, 2),
    (errors.PreconditionRequired, 428, 2),
    (errors.TooManyRequests, 429, 1),
    (errors.Unavailable, 503, 1),
]


def _app(exc: Exception) -> FastAPI:
    app = FastAPI()
    api_errors.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise exc

    return app


@pytest.mark.parametrize(("kind", "status", "_"), KINDS)
def test_every_kind_is_its_status_over_http(kind: type, status: int, _: int) -> None:
    answer = TestClient(_app(kind("what was wrong; how to fix it"))).get("/boom")
    assert answer.status_code == status
    assert answer.json() == {"detail": "what was wrong; how to fix it"}
    if kind is errors.Unauthorized:
        assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_http_answers_name_the_body_fields_not_the_cli_options() -> None:
    exc = errors.InvalidInput("the road stops 150 m short: give --extend-m 200 or --within S01")
    detail = TestClient(_app(exc)).get("/boom").json()["detail"]
    assert detail == "the road stops 150 m short: give extend_m=200 or within=S01"


@pytest.mark.parametrize(("kind", "_", "code"), KINDS)
def test_every_kind_is_its_exit_code_on_the_command_line(kind: type, _: int, code: int) -> None:
    app = typer.Typer(cls=GeoGroup)

    @app.command()
    def boom() -> None:
        raise kind("what was wrong; how to fix it")

    @app.command()
    def other() -> None:  # two commands: `boom` is a subcommand, as in `geo`
        pass

    result = CliRunner().invoke(app, ["boom"])
    assert result.exit_code == code
    assert "error: what was wrong; how to fix it" in result.output


def test_domain_errors_keep_the_builtin_a_caller_would_catch() -> None:
    from geo.boundaries.build import BuildError
    from geo.grids.coverage import UnknownAreaError
    from geo.store import UnknownCommunity

    assert issubclass(BuildError, ValueError) and BuildError.status == 422
    assert issubclass(UnknownAreaError, LookupError) and UnknownAreaError.status == 404
    assert issubclass(UnknownCommunity, KeyError) and UnknownCommunity.status == 404


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("room", ["service", "boundaries", "grids", "store", "io", "tiles"])
def test_no_framework_below_the_adapters(room: str) -> None:
    frameworks = {"fastapi", "starlette", "typer", "click", "rich", "uvicorn"}
    for path in (GEO / room).rglob("*.py"):
        assert not _imports(path) & frameworks, path


def test_http_statuses_are_chosen_in_one_place() -> None:
    found = [
        str(path.relative_to(GEO))
        for path in (GEO / "api").rglob("*.py")
        if "HTTPException(" in path.read_text(encoding="utf-8")
    ]
    assert found == []
