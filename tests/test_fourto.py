"""Four-to (四至) sentences: real-style texts, malformed ones, and a render/parse property."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.boundaries.fourto import (
    ORDER,
    FourTo,
    FourToError,
    Ref,
    Side,
    format_four_to,
    parse_four_to,
    read_ref,
)


def R(name: str, q: str | None = None) -> Ref:
    return Ref(name, "road", q)


def A(name: str, q: str | None = None) -> Ref:
    return Ref(name, "area", q)


Chain = tuple[Ref, ...]


def chains(spec: FourTo) -> tuple[Chain, Chain, Chain, Chain]:
    """The four chains in order east, south, west, north."""
    assert set(spec.sides) == set(ORDER)
    for direction, side in spec.sides.items():
        assert side.direction == direction
    e, s, w, n = (spec.sides[d].chain for d in ORDER)
    return e, s, w, n


TORCH = "东至信诚路、南至南环路、西至东信大道、北至江南大道沿联庄路至汇智地界北"
TORCH_SPEC = ((R("信诚路"),), (R("南环路"),), (R("东信大道"),),
              (R("江南大道"), R("联庄路"), A("汇智", "北")))  # fmt: skip
SIMPLE = ((R("江陵路"),), (R("滨盛路"),), (R("时代大道"),), (R("江南大道"),))

REAL = [
    # the Torch community, as published
    (TORCH, TORCH_SPEC),
    ("东至江陵路，南至滨盛路，西至时代大道，北至江南大道", SIMPLE),
    ("东至江陵路，南至滨盛路，西至时代大道，北至江南大道。", SIMPLE),
    ("东至江陵路; 南至滨盛路; 西至时代大道; 北至江南大道", SIMPLE),
    ("东至江陵路；南至滨盛路；西至时代大道；北至江南大道；", SIMPLE),
    ("东至江陵路,南至滨盛路,西至时代大道,北至江南大道", SIMPLE),
    ("东至江陵路 南至滨盛路 西至时代大道 北至江南大道", SIMPLE),
    ("东至江陵路　南至滨盛路　西至时代大道　北至江南大道", SIMPLE),
    ("东至江陵路\n南至滨盛路\n西至时代大道\n北至江南大道\n", SIMPLE),
    ("  东至 江陵路 ， 南至  滨盛路 ，西至时代大道 ，北至 江南大道 。 ", SIMPLE),
    ("北至江南大道、西至时代大道、南至滨盛路、东至江陵路", SIMPLE),
    ("南至滨盛路，东至江陵路，北至江南大道，西至时代大道", SIMPLE),
    ("东到江陵路、南到滨盛路、西到时代大道、北到江南大道", SIMPLE),
    ("东临江陵路、南邻滨盛路、西靠时代大道、北抵江南大道", SIMPLE),
    ("东面至江陵路、南侧至滨盛路、西面临时代大道、北侧到江南大道", SIMPLE),
    ("东以江陵路为界、南以滨盛路为界、西以时代大道为界、北以江南大道为界", SIMPLE),
    ("东至江陵路为界，南至滨盛路为界，西至时代大道一线，北至江南大道", SIMPLE),
    ("四至范围：东至江陵路，南至滨盛路，西至时代大道，北至江南大道。", SIMPLE),
    ("物联网产业社区四至范围为:东至江陵路、南至滨盛路、西至时代大道、北至江南大道", SIMPLE),
    ("东起江陵路，西至时代大道，南至滨盛路，北至江南大道", SIMPLE),
    # ─ rivers and lakes bound areas too
    (
        "东至长河路，南至滨安路，西以东信大道为界，北临钱塘江",
        ((R("长河路"),), (R("滨安路"),), (R("东信大道"),), (R("钱塘江"),)),
    ),
    (
        "东至北塘河，南至白马湖，西至冠山路，北至滨文路",
        ((R("北塘河"),), (R("白马湖"),), (R("冠山路"),), (R("滨文路"),)),
    ),
    # ─ 沿 … 至 … chains
    (
        "东至信诚路、南至南环路、西沿东信大道至江南大道、北至江南大道",
        ((R("信诚路"),), (R("南环路"),), (R("东信大道"), R("江南大道")), (R("江南大道"),)),
    ),
    (
        "东至信诚路、南至南环路、西至东信大道、北至江南大道，沿联庄路至汇智地界北",
        TORCH_SPEC,
    ),
    (
        "东至信诚路、南至南环路、西至东信大道、北至江南大道 沿联庄路 至汇智地界以北",
        TORCH_SPEC,
    ),
    (
        "东沿信诚路向北至滨安路，南至南环路，西至东信大道，北至江南大道转联庄路接秋溢路",
        (
            (R("信诚路"), R("滨安路")),
            (R("南环路"),),
            (R("东信大道"),),
            (R("江南大道"), R("联庄路"), R("秋溢路")),
        ),
    ),
    (
        "东至信诚路，南至南环路北侧，西至东信大道东侧，北至江南大道以南",
        ((R("信诚路"),), (R("南环路", "北"),), (R("东信大道", "东"),), (R("江南大道", "南"),)),
    ),
    # ─ other areas' boundaries, with and without qualifiers
    (
        "东至火炬产业社区边界，南至滨江二路，西至汇智区块边界，北至海创园用地红线",
        ((A("火炬产业社区"),), (R("滨江二路"),), (A("汇智"),), (A("海创园"),)),
    ),
    (
        "东至奥体地界西、南至08省道、西至白马湖生态创意城边界以东、北至滨兴路沿西兴路至钱塘江",
        (
            (A("奥体", "西"),),
            (R("08省道"),),
            (A("白马湖生态创意城", "东"),),
            (R("滨兴路"), R("西兴路"), R("钱塘江")),
        ),
    ),
    # ─ full-width letters, digits and punctuation
    (
        "东至江陵路，南至０８省道；西至时代大道．北至江南大道",
        ((R("江陵路"),), (R("08省道"),), (R("时代大道"),), (R("江南大道"),)),
    ),
    (
        "东至G60沪昆高速，南至杭金衢高速连接线，西至之江隧道，北至复兴大桥",
        ((R("G60沪昆高速"),), (R("杭金衢高速连接线"),), (R("之江隧道"),), (R("复兴大桥"),)),
    ),
    (
        "东至沿江路、南至江南大道接线、西至时代高架、北至沿江大道",
        ((R("沿江路"),), (R("江南大道接线"),), (R("时代高架"),), (R("沿江大道"),)),
    ),
    (
        "东沿信诚路，南以南环路北侧为界，西至东信大道沿联庄路转至火炬大道，北至钱塘江南岸线",
        (
            (R("信诚路"),),
            (R("南环路", "北"),),
            (R("东信大道"), R("联庄路"), R("火炬大道")),
            (R("钱塘江南岸线"),),
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), REAL)
def test_real_sentences(text: str, expected: tuple[Chain, Chain, Chain, Chain]) -> None:
    spec = parse_four_to(text)
    assert chains(spec) == expected
    assert spec.text == text
    assert chains(parse_four_to(format_four_to(spec))) == expected


def test_enough_examples() -> None:
    assert len(REAL) >= 30


def test_torch_canonical_form_is_the_published_text() -> None:
    assert format_four_to(parse_four_to(TORCH)) == TORCH


def test_side_keeps_its_clause() -> None:
    spec = parse_four_to("北至江南大道，沿联庄路至汇智地界北；东至信诚路、南至南环路、西至东信大道")
    assert spec.sides["north"].text == "北至江南大道沿联庄路至汇智地界北"
    assert spec.sides["east"].text == "东至信诚路"
    assert list(spec.sides) == list(ORDER)


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("汇智地界", A("汇智")),
        ("汇智边界北", A("汇智", "北")),
        ("汇智区块边界以南", A("汇智", "南")),
        ("汇智用地红线", A("汇智")),
        ("火炬产业社区边界", A("火炬产业社区")),
        ("江南大道北侧", R("江南大道", "北")),
        ("滨江二路", R("滨江二路")),
        ("汇智", None),
        ("地界", None),
        ("路", None),
        ("区块边界", None),
    ],
)
def test_read_ref(text: str, ref: Ref | None) -> None:
    assert read_ref(text) == ref


MALFORMED = [
    (
        "东至信诚路、南至南环路、西至东信大道、北江南大道",
        'cannot read "北江南大道": expected 北至<road>',
    ),
    ("东至信诚路、南至南环路、北至江南大道", "side 西 is missing: add 西至<road>"),
    (
        "东至信诚路、南至南环路、西至东信大道、东至江陵路、北至江南大道",
        'side 东 is given twice ("东至信诚路", "东至江陵路")',
    ),
    ("东南至信诚路、西至东信大道、北至江南大道", "combined direction 东南"),
    ("东至信诚路、南至南环路、西北至东信大道", "combined direction 西北"),
    ("东至、南至南环路、西至东信大道、北至江南大道", 'side 东 is empty ("东至")'),
    ("", "empty four-to text"),
    ("。 ，", "empty four-to text"),
    ("杭州市滨江区江南大道", 'cannot read "杭州市滨江区江南大道": expected a side such as 东至'),
    ("东至汇智、南至南环路、西至东信大道、北至江南大道", 'cannot read "汇智" in "东至汇智"'),
    ("东至信诚路、南至南环路、西至东信大道、北至江南大道沿", "ends with a link word"),
    ("东以信诚路、南至南环路、西至东信大道、北至江南大道", "expected 东以<road>为界"),
    (
        "东至信诚路南至南环路、西至东信大道、北至江南大道",
        'side 南 is missing: add 南至<road> (found "南至" inside "东至信诚路南至南环路"',
    ),
    ("东至江陵路，南至08省道，西至时代大道，北至江南大道(", 'cannot read "江南大道("'),
    ("東至江陵路，南至滨盛路，西至时代大道，北至江南大道", 'cannot read "東至江陵路"'),
    ("东至信诚路、南环路、西至东信大道、北至江南大道", 'cannot read "南环路": expected 南至'),
    (
        "东至信诚路 南至南环路",
        "side 西 is missing: add 西至<road>; side 北 is missing: add 北至<road>",
    ),
]


@pytest.mark.parametrize(("text", "fragment"), MALFORMED)
def test_malformed(text: str, fragment: str) -> None:
    with pytest.raises(FourToError) as info:
        parse_four_to(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_format_refuses_unreadable_specs() -> None:
    good = parse_four_to(TORCH)
    broken = dict(good.sides)
    broken["east"] = Side("east", (R("汇智"),), "")
    with pytest.raises(FourToError, match="cannot write"):
        format_four_to(FourTo(broken, ""))
    del broken["east"]
    with pytest.raises(FourToError, match="side"):
        format_four_to(FourTo(broken, ""))


# ─── property: render a random spec in a random real-document style and read it back ───

ROADS = [
    "信诚路", "南环路", "东信大道", "江南大道", "联庄路", "江陵路", "滨盛路", "时代大道", "长河路",
    "滨安路", "阡陌路", "伟业路", "火炬大道", "滨江二路", "08省道", "钱塘江", "北塘河", "白马湖",
    "沿江路", "西兴路", "南岸线", "之江隧道", "复兴大桥", "时代高架", "东冠路", "G60沪昆高速",
]  # fmt: skip
AREAS = ["汇智", "火炬产业社区", "物联网产业园", "海创园", "奥体", "白马湖生态创意城"]
DIRS = {"east": "东", "south": "南", "west": "西", "north": "北"}
SEPARATORS = ["、", "，", ",", "；", ";", "。", " ", "　", "\n", " 、 ", "，\n", "；  ", "、、"]
LINKS = ["沿", "至", "到", "转", "接", "转至", "接至", "再沿", "沿着", "直至", "经",
         "向北至", "向东沿", "往南至"]  # fmt: skip
HEADS = ["至", "到", "临", "邻", "起", "靠", "抵", "面至", "侧至", "沿", "沿着", "边至"]
ROAD_QUALS = ["{q}侧", "以{q}", "{q}", "{q}面"]
AREA_SUFFIXES = ["地界", "边界", "区块边界", "用地红线", "红线", "区块地界"]
AREA_QUALS = ["{q}", "以{q}", "{q}侧"]

qualifiers = st.one_of(st.none(), st.sampled_from("东南西北"))
refs = st.one_of(
    st.builds(R, st.sampled_from(ROADS), qualifiers),
    st.builds(A, st.sampled_from(AREAS), qualifiers),
)
chain_st = st.lists(refs, min_size=1, max_size=4).map(tuple)


@st.composite
def specs(draw: st.DrawFn) -> FourTo:
    sides = {d: Side(d, draw(chain_st), "") for d in ORDER}  # type: ignore[arg-type]
    return FourTo(sides, "")


@st.composite
def rendered(draw: st.DrawFn, spec: FourTo) -> str:
    """One way a government notice might write ``spec``."""

    def space() -> str:
        return draw(st.sampled_from(["", "", "", " ", "  ", "　"]))

    def ref_text(ref: Ref) -> str:
        q = ref.qualifier
        if ref.kind == "area":
            out = ref.name + draw(st.sampled_from(AREA_SUFFIXES))
            pattern = draw(st.sampled_from(AREA_QUALS))
        else:
            out = ref.name
            pattern = draw(st.sampled_from(ROAD_QUALS))
        return out + (pattern.format(q=q) if q else "")

    clauses = []
    for d in draw(st.permutations(list(ORDER))):
        chain = spec.sides[d].chain
        body = ref_text(chain[0])
        for ref in chain[1:]:
            lead = draw(st.sampled_from(["", "", " ", "，", ","]))
            body += lead + draw(st.sampled_from(LINKS)) + space() + ref_text(ref)
        style = draw(st.sampled_from(["head", "head", "以为界", "至为界"]))
        if style == "以为界":
            clauses.append(f"{DIRS[d]}以{space()}{body}{space()}为界")
        elif style == "至为界":
            clauses.append(f"{DIRS[d]}至{space()}{body}为界")
        else:
            clauses.append(f"{DIRS[d]}{draw(st.sampled_from(HEADS))}{space()}{body}")
    text = clauses[0]
    for clause in clauses[1:]:
        text += draw(st.sampled_from(SEPARATORS)) + clause
    text = draw(st.sampled_from(["", "四至范围：", "四至范围为:", "  "])) + text
    text += draw(st.sampled_from(["", "。", "；", " ", "\n"]))
    if draw(st.booleans()):  # full-width ASCII, as typed with a Chinese input method
        text = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)
    return text


@settings(max_examples=300, deadline=None)
@given(data=st.data(), spec=specs())
def test_render_parse_round_trip(data: st.DataObject, spec: FourTo) -> None:
    expected = tuple(spec.sides[d].chain for d in ORDER)
    text = data.draw(rendered(spec), label="text")
    assert chains(parse_four_to(text)) == expected
    canonical = format_four_to(spec)
    assert chains(parse_four_to(canonical)) == expected
    assert format_four_to(parse_four_to(canonical)) == canonical
