"""Tolerant reading of what people type on phones: full-width characters, @mentions, stray spaces."""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable

_LEADING_MENTIONS = re.compile(r"^(?:\s*[@＠]\S+)+\s*")
_SPLIT = re.compile(r"\s+")
# After a keyword people type a colon or comma as often as a space: "记录：面谈 …", "答复，#12 …".
_SEPARATORS = ":,;：，；、"
_TOKEN = re.compile(r"([^\s:,;：，；]+)[\s:,;：，；]*")


def fold(text: str) -> str:
    """NFKC: full-width letters, digits, ``：，＃`` and the ideographic space become their ASCII forms."""
    return unicodedata.normalize("NFKC", text)


def strip_mentions(text: str) -> str:
    return _LEADING_MENTIONS.sub("", text, count=1).strip()


def clean(text: str) -> str:
    """What the router reads: no leading @mention, no surrounding whitespace."""
    return strip_mentions(text.replace("\u2005", " ").replace("\u3000", " ")).strip()


class Args:
    """The words after a command, read one token at a time; the tail keeps what the person typed.

    A token ends at whitespace or at a colon, comma or semicolon (half- or full-width), so
    "记录 面谈，讨论…" reads like "记录 面谈 讨论…".
    """

    def __init__(self, raw: str) -> None:
        self._rest = raw.strip().lstrip(_SEPARATORS).strip()

    def __bool__(self) -> bool:
        return bool(self._rest)

    def _split(self) -> tuple[str, str]:
        m = _TOKEN.match(self._rest)
        if not m:
            return "", self._rest
        return m.group(1), self._rest[m.end():]

    def peek(self) -> str | None:
        return fold(self._split()[0]) or None if self._rest else None

    def take(self) -> str | None:
        token, self._rest = self._split()
        return fold(token) or None

    def rest(self) -> str:
        """Everything not yet taken, as typed (free text keeps its own punctuation)."""
        return self._rest.strip()


def mask_phone(phone: str | None) -> str:
    """138****1234 — the only form a phone number takes in anything meant for reading."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]#>|])")


def md_escape(text: object) -> str:
    """Escape user-supplied text for Markdown (Jinja's autoescape is for HTML only)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def _edit_distance(a: str, b: str) -> int:
    """Insertions, deletions, substitutions and swaps of two neighbours (stauts → status) each count 1."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


def load_pinyin() -> None:
    """Load pypinyin's dictionaries now (a running service does it at start)."""
    from pypinyin import lazy_pinyin

    lazy_pinyin("记录")


def _sound(text: str) -> str:
    from pypinyin import lazy_pinyin  # imported on first use: CLI commands that never need it stay quick

    return " ".join(lazy_pinyin(text))


def near_miss(text: str, keywords: Iterable[str]) -> str | None:
    """The message as it was probably meant, with its first word corrected to one of ``keywords``, or
    None. Chinese: a homophone (纪录 → 记录, by pinyin without tones) or one character off at the same
    length; English: one letter off (stauts → status). Only an unambiguous correction is offered."""
    folded = fold(text).lower()
    found: dict[str, str] = {}
    for word in keywords:
        if not word:
            continue
        if word.isascii():
            first = re.match(r"[a-z]+", folded)
            if first and len(word) >= 4 and first.group() != word and _edit_distance(first.group(), word) == 1:
                found[word] = word + text[first.end():]
            continue
        head = folded[:len(word)]
        if len(head) < len(word) or head == word or len(word) < 2:
            continue
        if _sound(head) == _sound(word) or sum(a != b for a, b in zip(head, word)) == 1:
            found[word] = word + text[len(word):]
    if len(found) != 1:
        # Two readings (or none): a homophone beats a one-character slip, otherwise say nothing.
        sounding = {w: t for w, t in found.items() if not w.isascii() and _sound(fold(t)[:len(w)]) == _sound(w)}
        found = sounding if len(sounding) == 1 else {}
    return next(iter(found.values()), None)
