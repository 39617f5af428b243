"""Folding text before keywords, addresses and severity words are matched.

Residents write in simplified characters, in traditional ones (Taiwan, Hong Kong, older
people, phones set that way), in English, and with full-width letters and digits from
Chinese input methods. The rules file and the registry are written in simplified Chinese and
lower-case ASCII; `fold` brings a text to that form so the same substring tests work.

    >>> fold("廚房裡煤氣味很重，家裡只有老人")
    '厨房里煤气味很重，家里只有老人'
    >>> fold("文家路３４號和美苑1棟 Strong smell of GAS")
    '文家路34号和美苑1栋 strong smell of gas'

Pure: the OpenCC dictionaries bundled with the `opencc` package are loaded once, at import.
"""

from __future__ import annotations

import re
import unicodedata
from typing import cast

import opencc

# Three of OpenCC's conversions, each tried on the seed documents and on our own texts:
# - t2s (OpenCC's standard traditional -> simplified) leaves simplified text exactly as it is,
#   but keeps Taiwan's 著 where the mainland writes 着 (著火 stays 著火, and 着火 is a
#   severity word).
# - tw2s folds Taiwan's variants (著火 -> 着火, 看著 -> 看着) but, run on simplified text,
#   turns 显著 into 显着: it must only see text that is traditional.
# - hk2s folds Hong Kong's variants (衞生 -> 卫生) and leaves simplified text as it is.
# tw2sp (with Taiwan's vocabulary, 軟體 -> 软件) is not used: it rewrites mainland words
# (智慧 -> 智能, 建立 -> 创建) and so would change simplified text.
_T2S = opencc.OpenCC("t2s")
_TW2S = opencc.OpenCC("tw2s")
_HK2S = opencc.OpenCC("hk2s")


def _width_and_case_table() -> dict[int, str]:
    """Full-width ASCII letters and digits to ASCII, then ASCII letters to lower case.

    Also compatibility ideographs (U+F900-U+FAFF, U+2F800-U+2FA1F) and Kangxi radicals
    (U+2F00-U+2FDF), which copy-pasted and OCR'd text carries: NFKC maps each to its one
    unified ideograph (⾦ -> 金). Every entry maps one character to one character, so `fold`
    keeps the length of a text (OpenCC's t2s/tw2s/hk2s do too on the texts tried). Full-width
    punctuation (，：（）！？), the ideographic space and … are Chinese text's own and stay.
    """
    table: dict[int, str] = {c: chr(c + 32) for c in range(ord("A"), ord("Z") + 1)}
    fullwidth_alnum = [*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B)]
    compatibility = [*range(0x2F00, 0x2FE0), *range(0xF900, 0xFB00), *range(0x2F800, 0x2FA20)]
    for c in fullwidth_alnum + compatibility:
        folded = unicodedata.normalize("NFKC", chr(c))
        if len(folded) == 1 and folded != chr(c):
            table[c] = folded.lower() if folded.isascii() else folded
    return table


_WIDTH_AND_CASE = _width_and_case_table()
# Most texts have nothing to translate; finding that out is ten times cheaper than translating.
_FOLDABLE = re.compile(
    "[A-Z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\u2f00-\u2fdf\uf900-\ufaff\U0002f800-\U0002fa1f]"
)


def fold(text: str) -> str:
    """Simplified characters, ASCII letters and digits, lower case: the form rules match.

    - Full-width letters and digits become ASCII (NFKC), ASCII letters become lower case
      ("Strong smell of ＧＡＳ" -> "strong smell of gas"); compatibility ideographs and
      Kangxi radicals become the unified ideograph. Nothing else is normalised: full-width
      Chinese punctuation stays, and so do non-ASCII letters.
    - Traditional characters become simplified (OpenCC). A text that OpenCC's t2s leaves
      as it is has no traditional character, and is returned as it is (after the first
      step); otherwise its Taiwan variants (著火 -> 着火) and Hong Kong variants
      (衞生 -> 卫生) are folded too.

    Known limits: a text whose only traditional mark is Taiwan's 著 ("著火了！") reads as
    simplified and keeps it, since 著 is also a simplified character (显著); a simplified
    text with one stray traditional character goes through tw2s, which writes its 显著 as
    显着 (no keyword uses either). Cantonese words (咗, 唔) stay: they are not variants.
    """
    if _FOLDABLE.search(text):
        text = text.translate(_WIDTH_AND_CASE)
    if _convert(_T2S, text) == text:
        return text
    return _convert(_HK2S, _convert(_TW2S, text))


def _convert(converter: opencc.OpenCC, text: str) -> str:
    if "\x00" in text:  # OpenCC's C library ends a text at NUL: convert what lies between
        return "\x00".join(_convert(converter, part) for part in text.split("\x00"))
    return cast(str, converter.convert(text))  # the binding's convert is not annotated
