"""Text normalisation shared by indexing and queries.

Scientific text needs more than lower-casing: Unicode NFKC and casefold, accents folded,
every dash alike, LaTeX reduced to text (`$\\mu$P` -> "mup"), plurals of acronyms
(LLMs -> llm), programming-language names kept whole (C++, C#), Chinese, Japanese and
Korean text as overlapping character pairs, and light stems for bare query words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from itertools import pairwise

_GREEK = {
    name: chr(code)
    for name, code in [
        ("alpha", 0x3B1), ("beta", 0x3B2), ("gamma", 0x3B3), ("delta", 0x3B4),
        ("epsilon", 0x3B5), ("varepsilon", 0x3B5), ("zeta", 0x3B6), ("eta", 0x3B7),
        ("theta", 0x3B8), ("vartheta", 0x3B8), ("iota", 0x3B9), ("kappa", 0x3BA),
        ("lambda", 0x3BB), ("mu", 0x3BC), ("nu", 0x3BD), ("xi", 0x3BE), ("pi", 0x3C0),
        ("rho", 0x3C1), ("sigma", 0x3C3), ("tau", 0x3C4), ("upsilon", 0x3C5),
        ("phi", 0x3C6), ("varphi", 0x3C6), ("chi", 0x3C7), ("psi", 0x3C8),
        ("omega", 0x3C9), ("Gamma", 0x393), ("Delta", 0x394), ("Theta", 0x398),
        ("Lambda", 0x39B), ("Xi", 0x39E), ("Pi", 0x3A0), ("Sigma", 0x3A3),
        ("Phi", 0x3A6), ("Psi", 0x3A8), ("Omega", 0x3A9),
    ]
}  # fmt: skip
_SYMBOL_ACCENT = re.compile(r"\\[\"'`^~=.]\s*\{?\s*([A-Za-z])\}?")
_LETTER_ACCENT = re.compile(r"\\[uvHckrbd](?:\s*\{\s*([A-Za-z])\s*\}|\s+([A-Za-z]))")
_COMMAND = re.compile(r"\\([A-Za-z]+)\*?")
# Every dash, hyphen and minus sign becomes "-"; the soft hyphen disappears.
_DASHES: dict[int, str | None] = {
    code: "-"
    for code in range(0x110000)
    if unicodedata.category(chr(code)) == "Pd" or code in (0x2212, 0x2043, 0xFE63, 0xFF0D)
}
_DASHES[0xAD] = None
# Zero-width characters join nothing: "dif\u200bfusion" is "diffusion".
for _invisible in (0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF):
    _DASHES[_invisible] = None
# Greek letters are spelled out, so "μP", "$\\mu$P" and "muP" are one word.
_TRANSLATE = (
    _DASHES
    | {
        ord(letter): name.lower() if name[0].islower() else name
        for name, letter in _GREEK.items()
        if not name.startswith("var")
    }
    | {0x3C2: "sigma", 0x3D1: "theta", 0x3D5: "phi", 0x3F5: "epsilon"}
)
# `C++`, `C#` and `F#` are words of their own; otherwise a word is letters and digits,
# hyphenated parts kept together.
_COMPOUND = re.compile(r"[A-Za-z]{1,2}(?:\+\+|#)(?![\w+#])|[^\W_]+(?:-[^\W_]+)*")
_PART = re.compile(r"[a-z]{1,2}(?:\+\+|#)$|[^\W_]+")
# Han, Hiragana, Katakana and Hangul: no spaces between words, so pairs of characters
# stand for words (as Lucene's CJK bigram filter does).
CJK_LETTERS = (
    "\u2e80-\u2fdf\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f"
)
_CJK = re.compile(f"([{CJK_LETTERS}]+)")
_NAME_PART = re.compile(r"[^\W\d_]+")
_ACRONYM_PLURAL = re.compile(r"[A-Za-z0-9]*[A-Z][A-Za-z0-9]*[A-Z0-9]s")
# British spellings whose stems differ from the American ones ("quantisation", "analyse").
_SPELLING = [
    ("isations", "izations"), ("isation", "ization"), ("yses", "yzes"), ("ysed", "yzed"),
    ("ysing", "yzing"), ("yse", "yze"),
]  # fmt: skip


def strip_latex(text: str) -> str:
    """Reduce inline LaTeX to plain text: accents to letters, Greek commands to letters."""
    if "\\" not in text and "$" not in text:
        return text
    text = _SYMBOL_ACCENT.sub(r"\1", text)
    text = _LETTER_ACCENT.sub(lambda m: m.group(1) or m.group(2), text)
    text = _COMMAND.sub(
        lambda m: m.group(1).removeprefix("var") if m.group(1) in _GREEK else " ", text
    )
    return text.translate({ord("$"): None, ord("{"): None, ord("}"): None, ord("\\"): " "})


def _fold_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFKC", kept.casefold())


def _stable_fold(text: str) -> str:
    once = _fold_accents(text)
    twice = _fold_accents(once)
    return once if once == twice else _fold_accents(twice)


@lru_cache(maxsize=1 << 16)
def fold_word(word: str) -> str:
    """One word folded: casefold, accents removed, NFKC (stable when applied twice)."""
    return _stable_fold(word)


@lru_cache(maxsize=64)  # a text is analysed, then scanned for acronyms: prepared once
def prepare(text: str) -> str:
    """LaTeX stripped, NFKC, every dash "-", Greek letters spelled out; case kept."""
    return unicodedata.normalize("NFKC", strip_latex(text)).translate(_TRANSLATE)


def fold(text: str) -> str:
    """Text as matching sees it: prepared, casefolded, accents folded."""
    return _stable_fold(prepare(text))


def _word(part: str) -> str:
    if _ACRONYM_PLURAL.fullmatch(part) and part[-2].isupper():
        part = part[:-1]
    return fold_word(part)


def _bigrams(word: str) -> list[str]:
    """A folded word with its CJK runs cut into overlapping pairs of characters."""
    if not _CJK.search(word):
        return [word]
    found: list[str] = []
    for piece in _CJK.split(word):
        if not piece:
            continue
        if _CJK.fullmatch(piece):
            found.extend(
                [piece] if len(piece) == 1 else [piece[i : i + 2] for i in range(len(piece) - 1)]
            )
        else:
            found.append(piece)
    return found


@lru_cache(maxsize=1 << 18)
def _compound(raw: str) -> tuple[tuple[str, ...], str | None]:
    """The folded parts of one raw (possibly hyphenated) word, and their joined form."""
    parts = [_word(part) for part in (raw.split("-") if "-" in raw else (raw,))]
    # Folding can expand one character into several words' worth (rare ligatures).
    words = tuple(b for part in parts for w in _PART.findall(part) for b in _bigrams(w))
    joined = len(words) > 1 and "-" in raw
    return words, "".join(words) if joined else None


def analyse(text: str) -> tuple[list[str], list[str]]:
    """The words of `text` in order, and the joined forms of its hyphenated compounds."""
    # "In-context LLMs" gives (["in", "context", "llm"], ["incontext"]): the parts keep
    # their positions for phrases, and the joined form matches "incontext".
    words: list[str] = []
    joined: list[str] = []
    for raw in _COMPOUND.findall(prepare(text)):
        parts, whole = _compound(raw)
        words.extend(parts)
        if whole is not None:
            joined.append(whole)
    return words, joined


# Words a loose phrase skips on both sides: `mixture of experts` = "mixture-of-experts" =
# "mixture experts"; `vision and language` = "vision-language". Not "the": "in the
# context of" is not "in-context".
PHRASE_STOP = frozenset(["of", "for", "and"])
# A phrase holding one of these is syntax, not a bag of words: `in-context learning` and
# `learning to rank` stay side by side and in order.
_FUNCTION_WORDS = (
    "a an the in on at to by with from into onto over under as via per vs versus without "
    "within between is are be not no or"
)
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS.split())


def is_cjk_pairs(words: tuple[str, ...]) -> bool:
    """Whether `words` are the overlapping character pairs of one CJK run."""
    return all(_CJK.fullmatch(w) for w in words) and all(
        len(a) == 2 and len(b) == 2 and a[1] == b[0] for a, b in pairwise(words)
    )


_CAPITALS = re.compile(r"(?<![\w-])[A-Za-z0-9]*[A-Z][A-Za-z0-9]*[A-Z][A-Za-z0-9]*(?![\w-])")
CAPS = "\1"  # prefix of a word as written in capitals ("CATS"), not as a plain word


def capitalised(text: str) -> set[str]:
    """The words of `text` written with two capitals or more (acronyms), folded."""
    if not any(ch.isupper() for ch in text):
        return set()
    return {CAPS + _word(raw) for raw in _CAPITALS.findall(prepare(text))}


def tokens(text: str) -> list[str]:
    """The words of `text`, folded; punctuation and dashes separate words."""
    return analyse(text)[0]


_VOWEL = re.compile("[aeiouy]")
_DOUBLE = re.compile(r"([bdfgkmnprt])\1$")
# Porter's step 1b: after -ed/-ing, "generat", "enabl", "quantiz" and short stems that end
# consonant-vowel-consonant ("prun", "rat", "not") get their "e" back.
_RESTORE_E = re.compile(r"(at|bl|iz|yz)$|^[^aeiouy]*[aeiouy][^aeiouwxy]$")
# Words that look inflected or plural and are not ("bias", "news", "embed").
_KEPT_WORDS = (
    "bias gas lens news series species atlas canvas chaos thus always perhaps whereas "
    "embed hundred indeed"
)
_KEEP = frozenset(_KEPT_WORDS.split())


def _plural(word: str) -> str:
    """Plurals and the third person only (Lucene's minimal English stemmer, and -ches)."""
    if word in _KEEP or len(word) < 4 or not word.endswith("s"):
        return word
    if word.endswith("ses") and word[:-2] in _KEEP:
        return word[:-2]  # "biases", "lenses"
    if word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses", "zzes")):
        return word[:-2]
    return word[:-1]


def _light(word: str) -> str:
    """Plurals, the regular inflections -ed and -ing, and -ization; nothing else.

    "models"/"modeling"/"modelled" -> "model", "pruned"/"pruning" -> "prune" and
    "quantized"/"quantization" -> "quantize", but "general", "generalization",
    "generative" and "generation" stay four words, and "note" is not "not".
    """
    word = _plural(word)
    if word in _KEEP:
        return word
    if word.endswith("ization"):
        return word[:-5] + "e"
    for ending in ("ing", "ed"):
        base = word[: -len(ending)]
        if not word.endswith(ending) or len(base) < 2 or not _VOWEL.search(base):
            continue
        if ending == "ed" and base.endswith("e"):
            return word  # "speed", "need", "proceed"
        if _DOUBLE.search(base):
            return base[:-1]  # "stopped", "embedding"
        if base.endswith("ell") and len(base) >= 6:
            return base[:-1]  # "modelled"
        return base + "e" if _RESTORE_E.search(base) else base
    return word


STEMMERS: dict[str, Callable[[str], str]] = {"light": _light, "minimal": _plural}
_stem_word: Callable[[str], str] = _light


def use_stemmer(name: str) -> None:
    """Switch the stemmer (bench/relevance.py compares them); clears the caches of stems."""
    global _stem_word
    _stem_word = STEMMERS[name]
    stem.cache_clear()


@lru_cache(maxsize=1 << 18)
def stem(word: str) -> str:
    """The light stem of a folded word; words with digits or non-Latin letters are kept."""
    if not word.isascii() or not word.isalpha():
        return word
    for british, american in _SPELLING:
        if word.endswith(british):
            word = word[: -len(british)] + american
            break
    return _stem_word(word)


_TITLE_WORD = re.compile(r"\w+")


def normalise_title(title: str) -> str:
    """A title reduced to its words, for duplicate detection (NFKC, casefold, words)."""
    # Deliberately simpler than matching's analysis: stored papers' identities (hashes of
    # this form) must not change when matching learns a new normalisation.
    return " ".join(_TITLE_WORD.findall(unicodedata.normalize("NFKC", title).casefold()))


def name_parts(name: str) -> tuple[str, ...]:
    """A person's name as folded parts, surname last ("Lovelace, Ada" -> ada lovelace)."""
    text = fold(name)
    if text.count(",") == 1:
        surname, given = text.split(",")
        text = f"{given} {surname}"
    return tuple(_NAME_PART.findall(text))


def _given_matches(query: str, author: str) -> bool:
    if len(query) == 1 or len(author) == 1:
        return author.startswith(query) or query.startswith(author)
    return query == author


def names_match(query: tuple[str, ...], author: tuple[str, ...]) -> bool:
    """True when the query name fits the author: same surname, given names or initials."""
    if not query or not author or query[-1] != author[-1]:
        return False
    given = iter(author[:-1])
    return all(any(_given_matches(part, other) for other in given) for part in query[:-1])
