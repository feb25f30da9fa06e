"""Spreadsheet cells that Excel would run as formulas: the one rule every writer applies.

A light module (no geopandas), so that `geo assign` writes its cells without loading the
readers of `geo.io`; `geo.io.write` and `geo.service.assign_write` both use it.
"""

from __future__ import annotations

#: the first characters of a cell that Excel (and LibreOffice) run as a formula
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse_formula(text: str) -> str:
    """An untyped CSV cell: text that Excel would run as a formula (``=cmd|…``, ``@SUM(…)``)
    gets a leading quote; numbers such as ``-120.5`` stay as they are.

    >>> defuse_formula("=1+1"), defuse_formula("-120.5"), defuse_formula("abc")
    ("'=1+1", '-120.5', 'abc')
    """
    if text.startswith(FORMULA_START):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text
