"""Masking phone numbers, resident ID numbers and names in free text."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.locate import locate
from handlers.privacy import (
    mask_caller_in,
    mask_free_text,
    mask_name,
    mask_phone,
    resident_id_checksum_ok,
)
from handlers.registry import Registry
from handlers.text import fold
from schemas.common import Location


def test_the_field_maskers_are_unchanged() -> None:
    assert mask_phone("15908765432") == "159****5432"
    assert mask_phone("1234") == "**34"
    assert mask_phone(None) is None
    assert mask_name("李建国") == "李**"
    assert mask_name("欧阳") == "欧*"
    assert mask_name(None) is None


def test_an_appeal_with_its_callers_name_and_numbers() -> None:
    text = (
        "居民李建国来电：5栋漏水，电话15908765432，晚上打0086-159-0876-5432也行，李建国说家里有老人"
    )
    assert mask_free_text(text, ["李建国"]) == (
        "居民李**来电：5栋漏水，电话159****5432，晚上打159****5432也行，李**说家里有老人"
    )


def test_a_grid_workers_note() -> None:
    note = (
        "已上门，赵桂兰不在家，已电话联系赵桂兰女儿（18623456789），身份证43010219560708352X已核对"
    )
    assert mask_free_text(note, ["赵桂兰"]) == (
        "已上门，赵**不在家，已电话联系赵**女儿（186****6789），身份证430102********352X已核对"
    )


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("18623456789", "186****6789"),
        ("186-2345-6789", "186****6789"),
        ("186 2345 6789", "186****6789"),
        ("+86 186 2345 6789", "186****6789"),
        ("+86-186-2345-6789", "186****6789"),
        ("+8618623456789", "186****6789"),
        ("0086 18623456789", "186****6789"),
        ("(+86)18623456789", "186****6789"),
        ("186.2345.6789", "186****6789"),
        ("１８６－２３４５－６７８９", "186****6789"),  # full-width digits and dash
        ("186 - 2345 - 6789", "186****6789"),
        ("( +86 ) 186 2345 6789", "( 186****6789"),  # the bracket stays: nothing closes it
        ("186\u30002345\u30006789", "186****6789"),  # ideographic spaces
        # gaps the matcher leaves, covered by the regex
        ("186_2345_6789", "186****6789"),
        ("17912345678", "179****5678"),  # a range libphonenumber rejects even at POSSIBLE
        ("Tel18623456789", "Tel186****6789"),
    ],
)
def test_mobile_numbers_in_every_written_form(written: str, masked: str) -> None:
    assert mask_free_text(f"请回电{written}，谢谢") == f"请回电{masked}，谢谢"


def test_two_numbers_glued_by_a_dash_are_both_masked() -> None:
    # libphonenumber reads the 22 digits as one number that is none and returns nothing
    assert mask_free_text("13512345678-13698765432") == "135****5678-136****5432"
    assert mask_free_text("028-87654321-028-87654322") == "028-****4321-028-****4322"


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("028-8765 4321", "028-****4321"),
        ("028-87654321", "028-****4321"),
        ("02887654321", "028-****4321"),
        ("(028)87654321", "028-****4321"),
        ("（028）87654321", "028-****4321"),
        ("010 6512 3456", "010-****3456"),
        ("(010) 6512-3456", "010-****3456"),
        ("+86 10 6512 3456", "010-****3456"),
        ("+86(0)28 8765 4321", "028-****4321"),
        ("0086-755-2654-3210", "0755-****3210"),
        ("0571-8702345", "0571-****2345"),  # a 7-digit subscriber number
    ],
)
def test_landline_numbers_keep_their_area_code(written: str, masked: str) -> None:
    assert mask_free_text(f"物业座机{written}没人接") == f"物业座机{masked}没人接"


def test_a_number_after_digits_and_an_x_is_masked() -> None:
    # the matcher reads "x" as an extension mark, fails on the whole run and skips it
    assert mask_free_text("编号3307x028-87654321") == "编号3307x028-****4321"
    assert mask_free_text("身份证510107198506124032X13512345678") == (
        "身份证510107********4032X135****5678"
    )


def test_a_local_number_is_masked_after_a_cue_word_only() -> None:
    assert mask_free_text("家里座机8765-4321") == "家里座机****4321"
    assert mask_free_text("tel: 6512 3456") == "tel: ****3456"
    assert mask_free_text("欠费87654321元") == "欠费87654321元"  # an amount, not a number


def test_a_foreign_number_written_with_its_country_code() -> None:
    assert mask_free_text("女儿在英国，电话+44 20 7946 0958") == "女儿在英国，电话+44 ****0958"


def test_an_opening_bracket_before_a_mobile_stays() -> None:
    assert mask_free_text("联系人(13512345678)") == "联系人(135****5678)"


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("510107198506124032", "510107********4032"),  # checksum holds
        ("44030520011130731X", "440305********731X"),
        ("44030520011130731x", "440305********731X"),
        ("510107198506124031", "510107********4031"),  # mistyped check digit: still masked
        ("510107 19850612 4032", "510107********4032"),  # grouped 6-8-4
        ("510107850612403", "510107******403"),  # the 15-digit form before 1999
    ],
)
def test_resident_id_numbers(written: str, masked: str) -> None:
    assert mask_free_text(f"身份证号{written}，已登记") == f"身份证号{masked}，已登记"


def test_the_id_checksum() -> None:
    assert resident_id_checksum_ok("11010519491231002X")  # GB 11643's own example
    assert resident_id_checksum_ok("11010519491231002x")
    assert not resident_id_checksum_ok("110105194912310021")
    assert not resident_id_checksum_ok("11010519491231002")


@pytest.mark.parametrize(
    "text",
    [
        "订单号990113456789012345已退款",  # 18 digits, no province, no date, bad checksum
        "流水号123456789012345",  # 15 digits, no province
        "于2026-11-10 14:00来电，反映3号楼1302室漏水",
        "escalated at 2026-11-10T14:00:00+08:00 to qy-g01",
        "位置 lat 30.6574123 lon 104.0657351",
        "请拨12345热线，火警119，急救120，报警110",
        "交物业费3500元，订单20261110",
        "sensor gas-000123456789 raised smoke",
        "case-3f2a9c01b7e4-5d0c2e9a41 routed to grid",
        "订单号0123456789，工单0571",  # a trunk 0 but no Chinese area code and length
    ],
)
def test_numbers_that_are_not_personal_stay(text: str) -> None:
    assert mask_free_text(text) == text


def test_names_longest_first_every_occurrence() -> None:
    text = "王秀英和王秀是姐妹，王秀英今天来过"
    assert mask_free_text(text, ["王秀", "王秀英"]) == "王**和王*是姐妹，王**今天来过"


def test_a_name_embedded_without_a_break() -> None:
    assert mask_free_text("我叫欧阳娜娜住5栋", ["欧阳娜娜"]) == "我叫欧***住5栋"


def test_names_shorter_than_two_and_blank_are_ignored() -> None:
    assert mask_free_text("王说李来过", ["王", "", "  ", "李"]) == "王说李来过"
    assert mask_free_text("张伟来过", [" 张伟 "]) == "张*来过"


def test_mask_caller_in() -> None:
    assert mask_caller_in("我是陈立新，13512345678", "陈立新") == "我是陈**，135****5678"
    assert mask_caller_in("我是陈立新", None) == "我是陈立新"


def test_text_without_digits_or_names_comes_back_as_it_is() -> None:
    text = "楼道里有烟雾，请尽快来看看 Strong smell of gas"
    assert mask_free_text(text) is text


# --- property: no number or name survives in clear --------------------------------------------

_AREAS_2 = ["10", "20", "21", "22", "23", "24", "25", "27", "28", "29"]
_AREAS_3 = ["311", "351", "371", "431", "451", "471", "512", "531", "551", "571"]
_AREAS_3 += ["591", "731", "755", "769", "871", "898", "931", "991"]
_PROVINCES = [11, 12, 13, 21, 31, 32, 33, 37, 41, 44, 50, 51, 53, 61, 65, 71, 81, 82]
_FULL_WIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")
# What separates the digits of a number; removed from the output before looking for digits.
_SEPARATORS = re.compile(r"[\s\-()（）+.－—/_]")
_FILLER = (
    "我家住在号楼单元室附近居民反映楼道里有很重的煤气味请尽快处理谢谢联系人电话手机座机身份证"
    "，。：；！？、“”《》…abcdefghijklmnopqrstuvwxyzTELPHONEX "
)


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


@st.composite
def _mobile(draw: st.DrawFn) -> tuple[str, list[str]]:
    n = "1" + draw(st.sampled_from("3456789")) + draw(_digits(9))
    a, b, c = n[:3], n[3:7], n[7:]
    written = draw(
        st.sampled_from(
            [
                n,
                f"{a}-{b}-{c}",
                f"{a} {b} {c}",
                f"+86 {n}",
                f"+86 {a} {b} {c}",
                f"+86-{a}-{b}-{c}",
                f"+86{n}",
                f"0086{n}",
                f"0086 {a} {b} {c}",
                f"(+86){n}",
                f"{a}.{b}.{c}",
                f"{a}\u3000{b}\u3000{c}",  # ideographic spaces: only the matcher reads these
            ]
        )
    )
    if draw(st.booleans()):
        written = written.translate(_FULL_WIDTH)
    return written, [n]


@st.composite
def _landline(draw: st.DrawFn) -> tuple[str, list[str]]:
    area = draw(st.sampled_from(_AREAS_2 + _AREAS_3))
    size = 8 if len(area) == 2 else draw(st.sampled_from([7, 8]))
    local = draw(st.sampled_from("2345678")) + draw(_digits(size - 1))
    head, tail = local[:-4], local[-4:]
    written = draw(
        st.sampled_from(
            [
                f"0{area}-{local}",
                f"0{area}{local}",
                f"0{area} {local}",
                f"0{area}-{head} {tail}",
                f"0{area} {head} {tail}",
                f"(0{area}){local}",
                f"（0{area}）{local}",
                f"(0{area}) {head}-{tail}",
                f"+86 {area} {local}",
                f"+86-{area}-{local}",
                f"0086 {area} {head} {tail}",
                f"+86 ({area}) {local}",  # only the matcher reads these
            ]
        )
    )
    return written, [area + local, local]


@st.composite
def _resident_id(draw: st.DrawFn) -> tuple[str, list[str]]:
    region = f"{draw(st.sampled_from(_PROVINCES))}{draw(_digits(4))}"
    birth = draw(st.dates(min_value=date(1920, 1, 1), max_value=date(2025, 12, 31))).strftime(
        "%Y%m%d"
    )
    if draw(st.booleans()):  # the 15-digit form: two-digit year, no check character
        number = region + birth[2:] + draw(_digits(3))
        return number, [number]  # its 6-digit birth date could be another's region
    body = region + birth + draw(_digits(3))
    check = draw(st.sampled_from([_check(body), *"0123456789X"]))  # valid or mistyped
    number = body + check
    written = number.lower() if draw(st.booleans()) else number
    if draw(st.booleans()):
        written = f"{number[:6]} {number[6:14]} {number[14:]}"
    return written, [number, number.lower(), birth]


def _check(body: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


_NAMES = st.builds(
    lambda surname, given: surname + given,
    st.sampled_from(["王", "李", "张", "刘", "陈", "欧阳", "司马"]),
    st.text(alphabet="秀英建国丽娜桂兰立新伟芳", min_size=1, max_size=2),
)
# Between two numbers there is always some word: digits run into each other otherwise, and
# which number a run of digits is becomes a guess (two glued mobiles are tested above).
_WORDS = st.text(alphabet=_FILLER, min_size=1, max_size=10).filter(
    lambda s: _SEPARATORS.sub("", s) != ""
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.one_of(_mobile(), _landline(), _resident_id()), min_size=1, max_size=5),
    st.lists(_NAMES, max_size=2),
    st.data(),
)
def test_no_number_or_name_survives_in_clear(
    numbers: list[tuple[str, list[str]]], names: list[str], data: st.DataObject
) -> None:
    parts: list[str] = []
    for i, (written, _) in enumerate(numbers):
        name = names[i % len(names)] if names and data.draw(st.booleans()) else ""
        parts += [data.draw(_WORDS), name, written]
    parts.append(data.draw(_WORDS))
    text = "".join(parts)

    masked = mask_free_text(text, names)

    bare = _SEPARATORS.sub("", masked)
    for written, secrets in numbers:
        for secret in secrets:
            assert secret not in bare, (text, written, masked)
    for name in names:
        assert name not in masked, (text, name, masked)


def test_a_name_written_in_traditional_characters_or_another_case() -> None:
    assert mask_free_text("我是陳麗，陈丽的电话", ["陈丽"]) == "我是陳*，陈*的电话"
    assert mask_free_text("歐陽娜娜和欧阳娜娜", ["欧阳娜娜"]) == "歐***和欧***"
    assert mask_free_text("caller WANG Li, wang li", ["Wang Li"]) == "caller W******, w******"
    assert mask_free_text("王秀英和王秀", ["王秀", "王秀英"]) == "王**和王*"


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="陳麗陈丽歐陽欧阳娜ＷＡＮＧwang li 电话1380013８０００0", max_size=30),
    st.sampled_from(["陈丽", "欧阳娜娜", "Wang Li", "王"]),
)
def test_a_text_folded_by_the_caller_is_masked_as_one_folded_here(text: str, name: str) -> None:
    assert mask_caller_in(text, name, fold(text)) == mask_caller_in(text, name)


def test_an_unresolved_address_is_keyed_by_a_digest_and_quoted_masked(
    registry: Registry,
) -> None:
    """Issue 13: the dedup key of an address the registry cannot resolve is a digest of the
    normalised address (the same for the same address, however spaced), and the note quoting
    the address masks its phone number and the caller's name."""
    said = "王建华家 电话13980012345 某某路99号"
    one = locate(Location(address=said), registry, 300, "王建华")
    two = locate(Location(address=said.replace(" ", "")), registry, 300, None)
    assert one.method == "none" and one.place == two.place
    assert re.fullmatch(r"address:[0-9a-f]{12}", one.place), one.place
    assert "13980012345" not in one.note and "王建华" not in one.note
    assert "139****2345" in one.note and "某某路99号" in one.note
    other = locate(Location(address="某某路98号"), registry, 300, None)
    assert other.place != one.place
