"""One family of errors: each says what was wrong and how to fix it, and carries its answer.

Every error the system raises on purpose is a `GeoError`. A subclass is defined beside the code
that raises it (`geo.boundaries.build.BuildError`, `geo.store.base.StaleVersionError` …) and
inherits its HTTP status and CLI exit code from one of the kinds below. The adapters map them
once: `geo.api.errors` turns any `GeoError` into ``{"detail": message}`` with its status (and
headers), `geo.cli` into ``error: message`` on stderr and its exit code. Nothing else in the
code base chooses a status.

The kinds that stand for bad values also subclass the builtin a caller would catch without
knowing this module (`ValueError`, `LookupError`), so ``except ValueError`` keeps working.

>>> issubclass(InvalidInput, ValueError), InvalidInput.status, InvalidInput.exit_code
(True, 422, 2)
>>> NotFound("no community 'C99'").detail
"no community 'C99'"
"""

from __future__ import annotations

from typing import ClassVar


class GeoError(Exception):
    """Base of every error raised on purpose: a message for people, a status, an exit code."""

    status: ClassVar[int] = 400
    exit_code: ClassVar[int] = 2
    headers: dict[str, str] | None = None

    @property
    def detail(self) -> str:
        """The message, as the API's ``detail`` and the CLI's ``error:`` line."""
        return str(self)


class BadRequest(GeoError, ValueError):
    """A malformed parameter or header (400): not a number, not a bbox, unknown ``f``."""

    status = 400


class InvalidInput(GeoError, ValueError):
    """Well-formed input the domain refuses (422): a polygon that overlaps, an unknown road."""

    status = 422


class Unauthorized(GeoError):
    """No valid bearer token (401); answers carry ``WWW-Authenticate: Bearer``."""

    status = 401
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012 - never mutated


class Forbidden(GeoError):
    """A valid token whose role is not enough (403)."""

    status = 403


class NotFound(GeoError, LookupError):
    """No such community, grid, enterprise, user or version (404)."""

    status = 404


class Conflict(GeoError, ValueError):
    """The thing exists already (409): a community id, a user name."""

    status = 409


class PreconditionFailed(GeoError):
    """A stale version (412): someone else changed it since the caller read it."""

    status = 412


class PayloadTooLarge(GeoError, ValueError):
    """A body, geometry or batch over the configured limits (413)."""

    status = 413


class PreconditionRequired(GeoError):
    """A write without the version it was based on (428): send ``If-Match``."""

    status = 428


class Unavailable(GeoError):
    """The store cannot be used as it is (503; exit 1): a newer schema, a damaged file."""

    status = 503
    exit_code = 1


class TooManyRequests(GeoError):
    """A client over its share of heavy requests (429; exit 1): retry after ``Retry-After``."""

    status = 429
    exit_code = 1
