"""Article text from a web page: the precision of trafilatura's precision mode with the
recall of its default mode. Pure: bytes in, text out, no I/O.

trafilatura is run twice on the page (ADR 0011 has the numbers on 609 real pages):

- with ``favor_precision``: little boilerplate, but it sometimes keeps only part of the
  article (a few paragraphs, or nothing), and often drops the lead paragraph and the
  odd paragraph inside;
- with its default settings: more of the article, and more of the page around it
  (teasers, promos, "read more" lines, footers).

The precision text is the core. A block that only the default extraction found is added
when it lies within the article as the precision text delimits it (between its first
and last block, or among the ``LEAD`` blocks just before its first), or anywhere when
the precision text looks truncated (shorter than ``TRUNCATED`` of the default text).
Boilerplate mostly sits around the article, and the article's missing parts inside it.
Then a short block (under ``LONG_BLOCK`` words) with at least ``LINK_DENSE`` of its
characters in links is dropped from either: a link-dense block is a teaser or a "read more"
line (the link-density signal of boilerpipe and jusText).

Comments, tables in the core, images and deduplication (which keeps state across
pages) are off. ``extract_page`` is what an extraction worker runs: it also caps the
HTML it reads (``Page.max_bytes``) and the text it keeps (``Page.max_chars``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import trafilatura
from lxml import etree

from monitor.errors import ExtractError
from monitor.text import collapse_whitespace

PRECISION: dict[str, Any] = {"favor_precision": True, "include_tables": False}
DEFAULT: dict[str, Any] = {}
_COMMON: dict[str, Any] = {
    "include_comments": False,
    "include_images": False,
    "include_links": True,  # for link density; the text keeps only the anchors' words
    "deduplicate": False,
}
TRUNCATED = 0.3  # precision text under this share of the default text: it missed the article
LEAD = 3  # default-only blocks just before the precision text that may be its lead
LINK_DENSE = 0.4  # share of a block's characters inside links that marks it as a teaser
LONG_BLOCK = 40  # words; a block this long is prose even when it is all one link
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
DEFAULT_MAX_CHARS = 100_000
# Soft hyphens and zero-width spaces split words for a rule ("vie\u00adle" is "viele").
_INVISIBLE = str.maketrans(dict.fromkeys("\u00ad\u200b\u2060\ufeff"))
_STRUCTURE = frozenset({"p", "head", "item", "cell", "code", "quote", "list", "table", "row", "div"})
_DROPPED = (b"script", b"style", b"svg", b"noscript", b"template")
_OPEN_TAG = re.compile(rb"<(" + b"|".join(_DROPPED) + rb")\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Page:
    """An article page for a worker: the body as fetched and the limits to apply."""

    url: str
    body: bytes
    max_bytes: int = DEFAULT_MAX_BYTES
    max_chars: int = DEFAULT_MAX_CHARS


@dataclass(frozen=True, slots=True)
class Block:
    """One paragraph, heading, list item or table cell of an extraction."""

    text: str
    linked: float = 0.0  # share of its characters inside links

    @property
    def key(self) -> str:
        """What two extractions of the same block have in common."""
        return " ".join(self.text.split()).casefold()

    @property
    def teaser(self) -> bool:
        return self.linked >= LINK_DENSE and len(self.text.split()) < LONG_BLOCK


def extract_page(page: Page) -> str:
    """The worker's function: ``article_text`` of the capped page, the text capped too."""
    return article_text(trimmed(page.body, page.max_bytes), page.url, max_chars=page.max_chars)


def article_text(page: bytes, url: str, *, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """The main text of an article page; empty when nothing article-like is found."""
    if not page.strip():
        return ""
    precise = extraction(page, url, PRECISION)
    default = extraction(page, url, DEFAULT)
    text = "\n".join(block.text for block in merge(precise, default)).translate(_INVISIBLE)
    return capped(collapse_whitespace(text), max_chars)


def extraction(page: bytes, url: str, options: dict[str, Any]) -> list[Block]:
    """trafilatura's main text of ``page`` as blocks; ExtractError when trafilatura fails."""
    try:
        document = trafilatura.bare_extraction(page, url=url, **_COMMON, **options)
    except MemoryError:  # the worker's address space is capped: it is replaced
        raise
    except Exception as e:  # trafilatura and lxml on hostile HTML: that page's failure
        raise ExtractError(f"extract: trafilatura failed ({type(e).__name__}: {e})") from e
    body = getattr(document, "body", None)  # a Document, or None when nothing was found
    return [] if body is None else list(_blocks(body))


def merge(precise: Sequence[Block], default: Sequence[Block]) -> list[Block]:
    """The precision blocks, plus the default-only ones inside the article (module docstring)."""
    merged = _aligned(precise, default)
    core = [n for n, (from_precise, _) in enumerate(merged) if from_precise]
    truncated = sum(len(b.text) for b in precise) < TRUNCATED * sum(len(b.text) for b in default)
    first, last = (core[0] - LEAD, core[-1]) if core else (0, -1)
    return [
        block
        for n, (from_precise, block) in enumerate(merged)
        if not block.teaser and (from_precise or truncated or first <= n <= last)
    ]


def _aligned(precise: Sequence[Block], default: Sequence[Block]) -> list[tuple[bool, Block]]:
    """Both extractions in page order: (True, block) for the precision text's blocks,
    (False, block) for those only the default extraction has.

    Where the two differ, the default blocks before the one that holds (or is held by)
    the precision stretch's first block come before that stretch, the others after it.
    """
    matcher = difflib.SequenceMatcher(None, [b.key for b in default], [b.key for b in precise])
    merged: list[tuple[bool, Block]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        ours = [(True, b) for b in precise[j1:j2]]
        if tag == "equal":
            merged += ours
            continue
        theirs = [(False, b) for b in default[i1:i2]]
        cut = _meeting(precise[j1].key, default[i1:i2]) if ours else len(theirs)
        merged += theirs[:cut] + ours + theirs[cut:]
    return merged


def _meeting(key: str, blocks: Sequence[Block]) -> int:
    """Index of the first block that holds ``key`` or is held by it, else len(blocks)."""
    return next((n for n, b in enumerate(blocks) if key in b.key or b.key in key), len(blocks))


def _blocks(root: etree._Element) -> Iterator[Block]:
    """The leaf blocks of trafilatura's output tree, and loose text between them."""
    for element in root.iter("lb"):  # a line break inside a paragraph separates words
        element.tail = " " + (element.tail or "")
    yield from _inside(root)


def _inside(element: etree._Element) -> Iterator[Block]:
    yield from _loose(element.text)
    for child in element:
        if any(d.tag in _STRUCTURE for d in child.iterdescendants()):
            yield from _inside(child)
        else:
            yield from _leaf(child)
        yield from _loose(child.tail)


def _leaf(element: etree._Element) -> Iterator[Block]:
    text = " ".join("".join(element.itertext()).split())
    if text:
        linked = sum(len(" ".join("".join(r.itertext()).split())) for r in element.iter("ref"))
        yield Block(text, min(1.0, linked / len(text)))


def _loose(text: str | None) -> Iterator[Block]:
    if text and text.strip():
        yield Block(" ".join(text.split()))


def trimmed(body: bytes, max_bytes: int) -> bytes:
    """At most ``max_bytes`` of HTML: without scripts, styles and comments when that is
    more, then cut at a tag. Extraction time grows with the page (ADR 0011)."""
    if len(body) <= max_bytes:
        return body
    body = _without(body)
    if len(body) <= max_bytes:
        return body
    cut = body.rfind(b"<", 0, max_bytes)
    return body[: cut if cut > 0 else max_bytes]


def _without(body: bytes) -> bytes:
    """``body`` without comments and ``_DROPPED`` elements; linear in its length (an
    unclosed one runs to the end, as it does for a browser)."""
    lower = body.lower()
    kept: list[bytes] = []
    at = 0
    while True:
        comment = lower.find(b"<!--", at)
        element = _OPEN_TAG.search(lower, at)
        if comment < 0 and element is None:
            kept.append(body[at:])
            return b"".join(kept)
        if element is None or 0 <= comment < element.start():
            start, end_mark = comment, b"-->"
        else:
            start, end_mark = element.start(), b"</" + element.group(1)
        kept.append(body[at:start])
        end = lower.find(end_mark, start + 4)
        if end < 0:
            return b"".join(kept)
        close = lower.find(b">", end)
        at = len(body) if close < 0 else close + 1


def capped(text: str, max_chars: int) -> str:
    """``text`` cut at a word boundary to at most ``max_chars`` characters."""
    if len(text) <= max_chars:
        return text
    cut = text.rfind(" ", 0, max_chars + 1)
    return text[: cut if cut > 0 else max_chars].rstrip()
