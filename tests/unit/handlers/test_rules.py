"""The rules file: the shipped one compiles; broken ones fail with the file, rule and fault."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.errors import ConfigError
from handlers.registry import Registry
from handlers.rules import Rules, compile_rules, keyword_pattern, parse_duration
from handlers.text import fold
from schemas import Severity, Tier
from streams.config import load_rules


def test_shipped_rules_compile(rules: Rules) -> None:
    assert rules.ceiling(Severity.TRIVIAL) is Tier.GRID
    assert rules.ceiling(Severity.MINOR) is Tier.COMMUNITY
    assert rules.ceiling(Severity.MAJOR) is Tier.STREET
    assert rules.categories["noise"].tier is Tier.GRID
    assert [r.id for r in rules.routes][:2] == ["patrol-handled-on-spot", "critical-gas-leak"]
    assert rules.repeats[0].threshold == 3 and rules.repeats[0].window == timedelta(days=7)
    assert rules.storms[0].window == timedelta(minutes=30)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("1d12h", timedelta(days=1, hours=12)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "5", "2 hours", "h", "-5m", "0m", 30])
def test_bad_durations(bad: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def _break(raw: dict[str, Any], path: str, value: Any) -> None:
    """Set raw[a][b][c] = value for path 'a.b.c' (integers index lists)."""
    *head, last = path.split(".")
    node: Any = raw
    for part in head:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is DELETE:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value


DELETE = object()

# (what is broken, value, words the error must contain)
BAD_RULES = [
    ("routes.1.tier", "district", ["rule 'critical-gas-leak'", "routes[1].tier", "'micro_grid'"]),
    ("routes.1.matc", {}, ["rule 'critical-gas-leak'", "unknown field 'matc'"]),
    (
        "routes.2.match.categories",
        ["noise", "karaoke"],
        ["rule 'smoke-alarm'", "unknown category 'karaoke'"],
    ),
    (
        "routes.3.notify_units",
        ["no-such-unit"],
        ["rule 'person-in-danger'", "unknown unit 'no-such-unit'"],
    ),
    (
        "routes.1.unit",
        "qingyuan",
        ["rule 'critical-gas-leak'", "unit 'qingyuan' is a community, not grid"],
    ),
    (
        "routes.1.match.communities",
        ["atlantis"],
        ["rule 'critical-gas-leak'", "unknown community 'atlantis'"],
    ),
    ("routes.1.sla.acknowledge", "soon", ["rule 'critical-gas-leak'", "expected a duration"]),
    ("routes.1.id", "smoke-alarm", ["rule 'smoke-alarm'", "duplicate rule id"]),
    ("repeats.0.threshold", 1, ["rule 'repeated-appeals'", "greater than or equal to 2"]),
    ("storms.0.window", "forever", ["rule 'alarm-storm'", "expected a duration"]),
    ("categories.noise.tier", "street", ["category 'noise'", "above the ceiling of minor"]),
    ("categories.noise.severity", "huge", ["category 'noise'", "categories.noise.severity"]),
    ("categories.noise.colour", "red", ["category 'noise'", "unknown field 'colour'"]),
    ("alarm_types.gas_leak.category", "gas", ["alarm_types.gas_leak", "unknown category 'gas'"]),
    ("alarm_types.gas_leak", DELETE, ["no entry for alarm type 'gas_leak'"]),
    ("alarm_types.fall.valid_range", DELETE, ["alarm_types.fall", "valid_range"]),
    ("alarm_types.fall.valid_range", [5, 1], ["alarm_types.fall", "low end must be below"]),
    ("alarm_types.smoke.valid_range", [0, float("inf")], ["alarm_types.smoke", "valid_range"]),
    ("ceilings.trivial", "street", ["ceilings", "a smaller matter cannot climb higher"]),
    ("fallback_category", "misc", ["fallback_category", "unknown category 'misc'"]),
    ("version", 2, ["version"]),
    (
        "categories.pets.keywords",
        ["噪音"],
        ["category 'pets'", "keyword '噪音' already belongs to 'noise'"],
    ),
]


@pytest.mark.parametrize(("path", "value", "words"), BAD_RULES, ids=[b[0] for b in BAD_RULES])
def test_bad_rules_fail_with_file_rule_and_fault(
    raw_rules: dict[str, Any], registry: Registry, path: str, value: Any, words: list[str]
) -> None:
    _break(raw_rules, path, value)
    with pytest.raises(ConfigError) as info:
        compile_rules(raw_rules, "my_rules.yaml", registry)
    message = str(info.value)
    assert message.startswith("my_rules.yaml:")
    for w in words:
        assert w in message, message


def test_bad_rules_file_on_disk(
    tmp_path: Path, registry: Registry, raw_rules: dict[str, Any]
) -> None:
    raw_rules["routes"][0]["tier"] = "city"
    path = tmp_path / "candidate.yaml"
    path.write_text(yaml.safe_dump(raw_rules, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"(?s)candidate.yaml: .*rule 'patrol-handled-on-spot'"):
        load_rules(path, registry)
    path.write_text("routes: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_rules(path, registry)
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_rules(tmp_path / "missing.yaml", registry)


def test_compiled_rules_are_immutable(rules: Rules) -> None:
    with pytest.raises(AttributeError):
        rules.routes[0].tier = Tier.STREET  # type: ignore[misc]
    with pytest.raises(AttributeError):
        rules.fallback_category = "noise"  # type: ignore[misc]


def test_keyword_table_derives_categories(rules: Rules) -> None:
    assert rules.derive_category("楼上装修声太吵，噪音扰民")[0] == "noise"
    assert rules.derive_category("垃圾没人清运")[0] == "sanitation"
    assert rules.derive_category("今天天气不错") == ("other", ())
    # Most hits win: two noise words beat one parking word.
    assert rules.derive_category("停车场里广场舞音响扰民")[0] == "noise"


def test_severity_keywords_only_raise(rules: Rules) -> None:
    assert rules.text_severity("厨房着火了", Severity.MINOR) == (Severity.CRITICAL, "着火")
    assert rules.text_severity("一切正常", Severity.MAJOR) == (Severity.MAJOR, None)
    assert rules.text_severity("有点危险", Severity.CRITICAL)[0] is Severity.CRITICAL


def test_keywords_are_folded_and_english_words_match_on_word_boundaries(raw_rules: Any) -> None:
    raw_rules["categories"]["gas_safety"]["keywords"] += ["GAS Leak", "瓦斯"]
    raw_rules["severity_keywords"]["critical"] += ["SOS"]
    rules = compile_rules(raw_rules)
    assert rules.derive_category(fold("There is a gas leak downstairs")) == (
        "gas_safety",
        ("gas leak",),
    )
    assert rules.derive_category(fold("瓦斯味道"))[0] == "gas_safety"
    assert rules.derive_category(fold("Ask for helpdesk"))[0] == "other"
    assert rules.text_severity(fold("SOS, please"), Severity.MINOR) == (Severity.CRITICAL, "sos")
    assert rules.text_severity(fold("Sosa says hello"), Severity.MINOR) == (Severity.MINOR, None)
    assert rules.derive_category(fold("a smell\n of   gas"))[1] == ("smell of gas",)


def test_a_keyword_that_folds_onto_another_is_refused(raw_rules: Any) -> None:
    raw_rules["categories"]["noise"]["keywords"] += ["煤氣味"]  # 煤气味 is gas_safety's
    with pytest.raises(ConfigError, match=r"keyword '煤氣味'.*already belongs to 'gas_safety'"):
        compile_rules(raw_rules)


def _flat_alternation(words: list[str]) -> re.Pattern[str]:
    """The keyword table as the plain regex says it: every keyword, longest first."""

    def one(word: str) -> str:
        body = r"\s+".join(re.escape(part) for part in word.split(" "))
        head = r"(?<![a-z0-9])" if re.match("[a-z0-9]", word[0]) else ""
        tail = r"(?![a-z0-9])" if re.match("[a-z0-9]", word[-1]) else ""
        return head + body + tail

    return re.compile("|".join(one(w) for w in sorted(set(words), key=lambda w: -len(w))))


_WORDS = ["gas", "gas leak", "gas leaks", "smell of gas", "help!", "煤气", "煤气味", "漏气", "a"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(_WORDS) | st.text(alphabet="gas lekmofhp!煤气味漏 \t\n　0", max_size=4),
        max_size=10,
    ).map("".join)
)
def test_the_compiled_keyword_trie_finds_what_the_flat_alternation_finds(text: str) -> None:
    assert keyword_pattern(_WORDS).findall(text) == _flat_alternation(_WORDS).findall(text)  # type: ignore[union-attr]


def test_the_shipped_keyword_tables_match_as_the_flat_alternation(rules: Rules) -> None:
    texts = [
        "Strong smell of gas, fire!  help! 燃气泄漏 着火了",
        "vegas gasleak 漏气漏气 no water for days",
    ]
    for pattern, words in (
        (rules._keyword_re, list(rules._keyword_category)),
        (rules._severity_re, list(rules._severity_of_word)),
    ):
        assert pattern is not None
        for text in texts:
            assert pattern.findall(text) == _flat_alternation(words).findall(text)
