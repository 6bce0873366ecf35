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

    def __init__(self, raw: str, whole: str | None = None) -> None:
        self._rest = raw.strip().lstrip(_SEPARATORS).strip()
        # A sub-command's args: the text after the parent's keyword, its own word included, for a child
        # that reads some forms as the parent's free text ("信箱 查询 职级晋升的条件" is a letter).
        self.whole = (raw if whole is None else whole).strip()

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

    def take_match(self, pattern: "re.Pattern[str]") -> "re.Match[str] | None":
        """``pattern`` matched at the start of what is left (``第 12 号`` spans tokens), consumed when it matches."""
        m = pattern.match(self._rest)
        if m:
            self._rest = self._rest[m.end():].strip().lstrip(_SEPARATORS).strip()
        return m


class Reasoned(ValueError):
    """An error whose sentence is a template: ``reason`` names it under templates/ and ``values`` fill it,
    so the department rewords it without Python. A handler turns it into its usage answer
    (``UsageError.because(exc)``); an import turns it into a row error."""

    def __init__(self, reason: str, **values: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.values = values


def mask_phone(phone: str | None) -> str:
    """138****1234 — the only form a phone number takes in anything meant for reading."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


class Trusted(str):
    """Text the bot itself wrote (a rendered template, a declared usage line, an escaped value): the
    renderer puts it into a reply as it is. Every other string a template prints is escaped."""

    __slots__ = ()


# Characters that start or end Markdown constructs anywhere in a line: escapes, code, emphasis,
# links (and so images), HTML (``<font>``, WeCom's ``<@userid>`` mentions), strikethrough, tables,
# @mentions, entities.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<~|@&])")
# … and the ones that matter only at the start of a line: headings ("#"), quotes (">"), list items
# ("- x", "+ x", "1. x", "1) x") and lines of = or - alone, which turn the line above into a heading.
# Mid-line "#" and ">" stay bare: some phones show the backslash before them (答复 \#12).
_MD_LINE_START = re.compile(r"^([ \t]*)(?:([-+]|\d{1,9}[.)])(?=[ \t]|$)|([=-]+)[ \t]*$|([#>]))", re.M)
_MD_ESCAPED = re.compile(r"\\([\\`*_\[\]#<>~|@&+\-=.)])")


def md_escape(text: object) -> Trusted:
    """Escape user-supplied text for Markdown so it shows as typed, never as markup (Jinja's
    autoescape is for HTML only). The renderer applies it to every value a template prints."""
    text = str(text)
    escaped = _ESCAPED.get(text)
    if escaped is None:
        escaped = Trusted(_MD_LINE_START.sub(_escape_line_start, _MD_SPECIAL.sub(r"\\\1", text)))
        if len(text) <= _MEMO_CHARS:
            if len(_ESCAPED) >= _MEMO_SIZE:
                _ESCAPED.clear()
            _ESCAPED[text] = escaped
    return escaped


# md_escape's results for short values (names, units, modes: the same few hundred, printed in every
# reply), so a reply costs dict look-ups instead of two regular-expression passes per value.
_ESCAPED: dict[str, Trusted] = {}
_MEMO_CHARS = 64
_MEMO_SIZE = 4096


def _escape_line_start(m: re.Match) -> str:
    indent, marker, rule, block = m.group(1), m.group(2), m.group(3), m.group(4)
    if block is not None:
        return f"{indent}\\{block}"
    if rule is not None:
        return indent + "".join("\\" + c for c in rule) + m.group(0)[len(indent) + len(rule):]
    if marker[0].isdigit():  # "1." / "1)": escape the dot or bracket after the digits
        return f"{indent}{marker[:-1]}\\{marker[-1]}"
    return f"{indent}\\{marker}"


def md_unescape(text: str) -> str:
    """What :func:`md_escape` did, undone: for channels that send the reply as plain text."""
    return _MD_ESCAPED.sub(r"\1", text)


_SURROGATES = re.compile("[\ud800-\udfff]")
# C0/C1 controls other than tab and newline: PostgreSQL refuses NUL in text, the others only hide text.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def normalise_inbound(text: str) -> str:
    """Whatever a platform hands over, as text every layer can store and print: lone UTF-16
    surrogates (a JSON body can carry them) become U+FFFD, carriage returns newlines, and other
    control characters go. Full-width forms are folded later, per token (:func:`fold`), so free text
    keeps what the person typed."""
    text = _SURROGATES.sub("\ufffd", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", text)


_ASCII_NUMBER = re.compile(r"[0-9]{1,9}")  # more digits than that is no sequence number, and overflows SQL integers


def ascii_number(token: str | None) -> int | None:
    """The number a token spells in at most 9 ASCII digits after folding (full-width ``１２`` counts), else None.

    ``str.isdigit`` is true for ``᧚``, ``፩`` and superscripts that ``int`` refuses, and ``int`` takes
    Arabic-Indic or Devanagari digits no staff member can check on a phone: neither is a number here."""
    if token is None:
        return None
    folded = fold(token).strip()
    return int(folded) if _ASCII_NUMBER.fullmatch(folded) else None


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
