"""What of an article is embedded: its title and lead, never the whole page.

The headline and the first sentences say what a news article is about; the rest of a
page adds cost (the model reads every token) and noise (related-reading boxes, bylines).
The model's time grows with the number of tokens, so every piece is capped here, in
characters, before any tokenizer sees it: hostile or huge text costs no more than a
normal lead.

``Segments.whole`` (title and lead in one passage) decides; ``Segments.sentences``
(the title, then the lead's sentences) are embedded only to explain a match or a near
miss. ``SEGMENTER`` is part of the cache tag: change the rules here, bump it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from monitor.models import Entry

SEGMENTER = "seg1"
LEAD_CHARS = 480
"""The lead: this many characters of the summary (or content, or page), cut at a word."""
SENTENCE_CHARS = 240
MAX_SENTENCES = 6

_SPACE = re.compile(r"\s+")
_STOPS = ".!?\u3002\uff01\uff1f\u061f\u2026"  # Latin, CJK full stop / ! / ?, Arabic ?, ellipsis
_SENTENCE_END = re.compile(f"(?<=[{_STOPS}])\\s+|\\n+")
_ENDS = frozenset(_STOPS + ":")
_CONTROL = {"Cc", "Cf", "Cs", "Co", "Cn"}


@dataclass(frozen=True, slots=True)
class Segments:
    """The texts an article is judged on: one passage, and its sentences for explanations."""

    whole: str
    sentences: tuple[str, ...]


def tidy(text: str, limit: int) -> str:
    """One line of printable text, at most ``limit`` characters, cut at a word when it can be."""
    head = text[: limit * 4]
    kept = "".join(ch if unicodedata.category(ch) not in _CONTROL else " " for ch in head)
    line = _SPACE.sub(" ", kept).strip()
    if len(line) <= limit:
        return line
    cut = line[:limit]
    space = cut.rfind(" ")
    return cut[:space] if space > limit // 2 else cut


def sentences_of(text: str) -> list[str]:
    """Sentences of a lead, split at end punctuation (Latin, Arabic, CJK) or line breaks."""
    pieces = (tidy(piece, SENTENCE_CHARS) for piece in _SENTENCE_END.split(text))
    return [piece for piece in pieces if piece]


def segments(title: str, lead: str) -> Segments:
    """Segments of an article from its title and lead text (either may be empty)."""
    head = tidy(title, SENTENCE_CHARS)
    raw = lead[: LEAD_CHARS * 8]
    body = tidy(raw, LEAD_CHARS)
    if head and body.casefold().startswith(head.casefold()):
        head = ""  # many feeds repeat the title as the summary's first line
    joint = " " if head[-1:] in _ENDS else ". "
    whole = f"{head}{joint}{body}" if head and body else head or body
    parts = ([head] if head else []) + sentences_of(raw[: LEAD_CHARS * 2])
    return Segments(whole=whole, sentences=tuple(_lead_sentences(parts)))


def entry_segments(entry: Entry) -> Segments:
    """Title and lead of a feed entry: its summary, else its content, else its page text."""
    lead = entry.summary_text or entry.content_text or entry.page_text
    return segments(entry.title, lead)


def _lead_sentences(parts: list[str]) -> list[str]:
    """The first sentences, within the lead's length (so explanations quote what was judged)."""
    kept: list[str] = []
    total = 0
    for part in parts[:MAX_SENTENCES]:
        if kept and total + len(part) > LEAD_CHARS + SENTENCE_CHARS:
            break
        kept.append(part)
        total += len(part)
    return kept
