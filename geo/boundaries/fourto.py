"""Four-to (四至) boundary sentences: parse them into a structured spec and write them back.

Official boundaries are written side by side, road by road::

    东至信诚路、南至南环路、西至东信大道、北至江南大道沿联庄路至汇智地界北

Grammar (after NFKC normalisation, which turns full-width punctuation, spaces, letters and
digits into their ASCII forms)::

    text    := [preamble ":"] clause (SEP clause)* [SEP]
    SEP     := one or more of 、 , ; 。 . line breaks (whitespace: see below)
    clause  := DIR [面|侧|边] VERB chain [为界|一线|为止]
             | DIR [面|侧|边] 以 chain 为界
    DIR     := 东 | 南 | 西 | 北          (东南, 西北 … are rejected: one side per clause)
    VERB    := 至 | 到 | 临 | 邻 | 起 | 靠 | 抵 | 沿 | 沿着
    chain   := ref (LINK ref)*
    LINK    := [向|往|朝 DIR [方向]] [然后|再|后|并|一直]
               (沿着 | 直至 | 转至 | 转入 | 转向 | 接至 | 止于 | 沿 | 至 | 到 | 转 | 接 | 经)
    ref     := road [QUAL] | area [QUAL]
    road    := name ending in 路 街 巷 弄 道 线 桥 高架 高速 立交 江 河 湖 港 渠 溪
               (大道, 隧道, 省道 end in 道; rivers and lakes bound areas too)
    area    := name (地界 | 边界 | 红线 | 界线), with a trailing 区块 / 地块 / 用地 dropped from
               the name (汇智区块边界, 汇智用地红线 → 汇智); 社区 stays (火炬产业社区边界)
    QUAL    := [以] DIR [侧|面|边|方]     (…地界北, …以北, 江南大道北侧 → qualifier 北)

A chain is split at a link word only where the text before it is a complete ref, so names
such as 沿江路 or 江南大道接线 survive; among several readings the one with the earliest
split wins. Whitespace separates clauses, except that it is ignored after a verb or link
word, before a link word, inside a name that does not start with a direction, and before a
lone qualifier. A piece after a hard separator that starts with a link word (…江南大道，沿联庄路…)
continues the clause before it. Doubled separators are tolerated; a preamble such as
``四至范围：`` is dropped.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Literal

Direction = Literal["east", "south", "west", "north"]

DIRECTIONS: dict[str, Direction] = {"东": "east", "南": "south", "西": "west", "北": "north"}
CHINESE: dict[str, str] = {v: k for k, v in DIRECTIONS.items()}
ORDER: tuple[Direction, ...] = ("east", "south", "west", "north")

ROAD_SUFFIXES = (
    "高架", "高速", "立交", "路", "街", "巷", "弄", "道", "线", "桥", "江", "河", "湖", "港",
    "渠", "溪",
)  # fmt: skip
AREA_SUFFIXES = ("地界", "边界", "红线", "界线")
_AREA_NAME_DROP = ("区块", "地块", "用地")

_D = "[东南西北]"
_HEAD_VERBS = "沿着|至|到|临|邻|起|靠|抵|沿|以"
_HEAD_RE = re.compile(rf"({_D}{{1,2}})(面|侧|边)?({_HEAD_VERBS})")
_LINK_RE = re.compile(
    rf"(?:[向往朝]{_D}(?:方向)?)?(?:然后|再|后|并|一直)?"
    r"(?:沿着|直至|转至|转入|转向|接至|止于|沿|至|到|转|接|经)"
)
_QUAL_RE = re.compile(rf"以?({_D})(?:侧|面|边|方)?$")
_QUAL_ONLY_RE = re.compile(rf"以?{_D}(?:侧|面|边|方)?")
_TERMINATOR_RE = re.compile(r"(为界|一线|为止)$")
_NAME_RE = re.compile(r"[\w·\-]+")
_HARD_SEP_RE = re.compile(r"[、,;。.\n\r]+")
_PREAMBLE_RE = re.compile(r"^[^:]*?(?:四至|范围|边界|界址|界线)[^:]*:")
_GLUE_AFTER = tuple("至到临邻起靠抵沿以转接着经")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\ufeff"))

_ROAD_HELP = "a road (…路, …大道, …街, …桥, …河, …江) or an area boundary (…地界, …边界)"


@dataclass(frozen=True)
class Ref:
    """One link of a side's chain: a road (or river) or another area's boundary."""

    name: str
    kind: Literal["road", "area"]
    qualifier: str | None = None


@dataclass(frozen=True)
class Side:
    """One side of the boundary: the chain of refs it follows, in order."""

    direction: Direction
    chain: tuple[Ref, ...]
    text: str


@dataclass(frozen=True)
class FourTo:
    """A parsed four-to description; ``sides`` holds all four directions."""

    sides: dict[str, Side]
    text: str


class FourToError(ValueError):
    """A four-to text that cannot be read; the message quotes the part and says how to fix it."""


def normalise(text: str) -> str:
    """NFKC (full-width → ASCII punctuation, spaces, digits, letters), invisible chars dropped."""
    return unicodedata.normalize("NFKC", text).translate(_INVISIBLE)


def _read_core(core: str, qualifier: str | None) -> Ref | None:
    if not _NAME_RE.fullmatch(core):
        return None
    for suffix in AREA_SUFFIXES:
        if core.endswith(suffix) and len(core) > len(suffix):
            name = core[: -len(suffix)]
            for drop in _AREA_NAME_DROP:
                if name.endswith(drop) and len(name) > len(drop):
                    name = name[: -len(drop)]
                    break
            if name in _AREA_NAME_DROP:
                return None
            return Ref(name, "area", qualifier)
    if any(core.endswith(s) and len(core) > len(s) for s in ROAD_SUFFIXES):
        return Ref(core, "road", qualifier)
    return None


def read_ref(text: str) -> Ref | None:
    """One ref (``江南大道``, ``江南大道北侧``, ``汇智地界以北`` …), or None if it is not one."""
    m = _QUAL_RE.search(text)
    if m and m.start() > 0:
        ref = _read_core(text[: m.start()], m.group(1))
        if ref is not None:
            return ref
    return _read_core(text, None)


def _read_chain(body: str) -> tuple[Ref, ...] | None:
    """Split ``body`` into refs at link words; earliest split first, backtracking on failure."""

    @cache
    def parse(start: int) -> tuple[Ref, ...] | None:
        for i in range(start + 1, len(body)):
            link = _LINK_RE.match(body, i)
            if link is None or link.end() >= len(body):
                continue
            head = read_ref(body[start:i])
            if head is None:
                continue
            rest = parse(link.end())
            if rest is not None:
                return (head, *rest)
        whole = read_ref(body[start:])
        return None if whole is None else (whole,)

    return parse(0)


def _chain_error(body: str, clause: str) -> FourToError:
    """The most useful complaint about a chain that did not parse."""
    pos = 0
    for link in _LINK_RE.finditer(body):
        piece = body[pos : link.start()]
        if not piece:
            if pos == 0:
                break  # a name that starts with a link character: judge the whole body
            return FourToError(
                f'cannot read "{clause}": "{link.group(0)}" must follow {_ROAD_HELP}'
            )
        if read_ref(piece) is None:
            return FourToError(f'cannot read "{piece}" in "{clause}": expected {_ROAD_HELP}')
        pos = link.end()
    tail = body[pos:]
    if not tail:
        return FourToError(
            f'cannot read "{clause}": it ends with a link word; add the road it leads to'
        )
    shown = tail if read_ref(tail) is None else body
    return FourToError(f'cannot read "{shown}" in "{clause}": expected {_ROAD_HELP}')


def _read_clause(clause: str) -> Side:
    m = _HEAD_RE.match(clause)
    if m is None:
        if clause[0] in DIRECTIONS:
            return _fail(f'cannot read "{clause}": expected {clause[0]}至<road>')
        return _fail(f'cannot read "{clause}": expected a side such as 东至<road>')
    dirs, verb = m.group(1), m.group(3)
    if len(dirs) == 2:
        return _fail(
            f'combined direction {dirs} in "{clause}": give four separate sides '
            "(东至<road>、南至<road>、西至<road>、北至<road>)"
        )
    body = clause[m.end() :]
    if verb == "以":
        if not body.endswith("为界") or body == "为界":
            return _fail(f'cannot read "{clause}": expected {dirs}以<road>为界')
        body = body[: -len("为界")]
    else:
        body = _TERMINATOR_RE.sub("", body)
    if not body:
        return _fail(f'side {dirs} is empty ("{clause}"): write {dirs}至<road>')
    chain = _read_chain(body)
    if chain is None:
        raise _chain_error(body, clause)
    return Side(DIRECTIONS[dirs], chain, clause)


def _fail(message: str) -> Side:
    raise FourToError(message)


def _clauses(text: str) -> list[str]:
    """Cut normalised text into side clauses (see the module docstring for the rules)."""
    clauses: list[str] = []
    for hard in _HARD_SEP_RE.split(text):
        words = hard.split()
        for n, word in enumerate(words):
            if not clauses:
                clauses.append(word)
            elif n == 0:
                if _LINK_RE.match(word) and not _HEAD_RE.match(word):
                    clauses[-1] += word
                else:
                    clauses.append(word)
            elif (
                clauses[-1].endswith(_GLUE_AFTER)
                or word[0] not in DIRECTIONS
                or _QUAL_ONLY_RE.fullmatch(word)
            ) and not _HEAD_RE.match(word):
                clauses[-1] += word
            else:
                clauses.append(word)
    return clauses


def _glued_head_hint(letter: str, clauses: list[str]) -> str:
    """Where a side's head hides inside another clause (a missing separator), say so."""
    pattern = re.compile(rf"(?<=[^东南西北]){letter}(?:面|侧|边)?(?:{_HEAD_VERBS})")
    for clause in clauses:
        found = pattern.search(clause, 1)
        if found:
            return f' (found "{found.group(0)}" inside "{clause}": separate the sides with "、")'
    return ""


def parse_four_to(text: str) -> FourTo:
    """Parse a four-to sentence into its four sides; raise FourToError on anything unreadable."""
    norm = normalise(text).strip()
    norm = _PREAMBLE_RE.sub("", norm, count=1).strip()
    if not norm or not _HARD_SEP_RE.sub("", norm).strip():
        raise FourToError(
            f'empty four-to text "{text}": expected 东至<road>、南至<road>、西至<road>、北至<road>'
        )
    clauses = _clauses(norm)
    sides: dict[str, Side] = {}
    for clause in clauses:
        side = _read_clause(clause)
        if side.direction in sides:
            letter = CHINESE[side.direction]
            first = sides[side.direction].text
            raise FourToError(f'side {letter} is given twice ("{first}", "{clause}")')
        sides[side.direction] = side
    missing = [d for d in ORDER if d not in sides]
    if missing:
        raise FourToError(
            "; ".join(
                f"side {CHINESE[d]} is missing: add {CHINESE[d]}至<road>"
                + _glued_head_hint(CHINESE[d], clauses)
                for d in missing
            )
        )
    return FourTo({d: sides[d] for d in ORDER}, text)


def format_ref(ref: Ref) -> str:
    """Canonical text of one ref: 江南大道, 江南大道北侧, 汇智地界, 汇智地界北."""
    if ref.qualifier is not None and ref.qualifier not in DIRECTIONS:
        raise FourToError(f"qualifier {ref.qualifier!r} of {ref.name!r} must be 东, 南, 西 or 北")
    q = ref.qualifier or ""
    road = f"{ref.name}{q}侧" if q else ref.name
    out = f"{ref.name}地界{q}" if ref.kind == "area" else road
    if read_ref(out) != ref:
        raise FourToError(f'cannot write {ref!r}: "{out}" would not read back as {_ROAD_HELP}')
    return out


def format_side(side: Side) -> str:
    """Canonical clause: 北至A, 北至A至B, 北至A沿B至C (沿 for middle links, 至 for the last)."""
    if not side.chain:
        raise FourToError(f"side {CHINESE[side.direction]} has an empty chain")
    parts = [f"{CHINESE[side.direction]}至", format_ref(side.chain[0])]
    last = len(side.chain) - 1
    for i, ref in enumerate(side.chain[1:], start=1):
        parts.append("至" if i == last else "沿")
        parts.append(format_ref(ref))
    return "".join(parts)


def format_four_to(spec: FourTo) -> str:
    """Canonical text 东至…、南至…、西至…、北至…; ``parse_four_to`` reads it back to ``spec``."""
    missing = [CHINESE[d] for d in ORDER if d not in spec.sides]
    if missing:
        raise FourToError(f"cannot write a four-to without side(s) {', '.join(missing)}")
    return "、".join(format_side(spec.sides[d]) for d in ORDER)
