"""Unified social credit codes (统一社会信用代码, GB 32100-2015).

18 characters: registration authority (1), organisation type (1), administrative region (6,
GB/T 2260), organisation code (9, GB 11714 with its own check character) and a check character
over the first 17. The alphabet leaves out I, O, S, V and Z. Real registries hold some codes
whose check character fails: callers flag them rather than drop the enterprise.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
_VALUE = np.full(256, -1, dtype=np.int64)
for _i, _c in enumerate(ALPHABET):
    _VALUE[ord(_c)] = _i
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a code."""
    values = [ALPHABET.index(c) for c in first17.upper()]
    if len(values) != 17:
        raise ValueError(f"need 17 characters, got {len(values)}")
    total = int(np.dot(values, _WEIGHTS))
    return ALPHABET[(31 - total % 31) % 31]


def org_check_char(body8: str) -> str:
    """The GB 11714 check character of an 8-character organisation code body."""
    total = sum(int(c, 36) * w for c, w in zip(body8.upper(), _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def make_credit_code(region: str, org_body: str, authority: str = "9", org_type: str = "1") -> str:
    """A valid code for a company (默认 9 工商, 1 企业) in ``region`` from an 8-char org body."""
    first17 = f"{authority}{org_type}{region}{org_body}{org_check_char(org_body)}".upper()
    return first17 + check_char(first17)


def valid_mask(codes: Iterable[str]) -> NDArray[np.bool_]:
    """Vectorised check: True where a code has 18 alphabet characters and its check holds."""
    text = [str(c).strip().upper() if c is not None else "" for c in codes]
    ok_len = np.fromiter((len(t) == 18 for t in text), dtype=bool, count=len(text))
    arr = np.asarray([t if len(t) == 18 else "" for t in text], dtype="U18")
    if arr.size == 0:
        return ok_len
    chars = arr.view(np.uint32).reshape(arr.size, 18)
    values = _VALUE[np.minimum(chars, 255)]
    values[chars > 255] = -1
    ok_chars = (values >= 0).all(axis=1)
    total = (np.where(values[:, :17] >= 0, values[:, :17], 0) * _WEIGHTS).sum(axis=1)
    ok_check = (31 - total % 31) % 31 == values[:, 17]
    return ok_len & ok_chars & ok_check


def is_valid(code: str) -> bool:
    """True when ``code`` is a well-formed code whose check character holds."""
    return bool(valid_mask([code])[0])
