"""Gas leaks written as people write them: 瓦斯 (Taiwan), 煤气 and 天然气 with 泄漏 or 泄露, a smell
named before or after the gas, English with the leak or the smell anywhere in the sentence.
Each is gas_safety and critical, routed to the grid with the community told; a gas named with
no leak or smell (a bill, opening an account) is not an emergency."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.engine import Engine
from handlers.errors import ConfigError
from handlers.registry import Registry
from handlers.rules import Rules, compile_rules
from handlers.state import DictStore, Position
from handlers.text import fold
from schemas import CaseRouted
from tests.conftest import EventFactory

LEAKS = [
    "厨房里瓦斯漏了，味道很大",  # Taiwan's word for gas, simplified
    "廁所旁邊的瓦斯管好像在漏",  # traditional, with words between the gas and the leak
    "单元楼里天然气管道泄露，请快来",
    "楼下的液化气罐外泄了",
    "燃氣管線外洩，整層樓都是味道",  # traditional: 燃氣 … 外洩
    "隔壁一直有股臭煤气",  # the smell before the gas
    "一进门就闻到天然气",
    "There's a strong gas odour on the third floor",
    "Smelled gas near the meters this morning",
    "the boiler's gas line leaked overnight",
    "FUMES of gas in the basement",
]
CALM = [
    "燃气费怎么交？",
    "想办理天然气开户，需要什么材料",
    "How do I pay my gas bill",
    "燃气费交了，楼上漏水",  # a gas, then a leak in another clause: the flooding is the matter
    "I paid the gas bill. The tap is leaking",
]


@pytest.mark.parametrize("text", LEAKS)
def test_a_gas_and_a_leak_or_smell_in_one_clause_is_a_gas_leak(rules: Rules, text: str) -> None:
    category, words = rules.derive_category(fold(text))
    assert category == "gas_safety", (text, words)
    assert words and all("+" in w for w in words)  # found as a gas and a leak together


@pytest.mark.parametrize("text", CALM)
def test_a_gas_without_a_leak_in_its_clause_is_no_gas_leak(rules: Rules, text: str) -> None:
    assert rules.derive_category(fold(text))[0] != "gas_safety", text


def test_a_gas_leak_beats_the_flooding_word_it_shares_and_the_elder_in_the_flat(
    rules: Rules, registry: Registry, make: EventFactory
) -> None:
    """Through the engine: the whole decision a responder sees."""
    engine = Engine(rules, registry, DictStore())
    for n, text in enumerate(
        ["gas is leaking from the cooker", "阳台有瓦斯的味道，家里只有一位老人", "燃气表那里泄漏了"]
    ):
        where = {"micro_grid_id": f"qy-m00{n + 1}"}  # three places: no repeat raises a tier
        out = engine.feed(make.appeal(text, where), Position("test", n), advance=False).outputs[0]
        assert isinstance(out, CaseRouted), out
        d = out.data
        assert (d.category, d.severity.value, d.rule_id, d.tier.value) == (
            "gas_safety",
            "critical",
            "critical-appeal",
            "grid",
        ), (text, d.explanation)
        assert [x.unit_id for x in d.notified] == ["qingyuan"]


def test_a_keyword_in_the_clause_is_its_hit_not_one_more(rules: Rules) -> None:
    """煤气味 is a keyword and also a gas with a smell: it counts once, as the keyword."""
    assert rules.derive_category("楼道里煤气味很浓") == ("gas_safety", ("煤气味",))
    # two clauses, two hits: one keyword, one pair
    assert rules.derive_category("有煤气味，燃气管也在漏") == ("gas_safety", ("煤气味", "燃气+漏"))


@pytest.mark.parametrize(
    ("together", "fault"),
    [
        ([["燃气", "煤气"]], "at least 2 items"),
        ([["燃气"], []], "at least 1 item"),
        ([["燃气"], ["  "]], "together[0]: word '  ' is only white space"),
    ],
)
def test_a_bad_together_entry_is_refused(
    raw_rules: dict[str, Any], registry: Registry, together: Any, fault: str
) -> None:
    raw_rules["categories"]["gas_safety"]["together"] = [together]
    with pytest.raises(ConfigError, match="gas_safety") as info:
        compile_rules(raw_rules, "my_rules.yaml", registry)
    assert fault in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "独居老人家里有煤气味，老人行动不便，子女不在身边",  # elder care twice, the gas once
        "楼上噪音扰民，邻居吵架，楼道里还有一股天然气味",  # noise twice, then the gas
        "The elderly man living alone is disabled and his flat smells of gas",
    ],
)
def test_a_gas_leak_wins_over_more_hits_on_other_categories(rules: Rules, text: str) -> None:
    """Life safety first: one hit on a critical category outweighs any number on others."""
    category, words = rules.derive_category(fold(text))
    assert category == "gas_safety", (text, words)
    others = [w for w in rules._keyword_re.findall(fold(text))] if rules._keyword_re else []
    assert len(others) >= 2  # the other category did have more hits
