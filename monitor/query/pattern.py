r"""User regular expressions, run by RE2 (google-re2): the time a search takes is linear
in the text, whatever the pattern. Python's ``re`` backtracks: ``/(a+)+$/`` on a
40-character title runs for days while holding the GIL, so every thread of the daemon
stops. RE2 also releases the GIL while it searches.

The syntax is RE2's (https://github.com/google/re2/wiki/Syntax), which is Python's
without the parts that need backtracking. Where the two agree on the words but differ on
the meaning, Python's meaning is kept, so existing rules match as before:

- ``\w \d \s`` (and ``\W \D \S``) match in every script: RE2's match only ASCII, so
  they are rewritten to Unicode classes (``\w`` is ``[\p{L}\p{N}_]``).
- ``\Z`` is written ``\z`` for RE2; ``\uXXXX``, ``\UXXXXXXXX`` and ``\N{NAME}`` become
  ``\x{...}``; ``{,n}`` is ``{0,n}``; ``[\b]`` is a backspace.

Refused, each with what to write instead (``PatternError`` with the offset): back
references (``\1``, ``(?P=name)``), lookahead and lookbehind, atomic groups,
possessive quantifiers, conditionals, ``(?#...)`` comments, the flags ``a L u x``, and
``\b`` or ``\B`` in a pattern that can match letters outside ASCII (RE2's word boundary
knows only ASCII letters, so it would quietly never match next to a Cyrillic letter).
A pattern is at most ``MAX_LENGTH`` characters, with groups nested at most
``MAX_DEPTH`` deep.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import re2

MAX_LENGTH = 1000
MAX_DEPTH = 32
_WORD = r"\p{L}\p{N}_"
_DIGIT = r"\p{Nd}"
_SPACE = r"\t-\r\x1c-\x20\x85\p{Z}"
_CLASSES = {"w": _WORD, "d": _DIGIT, "s": _SPACE}
_LOOKAROUND = {
    "(?=": "lookahead (?=...)",
    "(?!": "lookahead (?!...)",
    "(?<=": "lookbehind (?<=...)",
    "(?<!": "lookbehind (?<!...)",
}
_GROUPS = {
    "(?P=": "back references such as (?P=name) are not supported; write the repeated text itself",
    "(?>": "atomic groups (?>...) are not supported (RE2 never backtracks); write (?:...)",
    "(?#": "comments (?#...) are not supported; remove it",
    "(?(": "conditional groups (?(...)...) are not supported; write two rules or an OR of two regexes",
}
_FLAGS = re.compile(r"\(\?([A-Za-z]*)(?:-([A-Za-z]*))?([:)])")
_BRACE = re.compile(r"\{(\d*)(?:,(\d*))?\}")
_HEX = {"u": 4, "U": 8}
_NOT_CHARACTERS = re.compile("[\ud800-\udfff]")


class PatternError(ValueError):
    """A pattern RE2 cannot run; ``offset`` is the 0-based place in the pattern."""

    def __init__(self, message: str, offset: int) -> None:
        self.message = message
        self.offset = offset
        super().__init__(f"{message} (at character {offset + 1})")


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled pattern; equal to another with the same source and case rule."""

    source: str
    case_sensitive: bool
    regexp: Any = field(compare=False, repr=False)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """[start, end) of every non-empty match, in characters of ``text``."""
        found = self.regexp.finditer(_characters(text))
        return [span for span in (m.span() for m in found) if span[1] > span[0]]

    def matches_empty(self) -> bool:
        """Whether it matches the empty text (and so every article)."""
        return self.regexp.search("") is not None


def compile_pattern(source: str, *, case_sensitive: bool) -> Pattern:
    """Translate to RE2 and compile; PatternError says what is wrong, and where."""
    if len(source) > MAX_LENGTH:
        raise PatternError(f"a regular expression may be at most {MAX_LENGTH:,} characters long", MAX_LENGTH)
    bad = _NOT_CHARACTERS.search(source)
    if bad is not None:
        raise PatternError(f"{bad.group()!a} is a lone surrogate, not a character", bad.start())
    translation = _Translation(source)
    translation.run()
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = case_sensitive
    text = "".join(translation.out)
    try:
        regexp = re2.compile(text, options)
    except re2.error as e:
        raise translation.problem(e) from None
    return Pattern(source, case_sensitive, regexp)


def _characters(text: str) -> str:
    """RE2 reads UTF-8: a lone surrogate (not a character) becomes U+FFFD, one for one."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _NOT_CHARACTERS.sub("\ufffd", text)
    return text


class _Translation:
    """Python regex syntax to RE2's, remembering where each piece came from."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.at = 0
        self.out: list[str] = []
        self.starts: list[int] = []  # where each piece of ``out`` starts in the output
        self.origins: list[int] = []  # and in the source
        self.size = 0
        self.groups: list[int] = []
        self.boundary: int | None = None  # the first \b or \B
        self.beyond_ascii: bool = not source.isascii()

    def emit(self, text: str, origin: int) -> None:
        self.starts.append(self.size)
        self.origins.append(origin)
        self.out.append(text)
        self.size += len(text)

    def run(self) -> None:
        step = {"\\": self._escape, "[": self._class, "(": self._open, ")": self._close, "{": self._brace}
        while self.at < len(self.source):
            char = self.source[self.at]
            if char in step:
                step[char]()
            else:
                self.emit(char, self.at)
                self.at += 1
                if char in "*+?":
                    self._not_possessive(self.at - 1)
        if self.groups:
            raise PatternError("bad regular expression: this '(' is never closed", self.groups[-1])
        if self.boundary is not None and self.beyond_ascii:
            raise PatternError(
                "\\b and \\B know only ASCII letters in RE2, so they cannot mark the edge of a word "
                "in other scripts or of \\w; find whole words with a query word or phrase instead "
                '(Київ, "prisoner exchange")',
                self.boundary,
            )

    def _not_possessive(self, quantifier: int) -> None:
        if self.source.startswith("+", self.at):
            raise PatternError(
                "possessive quantifiers (*+, ++, ?+) are not supported; write * or + (RE2 never backtracks)",
                quantifier,
            )

    def _escape(self, in_class: bool = False) -> None:
        start = self.at
        if start + 1 >= len(self.source):
            raise PatternError("a trailing backslash escapes nothing; write \\\\ for a backslash", start)
        char = self.source[start + 1]
        self.at = start + 2
        if char in _CLASSES or char in "WDS":
            self.beyond_ascii |= char in "wW"
            self.emit(self._perl_class(char, start, in_class), start)
        elif char in "123456789" and not _octal(self.source, start + 1):
            raise PatternError(
                f"back references such as \\{char} are not supported; write the repeated text itself", start
            )
        elif char in "uUN":
            self.emit(self._code_point(char, start), start)
        elif char == "Q":
            end = self.source.find("\\E", self.at)
            self.at = len(self.source) if end < 0 else end + 2
            self.emit(self.source[start : self.at], start)
        else:
            self.emit(self._plain_escape(char, start, in_class), start)

    def _plain_escape(self, char: str, start: int, in_class: bool) -> str:
        if char == "Z" and not in_class:
            return "\\z"
        if char == "b" and in_class:
            return "\\x08"
        if char in "bB":
            self.boundary = start if self.boundary is None else self.boundary
        self.beyond_ascii |= char in "pP" or (
            char == "x" and self.source[self.at : self.at + 1] not in "01234567"
        )
        return "\\" + char

    def _perl_class(self, char: str, start: int, in_class: bool) -> str:
        inside = _CLASSES[char.lower()]
        if char.islower():
            return inside if in_class else f"[{inside}]"
        if in_class:
            raise PatternError(
                f"\\{char} inside [...] is not supported; write it outside the brackets, "
                f"as in (?:[...]|\\{char})",
                start,
            )
        return f"[^{inside}]"

    def _code_point(self, char: str, start: int) -> str:
        if char == "N":
            close = self.source.find("}", self.at)
            name = self.source[self.at + 1 : close] if self.source.startswith("{", self.at) else ""
            try:
                point = ord(unicodedata.lookup(name)) if close > 0 and name else -1
            except KeyError:
                point = -1
            if point < 0:
                raise PatternError("\\N needs a Unicode character name, as in \\N{EM DASH}", start)
            self.at = close + 1
        else:
            digits = self.source[self.at : self.at + _HEX[char]]
            if len(digits) != _HEX[char] or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise PatternError(f"\\{char} needs {_HEX[char]} hexadecimal digits, as in \\u00e9", start)
            point = int(digits, 16)
            self.at += _HEX[char]
        self.beyond_ascii |= point > 0x7F
        return f"\\x{{{point:x}}}"

    def _class(self) -> None:
        start = self.at
        self.emit("[", start)
        self.at += 1
        for literal in ("^", "]"):
            if self.source.startswith(literal, self.at):
                self.emit(literal, self.at)
                self.at += 1
        while self.at < len(self.source) and self.source[self.at] != "]":
            if self.source[self.at] == "\\":
                self._escape(in_class=True)
            elif self.source.startswith("[:", self.at) and ":]" in self.source[self.at :]:
                end = self.source.index(":]", self.at) + 2
                self.emit(self.source[self.at : end], self.at)
                self.at = end
            else:
                self.emit(self.source[self.at], self.at)
                self.at += 1
        if self.at >= len(self.source):
            raise PatternError("bad regular expression: unterminated character set", start)
        self.emit("]", self.at)
        self.at += 1

    def _open(self) -> None:
        start = self.at
        if len(self.groups) >= MAX_DEPTH:
            raise PatternError(f"groups nested deeper than {MAX_DEPTH} levels", start)
        ahead = self.source[start : start + 4]
        for opening, what in _LOOKAROUND.items():
            if ahead.startswith(opening):
                raise PatternError(
                    f"{what} is not supported (RE2 matches in linear time); to leave out articles "
                    'that mention something, add it with NOT, as in /Kyiv/ NOT "Kyiv Post"',
                    start,
                )
        for opening, message in _GROUPS.items():
            if ahead.startswith(opening):
                raise PatternError(message, start)
        flags = _FLAGS.match(self.source, start)
        if flags is not None:
            self._flags(flags)
            return
        self.groups.append(start)
        self.emit("(", start)
        self.at += 1

    def _flags(self, flags: re.Match[str]) -> None:
        for letter in (flags.group(1) or "") + (flags.group(2) or ""):
            if letter not in "imsU":
                raise PatternError(
                    f"the flag {letter!r} is not supported; RE2 takes i, m, s and U", flags.start() + 2
                )
        if flags.group(3) == ":":
            self.groups.append(flags.start())
        self.emit(flags.group(), flags.start())
        self.at = flags.end()

    def _close(self) -> None:
        if not self.groups:
            raise PatternError("bad regular expression: this ')' has no matching '('", self.at)
        self.groups.pop()
        self.emit(")", self.at)
        self.at += 1

    def _brace(self) -> None:
        start = self.at
        brace = _BRACE.match(self.source, start)
        if brace is None or not (brace.group(1) or brace.group(2)):
            self.emit("{", start)
            self.at += 1
            return
        low, high = brace.group(1), brace.group(2)
        written = brace.group() if low else f"{{0,{high}}}"
        self.emit(written, start)
        self.at = brace.end()
        self._not_possessive(start)

    def problem(self, error: re2.error) -> PatternError:
        """RE2's complaint, said plainly, at the place in the source it names."""
        raw = error.args[0] if error.args else b""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        code, _, fragment = text.partition(": ")
        found = "".join(self.out).find(fragment) if fragment else -1
        offset = self.origins[bisect_right(self.starts, found) - 1] if found >= 0 and self.starts else 0
        if code.startswith("pattern too large"):
            return PatternError(
                "this regular expression is too large for RE2's memory budget; make it simpler", 0
            )
        words = {
            "invalid repetition size": "a repetition count is over 1000, or {m,n} has m > n:",
            "bad repetition operator": "two repetition operators in a row:",
            "no argument for repetition operator": "nothing to repeat before",
            "invalid character class range": "bad character class or range",
            "invalid escape sequence": "unknown escape",
            "invalid perl operator": "unknown group syntax",
        }
        return PatternError(f"bad regular expression: {words.get(code, code)} {fragment}".rstrip(), offset)


def _octal(source: str, digit: int) -> bool:
    """Python reads ``\\123`` (three octal digits) as a character, not a back reference."""
    three = source[digit : digit + 3]
    return len(three) == 3 and all(c in "01234567" for c in three)
