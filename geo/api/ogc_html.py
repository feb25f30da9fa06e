"""The HTML pages of OGC API – Features (``f=html``), from Jinja2 templates in ``templates/``.

Autoescaping is on: every name, address and link a page shows is escaped by the template, so
data (a feature's properties) can never become markup.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from fastapi.responses import HTMLResponse

from geo.model import LayerSpec

if TYPE_CHECKING:
    import jinja2


@cache
def _env() -> jinja2.Environment:
    """The templates' environment (Jinja2 imported with the first HTML page, not at start)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


Links = list[dict[str, str]]


def page(template: str, title: str, **context: Any) -> HTMLResponse:
    """``templates/<template>`` rendered with ``title`` and ``context``."""
    return HTMLResponse(_env().get_template(template).render(title=title, **context))


def cell(value: Any) -> str:
    """A property value as shown in a table: empty for null/NaN."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value)


def link(href: str, text: str) -> dict[str, str]:
    """A table cell that is a link."""
    return {"href": href, "text": text}


def items_page(
    title: str, spec: LayerSpec, page_rows: pd.DataFrame, matched: int, offset: int, links: Links
) -> HTMLResponse:
    """A page of features: how many match, the paging links and one row per feature."""
    names = list(spec.field_names)
    rows = [
        [cell(v) for v in values] + [str(g.geom_type) if g is not None else ""]
        for values, g in zip(
            page_rows[names].itertuples(index=False, name=None),
            page_rows.geometry.to_numpy(),
            strict=True,
        )
    ]
    nav = [lk for lk in links if lk["rel"] in ("prev", "next", "collection", "alternate")]
    shown = f"{offset + 1}–{offset + len(page_rows)}" if len(page_rows) else "none"
    return page(
        "items.html",
        title,
        matched=matched,
        shown=shown,
        nav=nav,
        header=[*names, "geometry"],
        rows=rows,
    )


def item_page(title: str, spec: LayerSpec, row: pd.Series, links: Links) -> HTMLResponse:
    """One feature: its properties, its geometry type and its links."""
    rows = [(n, cell(row[n])) for n in spec.field_names]
    rows.append(("geometry", str(row.geometry.geom_type)))
    return page("item.html", title, rows=rows, links=links)
