"""Four-to text as notices and reports write it: lead-ins, brackets, 以南, 与…交界, rivers,
three sides, bare names, table layouts. Every text here is written in the style of a district's
学区划分 notice, an 产业社区 announcement or a news report."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.boundaries.fourto import (
    ORDER,
    FourTo,
    FourToError,
    Proviso,
    Ref,
    format_four_to,
    parse_four_to,
)

SIMPLE = "东至江陵路、南至滨盛路、西至时代大道、北至江南大道"
TORCH4 = "东至信诚路、南至南环路、西至东信大道、北至江南大道"

# (text, canonical sides + provisos, notes) — the canonical text is format_four_to's
FORMS: list[tuple[str, str, tuple[str, ...]]] = [
    # ─ lead-in and trailing sentences (产业社区 announcements, news)
    (
        "火炬产业社区位于滨江区核心区，东至信诚路，南至南环路，西至东信大道，北至江南大道，"
        "以数字安防产业为核心打造千亿级产业集群。",
        TORCH4,
        ("火炬产业社区位于滨江区核心区", "以数字安防产业为核心打造千亿级产业集群"),
    ),
    (
        "据悉，物联网产业社区规划面积约3.2平方公里，四至范围为：东至江陵路，南至滨盛路，"
        "西至时代大道，北至江南大道。",
        SIMPLE,
        ("据悉,物联网产业社区规划面积约3.2平方公里,四至范围为",),
    ),
    (
        "经区政府研究同意，设立白马湖产业社区，其范围东至东信大道，南至冠山河，西至白马湖路，"
        "北至滨文路，总面积2.3平方公里，由长河街道负责日常管理。",
        "东至东信大道、南至冠山河、西至白马湖路、北至滨文路",
        (
            "经区政府研究同意",
            "设立白马湖产业社区",
            "其范围",
            "总面积2.3平方公里",
            "由长河街道负责日常管理",
        ),
    ),
    (
        "东至江陵路；南至滨盛路；西至时代大道；北至江南大道。总面积约1.2平方公里。",
        SIMPLE,
        ("总面积约1.2平方公里",),
    ),
    (
        "东至信诚路、南至南环路、西至东信大道、北至江南大道 共涉及企业1200余家",
        TORCH4,
        ("共涉及企业1200余家",),
    ),
    (
        "划分范围：东至信诚路；南至南环路；西至东信大道；北至江南大道所围合的区域。",
        TORCH4,
        ("划分范围",),
    ),
    # ─ bracketed inclusions, exclusions and remarks, full- and half-width
    (
        "东至江陵路，南至文二路（另含白马湖地块），西至时代大道，北至江南大道",
        "东至江陵路、南至文二路(另含白马湖地块)、西至时代大道、北至江南大道",
        (),
    ),
    (
        "东至信诚路、南至南环路、西至东信大道、北至江南大道沿联庄路至汇智地界北(不含汇智区块)",
        "东至信诚路、南至南环路、西至东信大道、北至江南大道沿联庄路至汇智地界北(不含汇智区块)",
        (),
    ),
    (
        "东至江陵路(含东侧绿化带)，南至滨盛路，西至时代大道【暂定】，北至江南大道〔双号〕",
        "东至江陵路(含东侧绿化带)、南至滨盛路、西至时代大道(暂定)、北至江南大道(双号)",
        (),
    ),
    (
        "闻涛小学：闻涛路以南，江汉路以东，滨盛路以北，东信大道以西（含江南春晓小区，不含武警公寓）。",
        "东至东信大道(含江南春晓小区)(不含武警公寓)、南至滨盛路、西至江汉路、北至闻涛路",
        ("闻涛小学",),
    ),
    (
        "东至江陵路，南至滨盛路，西至时代大道，北至江南大道，不含星光大道商业综合体",
        "东至江陵路、南至滨盛路、西至时代大道、北至江南大道(不含星光大道商业综合体)",
        (),
    ),
    (
        "东至江陵路，南至滨盛路，西至时代大道，北至江南大道，其中星光大道地块除外。",
        "东至江陵路、南至滨盛路、西至时代大道、北至江南大道(其中星光大道地块除外)",
        (),
    ),
    # ─ "X以南、Y以西": the area lies south of X, so X is its north side
    (
        "江南实验学校学区范围：江南大道以南、风情大道以西、滨盛路以北、江陵路以东围合区域。",
        "东至风情大道、南至滨盛路、西至江陵路、北至江南大道",
        ("江南实验学校学区范围",),
    ),
    (
        "滨盛路以北、江南大道以南、时代大道以东、江陵路以西一带",
        "东至江陵路、南至滨盛路、西至时代大道、北至江南大道",
        (),
    ),
    (
        "该地块位于江南大道以南、江虹路以西，西至时代大道，南至滨盛路",
        "东至江虹路、南至滨盛路、西至时代大道、北至江南大道",
        ("该地块位于",),
    ),
    (
        "项目位于钱塘江以南，东至江陵路，南至滨盛路，西至时代大道，北至江南大道",
        SIMPLE,
        ("项目位于钱塘江以南",),  # an explicit 北至 wins over the lead-in's 以南
    ),
    (
        "江南大道南侧、风情大道西侧、滨盛路北侧、江陵路东侧",
        "东至风情大道、南至滨盛路、西至江陵路、北至江南大道",
        (),
    ),
    # ─ 以…为界, …北侧/南侧/沿线
    (
        "北以北塘河为界，南至江南大道北侧，东至江陵路，西至时代大道沿线",
        "东至江陵路、南至江南大道北侧、西至时代大道、北至北塘河",
        (),
    ),
    (
        "东临江陵路，南靠滨盛路，西以时代大道为界，北抵江南大道",
        SIMPLE,
        (),
    ),
    (
        "东至江陵路西侧，南至滨盛路北侧，西至时代大道东侧，北至江南大道南侧",
        "东至江陵路西侧、南至滨盛路北侧、西至时代大道东侧、北至江南大道南侧",
        (),
    ),
    # ─ 与…交界/相邻: the side adjoins a named area (a 街道, a park, a lake)
    (
        "东与长河街道交界，南至南环路，西至东信大道，北至江南大道",
        "东至长河街道地界、南至南环路、西至东信大道、北至江南大道",
        (),
    ),
    (
        "西与白马湖地界相邻，东至信诚路，南至南环路，北至江南大道",
        "东至信诚路、南至南环路、西至白马湖地界、北至江南大道",
        (),
    ),
    (
        "北面与海创园区块接壤，东至信诚路，南至南环路，西至东信大道",
        "东至信诚路、南至南环路、西至东信大道、北至海创园地界",
        (),
    ),
    # ─ rivers and canals as sides
    (
        "东至北塘河，南至冠山河，西至永久河，北至钱塘江",
        "东至北塘河、南至冠山河、西至永久河、北至钱塘江",
        (),
    ),
    (
        "东至七甲河，南至新塘港，西至浣纱渠，北至九溪",
        "东至七甲河、南至新塘港、西至浣纱渠、北至九溪",
        (),
    ),
    (
        "东沿北塘河至江陵路，南至滨盛路，西至时代大道，北至江南大道",
        "东至北塘河至江陵路、南至滨盛路、西至时代大道、北至江南大道",
        (),
    ),
    # ─ separators, whitespace, full-width, table layouts
    ("东至信诚路\n\n南至南环路\t西至东信大道   北至江南大道\n", TORCH4, ()),
    ("东至江陵路；\r\n南至滨盛路；\r\n西至时代大道；\r\n北至江南大道；", SIMPLE, ()),
    (
        "东至Ｇ６０沪昆高速；南至０８省道；西至时代大道；北至江南大道。",
        "东至G60沪昆高速、南至08省道、西至时代大道、北至江南大道",
        (),
    ),
    ("学区范围：\n东：江陵路；南：滨盛路；西面：时代大道；北：至江南大道", SIMPLE, ("学区范围",)),
    ("东至江陵路 ， 南至滨盛路 、 西至时代大道 ; 北至江南大道 。", SIMPLE, ()),
]


@pytest.mark.parametrize(("text", "canonical", "notes"), FORMS)
def test_forms(text: str, canonical: str, notes: tuple[str, ...]) -> None:
    spec = parse_four_to(text)
    assert format_four_to(spec) == canonical
    assert spec.notes == notes
    assert spec.missing == ()
    again = parse_four_to(canonical)
    assert again.sides.keys() == spec.sides.keys()
    assert [s.chain for s in again.sides.values()] == [s.chain for s in spec.sides.values()]
    assert again.exceptions == spec.exceptions


def test_enough_forms() -> None:
    assert len(FORMS) + len(LENIENT) >= 30


def test_provisos_are_typed_and_placed() -> None:
    spec = parse_four_to(
        "东至江陵路(含东侧绿化带、滨江公园)，南至文二路（另含白马湖地块），西至时代大道（不含汇智区块），"
        "北至江南大道（双号）"
    )
    assert spec.exceptions == (
        Proviso("含东侧绿化带、滨江公园", "include", ("东侧绿化带", "滨江公园"), "east"),
        Proviso("另含白马湖地块", "include", ("白马湖地块",), "south"),
        Proviso("不含汇智区块", "exclude", ("汇智区块",), "west"),
        Proviso("双号", "remark", (), "north"),
    )
    assert spec.sides["south"].chain == (Ref("文二路", "road"),)


def test_lying_form_reads_the_opposite_side() -> None:
    spec = parse_four_to("江南大道以南、风情大道以西、滨盛路以北、江陵路以东")
    assert {d: s.chain[0].name for d, s in spec.sides.items()} == {
        "east": "风情大道", "south": "滨盛路", "west": "江陵路", "north": "江南大道",
    }  # fmt: skip


def test_adjoining_area_is_an_area_whatever_its_suffix() -> None:
    spec = parse_four_to("西与长河街道交界，东至信诚路，南至南环路，北至江南大道")
    assert spec.sides["west"].chain == (Ref("长河街道", "area"),)


# ─ strict=False: three (or two) sides, names without suffixes

LENIENT: list[tuple[str, str, tuple[str, ...]]] = [
    ("东至信诚路，南至南环路，北至江南大道", "东至信诚路、南至南环路、北至江南大道", ("west",)),
    (
        "该社区南至南环路，西至东信大道，北至江南大道，东侧以街道边界为准",
        "南至南环路、西至东信大道、北至江南大道",
        ("east",),
    ),
    ("南至南环路、西至东信大道", "南至南环路、西至东信大道", ("east", "north")),
    ("东至信诚、南至南环、西至东信大道、北至江南大道",
     "东至信诚、南至南环、西至东信大道、北至江南大道", ()),
    ("北塘河以南、江陵路以西、江晖路以东", "东至江陵路、西至江晖路、北至北塘河", ("south",)),
]  # fmt: skip


@pytest.mark.parametrize(("text", "canonical", "missing"), LENIENT)
def test_lenient(text: str, canonical: str, missing: tuple[str, ...]) -> None:
    spec = parse_four_to(text, strict=False)
    assert spec.missing == missing
    assert format_four_to(spec) == canonical
    again = parse_four_to(canonical, strict=False)
    assert [s.chain for s in again.sides.values()] == [s.chain for s in spec.sides.values()]
    if missing:
        with pytest.raises(FourToError, match=f"side {'东南西北'[ORDER.index(missing[0])]} is"):
            parse_four_to(text)


def test_bare_names_are_names() -> None:
    spec = parse_four_to("东至信诚、南至南环路、西至东信大道、北至江南大道", strict=False)
    assert spec.sides["east"].chain == (Ref("信诚", "name"),)
    assert spec.sides["south"].chain == (Ref("南环路", "road"),)


MALFORMED = [
    (
        "东至江陵路，东至时代大道，南至滨盛路，北至江南大道",
        'side 东 is given twice ("东至江陵路", "东至时代大道"); if it follows both, write one',
    ),
    ("江南大道以南、滨盛路以南、江陵路以西",
     'side 北 is given twice ("江南大道以南", "滨盛路以南")'),
    ("东与长河街道，南至南环路，西至东信大道，北至江南大道", "expected 东与<area>交界"),
    ("东至江陵路、江南大道、南至滨盛路、西至时代大道", 'cannot read "江南大道": expected a side'),
    ("为加快产业发展，特制定本方案。", 'cannot read "为加快产业发展,特制定本方案。"'),
    ("北至江南大道(不含汇智、南至南环路、西至东信大道、东至信诚路",
     'cannot read "江南大道(不含汇智"'),
    ("东至信诚路南至南环路、西至东信大道、北至江南大道", 'found "南至" inside'),
    ("\ue005\ue000", "empty four-to text"),  # private-use characters are dropped
]  # fmt: skip


@pytest.mark.parametrize(("text", "fragment"), MALFORMED)
def test_malformed(text: str, fragment: str) -> None:
    for strict in (True, False):
        with pytest.raises(FourToError) as info:
            parse_four_to(text, strict=strict)
        assert fragment in str(info.value)


# ─── property: noise around a valid four-side text never changes its sides ───

ROADS = ["信诚路", "南环路", "东信大道", "江南大道", "江陵路", "滨盛路", "北塘河", "钱塘江",
         "冠山河", "时代大道", "08省道", "风情大道", "新塘港", "浣纱渠"]  # fmt: skip
LEADS = ["该社区位于滨江区核心区", "经区政府研究同意", "据悉",
         "其中火炬产业社区规划面积约1.6平方公里", "为进一步优化学区布局"]  # fmt: skip
TRAILS = ["以数字经济为核心打造产业集群", "总面积约2.1平方公里", "由长河街道负责管理",
          "共涉及企业1200余家", "具体以实地为准"]  # fmt: skip
NOTES = ["另含白马湖地块", "不含汇智区块", "含东侧绿化带", "双号", "暂定", "单号",
         "星光大道地块除外"]  # fmt: skip
BRACKETS = [("(", ")"), ("（", "）"), ("[", "]"), ("【", "】"), ("〔", "〕"), ("［", "］")]
SEPS = ["、", "，", ",", "；", ";", "。", " ", "　", "\n", "\r\n", " ， ", "；\n", "、、"]
VERBS = ["至", "到", "临", "靠", "抵", "面至", "侧至"]
DIRS = {"east": "东", "south": "南", "west": "西", "north": "北"}


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@st.composite
def noisy(draw: st.DrawFn) -> tuple[str, dict[str, str], int, list[str]]:
    names = draw(st.lists(st.sampled_from(ROADS), min_size=4, max_size=4, unique=True))
    sides = dict(zip(ORDER, names, strict=True))
    clauses, n_notes = [], 0
    for d in draw(st.permutations(list(ORDER))):
        if draw(st.booleans()):
            clause = f"{DIRS[d]}{draw(st.sampled_from(VERBS))}{sides[d]}"
        else:  # X以南 reads the side opposite the direction written
            lies = {"east": "西", "west": "东", "north": "南", "south": "北"}[d]
            clause = f"{sides[d]}以{lies}"
        if draw(st.booleans()):
            a, b = draw(st.sampled_from(BRACKETS))
            clause += f"{a}{draw(st.sampled_from(NOTES))}{b}"
            n_notes += 1
        clauses.append(clause)
    text = clauses[0]
    for clause in clauses[1:]:
        text += draw(st.sampled_from(SEPS)) + clause
    notes = []
    if draw(st.booleans()):
        lead = draw(st.sampled_from(LEADS))
        text = lead + draw(st.sampled_from(["，", ",", "。", "；"])) + text
        notes.append(lead)
    if draw(st.booleans()):
        trail = draw(st.sampled_from(TRAILS))
        text += draw(st.sampled_from(["，", "。", "；", " ", "\n"])) + trail
        notes.append(trail)
    text += draw(st.sampled_from(["", "。", "；", " ", "\n"]))
    if draw(st.booleans()):
        text = fullwidth(text)
    return text, sides, n_notes, notes


@settings(max_examples=300, deadline=None)
@given(case=noisy())
def test_noise_never_changes_the_sides(case: tuple[str, dict[str, str], int, list[str]]) -> None:
    text, sides, n_notes, notes = case
    spec = parse_four_to(text)
    assert {d: s.chain for d, s in spec.sides.items()} == {
        d: (Ref(name, "road"),) for d, name in sides.items()
    }
    assert len(spec.exceptions) == n_notes
    assert all(p.side in ORDER for p in spec.exceptions)
    assert [n for n in spec.notes if n in notes] == notes
    assert isinstance(spec, FourTo) and spec.missing == ()
