"""Search officers, parks, buildings and enterprises by Chinese name, pinyin or initials.

Pure: `SearchIndex.build(...)` takes the tables once per atlas; `SearchIndex.search(q)` ranks.

Each name gets three keys: the name itself (lower-cased), its toneless pinyin with syllables
separated by spaces (``hang zhou hai kang``) and its initials (``hzhk``). Pinyin is computed
once per distinct character (the sample's 12,000 names use under 200), taking pypinyin's most
common reading, so building the index takes a fraction of a second, not seconds. Phrase-aware
readings were tried: they changed one name in 2,000 of the sample, and not always for the
better (晟乐 → "cheng yue"), at ten times the cost.

A query is matched as typed against the names, and — when it is Latin letters — against the
pinyin (spaces ignored) and the initials. Tiers, best first: exact name, name prefix, name
substring, exact/prefix/substring of the pinyin at a syllable start, initials prefix, initials
substring, pinyin substring inside a syllable; then a fuzzy match (rapidfuzz, vectorised) for
typos. Within a tier: earlier match, shorter name, then kind and id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from rapidfuzz import fuzz, process

KINDS = ("officer", "building", "park", "enterprise")
_HAN = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"^[a-z0-9 ']+$")

# tier scores (higher is better); fuzzy scores are below every exact tier
_TIERS = {
    "name_exact": 1000,
    "name_prefix": 950,
    "name_contains": 900,
    "pinyin_exact": 850,
    "pinyin_prefix": 800,
    "initials_exact": 790,
    "initials_prefix": 750,
    "pinyin_syllable": 700,
    "initials_contains": 650,
    "pinyin_contains": 600,
}
_FUZZY_CUTOFF = 80.0


@dataclass(frozen=True)
class SearchIndex:
    """Names of everything searchable, with their pinyin and initials, in parallel arrays."""

    table: pd.DataFrame  # kind, id, name, detail, key_name, key_pinyin, key_spaced, key_initials

    @classmethod
    def build(cls, sources: Iterable[tuple[str, pd.DataFrame, str | None]]) -> SearchIndex:
        """``sources``: (kind, frame with ``id`` and ``name``, optional detail column)."""
        parts = []
        for kind, frame, detail in sources:
            parts.append(
                pd.DataFrame(
                    {
                        "kind": kind,
                        "id": frame["id"].astype(str).to_numpy(),
                        "name": frame["name"].fillna("").astype(str).to_numpy(),
                        "detail": (
                            frame[detail].fillna("").astype(str).to_numpy() if detail else ""
                        ),
                    }
                )
            )
        table = (
            pd.concat(parts, ignore_index=True)
            if parts
            else pd.DataFrame(columns=["kind", "id", "name", "detail"])
        )
        names = table["name"].to_numpy(dtype=object)
        syllables = to_syllables(names)
        table["key_name"] = table["name"].str.lower()
        table["key_spaced"] = [" ".join(s) for s in syllables]
        table["key_pinyin"] = table["key_spaced"].str.replace(" ", "", regex=False)
        table["key_initials"] = ["".join(w[0] for w in s if w) for s in syllables]
        table["length"] = table["name"].str.len()
        table["kind_order"] = table["kind"].map({k: i for i, k in enumerate(KINDS)}).fillna(9)
        return cls(table.reset_index(drop=True))

    def __len__(self) -> int:
        return len(self.table)

    def search(
        self,
        query: str,
        *,
        kinds: Iterable[str] | None = None,
        limit: int = 20,
        within: NDArray[np.bool_] | None = None,
    ) -> list[dict[str, Any]]:
        """The best ``limit`` hits: ``kind, id, name, detail, score, matched`` (``within``: a
        mask of the rows that may be hits, in the order of ``table``)."""
        q = normalize(query)
        t = self.table
        if not q or not len(t):
            return []
        scores = _Scores.empty(len(t))
        names = t["key_name"]
        found = names.str.find(q).to_numpy()
        scores.tier("name_contains", found >= 0, found)
        scores.tier("name_prefix", found == 0)
        scores.tier("name_exact", (names == q).to_numpy())
        compact = q.replace(" ", "").replace("'", "")
        if _LATIN.match(q) and compact:
            _pinyin_tiers(scores, t, compact)
            _fuzzy_tier(scores, compact, t["key_pinyin"].to_numpy(dtype=object))
        else:
            _fuzzy_tier(scores, q, names.to_numpy(dtype=object))
        if kinds is not None:
            scores.score[~t["kind"].isin(list(kinds)).to_numpy()] = 0
        if within is not None:
            scores.score[~within] = 0
        return _ranked(t, scores, len(compact), limit)


@dataclass(frozen=True)
class _Scores:
    """Per row of the index: the best tier's score so far, its name and where the match starts."""

    score: NDArray[np.float64]
    matched: NDArray[np.object_]
    where: NDArray[np.int64]

    @classmethod
    def empty(cls, n: int) -> _Scores:
        """No row matched yet."""
        return cls(
            np.zeros(n, dtype=np.float64),
            np.full(n, "", dtype=object),
            np.full(n, 0, dtype=np.int64),
        )

    def tier(self, name: str, mask: Any, pos: Any = 0) -> None:
        """Raise the rows of ``mask`` that score below tier ``name`` to it (match at ``pos``)."""
        mask = np.asarray(mask, dtype=bool) & (self.score < _TIERS[name])
        self.score[mask] = _TIERS[name]
        self.matched[mask] = name.split("_")[0]
        self.where[mask] = np.asarray(pos)[mask] if np.ndim(pos) else pos


def _pinyin_tiers(scores: _Scores, t: pd.DataFrame, compact: str) -> None:
    """The tiers of a Latin query (spaces and apostrophes dropped): pinyin and initials."""
    py = t["key_pinyin"]
    ini = t["key_initials"]
    pfound = py.str.find(compact).to_numpy()
    scores.tier("pinyin_contains", pfound >= 0, pfound)
    ifound = ini.str.find(compact).to_numpy()
    scores.tier("initials_contains", ifound >= 0, ifound)
    spaced = t["key_spaced"]
    pattern = r"(?:^| )" + r" ?".join(re.escape(c) for c in compact)
    syll = spaced.str.contains(pattern, regex=True).to_numpy()
    scores.tier("pinyin_syllable", syll, pfound)
    scores.tier("initials_prefix", ifound == 0)
    scores.tier("initials_exact", (ini == compact).to_numpy())
    scores.tier("pinyin_prefix", pfound == 0)
    scores.tier("pinyin_exact", (py == compact).to_numpy())


def _fuzzy_tier(scores: _Scores, query: str, keys: NDArray[np.object_]) -> None:
    """Rows no exact tier matched, scored by fuzzy partial ratio (400–500) when close enough;
    only for queries of three characters or more."""
    if len(query) < 3:
        return
    rest = np.flatnonzero(scores.score == 0)
    if len(rest):
        sims = process.cdist([query], keys[rest], scorer=fuzz.partial_ratio, workers=1)[0]
        good = sims >= _FUZZY_CUTOFF
        scores.score[rest[good]] = sims[good] * 5  # 400–500: below every exact tier
        scores.matched[rest[good]] = "fuzzy"


def _ranked(t: pd.DataFrame, scores: _Scores, n: int, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` best hits as dicts: by score, shared span, match position, length, kind
    and id."""
    score, matched, where = scores.score, scores.matched, scores.where
    hits = np.flatnonzero(score > 0)
    if not len(hits):
        return []
    common = _common_spans(t, hits, matched, where, n)
    order = np.lexsort(
        (
            t["id"].to_numpy()[hits],
            t["kind_order"].to_numpy()[hits],
            t["length"].to_numpy()[hits],
            where[hits],
            -common,
            -score[hits],
        )
    )[:limit]
    rows = hits[order]
    return [
        {
            "kind": t.at[i, "kind"],
            "id": t.at[i, "id"],
            "name": t.at[i, "name"],
            "detail": t.at[i, "detail"] or None,
            "score": round(float(score[i]), 1),
            "matched": matched[i],
        }
        for i in rows
    ]


def _common_spans(
    t: pd.DataFrame, hits: Any, matched: Any, where: Any, n: int
) -> NDArray[np.int64]:
    """For initials hits: how many hits share the characters the initials matched.

    ``hzhk`` matches 杭州海康…, 杭州弘凯… and more; the span shared by most names (a brand
    such as 杭州海康) is the likeliest meant, so it ranks first within its tier.
    """
    out = np.zeros(len(hits), dtype=np.int64)
    ini = np.flatnonzero(matched[hits] == "initials")
    if not len(ini) or not n:
        return out
    rows = hits[ini]
    names = t["name"].to_numpy(dtype=object)[rows]
    aligned = t["length"].to_numpy()[rows] == t["key_initials"].str.len().to_numpy()[rows]
    spans = pd.Series(
        [nm[w : w + n] if ok else "" for nm, w, ok in zip(names, where[rows], aligned, strict=True)]
    )
    counts = spans.map(spans.value_counts()).to_numpy()
    out[ini] = np.where(spans.to_numpy() != "", counts, 0)
    return out


def normalize(query: str) -> str:
    """Lower-cased, trimmed, inner whitespace collapsed, full-width Latin folded."""
    folded = "".join(
        chr(ord(c) - 0xFEE0) if "\uff01" <= c <= "\uff5e" else c for c in (query or "")
    )
    return " ".join(folded.lower().split())


def to_syllables(names: Any) -> list[list[str]]:
    """Toneless pinyin syllables of each name (non-Han runs kept, lower-cased, as words)."""
    names = [str(n) for n in names]
    chars = sorted({c for n in names for c in n if _HAN.match(c)})
    from pypinyin import lazy_pinyin  # ~0.3 s to import: on first use

    reading = {c: lazy_pinyin(c)[0] for c in chars}
    return [_words(_per_char(n, reading)) for n in names]


def _per_char(name: str, reading: dict[str, str]) -> list[str]:
    out: list[str] = []
    run = ""
    for c in name:
        if c in reading:
            if run:
                out.append(run)
                run = ""
            out.append(reading[c])
        else:
            run += c
    if run:
        out.append(run)
    return out


def _words(tokens: list[str]) -> list[str]:
    """Lower-cased alphanumeric words of the tokens (punctuation and spaces dropped)."""
    words: list[str] = []
    for tok in tokens:
        words.extend(w for w in re.split(r"[^0-9a-z]+", tok.lower()) if w)
    return words
