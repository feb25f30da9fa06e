"""Versions over HTTP: the ``If-Match`` header a write is based on, and publishing the store
version a write committed before its 2xx."""

from __future__ import annotations

import re

from fastapi import Request

from geo.atlas import Atlas
from geo.errors import BadRequest, PreconditionRequired
from geo.ids import shown

# at most 18 ASCII digits: a version is a 64-bit integer (and int() of thousands of digits is
# refused by Python itself)
_IF_MATCH = re.compile(r'^\s*(?:W/)?"?([0-9]{1,18})"?\s*$')


class IfMatchRequired(PreconditionRequired):
    """A write that does not say which version it was based on (428)."""


def if_match(value: str | None, what: str) -> int:
    """The version an ``If-Match`` header names: ``3``, ``"3"`` or ``W/"3"``.

    ``what`` says which version to send and where to read it, for the 428 a missing header
    gets; a header that is no version number is a 400.

    >>> if_match('W/"7"', "the version you edited")
    7
    >>> if_match(None, "the version you edited")
    Traceback (most recent call last):
    geo.api.versions.IfMatchRequired: If-Match header required: send the version you edited, e.g. If-Match: 3
    """  # noqa: E501 - a doctest's exception line is one line
    if value is None:
        raise IfMatchRequired(f"If-Match header required: send {what}, e.g. If-Match: 3")
    version = optional_if_match(value)
    assert version is not None
    return version


def optional_if_match(value: str | None) -> int | None:
    """The version an optional ``If-Match`` header names (None without one); a 400 if it is no
    version number.

    >>> optional_if_match(None) is None, optional_if_match("12")
    (True, 12)
    """
    if value is None:
        return None
    m = _IF_MATCH.match(value)
    if not m:
        raise BadRequest(
            f"If-Match {shown(value)} is not a version number (at most 18 digits); "
            "send e.g. If-Match: 3"
        )
    return int(m[1])


class Publisher:
    """A service action's ``publish``: swaps the committed store version in here, waits until
    every server answers from it, keeps the atlas for the answer and returns the warnings."""

    def __init__(self, request: Request) -> None:
        self.holder = request.app.state.atlas
        self.atlas: Atlas | None = None

    def __call__(self, store_version: int) -> list[str]:
        """Publish ``store_version``; the warnings name the servers that did not catch up."""
        published = self.holder.publish(store_version)
        self.atlas = published.atlas
        return published.warnings(self.holder.publish_timeout)

    def published(self) -> Atlas:
        """The atlas the write was published in (the write's answer is read from it)."""
        assert self.atlas is not None, "the action did not publish"
        return self.atlas
