"""Folding traditional, full-width and upper-case text to the form the rules are written in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.text import fold


@pytest.mark.parametrize(
    ("written", "folded"),
    [
        # Taiwan
        ("浴室裡有瓦斯味，鄰居說聞到好幾天了", "浴室里有瓦斯味，邻居说闻到好几天了"),
        ("後樓梯間著火了，請趕快來", "后楼梯间着火了，请赶快来"),
        ("電梯卡在七樓，裡面關著兩個人", "电梯卡在七楼，里面关着两个人"),
        ("長青路12號之3，獨居長輩跌倒", "长青路12号之3，独居长辈跌倒"),
        # characters are folded, words are not rewritten (tw2sp would write 创建智能社区)
        ("建立智慧社區，透過網路報修", "建立智慧社区，透过网路报修"),
        # Hong Kong
        ("大廈衞生間天花漏水，滴到樓下", "大厦卫生间天花漏水，滴到楼下"),
        ("電綫短路，燈又著唔到", "电线短路，灯又着唔到"),
        ("裏頭有陣煤氣味，啓動唔到個爐", "里头有阵煤气味，启动唔到个炉"),
        # the older standard forms
        ("樓上裝修聲音太吵，噪音擾民", "楼上装修声音太吵，噪音扰民"),
        ("清源小區二期3棟2單元停電", "清源小区二期3栋2单元停电"),
    ],
)
def test_traditional_text_folds_to_simplified(written: str, folded: str) -> None:
    assert fold(written) == folded


def test_the_issues_texts_fold_to_what_the_rules_match() -> None:
    assert fold("廚房裡煤氣味很重，家裡只有老人") == "厨房里煤气味很重，家里只有老人"
    assert fold("文家路34號和美苑1棟") == "文家路34号和美苑1栋"
    assert fold("Strong smell of GAS in the stairwell") == "strong smell of gas in the stairwell"


@pytest.mark.parametrize(
    ("written", "folded"),
    [
        ("３号楼２单元，ＧＡＳ　ＬＥＡＫ", "3号楼2单元，gas　leak"),
        ("Elevator STUCK at 5F", "elevator stuck at 5f"),
        ("Ａ座１２０３室", "a座1203室"),
        ("⾦牛区", "金牛区"),  # a Kangxi radical pasted in place of the ideograph
    ],
)
def test_width_case_and_compatibility_forms_fold(written: str, folded: str) -> None:
    assert fold(written) == folded


@pytest.mark.parametrize(
    "simplified",
    [
        "厨房里煤气味很重，家里只有老人",
        "成效显著，着火点在三楼，干净整洁",  # 显著 and 着火 both stay as written
        "请尽快处理！（联系人：张女士）……谢谢",  # Chinese punctuation and … stay
        "乾隆年间的老宅，后院积水",
        "楼道里有人吸烟，烟雾报警器响了",
    ],
)
def test_simplified_text_comes_back_as_it_is(simplified: str) -> None:
    assert fold(simplified) == simplified


def test_non_ascii_letters_are_left_alone() -> None:
    assert fold("Ünïcode İstanbul Straße") == "Ünïcode İstanbul straße"


_SIMPLIFIED = (
    "厨房里煤气味很重家只有老人楼道电梯漏水噪音社区网格停电烟雾报警号栋单元请尽快处理，。！？（）"
)


@given(st.text(alphabet=_SIMPLIFIED + "abcxyz 0123456789-", max_size=80))
def test_fold_keeps_simplified_text_and_is_idempotent(text: str) -> None:
    assert fold(text) == text
    assert fold(fold(text)) == fold(text)


@given(st.text(max_size=60))
def test_fold_keeps_length_and_is_idempotent_on_any_text(text: str) -> None:
    folded = fold(text)
    assert fold(folded) == folded
    assert len(folded) == len(text)
