"""Masking personal data for dispatch topics; the ledger keeps it in clear.

`mask_phone` and `mask_name` mask the fields that hold one phone number or one name.
`mask_free_text` masks what a caller or a responder writes in free text: phone numbers, PRC
resident ID numbers and given names, wherever they stand.

How each is masked (a responder still sees enough to say "the number ending 5678"):

- mobile:   ``138****5678`` — first 3 and last 4 of the 11 digits (as `mask_phone`); a
  ``+86``/``0086`` prefix and the separators are dropped.
- landline: ``028-****4321`` — the area code with its trunk 0 (a city, not a person), then
  ``****`` and the last 4 digits of the subscriber number, whatever its length (7 or 8).
- a local number without area code, after a word such as 电话 or 座机: ``****4321``.
- a foreign number written with ``+`` or ``00``: ``+44 ****0958``.
- ID number: ``510104********123X`` — the 6-digit region, 8 stars over birth date and
  sequence, the last 4 (15-digit old numbers: ``510104******123``, the 6-digit region, 6 stars
  over the birth date, the 3-digit sequence).
- a name: as `mask_name`, ``王秀英`` -> ``王**``.

Pure: no I/O, no clock; nothing is cached between calls.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher

from handlers.text import fold


def mask_phone(phone: str | None) -> str | None:
    """'13812341234' -> '138****1234'; short numbers keep only their last two digits."""
    if phone is None:
        return None
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) >= 7:
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * max(len(digits) - 2, 0) + digits[-2:]


def mask_name(name: str | None) -> str | None:
    """'张丽娜' -> '张**': the surname stays, so a responder can say 张阿姨."""
    if name is None:
        return None
    return name[:1] + "*" * (len(name) - 1) if len(name) > 1 else "*"


def mask_free_text(text: str, names: Iterable[str] = (), folded: str | None = None) -> str:
    """The text with every phone number, resident ID number and given name masked.

    ``mask_free_text("我叫王秀英，电话138-1234-5678", ["王秀英"])`` ->
    ``"我叫王**，电话138****5678"``.

    **Phone numbers** are found by libphonenumber's matcher (`phonenumbers`, region CN) at
    ``Leniency.POSSIBLE``, so a number in a range the metadata does not list yet (a new
    mobile prefix, an unassigned landline block) is still masked. That leniency also takes
    dates, coordinates and order numbers for numbers, so a match is masked only when it has a
    phone's shape: a mobile (11 digits, ``1[3-9]``, with or without ``+86``/``0086``/``86``);
    a landline written with its trunk 0 or a country code (``028-8765 4321``,
    ``(028)87654321``, ``+86 28 8765 4321``); a 7- or 8-digit local number right after a word
    such as 电话, 座机, 固话 or tel; or a foreign number written with ``+`` or ``00``. The
    matcher reads spaces, dashes (also full-width and em dashes), dots, slashes, ideographic
    spaces, parentheses (also full-width) and full-width digits.

    The matcher costs 60-100 us a call, so it reads only the stretches of text that could be
    a number: digits with at most four separators between neighbours, 7 digits or more. A
    text with only a room number and a date never reaches it.

    Gaps the matcher leaves, covered here by two small regexes run after it, one for mobiles
    and one for landlines with an area code: numbers glued to each other
    (``13812345678-13912345678``, ``028-87654321-028-87654322``), mobiles grouped with
    underscores, and mobiles in ranges the matcher rejects even at POSSIBLE (e.g. ``179…``).

    **Resident ID numbers** (the matcher does not look for them) are found by a regex: 18
    characters, the last a digit or X/x, optionally grouped 6-8-4 with spaces or dashes, or
    15 digits (the pre-1999 form). One is masked when its ISO 7064 checksum holds *or* it
    looks like one (a province code and a plausible birth date), so a mistyped ID is masked
    too.

    **Names**: every occurrence of each given name of 2 characters or more, longest first (so
    ``王秀英`` wins over ``王秀``), also written in traditional characters (``陳麗`` for
    ``陈丽``) or with other letter case or width: both are compared folded
    (`handlers.text.fold`).

    `folded` is `fold(text)` when the caller has it already (routing folds every text once):
    names are then looked for in it rather than in a second folding.

    Not caught: numbers written in Chinese numerals (一三八…), a local number without area code
    and without a cue word (``87654321`` alone reads like a date or an amount), numbers
    broken by a line break or a word (``138 转 1234 5678``), bank card numbers, and names
    other than those given.
    """
    out = text
    if _has_enough_digits(out):
        out = _mask_resident_ids(out)
        out = _mask_phone_numbers(out)
        out = _GLUED_MOBILE.sub(_mask_glued_mobile, out)
        out = _GLUED_LANDLINE.sub(_mask_glued_landline, out)
    return _mask_names(out, names, folded if out is text else None)


def mask_caller_in(text: str, caller_name: str | None, folded: str | None = None) -> str:
    """`mask_free_text` with the caller's own name, when it is known."""
    return mask_free_text(text, () if caller_name is None else (caller_name,), folded)


# --- digits ---------------------------------------------------------------------------------

# The fewest digits any number masked here has (a local number after a cue word).
_MIN_DIGITS = 7
_DIGIT = re.compile(r"\d")
# What may stand between two digits of one number, at most four at a time ("138 - 1234").
_SEPARATOR = r"[ \u3000\-－—./_()（）+＋]"
# Seven digits so joined: every number masked here has such a stretch, and most texts do not
# (a room number and a date, "3号楼2单元1302室，11月10日", have none), so they skip the rest.
_CANDIDATE = re.compile(rf"\d(?:{_SEPARATOR}{{0,4}}\d){{{_MIN_DIGITS - 1}}}")


def _has_enough_digits(text: str) -> bool:
    """A cheap pre-check: most texts have no number at all, and the matcher costs more."""
    return _CANDIDATE.search(text) is not None


def _ascii_digits(text: str) -> str:
    """The decimal digits of `text` (full-width ones too) as ASCII."""
    return "".join(str(int(ch)) for ch in text if ch.isdecimal())


# --- resident ID numbers ---------------------------------------------------------------------

_ID_18 = re.compile(r"(?<!\d)(\d{6})[ \-]?(\d{8})[ \-]?(\d{3}[\dXx])(?!\d)")
_ID_15 = re.compile(r"(?<!\d)(\d{6})(\d{6})(\d{3})(?!\d)")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# GB/T 2260 provinces: 11-15 north, 21-23 north-east, 31-37 east, 41-46 central-south,
# 50-54 south-west, 61-65 north-west, 71 Taiwan, 81-82 Hong Kong and Macao (as used on the
# mainland's residence permits), 83 the 2018 permits for Taiwan residents.
_PROVINCES = frozenset(
    (
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        *(71, 81, 82, 83),
    )
)


def resident_id_checksum_ok(number: str) -> bool:
    """Whether an 18-character resident ID number's last character is its ISO 7064 check."""
    if len(number) != 18 or not number[:17].isdecimal():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


def _plausible_id(region: str, year: int, month: int, day: int) -> bool:
    return int(region[:2]) in _PROVINCES and 1 <= month <= 12 and 1 <= day <= 31 and year >= 1900


def _mask_resident_ids(text: str) -> str:
    def id_18(m: re.Match[str]) -> str:
        region, birth, tail = m.group(1), _ascii_digits(m.group(2)), m.group(3)
        number = _ascii_digits(region) + birth + _ascii_digits(tail[:3]) + tail[3].upper()
        looks = _plausible_id(region, int(birth[:4]), int(birth[4:6]), int(birth[6:]))
        if not (resident_id_checksum_ok(number) or looks):
            return m.group(0)
        return f"{number[:6]}********{number[-4:]}"

    def id_15(m: re.Match[str]) -> str:
        region, birth = m.group(1), _ascii_digits(m.group(2))
        if not _plausible_id(region, 1900 + int(birth[:2]), int(birth[2:4]), int(birth[4:])):
            return m.group(0)
        return f"{_ascii_digits(region)}******{_ascii_digits(m.group(3))}"

    return _ID_15.sub(id_15, _ID_18.sub(id_18, text))


# --- phone numbers ---------------------------------------------------------------------------

_MOBILE = re.compile(r"1[3-9]\d{9}")
# What may stand before a Chinese number's national digits in the digits of its raw text:
# nothing, the trunk 0, or the country code 86 (after + or 00, perhaps with the (0) habit).
_CN_PREFIXES = frozenset({"", "0", "86", "860", "0086", "00860"})
_LOCAL_CUE = re.compile(r"电话|手机|座机|固话|宅电|联系|致电|号码|tel|phone", re.IGNORECASE)
_CUE_REACH = 6  # how many characters before a local number a cue word may end


def _phone_mask(text: str, start: int, raw: str, country_code: int, nsn: str) -> str | None:
    """The masked form of one matcher hit, or None when it has no phone's shape."""
    digits = _ascii_digits(raw)
    prefix = digits[: len(digits) - len(nsn)] if digits.endswith(nsn) else None
    if country_code != 86:
        written_international = raw.lstrip("（(").startswith(("+", "＋", "00"))
        return f"+{country_code} ****{nsn[-4:]}" if written_international else None
    if prefix not in _CN_PREFIXES:
        return None
    if _MOBILE.fullmatch(nsn):
        return f"{nsn[:3]}****{nsn[-4:]}"
    area = _area_code(nsn)
    if prefix and area and 7 <= len(nsn) - len(area) <= 8:
        return f"0{area}-****{nsn[-4:]}"
    local = 7 <= len(nsn) <= 8 and not prefix and nsn[0] not in "01"
    if local and _LOCAL_CUE.search(text, max(0, start - _CUE_REACH), start):
        return f"****{nsn[-4:]}"
    return None


def _area_code(nsn: str) -> str:
    """The area code a Chinese landline's digits start with: 10, 2x, or 3 digits from 3xx."""
    if nsn.startswith("10") or nsn.startswith("2"):
        return nsn[:2]
    return nsn[:3] if nsn[:1] in tuple("3456789") else ""


# Where a phone number could stand: digits with at most four separators between neighbours,
# perhaps opened by + or a bracket. The matcher costs 60-100 us a call however short its
# text, so it reads only the stretches with enough digits: a text with a room number and a
# date ("3号楼2单元1302室，11月10日") never reaches it.
_NUMBER_RUN = re.compile(rf"[+＋(（]{{0,2}}\d(?:{_SEPARATOR}{{0,4}}\d)*")


def _mask_phone_numbers(text: str) -> str:
    pieces: list[str] = []
    end = 0
    for run in _NUMBER_RUN.finditer(text):
        stretch = run.group()
        if len(_DIGIT.findall(stretch)) < _MIN_DIGITS:
            continue
        for m in PhoneNumberMatcher(stretch, "CN", leniency=Leniency.POSSIBLE):
            start = run.start() + m.start
            nsn = phonenumbers.national_significant_number(m.number)
            masked = _phone_mask(text, start, m.raw_string, m.number.country_code or 0, nsn)
            if masked is None:
                continue
            # The matcher takes an opening bracket before a number ("（13812345678）") as
            # the number's own, as in "(028)87654321"; keep it when nothing closes it.
            raw = m.raw_string
            if raw[0] in "(（" and not any(c in raw for c in ")）"):
                masked = raw[0] + masked
            pieces += [text[end:start], masked]
            end = run.start() + m.end
    return "".join([*pieces, text[end:]]) if pieces else text


# A mobile the matcher left: 11 digits, grouped 3-4-4 by at most one separator each.
_GLUED_MOBILE = re.compile(
    r"(?<!\d)(?:(?:00)?86[ \-]?)?(1[3-9]\d)[ \-_.－—/]?(\d{4})[ \-_.－—/]?(\d{4})(?!\d)"
)


def _mask_glued_mobile(m: re.Match[str]) -> str:
    return f"{_ascii_digits(m.group(1))}****{_ascii_digits(m.group(3))}"


# A landline the matcher left: a trunk 0 or +86 (0086), a Chinese area code, 7 or 8 digits.
_GLUED_LANDLINE = re.compile(
    r"(?<!\d)(?:(?:\+|＋|00)86[ \-]?(?:\(0\))?|[(（]?0)(10|2\d|[3-9]\d\d)[)）]?"
    r"[ \-]?\d{3,4}[ \-]?(\d{4})(?!\d)"
)


def _mask_glued_landline(m: re.Match[str]) -> str:
    return f"0{_ascii_digits(m.group(1))}-****{_ascii_digits(m.group(2))}"


# --- names -----------------------------------------------------------------------------------


def _mask_names(text: str, names: Iterable[str], folded_text: str | None = None) -> str:
    """Each name masked wherever it stands, also written otherwise: in traditional characters
    (陳麗 for 陈丽), with full-width or upper-case letters. Names and text are compared folded
    (`handlers.text.fold`), character for character, and the text keeps its own writing.
    `folded_text`, when given, is `fold(text)`."""
    wanted = sorted({n.strip() for n in names if len(n.strip()) >= 2}, key=len, reverse=True)
    if not wanted:
        return text
    if folded_text is not None and len(folded_text) == len(text):
        folded = folded_text  # what `_fold_each` gives for a fold that keeps the length
    else:
        folded = _fold_each(text)
    chars: list[str] | None = None
    for name in wanted:
        target = _fold_each(name)
        at = folded.find(target)
        while at >= 0:
            if chars is None:
                chars = list(text)
            end = at + len(target)
            chars[at + 1 : end] = "*" * (len(target) - 1)
            # what is masked matches no shorter name ('王秀' after '王秀英')
            folded = folded[: at + 1] + "\0" * (len(target) - 1) + folded[end:]
            at = folded.find(target, end)
    return text if chars is None else "".join(chars)


def _fold_each(text: str) -> str:
    """`fold(text)`, kept to one character for each character of `text`."""
    folded = fold(text)
    if len(folded) == len(text):
        return folded
    each = (fold(c) for c in text)  # a conversion that changed the length: char by char
    return "".join(f if len(f) == 1 else c for f, c in zip(each, text, strict=True))


def pseudonym(person_id: str) -> str:
    """A resident's id as the bus carries it (ratings): the same for the same person, so that
    one rating per matter can be checked downstream, but not the id the registry and the
    ledger hold. Unkeyed: whoever holds the residents' ids can link them, as the ledger can."""
    digest = hashlib.blake2b(person_id.encode(), digest_size=6, person=b"minhu-rater").hexdigest()
    return f"resident-{digest}"


def place_digest(text: str) -> str:
    """What a dedup key says of a place the registry does not know (an address text, an unknown
    id): a short digest of what the sender wrote, already normalised — the same for the same
    place, so repeats about it still group, but no free text (a phone number in an address) in
    a key. The ledger keeps the address in clear, in the record as it came."""
    return hashlib.blake2b(text.encode(), digest_size=6, person=b"minhu-place").hexdigest()
