"""Four-to (四至) boundary sentences: parse them into a structured spec and write them back.

Official boundaries are written side by side, road by road::

    东至信诚路、南至南环路、西至东信大道、北至江南大道沿联庄路至汇智地界北

and, in real notices, with everything around them: a lead-in sentence, bracketed inclusions
and exclusions, the "江南大道以南、风情大道以西" form, rivers, adjoining districts, three sides.

Grammar (after NFKC normalisation, which turns full-width punctuation, spaces, letters and
digits into their ASCII forms)::

    text    := [preamble ":"] piece (SEP piece)* [SEP]
    SEP     := one or more of 、 , ; 。 . line breaks (whitespace: see below; a "." between
               digits is a decimal point)
    piece   := clause | lying | proviso | note
    clause  := [lead] DIR [面|侧|边] VERB chain [TAIL]
             | [lead] DIR [面|侧|边] 以 chain 为界
             | [lead] DIR [面|侧|边] (与|和|同) name (交界|相邻|接壤|毗邻|相接|为邻|相连)
    lying   := [… 位于|地处|处于] chain (以 DIR | DIR (侧|面|边)) [TAIL]
                                          (江南大道以南: the area lies south of 江南大道,
                                           so 江南大道 is its NORTH side)
    proviso := (不含|不包括|扣除|另含|含|包括 …) … | … 除外   (also in brackets, see below)
    note    := any other text before, between or after the sides (kept in ``FourTo.notes``);
               东侧以街道边界为准 is a note too: that side is left missing, for ``within``
    DIR     := 东 | 南 | 西 | 北          (东南, 西北 … are rejected: one side per clause)
    VERB    := 至 | 到 | 临 | 邻 | 起 | 靠 | 抵 | 沿 | 沿着
    TAIL    := 为界 | 一线 | 为止 | 沿线 | 一带 | 沿岸 | (所)围合(的)区域 …
    chain   := ref (LINK ref)*
    LINK    := [向|往|朝 DIR [方向]] [然后|再|后|并|一直]
               (沿着 | 直至 | 转至 | 转入 | 转向 | 接至 | 止于 | 沿 | 至 | 到 | 转 | 接 | 经)
    ref     := road [QUAL] | area [QUAL]
    road    := name ending in 路 街 巷 弄 道 线 桥 高架 高速 立交 江 河 湖 港 渠 溪
               (大道, 隧道, 省道 end in 道; rivers, canals and lakes bound areas too)
    area    := name (地界 | 边界 | 红线 | 界线), with a trailing 区块 / 地块 / 用地 dropped from
               the name (汇智区块边界, 汇智用地红线 → 汇智); 社区 stays (火炬产业社区边界);
               the name in 与…交界 is an area whatever it ends in (长河街道)
    QUAL    := [以] DIR [侧|面|边|方]     (…地界北, …以北, 江南大道北侧 → qualifier 北)

Bracketed text — ``(…)``, ``[…]``, ``【…】``, ``〔…〕``, full- or half-width — is cut out before
the sides are read: ``南至文二路(另含白马湖地块)`` has the side 文二路 and a `Proviso`
(include 白马湖地块) attached to side 南. The builder applies a proviso that names a known area.

A chain is split at a link word only where the text before it is a complete ref, so names
such as 沿江路 or 江南大道接线 survive; among several readings the one with the earliest
split wins. Whitespace separates clauses, except that it is ignored after a verb or link
word, before a link word, inside a name that does not start with a direction, and before a
lone qualifier. A piece after a hard separator that starts with a link word (…江南大道，沿联庄路…)
continues the clause before it. Text glued to a side by whitespace that does not read as part
of it becomes a note. Doubled separators are tolerated; a preamble such as ``四至范围：`` is
dropped.

``parse_four_to(text)`` is strict: four sides, every name with its suffix. With
``strict=False`` (what `geo.boundaries.build.build_boundary` uses) missing sides are listed in
``FourTo.missing`` and a name without a suffix (信诚) is a ``kind="name"`` ref that the road
data resolves.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

from geo.errors import InvalidInput

Direction = Literal["east", "south", "west", "north"]
RefKind = Literal["road", "area", "name"]
ProvisoKind = Literal["include", "exclude", "remark"]

DIRECTIONS: dict[str, Direction] = {"东": "east", "南": "south", "西": "west", "北": "north"}
CHINESE: dict[str, str] = {v: k for k, v in DIRECTIONS.items()}
ORDER: tuple[Direction, ...] = ("east", "south", "west", "north")
OPPOSITE: dict[str, Direction] = {
    "east": "west",
    "west": "east",
    "north": "south",
    "south": "north",
}

ROAD_SUFFIXES = (
    "高架", "高速", "立交", "路", "街", "巷", "弄", "道", "线", "桥", "江", "河", "湖", "港",
    "渠", "溪",
)  # fmt: skip
AREA_SUFFIXES = ("地界", "边界", "红线", "界线")
_AREA_NAME_DROP = ("区块", "地块", "用地")

_D = "[东南西北]"
_HEAD_VERBS = "沿着|至|到|临|邻|起|靠|抵|沿|以|与|和|同"
_HEAD_RE = re.compile(rf"({_D}{{1,2}})(面|侧|边)?({_HEAD_VERBS})")
_INNER_HEAD_RE = re.compile(rf"(?<![东南西北向往朝])({_D})(?:面|侧|边)?(?:至|到|以|与|临|靠|抵)")
_LINK_RE = re.compile(
    rf"(?:[向往朝]{_D}(?:方向)?)?(?:然后|再|后|并|一直)?"
    r"(?:沿着|直至|转至|转入|转向|接至|止于|沿|至|到|转|接|经)"
)
_QUAL_RE = re.compile(rf"以?({_D})(?:侧|面|边|方)?$")
_QUAL_ONLY_RE = re.compile(rf"以?{_D}(?:侧|面|边|方)?")
_ENCLOSED = r"(?:所|之间)?(?:围合|合围|围成|包围)(?:的|之)?(?:区域|范围|地块|片区)?"
_TAIL_RE = re.compile(
    rf"(?:为界|一线|为止|沿线|一带|沿岸|{_ENCLOSED}|(?:之间|以内|范围内)的?(?:区域|范围)?)+$"
)
_LYING_RE = re.compile(
    rf"^(?P<lead>.*?(?:位于|地处|处于|介于|坐落于|在))?(?P<body>.+?)"
    rf"(?:以(?P<d1>{_D})(?:侧|面|边|方)?|(?P<d2>{_D})(?:侧|面|边))"
    r"(?:的)?(?:区域|范围|地块|片区|地区|部分)?$"
)
_DEFER_RE = re.compile(rf"^{_D}(?:面|侧|边)?以.+为准$")
_ADJOIN_RE = re.compile(r"(交界|相邻|接壤|毗邻|相接|为邻|相连|搭界)$")
_BROKEN_RE = re.compile(r"^\w{1,2}(?:至|到)")
_NAME_RE = re.compile(r"[\w·\-]+")
_HARD_SEP_RE = re.compile(r"[、,;:。\n\r]+|(?<!\d)\.+|\.+(?!\d)")
_COLON_SIDE_RE = re.compile(rf"(?:^|(?<=[\s、,;。]))({_D})(?:面|侧|边)?\s*:\s*(?!{_D})")
_PROVISO_SEP_RE = re.compile(r"[,;。]+")
_PREAMBLE_RE = re.compile(r"^[^:]*?(?:四至|范围|边界|界址|界线)[^:]*:")
_GLUE_AFTER = tuple("至到临邻起靠抵沿以转接着经与和同")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\ufeff"))
_BRACKET_RE = re.compile(r"[(\[【〔]([^()\[\]【】〔〕]*)[)\]】〕]")
_MARK0 = 0xE000  # private-use characters stand in for cut-out brackets
_MARK_RE = re.compile("[\ue000-\uf8ff]")
_EXCLUDE_RE = re.compile(
    r"^(?:但|其中|并)?(?:不含|不包含|不包括|扣除|剔除|除去|除)(?P<n>.*?)(?:在内|以外|之外|外)?$"
)
_EXCLUDE_TAIL_RE = re.compile(r"^(?:但|其中)?(?P<n>.+?)(?:除外|不在内|不在其内)$")
_INCLUDE_RE = re.compile(r"^(?:其中|并|另|且|还)?(?:含|包含|包括|含有)(?P<n>.+?)(?:在内)?$")
_PROVISO_START_RE = re.compile(
    r"^(?:但|其中|并|另|且|还)?(?:不含|不包含|不包括|扣除|剔除|除去|含|包含|包括)"
)
_NAME_SPLIT_RE = re.compile(r"[、,;/]|以及|及")

_ROAD_HELP = "a road (…路, …大道, …街, …桥, …河, …江) or an area boundary (…地界, …边界)"


@dataclass(frozen=True)
class Ref:
    """One link of a side's chain: a road (or river), another area's boundary, or a bare name
    (``kind="name"``, only with ``strict=False``) that the road data resolves."""

    name: str
    kind: RefKind
    qualifier: str | None = None


@dataclass(frozen=True)
class Side:
    """One side of the boundary: the chain of refs it follows, in order."""

    direction: Direction
    chain: tuple[Ref, ...]
    text: str


@dataclass(frozen=True)
class Proviso:
    """An inclusion, exclusion or remark written beside the sides (``(另含白马湖地块)``).

    ``names`` are what an include/exclude names (for the builder to look up); ``side`` is the
    side it was written on, or None when it stood apart from every side."""

    text: str
    kind: ProvisoKind
    names: tuple[str, ...] = ()
    side: Direction | None = None


@dataclass(frozen=True)
class FourTo:
    """A parsed four-to description.

    ``sides`` holds every direction the text gives (all four unless ``missing`` lists some),
    ``exceptions`` the provisos, ``notes`` the text that is not a side (lead-in, trailing)."""

    sides: dict[str, Side]
    text: str
    exceptions: tuple[Proviso, ...] = ()
    notes: tuple[str, ...] = ()
    missing: tuple[Direction, ...] = field(default=())


class FourToError(InvalidInput):
    """A four-to text that cannot be read; the message quotes the part and says how to fix it."""


def normalise(text: str) -> str:
    """NFKC (full-width → ASCII punctuation, spaces, digits, letters), invisible chars dropped."""
    return unicodedata.normalize("NFKC", text).translate(_INVISIBLE)


# --------------------------------------------------------------------------------------------
# Refs and chains
# --------------------------------------------------------------------------------------------


def _drop_area_suffix(name: str) -> str:
    for drop in _AREA_NAME_DROP:
        if name.endswith(drop) and len(name) > len(drop):
            return name[: -len(drop)]
    return name


def _read_core(core: str, qualifier: str | None, bare: bool) -> Ref | None:
    if not _NAME_RE.fullmatch(core):
        return None
    for suffix in AREA_SUFFIXES:
        if core.endswith(suffix) and len(core) > len(suffix):
            name = _drop_area_suffix(core[: -len(suffix)])
            if name in _AREA_NAME_DROP:
                return None
            return Ref(name, "area", qualifier)
    if any(core.endswith(s) and len(core) > len(s) for s in ROAD_SUFFIXES):
        return Ref(core, "road", qualifier)
    if bare and len(core) >= 2 and any("\u4e00" <= c <= "\u9fff" for c in core):
        return Ref(core, "name", qualifier)
    return None


def read_ref(text: str, *, bare: bool = False) -> Ref | None:
    """One ref (``江南大道``, ``江南大道北侧``, ``汇智地界以北`` …), or None if it is not one.
    With ``bare`` a name without a road or area suffix (``信诚``) is a ``kind="name"`` ref."""
    m = _QUAL_RE.search(text)
    if m and m.start() > 0:
        ref = _read_core(text[: m.start()], m.group(1), bare)
        if ref is not None:
            return ref
    return _read_core(text, None, bare)


def _read_chain(body: str, bare: bool = False) -> tuple[Ref, ...] | None:
    """Split ``body`` into refs at link words; earliest split first, backtracking on failure.
    Suffix-less names are tried (``bare``) only when no reading with suffixes exists."""

    @cache
    def parse(start: int, loose: bool) -> tuple[Ref, ...] | None:
        for i in range(start + 1, len(body)):
            link = _LINK_RE.match(body, i)
            if link is None or link.end() >= len(body):
                continue
            head = read_ref(body[start:i], bare=loose)
            if head is None:
                continue
            rest = parse(link.end(), loose)
            if rest is not None:
                return (head, *rest)
        whole = read_ref(body[start:], bare=loose)
        return None if whole is None else (whole,)

    return parse(0, False) or (parse(0, True) if bare else None)


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


# --------------------------------------------------------------------------------------------
# Clauses
# --------------------------------------------------------------------------------------------


def _read_clause(clause: str, bare: bool = False) -> Side:
    """A clause that starts with a side's head (东至, 北以, 西与 …) as that side."""
    m = _HEAD_RE.match(clause)
    if m is None:
        if clause[0] in DIRECTIONS:
            raise FourToError(f'cannot read "{clause}": expected {clause[0]}至<road>')
        raise FourToError(f'cannot read "{clause}": expected a side such as 东至<road>')
    dirs, verb = m.group(1), m.group(3)
    if len(dirs) == 2:
        raise FourToError(
            f'combined direction {dirs} in "{clause}": give four separate sides '
            "(东至<road>、南至<road>、西至<road>、北至<road>)"
        )
    body = clause[m.end() :]
    if verb in "与和同":
        return Side(DIRECTIONS[dirs], (_adjoining(body, clause, dirs),), clause)
    if verb == "以":
        if not body.endswith("为界") or body == "为界":
            raise FourToError(f'cannot read "{clause}": expected {dirs}以<road>为界')
        body = body[: -len("为界")]
    body = _TAIL_RE.sub("", body)
    if not body:
        raise FourToError(f'side {dirs} is empty ("{clause}"): write {dirs}至<road>')
    chain = _read_chain(body, bare)
    if chain is None:
        raise _chain_error(body, clause)
    return Side(DIRECTIONS[dirs], chain, clause)


def _adjoining(body: str, clause: str, letter: str) -> Ref:
    """The area named in 西与长河街道交界 / 西与白马湖地界相邻."""
    name = _ADJOIN_RE.sub("", _TAIL_RE.sub("", body))
    if name == body or not name or not _NAME_RE.fullmatch(name):
        raise FourToError(
            f'cannot read "{clause}": expected {letter}与<area>交界 (or 相邻, 接壤, 毗邻)'
        )
    ref = read_ref(name)
    if ref is not None and ref.kind == "area":
        return ref
    return Ref(_drop_area_suffix(name), "area")


def _read_lying(clause: str, bare: bool) -> tuple[Side, str] | None:
    """``江南大道以南`` (the area lies south of 江南大道: its north side), and any lead-in."""
    text = _TAIL_RE.sub("", clause)
    m = _LYING_RE.match(text)
    if m is None:
        return None
    letter = m.group("d1") or m.group("d2")
    for start in dict.fromkeys((m.start("body"), 0)):
        chain = _read_chain(text[start : m.end("body")], bare)
        if chain is not None:
            return Side(OPPOSITE[DIRECTIONS[letter]], chain, clause[start:]), clause[:start]
    return None


def _read_proviso(text: str, side: Direction | None) -> Proviso:
    """``另含白马湖地块`` → include 白马湖地块; ``不含…`` / ``…除外`` → exclude; else a remark."""
    for kind, pattern in (
        ("exclude", _EXCLUDE_RE),
        ("exclude", _EXCLUDE_TAIL_RE),
        ("include", _INCLUDE_RE),
    ):
        m = pattern.match(text)
        if m and m.group("n"):
            names = tuple(n.strip() for n in _NAME_SPLIT_RE.split(m.group("n")) if n.strip())
            return Proviso(text, kind, names, side)  # type: ignore[arg-type]
    return Proviso(text, "remark", (), side)


def _is_proviso(text: str) -> bool:
    return bool(_PROVISO_START_RE.match(text)) or text.endswith(("除外", "不在内", "不在其内"))


# --------------------------------------------------------------------------------------------
# The text
# --------------------------------------------------------------------------------------------


def _cut_brackets(text: str) -> tuple[str, list[str]]:
    """Bracketed notes (innermost first) replaced by private-use marks; the notes' texts."""
    notes: list[str] = []

    def expand(m: re.Match[str]) -> str:
        return f"({notes[ord(m.group(0)) - _MARK0]})"

    def cut(m: re.Match[str]) -> str:
        notes.append(_MARK_RE.sub(expand, m.group(1)).strip())
        return chr(_MARK0 + len(notes) - 1)

    while True:
        text, n = _BRACKET_RE.subn(cut, text)
        if n == 0:
            return text, notes


def _clauses(text: str) -> list[list[str]]:
    """Cut normalised text into clauses, each the list of pieces glued into it (see the
    module docstring for the rules)."""
    clauses: list[list[str]] = []
    for hard in _HARD_SEP_RE.split(text):
        for n, word in enumerate(hard.split()):
            if not clauses:
                glue = False
            elif n == 0:
                glue = bool(_LINK_RE.match(word)) and not _HEAD_RE.match(word)
            else:
                glue = (
                    "".join(clauses[-1]).endswith(_GLUE_AFTER)
                    or word[0] not in DIRECTIONS
                    or bool(_QUAL_ONLY_RE.fullmatch(word))
                ) and not _HEAD_RE.match(word)
            if glue:
                clauses[-1].append(word)
            else:
                clauses.append([word])
    return clauses


@dataclass
class _Piece:
    """What one clause turned out to be."""

    marks: list[int]
    side: Side | None = None
    weak: bool = False  # a lying side after a lead-in (位于江南大道以南): explicit sides win
    lead: str = ""  # … and that lead-in (该地块位于)
    notes: list[str] = field(default_factory=list)
    proviso: str | None = None
    roadlike: bool = False  # a note that reads as a road (a side without its head?)


def _read_side(pieces: list[str], bare: bool) -> tuple[Side, list[str]]:
    """A side from its pieces; trailing pieces glued on by whitespace that do not read as part
    of it (``北至江南大道 总面积约1.6平方公里``) are returned as notes."""
    try:
        return _read_clause("".join(pieces), bare), []
    except FourToError as exc:
        for k in range(len(pieces) - 1, 0, -1):
            if _LINK_RE.match(pieces[k]) or _QUAL_ONLY_RE.fullmatch(pieces[k]):
                break
            try:
                return _read_clause("".join(pieces[:k]), bare), ["".join(pieces[k:])]
            except FourToError:
                continue
        raise exc


def _read_piece(words: list[str], bare: bool) -> _Piece:
    marks = [ord(c) - _MARK0 for c in _MARK_RE.findall("".join(words))]
    pieces = [p for p in (_MARK_RE.sub("", w) for w in words) if p]
    out = _Piece(marks)
    if not pieces:
        return out
    clean = "".join(pieces)
    if _DEFER_RE.match(clean):  # 东侧以街道边界为准: the side is whatever closes the area
        out.notes = [clean]
    elif _HEAD_RE.match(clean):
        out.side, out.notes = _read_side(pieces, bare)
    elif _is_proviso(clean):
        out.proviso = clean
    elif lying := _read_lying(clean, bare):
        out.side, out.lead = lying
        out.weak = bool(out.lead)
    elif (inner := _INNER_HEAD_RE.search(pieces[0])) and inner.start() > 0:
        lead = pieces[0][: inner.start()]
        out.side, out.notes = _read_side([pieces[0][inner.start() :], *pieces[1:]], bare)
        out.notes.insert(0, lead)
    else:
        _refuse_broken_side(clean)
        out.notes = [clean]
        out.roadlike = _read_chain(clean) is not None
    return out


def _try_piece(words: list[str], bare: bool) -> _Piece | None:
    try:
        return _read_piece(words, bare)
    except FourToError:
        return None


def _read_words(words: list[str], bare: bool) -> list[_Piece]:
    """A clause; or, when its whitespace-glued words hold more sides (西至东信大道 江南大道以南,
    南环路以北 江南大道以南) or do not read together, the shortest leading side and each
    later word on its own."""
    whole = _read_piece(words, bare)
    if len(words) == 1 or whole.proviso:
        return [whole]
    alone = [_try_piece([w], bare) for w in words]
    if whole.side is not None:  # split only before a word that is a side by itself
        tries: list[int] = [k for k, p in enumerate(alone) if k and p is not None and p.side]
    else:  # a side's head spans a few words at most (东至 江陵路 沿 联庄路)
        tries = list(range(1, min(len(words), 8)))
    for k in tries:
        rest = alone[k:]
        if _LINK_RE.match(words[k]) or _QUAL_ONLY_RE.fullmatch(words[k]) or None in rest:
            continue
        head = _try_piece(words[:k], bare)
        if head is not None and head.side is not None:
            return [head, *rest]  # type: ignore[list-item]
    return [whole]


def _refuse_broken_side(clause: str) -> None:
    """A side that lost its verb (北江南大道) or is mistyped (東至江陵路): an error, not a note."""
    if clause[0] in DIRECTIONS and _read_chain(clause[1:]) is not None:
        raise FourToError(f'cannot read "{clause}": expected {clause[0]}至<road>')
    m = _BROKEN_RE.match(clause)
    if m and _read_chain(clause[m.end() :]) is not None:
        raise FourToError(f'cannot read "{clause}": expected a side such as 东至<road>')


def _glued_head_hint(letter: str, clauses: list[str]) -> str:
    """Where a side's head hides inside another clause (a missing separator), say so."""
    pattern = re.compile(rf"(?<=[^东南西北]){letter}(?:面|侧|边)?(?:{_HEAD_VERBS})")
    for clause in clauses:
        found = pattern.search(clause, 1)
        if found:
            return f' (found "{found.group(0)}" inside "{clause}": separate the sides with "、")'
    return ""


def _sides_of(pieces: list[_Piece]) -> dict[str, Side]:
    """Explicit sides (a repeated one is an error) and weak ones where no explicit one is; a
    weak side that yields (位于钱塘江以南 beside 北至江南大道) becomes a note."""
    sides: dict[str, Side] = {}
    for weak in (False, True):
        for p in pieces:
            if p.side is None or p.weak != weak:
                continue
            d, letter = p.side.direction, CHINESE[p.side.direction]
            if d not in sides:
                sides[d] = p.side
                p.notes.insert(0, p.lead)
            elif weak and not any(q.side is sides[d] and q.weak for q in pieces):
                p.notes.insert(0, p.lead + p.side.text)
                p.side = None
            else:
                first = sides[d].text
                raise FourToError(
                    f'side {letter} is given twice ("{first}", "{p.side.text}"); if it follows '
                    f"both, write one clause: {letter}至<road>至<road>"
                )
    return sides


def _between_sides(pieces: list[_Piece]) -> None:
    """A lone road between two sides (东至信诚路、江陵路、南至…) is an error, not a note."""
    at = [i for i, p in enumerate(pieces) if p.side is not None]
    for i, p in enumerate(pieces):
        if p.roadlike and at and at[0] < i < at[-1]:
            raise FourToError(
                f'cannot read "{p.notes[0]}": expected a side such as 东至<road>; if the side '
                f"before follows it too, chain it (…至{p.notes[0]})"
            )


def _bracket_provisos(text: str, side: Direction | None) -> list[Proviso]:
    """``含A,不含B`` → two provisos; a piece without a keyword continues the one before."""
    parts: list[str] = []
    for piece in (p.strip() for p in _PROVISO_SEP_RE.split(text)):
        if piece and parts and not _is_proviso(piece):
            parts[-1] += "," + piece
        elif piece:
            parts.append(piece)
    return [_read_proviso(part, side) for part in parts]


def _provisos(pieces: list[_Piece], brackets: list[str]) -> tuple[Proviso, ...]:
    """Bracketed notes and 不含…/另含… clauses, each on the side written before it."""
    out: list[Proviso] = []
    side: Direction | None = None
    for p in pieces:
        if p.side is not None:
            side = p.side.direction
        for k in p.marks:
            out += _bracket_provisos(brackets[k], side)
        if p.proviso:
            out.append(_read_proviso(p.proviso, side))
    return tuple(out)


def _colon_side(m: re.Match[str]) -> str:
    rest = m.string[m.end() :]
    return m.group(1) + ("" if re.match(_HEAD_VERBS, rest) else "至")


def parse_four_to(text: str, *, strict: bool = True) -> FourTo:
    """Parse a four-to text into its sides, provisos and notes.

    Parameters
    ----------
    text : str
        The four-to (四至) text as written: ``东至<road>，南至<road>，西至<road>，北至<road>``.
    strict : bool
        False allows missing sides and suffix-less names (``kind="name"``, resolved later).

    Returns
    -------
    FourTo
        ``sides`` by direction (east, south, west, north), each the chain of refs it follows;
        ``exceptions`` the provisos (另含…/不含…); ``notes`` the text that is not a side.
        Raises `FourToError`, quoting the part and the fix, on what cannot be read.

    Examples
    --------
    >>> spec = parse_four_to("东至江陵路，南至江南大道，西至长河路，北至滨盛路")
    >>> {d: [r.name for r in side.chain] for d, side in spec.sides.items()}
    {'east': ['江陵路'], 'south': ['江南大道'], 'west': ['长河路'], 'north': ['滨盛路']}
    >>> spec = parse_four_to("东至江陵路，南至江南大道，西至长河路，北至汇智地界北(不含加油站)")
    >>> spec.sides["north"].chain
    (Ref(name='汇智', kind='area', qualifier='北'),)
    >>> spec.exceptions[0].kind, spec.exceptions[0].names
    ('exclude', ('加油站',))
    """
    norm = _MARK_RE.sub("", normalise(text)).strip()  # private-use marks are ours
    notes: list[str] = []
    if pre := _PREAMBLE_RE.match(norm):
        notes.append(pre.group(0)[:-1].strip())
        norm = norm[pre.end() :].strip()
    if not norm or not _HARD_SEP_RE.sub("", norm).strip():
        raise FourToError(
            f'empty four-to text "{text}": expected 东至<road>、南至<road>、西至<road>、北至<road>'
        )
    norm = _COLON_SIDE_RE.sub(_colon_side, norm)  # 东:江陵路 (a table's layout) → 东至江陵路
    marked, brackets = _cut_brackets(norm)
    clauses = _clauses(marked)
    pieces = [p for words in clauses for p in _read_words(words, not strict)]
    sides = _sides_of(pieces)
    if not sides:
        raise FourToError(f'cannot read "{norm}": expected a side such as 东至<road>')
    _between_sides(pieces)
    texts = [_MARK_RE.sub("", "".join(words)) for words in clauses]
    missing = tuple(d for d in ORDER if d not in sides)
    hints = {d: _glued_head_hint(CHINESE[d], texts) for d in missing}
    if missing and (strict or any(hints.values())):
        raise FourToError(
            "; ".join(
                f"side {CHINESE[d]} is missing: add {CHINESE[d]}至<road>" + hints[d]
                for d in missing
            )
        )
    for p in pieces:
        notes += [n for n in p.notes if n]
    return FourTo(
        {d: sides[d] for d in ORDER if d in sides},
        text,
        _provisos(pieces, brackets),
        tuple(notes),
        missing,
    )


# --------------------------------------------------------------------------------------------
# Writing back
# --------------------------------------------------------------------------------------------


def format_ref(ref: Ref) -> str:
    """Canonical text of one ref: 江南大道, 江南大道北侧, 汇智地界, 汇智地界北, 信诚 (a name)."""
    if ref.qualifier is not None and ref.qualifier not in DIRECTIONS:
        raise FourToError(f"qualifier {ref.qualifier!r} of {ref.name!r} must be 东, 南, 西 or 北")
    q = ref.qualifier or ""
    road = f"{ref.name}{q}侧" if q else ref.name
    out = f"{ref.name}地界{q}" if ref.kind == "area" else road
    if read_ref(out, bare=ref.kind == "name") != ref:
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
    """Canonical text 东至…、南至…、西至…、北至…, each side followed by its provisos in
    brackets; ``parse_four_to`` reads it back to ``spec``'s sides and provisos (with
    ``strict=False`` when sides are missing or names bare). Notes are not written."""
    absent = [d for d in ORDER if d not in spec.sides and d not in spec.missing]
    if absent:
        letters = ", ".join(CHINESE[d] for d in absent)
        raise FourToError(f"cannot write a four-to without side(s) {letters}")
    out = []
    for d in ORDER:
        if d in spec.sides:
            notes = "".join(f"({p.text})" for p in spec.exceptions if p.side == d)
            out.append(format_side(spec.sides[d]) + notes)
    return "、".join(out)
