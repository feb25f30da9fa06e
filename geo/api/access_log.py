"""No token reaches a log: a filter that redacts credentials in every log record we emit.

uvicorn's access log prints each request line with its query string, so a token sent as
``?access_token=…`` (refused by the API, but sent all the same) would be written in full. The
filter `RedactCredentials` rewrites every record of the server's loggers (uvicorn's access and
error logs, ``geo``'s own) before any handler formats it:

* the value of every query parameter whose name (percent-decoded, any case) is a credential
  (`SECRET_PARAMS`: ``access_token``, ``token``, ``api_key`` …) becomes ``[redacted]``;
* ``Bearer …`` credentials and ``Authorization:`` header values anywhere in a message or a
  logged exception become ``[redacted]`` (uvicorn never logs headers; this is a second line
  for anything else that might);
* the secret of a geo token (``<id>.<secret>``) anywhere, e.g. pasted into a path or under
  another parameter name: only its public id is kept.

`install` adds it to the loggers and their handlers; `geo.api.app.app_from_env` calls it in
every `geo serve` worker (and any ASGI server built from that factory).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

SECRET_PARAMS = frozenset(
    {
        "access_token",
        "token",
        "api_key",
        "apikey",
        "api-key",
        "key",
        "auth",
        "authorization",
        "bearer",
        "id_token",
        "refresh_token",
        "password",
        "passwd",
        "secret",
        "client_secret",
        "session",
        "sig",
        "signature",
    }
)
REDACTED = "[redacted]"
LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error", "uvicorn.asgi", "geo", "fastapi")

# a query parameter: after ? & or ; (or their percent-encodings, as uvicorn quotes a path), a
# name, = (or %3D), a value up to the next separator, blank or quote
_SEP = r"(?:[?&;]|%3[bBfF]|%26)"
_NAME = r"(?:[^=&;?#\s\"'%]|%(?!3[dDbBfF]|26)[0-9A-Fa-f]{2}){1,100}"
_VALUE = r"(?:[^&;#\s\"'%]|%(?!26|3[bB])[0-9A-Fa-f]{2}|%(?![0-9A-Fa-f]{2}))*"
_PARAM = re.compile(rf"(?P<lead>{_SEP})(?P<name>{_NAME})(?P<eq>=|%3[dD])(?P<value>{_VALUE})")
_SCHEME = re.compile(r"(?i)\b(bearer)(\s+|%20|\+)[A-Za-z0-9._~+/=%-]{4,}")
# a geo token anywhere (``<16 hex id>.<43 url-safe secret>``, `geo.store.users`): its secret
_GEO_TOKEN = re.compile(r"\b([0-9a-f]{16})(\.|%2[eE])[A-Za-z0-9_-]{40,}")
_HEADER = re.compile(r"(?i)\b(authorization|x-api-key|cookie)(\"?'?\s*[:=,]\s*'?\"?)[^\r\n\"']+")


def redact(text: str) -> str:
    """``text`` with every credential replaced by ``[redacted]``."""
    if not text:
        return text

    def param(m: re.Match[str]) -> str:
        name = unquote_plus(m["name"]).strip().lower()
        if name in SECRET_PARAMS or name.endswith(("_token", "-token", "token", "_key", "secret")):
            return f"{m['lead']}{m['name']}{m['eq']}{REDACTED}"
        return m[0]

    text = _PARAM.sub(param, text)
    text = _HEADER.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
    text = _SCHEME.sub(lambda m: f"{m[1]} {REDACTED}", text)
    return _GEO_TOKEN.sub(lambda m: f"{m[1]}.{REDACTED}", text)


def _clean(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


class RedactCredentials(logging.Filter):
    """Rewrites a record's message, arguments and exception text without credentials (the
    arguments keep their number and kinds: uvicorn's access formatter unpacks them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; never drops it."""
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install() -> None:
    """Add the filter to the server's loggers and to every handler they (or the root) have."""
    loggers = [logging.getLogger(name) for name in LOGGERS] + [logging.getLogger()]
    for logger in loggers:
        for target in [logger, *logger.handlers]:
            if not any(isinstance(f, RedactCredentials) for f in target.filters):
                target.addFilter(RedactCredentials())
