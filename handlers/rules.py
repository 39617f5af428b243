"""`escalation_rules.yaml`, validated once and compiled into an immutable `Rules`.

The file format is documented in the file itself. `compile_rules(raw, source, registry)` takes
the parsed document (the shell reads the file) and returns `Rules`, whose look-ups are pure
functions; any fault raises `ConfigError` naming the file, the rule id and what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from handlers.errors import ConfigError, validation_problems
from handlers.registry import GridKind, Registry
from handlers.text import fold
from schemas.common import AlarmType, Channel, Severity, Tier

Kind = Literal["appeal", "alarm", "patrol"]

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(value: Any) -> timedelta:
    """'30s', '5m', '2h', '7d' or combinations like '1d12h' -> timedelta."""
    if isinstance(value, timedelta):
        return value
    m = _DURATION.match(value) if isinstance(value, str) else None
    if not value or m is None or not any(m.groups()):
        raise ValueError(f"expected a duration like '30m', '2h' or '7d', got {value!r}")
    d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    td = timedelta(days=d, hours=h, minutes=mi, seconds=s)
    if td <= timedelta(0):
        raise ValueError("a duration must be positive")
    return td


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


# ---- the file format -------------------------------------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlaSpec(_Spec):
    acknowledge: Duration | None = None
    resolve: Duration | None = None


_WordList = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


class CategorySpec(_Spec):
    name: str = Field(min_length=1)
    tier: Tier
    severity: Severity
    keywords: list[Annotated[str, Field(min_length=1)]] = []
    together: list[Annotated[list[_WordList], Field(min_length=2)]] = []
    sla: SlaSpec | None = None


class AlarmTypeSpec(_Spec):
    category: str
    severity: Severity
    below_threshold: Literal["refuse", "flag"] = "refuse"
    # Required: a reading of -1e300 against a threshold of -1e301 is no alarm of any type.
    valid_range: tuple[
        Annotated[float, Field(allow_inf_nan=False)], Annotated[float, Field(allow_inf_nan=False)]
    ]

    @model_validator(mode="after")
    def _range_in_order(self) -> AlarmTypeSpec:
        lo, hi = self.valid_range
        if lo >= hi:
            raise ValueError(f"valid_range [{lo:g}, {hi:g}]: the low end must be below the high")
        return self


class MatchSpec(_Spec):
    kinds: list[Kind] | None = None
    categories: list[str] | None = None
    alarm_types: list[AlarmType] | None = None
    channels: list[Channel] | None = None
    severities: list[Severity] | None = None
    grid_kinds: list[GridKind] | None = None
    communities: list[str] | None = None
    handled_on_spot: bool | None = None


class RouteSpec(_Spec):
    id: str = Field(min_length=1)
    description: str = ""
    match: MatchSpec = MatchSpec()
    tier: Tier | None = None
    unit: str | None = None
    severity: Severity | None = None
    close: bool = False
    notify_tiers: list[Tier] = []
    notify_units: list[str] = []
    sla: SlaSpec | None = None
    tags: list[str] = []


class RepeatSpec(_Spec):
    id: str = Field(min_length=1)
    description: str = ""
    match: MatchSpec = MatchSpec()
    threshold: int = Field(ge=2)
    window: Duration
    raise_by: int = Field(default=1, ge=1, le=3)


class StormSpec(_Spec):
    id: str = Field(min_length=1)
    description: str = ""
    match: MatchSpec = MatchSpec()
    window: Duration


class LocationSpec(_Spec):
    max_distance_m: float = Field(default=300, gt=0, le=5000)


class LifecycleSpec(_Spec):
    rating_due: Duration = parse_duration("7d")
    max_extension: Duration = parse_duration("7d")  # the most a unit may ask for (延期)


class MemorySpec(_Spec):
    identities: Duration = parse_duration("7d")


class TimeSpec(_Spec):
    max_ahead: Duration = parse_duration("1h")
    max_jump: Duration = parse_duration("30d")
    earliest: AwareDatetime = datetime(2000, 1, 1, tzinfo=UTC)


class RulesSpec(_Spec):
    version: Literal[1]
    ceilings: dict[Severity, Tier]
    default_sla: SlaSpec
    location: LocationSpec = LocationSpec()
    lifecycle: LifecycleSpec = LifecycleSpec()
    memory: MemorySpec = MemorySpec()
    time: TimeSpec = TimeSpec()
    fallback_category: str
    categories: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], CategorySpec]
    alarm_types: dict[AlarmType, AlarmTypeSpec]
    severity_keywords: dict[Severity, list[Annotated[str, Field(min_length=1)]]] = {}
    routes: list[RouteSpec] = []
    repeats: list[RepeatSpec] = []
    storms: list[StormSpec] = []


# ---- the compiled rules ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Facts:
    """What a rule's `match` looks at: known after tagging and locating, before routing."""

    kind: Kind
    category: str
    severity: Severity
    alarm_type: AlarmType | None = None
    channel: Channel | None = None
    grid_kind: GridKind | None = None
    community_id: str | None = None
    handled_on_spot: bool | None = None


@dataclass(frozen=True, slots=True)
class Match:
    kinds: frozenset[str] | None
    categories: frozenset[str] | None
    alarm_types: frozenset[AlarmType] | None
    channels: frozenset[Channel] | None
    severities: frozenset[Severity] | None
    grid_kinds: frozenset[str] | None
    communities: frozenset[str] | None
    handled_on_spot: bool | None

    def __call__(self, f: Facts) -> bool:
        return (
            (self.kinds is None or f.kind in self.kinds)
            and (self.categories is None or f.category in self.categories)
            and (self.severities is None or f.severity in self.severities)
            and (self.alarm_types is None or f.alarm_type in self.alarm_types)
            and (self.channels is None or f.channel in self.channels)
            and (self.grid_kinds is None or f.grid_kind in self.grid_kinds)
            and (self.communities is None or f.community_id in self.communities)
            and (self.handled_on_spot is None or f.handled_on_spot is self.handled_on_spot)
        )


@dataclass(frozen=True, slots=True)
class Sla:
    acknowledge: timedelta | None
    resolve: timedelta | None


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    name: str
    tier: Tier
    severity: Severity
    sla: Sla  # resolved at load: each clock the category's own, else `default_sla`'s


@dataclass(frozen=True, slots=True)
class Route:
    id: str
    description: str
    match: Match
    tier: Tier | None
    unit: str | None
    severity: Severity | None
    close: bool
    notify_tiers: tuple[Tier, ...]
    notify_units: tuple[str, ...]
    sla: Sla | None  # resolved at load like a category's; None: the category's applies
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RepeatRule:
    id: str
    match: Match
    threshold: int
    window: timedelta
    raise_by: int


@dataclass(frozen=True, slots=True)
class StormRule:
    id: str
    match: Match
    window: timedelta


@dataclass(frozen=True)
class Rules:
    ceilings: Mapping[Severity, Tier]
    default_sla: Sla
    max_distance_m: float
    rating_due: timedelta
    identity_memory: timedelta
    time: TimeSpec
    fallback_category: str
    categories: Mapping[str, Category]
    alarm_types: Mapping[AlarmType, tuple[str, Severity]]
    readings: Mapping[AlarmType, AlarmTypeSpec]
    routes: tuple[Route, ...]
    repeats: tuple[RepeatRule, ...]
    storms: tuple[StormRule, ...]
    _keyword_re: re.Pattern[str] | None
    _keyword_category: Mapping[str, str]
    _category_order: Mapping[str, int]
    _severity_re: re.Pattern[str] | None
    _severity_of_word: Mapping[str, Severity]
    max_extension: timedelta = timedelta(days=7)  # lifecycle.max_extension (handlers/desks.py)
    # Categories' `together` entries: (category, one pattern per word list), in file order.
    _together: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...] = ()

    @cached_property
    def _life_safety(self) -> frozenset[str]:
        """The categories whose severity is critical: their keyword hits come first."""
        return frozenset(
            c for c, cat in self.categories.items() if cat.severity is Severity.CRITICAL
        )

    @cached_property
    def longest_repeat_window(self) -> timedelta:
        return max((r.window for r in self.repeats), default=timedelta(0))

    @cached_property
    def longest_storm_window(self) -> timedelta:
        return max((r.window for r in self.storms), default=timedelta(0))

    def derive_category(self, text: str) -> tuple[str, tuple[str, ...]]:
        """The category whose keywords appear most often in `text` (a critical category's hit
        first: life safety), and the words that hit
        (in their folded form). `text` is folded (`handlers.text.fold`): routing folds it
        once, for keywords and severity words both. A clause that holds a word of every list
        of a category's `together` entry is one more hit for it (`燃气+泄漏`), unless one of
        the category's own keywords is in that clause already (then that is the hit)."""
        hits = [_spaced(w) for w in self._keyword_re.findall(text)] if self._keyword_re else []
        found = [(self._keyword_category[w], w) for w in hits]
        if self._together:
            found.extend(self._together_hits(text))
        if not found:
            return self.fallback_category, ()
        counts: dict[str, int] = {}
        for cat, _ in found:
            counts[cat] = counts.get(cat, 0) + 1
        # Life safety first: a hit on a critical category (a gas leak) wins over any number of
        # hits on others (独居老人 and 行动不便 do not make a gas smell an elder-care matter).
        best = min(
            counts,
            key=lambda c: (
                c not in self._life_safety,
                -counts[c],
                self._category_order[c],
            ),
        )
        return best, tuple(dict.fromkeys(w for cat, w in found if cat == best))

    def _together_hits(self, text: str) -> list[tuple[str, str]]:
        """(category, 'word+word') for each clause of `text` where a `together` entry of the
        category has a word of each of its lists and none of its keywords is."""
        if not any(patterns[0].search(text) for _, patterns in self._together):
            return []  # most texts: none has even a word of a first list
        out: list[tuple[str, str]] = []
        for clause in _CLAUSE.split(text):
            own: set[str] | None = None
            for cat, patterns in self._together:
                words = [m.group() for m in (p.search(clause) for p in patterns) if m]
                if len(words) < len(patterns):
                    continue
                if own is None:  # the categories whose keywords are in the clause
                    kw = self._keyword_re.findall(clause) if self._keyword_re else []
                    own = {self._keyword_category[_spaced(w)] for w in kw}
                if cat not in own:
                    own.add(cat)  # one hit per category and clause
                    out.append((cat, "+".join(map(_spaced, words))))
        return out

    def text_severity(self, text: str, base: Severity) -> tuple[Severity, str | None]:
        """`base` raised to the highest severity whose keywords appear in `text` (folded, as
        for `derive_category`)."""
        if self._severity_re is None:
            return base, None
        best, word = base, None
        for w in map(_spaced, self._severity_re.findall(text)):
            sev = self._severity_of_word[w]
            if sev.rank > best.rank:
                best, word = sev, w
        return best, word

    @cached_property
    def _of_kind(
        self,
    ) -> Mapping[str, tuple[tuple[Route, ...], tuple[RepeatRule, ...], tuple[StormRule, ...]]]:
        """The routes, repeat rules and storm rules that can match each kind, in file order:
        resolved once, so that each event tries only those."""

        def can(m: Match, kind: str) -> bool:
            return m.kinds is None or kind in m.kinds

        return {
            kind: (
                tuple(r for r in self.routes if can(r.match, kind)),
                tuple(r for r in self.repeats if can(r.match, kind)),
                tuple(r for r in self.storms if can(r.match, kind)),
            )
            for kind in get_args(Kind)
        }

    def route_for(self, facts: Facts) -> Route | None:
        """The first route whose `match` fits."""
        for r in self._of_kind[facts.kind][0]:
            if r.match(facts):
                return r
        return None

    def repeat_for(self, facts: Facts) -> RepeatRule | None:
        for r in self._of_kind[facts.kind][1]:
            if r.match(facts):
                return r
        return None

    def storm_for(self, facts: Facts) -> StormRule | None:
        for r in self._of_kind[facts.kind][2]:
            if r.match(facts):
                return r
        return None

    def ceiling(self, severity: Severity) -> Tier:
        return self.ceilings[severity]

    def sla_for(self, route: Route | None, category: Category) -> Sla:
        """Route SLA, else category SLA, each clock falling back to the default (resolved
        when the rules were compiled)."""
        return route.sla if route is not None and route.sla is not None else category.sla


def keyword_form(word: str) -> str:
    """A keyword as it is matched: folded like the texts it is looked for in (traditional
    characters simplified, letters in lower case; `handlers.text.fold`), white space single."""
    return _spaced(fold(word))


def _spaced(text: str) -> str:
    return " ".join(text.split())


_LATIN = re.compile(r"[a-z0-9]")
# What ends a clause for `together`: Chinese and ASCII sentence and clause punctuation, newlines.
_CLAUSE = re.compile(r"[，。！？；：、,.!?;:\n]+")


def keyword_pattern(words: list[str]) -> re.Pattern[str] | None:
    """One regex for many folded keywords: at each place of a text, the longest keyword that
    matches there. A keyword that begins or ends with a Latin letter or digit matches only as
    whole words there ('gas' is not in 'vegas'); a space in a keyword stands for any white
    space. Chinese keywords match anywhere, as Chinese has no spaces between words.

    The keywords are compiled as a trie (`煤气味|煤气` as `煤气(?:味)?`), so the regex engine
    reads each character of a text once per place rather than once per keyword: a flat
    alternation of 200 keywords costs about 30 us on a short appeal, the trie a tenth of that.
    Where several keywords start at a place, a longer one is tried before a shorter one, so the
    trie finds what the flat alternation, longest first, would.

        >>> keyword_pattern(["gas", "gas leak", "漏气"]).findall("Vegas gas  leak，漏气")
        ['gas  leak', '漏气']
    """
    if not words:
        return None
    trie: dict[str, Any] = {}
    for word in set(words):
        node = trie
        for part in word:
            node = node.setdefault(part, {})
        node[""] = _LATIN.match(word[-1]) is not None  # the end of a keyword: whole word?
    latin = {c: t for c, t in trie.items() if _LATIN.match(c)}
    other = {c: t for c, t in trie.items() if not _LATIN.match(c)}
    heads = [r"(?<![a-z0-9])" + _trie_regex(latin)] if latin else []
    return re.compile("|".join([*heads, *([_trie_regex(other)] if other else [])]))


def _trie_regex(node: dict[str, Any]) -> str:
    """The regex of a trie node: its children (a space stands for any white space), longest
    first, then the end of a keyword here, if one ends here."""
    branches = []
    for char, child in sorted(node.items()):
        if char == "":
            continue
        head = r"\s+" if char == " " else re.escape(char)
        branches.append(head + _trie_regex(child))
    if "" in node:
        end = r"(?![a-z0-9])" if node[""] else ""
        return f"(?:{'|'.join(branches)}|{end})" if branches else end
    return branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"


def _match(spec: MatchSpec) -> Match:
    def fs(xs: list[Any] | None) -> frozenset[Any] | None:
        return None if xs is None else frozenset(xs)

    return Match(
        fs(spec.kinds),
        fs(spec.categories),
        fs(spec.alarm_types),
        fs(spec.channels),
        fs(spec.severities),
        fs(spec.grid_kinds),
        fs(spec.communities),
        spec.handled_on_spot,
    )


def compile_rules(raw: Any, source: str = "rules", registry: Registry | None = None) -> Rules:
    """Validate and compile a parsed rules document.

    With a registry, unit ids named in the rules (`unit`, `notify_units`, `communities`) are
    checked against it; without one only the file's own consistency is checked.
    """
    try:
        spec = RulesSpec.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(source, validation_problems(raw, err, "rule")) from None

    problems: list[str] = []
    for sev in Severity:
        if sev not in spec.ceilings:
            problems.append(f"ceilings: no ceiling for severity '{sev.value}'")
    ceil = spec.ceilings
    if all(s in ceil for s in Severity):
        for lo, hi in zip(list(Severity)[:-1], list(Severity)[1:], strict=True):
            if ceil[lo].rank > ceil[hi].rank:
                problems.append(
                    f"ceilings: {lo.value} ({ceil[lo].value}) is above {hi.value} "
                    f"({ceil[hi].value}); a smaller matter cannot climb higher"
                )
    if spec.fallback_category not in spec.categories:
        problems.append(f"fallback_category: unknown category '{spec.fallback_category}'")
    if spec.default_sla.acknowledge is None or spec.default_sla.resolve is None:
        problems.append("default_sla: needs both acknowledge and resolve")

    keyword_owner: dict[str, str] = {}  # folded keyword -> category
    for cid, c in spec.categories.items():
        if c.severity in ceil and c.tier.rank > ceil[c.severity].rank:
            problems.append(
                f"category '{cid}': starts at {c.tier.value}, above the ceiling of "
                f"{c.severity.value} matters ({ceil[c.severity].value})"
            )
        for word in c.keywords:
            w = keyword_form(word)
            if not w:
                problems.append(f"category '{cid}': keyword {word!r} is only white space")
            elif w in keyword_owner and keyword_owner[w] != cid:
                problems.append(
                    f"category '{cid}': keyword '{word}' already belongs to '{keyword_owner[w]}'"
                    + (f" (as '{w}')" if w != word else "")
                )
            else:
                keyword_owner.setdefault(w, cid)
        for i, entry in enumerate(c.together):
            for lst in entry:
                for word in lst:
                    if not keyword_form(word):
                        problems.append(
                            f"category '{cid}': together[{i}]: word {word!r} is only white space"
                        )
    for at in AlarmType:
        if at not in spec.alarm_types:
            problems.append(f"alarm_types: no entry for alarm type '{at.value}'")
    for at, a in spec.alarm_types.items():
        if a.category not in spec.categories:
            problems.append(f"alarm_types.{at.value}: unknown category '{a.category}'")

    def check_units(label: str, ids: list[str], what: str) -> None:
        if registry is None:
            return
        for u in ids:
            if u not in registry.units:
                problems.append(f"{label}: unknown {what} '{u}' (not in the registry)")

    def check_match(label: str, m: MatchSpec) -> None:
        for cat in m.categories or []:
            if cat not in spec.categories:
                problems.append(f"{label}: match.categories: unknown category '{cat}'")
        check_units(label, m.communities or [], "community")

    seen: set[str] = set()
    for section, items in (
        ("routes", spec.routes),
        ("repeats", spec.repeats),
        ("storms", spec.storms),
    ):
        for item in items:
            label = f"rule '{item.id}' ({section})"
            if item.id in seen:
                problems.append(f"{label}: duplicate rule id")
            seen.add(item.id)
            check_match(label, item.match)
    for r in spec.routes:
        label = f"rule '{r.id}' (routes)"
        check_units(label, ([r.unit] if r.unit else []) + r.notify_units, "unit")
        if r.tier is not None and r.severity is not None and r.tier.rank > ceil[r.severity].rank:
            problems.append(
                f"{label}: tier {r.tier.value} is above the ceiling of {r.severity.value} "
                f"matters ({ceil[r.severity].value})"
            )
        if r.unit is not None and r.tier is not None and registry is not None:
            unit = registry.units.get(r.unit)
            if unit is not None and unit.tier is not r.tier:
                problems.append(f"{label}: unit '{r.unit}' is a {unit.tier.value}, not {r.tier}")
        if r.close and r.notify_tiers:
            problems.append(f"{label}: a route that closes at once cannot notify")
    if problems:
        raise ConfigError(source, problems)

    default_sla = Sla(spec.default_sla.acknowledge, spec.default_sla.resolve)

    def resolved(given: SlaSpec | None) -> Sla:
        """An SLA with each clock it leaves out taken from `default_sla`."""
        if given is None:
            return default_sla
        return Sla(
            given.acknowledge or default_sla.acknowledge, given.resolve or default_sla.resolve
        )

    categories = {
        cid: Category(cid, c.name, c.tier, c.severity, resolved(c.sla))
        for cid, c in spec.categories.items()
    }
    sev_words: dict[str, Severity] = {}
    for sev, words in spec.severity_keywords.items():
        for w in map(keyword_form, words):
            if not w:
                continue
            if w not in sev_words or sev.rank > sev_words[w].rank:
                sev_words[w] = sev
    return Rules(
        ceilings=dict(spec.ceilings),
        default_sla=default_sla,
        max_distance_m=spec.location.max_distance_m,
        rating_due=spec.lifecycle.rating_due,
        identity_memory=spec.memory.identities,
        time=spec.time,
        fallback_category=spec.fallback_category,
        categories=categories,
        alarm_types={at: (a.category, a.severity) for at, a in spec.alarm_types.items()},
        readings=dict(spec.alarm_types),
        routes=tuple(
            Route(
                r.id,
                r.description,
                _match(r.match),
                r.tier,
                r.unit,
                r.severity,
                r.close,
                tuple(r.notify_tiers),
                tuple(r.notify_units),
                None if r.sla is None else resolved(r.sla),
                tuple(r.tags),
            )
            for r in spec.routes
        ),
        repeats=tuple(
            RepeatRule(r.id, _match(r.match), r.threshold, r.window, r.raise_by)
            for r in spec.repeats
        ),
        storms=tuple(StormRule(s.id, _match(s.match), s.window) for s in spec.storms),
        _keyword_re=keyword_pattern(list(keyword_owner)),
        _keyword_category=keyword_owner,
        _category_order={cid: i for i, cid in enumerate(spec.categories)},
        _severity_re=keyword_pattern(list(sev_words)),
        _severity_of_word=sev_words,
        max_extension=spec.lifecycle.max_extension,
        _together=tuple(
            (cid, tuple(_word_list_pattern(lst) for lst in entry))
            for cid, c in spec.categories.items()
            for entry in c.together
        ),
    )


def _word_list_pattern(words: list[str]) -> re.Pattern[str]:
    pattern = keyword_pattern([keyword_form(w) for w in words])
    assert pattern is not None  # lists are never empty, nor their words white space
    return pattern
