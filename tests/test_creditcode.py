"""geo.creditcode: GB 32100-2015 unified social credit codes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.creditcode import (
    ALPHABET,
    check_char,
    is_valid,
    make_credit_code,
    org_check_char,
    valid_mask,
)

# Real codes, each quoted publicly as the company's 统一社会信用代码 / taxpayer number (e.g. on
# invoice headers and company registries); a wrong code would pass the check with odds 1 in 31.
# 杭州海康威视数字技术股份有限公司 (SZ 002415), 杭州市滨江区阡陌路555号 — the IoT community's core.
HIKVISION = "91330000733796106P"
# 阿里巴巴(中国)有限公司, Hangzhou.
ALIBABA_CHINA = "91330100799655058B"

REGIONS = st.text(alphabet="0123456789", min_size=6, max_size=6)
ORG_BODIES = st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=8, max_size=8)
CODE_CHARS = st.text(alphabet=ALPHABET + "IOSVZabc -中", min_size=0, max_size=20)


@pytest.mark.parametrize("code", [HIKVISION, ALIBABA_CHINA])
def test_published_codes_are_valid(code: str) -> None:
    assert check_char(code[:17]) == code[17]
    assert is_valid(code)


def test_check_char_known_values() -> None:
    assert check_char("91330000733796106") == "P"
    assert check_char("91330100799655058") == "B"
    assert check_char("91330100799655058".lower()) == "B"


def test_org_check_char_of_published_codes() -> None:
    # The organisation code (characters 9-17) carries its own GB 11714 check character.
    assert org_check_char(HIKVISION[8:16]) == HIKVISION[16]
    assert org_check_char(ALIBABA_CHINA[8:16]) == ALIBABA_CHINA[16]


@settings(max_examples=200)
@given(REGIONS, ORG_BODIES)
def test_made_codes_are_valid(region: str, body: str) -> None:
    code = make_credit_code(region, body)
    assert len(code) == 18 and code.startswith("91" + region)
    assert is_valid(code)


@settings(max_examples=200)
@given(REGIONS, ORG_BODIES, st.sampled_from(ALPHABET))
def test_a_changed_check_character_is_invalid(region: str, body: str, other: str) -> None:
    code = make_credit_code(region, body)
    if other != code[17]:
        assert not is_valid(code[:17] + other)


@settings(max_examples=200)
@given(REGIONS, ORG_BODIES, st.integers(0, 16), st.sampled_from(ALPHABET))
def test_a_changed_character_is_caught(region: str, body: str, at: int, other: str) -> None:
    code = make_credit_code(region, body)
    changed = code[:at] + other + code[at + 1 :]
    assert is_valid(changed) == (changed == code)


def test_lower_case_and_surrounding_space_are_accepted() -> None:
    assert is_valid(HIKVISION.lower())
    assert is_valid(f"  {HIKVISION}\t")


@pytest.mark.parametrize(
    "code",
    [
        HIKVISION[:17],
        HIKVISION[1:],
        HIKVISION[:10],
        "",
        "   ",
        None,
        "中" * 18,
        HIKVISION[:16] + "中P",
    ],
)
def test_wrong_length_empty_or_foreign_characters_are_invalid(code: str | None) -> None:
    assert not is_valid(code)


@pytest.mark.parametrize("letter", list("IOSVZ"))
def test_forbidden_letters_are_invalid(letter: str) -> None:
    for at in (0, 9, 17):
        assert not is_valid(HIKVISION[:at] + letter + HIKVISION[at + 1 :])
    with pytest.raises(ValueError):
        check_char(HIKVISION[:16] + letter)


def test_check_char_needs_17_characters() -> None:
    with pytest.raises(ValueError, match="need 17 characters, got 16"):
        check_char(HIKVISION[:16])


@pytest.mark.parametrize("suffix", ["X", "123", "P"])
def test_codes_longer_than_18_are_invalid(suffix: str) -> None:
    assert not is_valid(HIKVISION + suffix)


def test_valid_mask_of_nothing() -> None:
    assert valid_mask([]).shape == (0,)


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            CODE_CHARS.filter(lambda s: len(s) <= 18),
            st.none(),
            st.builds(make_credit_code, REGIONS, ORG_BODIES),
        ),
        max_size=30,
    )
)
def test_valid_mask_equals_is_valid_per_item(codes: list[str | None]) -> None:
    assert valid_mask(codes).tolist() == [is_valid(c) for c in codes]


@settings(max_examples=300)
@given(st.text(alphabet=ALPHABET, min_size=17, max_size=17))
def test_valid_mask_agrees_with_check_char(first17: str) -> None:
    code = first17 + check_char(first17)
    assert valid_mask([code, first17 + ("0" if code[17] != "0" else "1")]).tolist() == [True, False]
