"""The ids of the layers (`geo.model`): what an id may be, defined once for every entry point.

Every id (a path's, a body's, a loaded or imported row's) is text of 1 to `ID_MAX_CHARS`
characters, all printable (`str.isprintable`: no control characters such as NUL, no format
characters such as the bidi controls U+202A–U+202E, U+2066–U+2069, U+200E/U+200F, no line or
paragraph separators), with no whitespace anywhere and no ``/`` or ``\\`` (ids are path
segments). Ids are compared exactly: case matters and nothing is trimmed or folded, so ``c01``
and ``C01 `` are not ``C01``. Within that rule, loaded and imported ids keep every form real
data has (``W4348186`` from OpenStreetMap, ``BR12`` for a relation's building, ``C01-G02`` for a
grid, ``E000123``, ``C-NEW`` or ``r1`` in a user's own files). An id the system is asked to
*create* follows its layer's pattern too (`NEW_ID_PATTERNS`): a new community's id is ``C`` and
1–9 ASCII digits (``C08``), as the ids the service gives itself.

A new community's code (its 3-digit number in the street, `COMMUNITY_CODE`) is three ASCII
digits: ``²`` or ``١٢٣`` are digits to `str.isdigit`, not to this module.

>>> id_problem("C07"), id_problem("W4348186"), id_problem("C01-G02")
(None, None, None)
>>> id_problem("C07\\x00")
'holds the control or format character U+0000; ids are printable text'
>>> id_problem("C-NEW"), id_problem("c01", new="communities")
(None, "is not a community id: C and digits, e.g. 'C08' (case matters)")
"""

from __future__ import annotations

import re
import unicodedata

from geo.errors import InvalidInput

ID_MAX_CHARS = 64
MAX_REASON_CHARS = 1_000  # a history reason (boundary edits and reverts)

COMMUNITY_ID = re.compile(r"C[0-9]{1,9}")
COMMUNITY_CODE = re.compile(r"[0-9]{3}")

# layer -> (pattern, what it is) for the ids of new features, beside the rule every id follows
NEW_ID_PATTERNS: dict[str, tuple[re.Pattern[str], str]] = {
    "communities": (COMMUNITY_ID, "a community id: C and digits, e.g. 'C08' (case matters)"),
}


def id_problem(value: object, *, new: str | None = None) -> str | None:
    """Why ``value`` is not an id (nor, with ``new``, the id of a new feature of that layer),
    or None when it is one."""
    if not isinstance(value, str):
        return f"must be text, got {type(value).__name__}"
    if not value:
        return "is empty"
    if len(value) > ID_MAX_CHARS:
        return f"is {len(value):,} characters long; ids have at most {ID_MAX_CHARS}"
    for ch in value:
        if not ch.isprintable():
            return f"holds the control or format character U+{ord(ch):04X}; ids are printable text"
        if ch.isspace():
            return f"holds whitespace (U+{ord(ch):04X}); ids have none"
        if ch in "/\\":
            return f"holds {ch!r}; ids have no slashes"
    spec = NEW_ID_PATTERNS.get(new or "")
    if spec is not None and not spec[0].fullmatch(value):
        return f"is not {spec[1]}"
    return None


def shown(value: object) -> str:
    """``value`` for a message: escaped (``repr``, so control characters show as ``\\x00``) and
    cut to 80 characters.

    >>> shown("C" * 100).endswith("… (100 chars)")
    True
    >>> print(shown("C07\\x00"))
    'C07\\x00'
    """
    text = ascii(value) if isinstance(value, str) and hostile(value) else repr(value)
    if len(text) > 80:
        n = len(value) if isinstance(value, str) else len(text)
        return f"{text[:60]}… ({n:,} chars)"
    return text


def hostile(value: str) -> bool:
    """Whether ``value`` holds a character a terminal or a page would act on (bidi controls)."""
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value)


def check_id(value: object, what: str, *, new: str | None = None) -> str:
    """``value`` if it is an id (of a new feature of layer ``new``); else `InvalidInput` naming
    ``what`` and why."""
    problem = id_problem(value, new=new)
    if problem is not None:
        raise InvalidInput(f"{what} {shown(value)} {problem}")
    assert isinstance(value, str)
    return value


def check_code(value: object, what: str = "code") -> str:
    """``value`` if it is a 3-digit community code (ASCII digits); else `InvalidInput`.

    >>> check_code("007")
    '007'
    """
    if not (isinstance(value, str) and COMMUNITY_CODE.fullmatch(value)):
        raise InvalidInput(f"{what} {shown(value)} is not 3 ASCII digits, e.g. '004'")
    return value


def check_reason(value: str) -> str:
    """``value`` if it is at most `MAX_REASON_CHARS` long; else `InvalidInput`."""
    if len(value) > MAX_REASON_CHARS:
        raise InvalidInput(
            f"the reason is {len(value):,} characters long; the limit is {MAX_REASON_CHARS:,}: "
            "say it in fewer words"
        )
    return value
