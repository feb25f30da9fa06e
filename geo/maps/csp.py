"""The maps' Content-Security-Policy: no inline script but folium's own blocks, by hash.

Folium writes each map as inline ``<script>`` blocks. Rather than move them to served files (a
per-process cache that another worker, or an evicted entry, would answer with a 404), the policy
allows exactly those blocks by their SHA-256 (``'sha256-…'``, CSP Level 2) next to ``'self'``
for the vendored files: an injected ``<script>``, ``onerror=`` attribute or ``javascript:`` URL
has no hash and is refused. That is safe only if no text from the data can end or reopen a
block: every value in a block is JSON with ``<``, ``>`` and ``&`` written as ``\\u003c`` etc.
(jinja's and folium's ``tojson``), and `check_inline_scripts` refuses a page whose blocks hold
``<!--``, ``<script`` or ``</script``-like text all the same.

Styles need ``'unsafe-inline'``: folium writes ``<style>`` blocks and Leaflet, its plugins and
maps.js set ``style`` attributes. Base-map tiles are images from the chosen base map's hosts;
the pages fetch only from the service itself (``connect-src 'self'``: vector tiles, search
entries, the editor's API calls).
"""

from __future__ import annotations

import base64
import hashlib
import re

_INLINE = re.compile(r"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script\s*>", re.S | re.I)
_DANGEROUS = re.compile(r"<!--|<script|</script", re.I)

#: image hosts of each base map's tiles
TILE_HOSTS = {
    "osm": ("https://tile.openstreetmap.org",),
    "tianditu": ("https://*.tianditu.gov.cn",),
    "amap": ("https://*.is.autonavi.com",),
    "none": (),
}


class UnsafeScript(RuntimeError):
    """An inline script block holds text that could end it early (a bug, never data)."""


def inline_scripts(page: str) -> list[str]:
    """The text of every inline ``<script>`` block of ``page``, as the browser hashes it."""
    return [m.group(1).replace("\r\n", "\n").replace("\r", "\n") for m in _INLINE.finditer(page)]


def check_inline_scripts(page: str) -> None:
    """Fail if an inline script of ``page`` holds ``<!--`` or ``<script``: with every value
    JSON-encoded with ``<`` escaped, only a bug in a template can put it there."""
    for text in inline_scripts(page):
        hit = _DANGEROUS.search(text)
        if hit:
            raise UnsafeScript(
                f"an inline script of a map page holds {hit.group(0)!r}: "
                "values in scripts must be JSON with '<' escaped (|tojson)"
            )


def script_hashes(page: str) -> list[str]:
    """``'sha256-…'`` source expressions of the page's inline scripts (each once, in order)."""
    out: list[str] = []
    for text in inline_scripts(page):
        digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()
        source = f"'sha256-{digest}'"
        if source not in out:
            out.append(source)
    return out


def policy(page: str, basemap: str) -> str:
    """The Content-Security-Policy header of a served map ``page`` drawn on ``basemap``."""
    tiles = " ".join(TILE_HOSTS.get(basemap, ()))
    directives = [
        "default-src 'none'",
        "script-src 'self' " + " ".join(script_hashes(page)),
        "style-src 'self' 'unsafe-inline'",
        f"img-src 'self' data: blob: {tiles}".rstrip(),
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(d.rstrip() for d in directives)
