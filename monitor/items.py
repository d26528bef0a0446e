"""A feed document cut into its items without parsing it, for item skipping (ADR 0019).

Many servers send no validators and change ``lastBuildDate`` (or a "generated at"
comment) on every request, so the body differs while its items do not. ``split_xml``
and ``split_json`` cut a document into a head, its items and a tail, each item as the
bytes (or, for JSON Feed, the canonical JSON) that make it; ``Split.digests`` names each
item by a hash of those bytes *and* of everything around them that could change what
they mean (the final URL, the content type, the prolog and every tag outside the items,
but not their text). ``Split.document`` puts the head, some of the items and the tail
back together: the same document with fewer items, for feedparser to parse.

Pure and bounded: one pass over the bytes with a fixed set of token patterns. Anything
unusual answers None (the caller parses the whole document, as before): an encoding
that is not ASCII-compatible (UTF-16, UTF-32, ISO-2022, ...), a ``<`` that starts no
well-formed token, items nested in items or at different depths, anything but
whitespace between two items, a body that ends inside an item.

``Record`` is what the store keeps per feed: item digest -> a short digest of the
entry key the item became ("" for an item that makes no entry), at most MAX_RECORDED.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

MAX_RECORDED = 1000  # items remembered per feed: about 31 KB of text at most
_ITEM_NAMES = frozenset([b"item", b"entry"])
_TOKEN = re.compile(
    rb"""
    (?P<comment><!--.*?-->)
  | (?P<cdata><!\[CDATA\[.*?\]\]>)
  | (?P<pi><\?.*?\?>)
  | (?P<doctype><!DOCTYPE[^\[>]*(?:\[[^\]]*\]\s*)?>)  # one unambiguous way to match: linear
  | </(?P<end>[^\s<>/]+)\s*>
  | <(?P<start>[^\s<>/!?=]+)(?:\s+[^\s<>/=]+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*\s*(?P<empty>/)?>
    """,
    re.DOTALL | re.VERBOSE,
)
_WHITESPACE = b" \t\r\n"
_ENCODING = re.compile(rb"""^<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._-]{1,40})["']""")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._-]{1,40})""", re.IGNORECASE)
# Encodings in which every byte below 0x80 is that ASCII character and no other byte is
# one of them: a '<' in the bytes is a '<' in the text.
_ASCII_SAFE = re.compile(r"^(?:utf-8|ascii|latin-1|iso8859-\d+|cp125\d|koi8-[ru]|mac-roman)$")


@dataclass(frozen=True, slots=True)
class Split:
    """A document as head + items + tail; ``context`` covers what is not the items."""

    head: bytes
    items: tuple[bytes, ...]
    tail: bytes
    context: bytes
    separator: bytes = b"\n"

    def digests(self) -> list[str]:
        """Each item's name: a hash of the context and of its bytes."""
        return [_b64(hashlib.sha256(self.context + b"\0" + item).digest()[:16]) for item in self.items]

    def document(self, keep: Iterable[int]) -> bytes:
        """The document with only the items at these positions, in their order."""
        return self.head + self.separator.join(self.items[i] for i in keep) + self.tail


def key_digest(key: str) -> str:
    """A short name for an entry key (equal keys, equal names; only compared, never trusted)."""
    return _b64(hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()[:6])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class Record(Mapping[str, str]):
    """Item digest -> key digest of the items whose entries the feed has stored."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._pairs: dict[str, str] = {}
        for item, key in pairs:
            if len(self._pairs) >= MAX_RECORDED:
                break
            self._pairs.setdefault(item, key)

    @classmethod
    def decode(cls, text: str | None) -> Record:
        """The stored form (``item:key item:key ...``); anything unreadable is left out."""
        pairs = (part.partition(":") for part in (text or "").split())
        return cls((item, key) for item, sep, key in pairs if sep and item)

    def encode(self) -> str:
        return " ".join(f"{item}:{key}" for item, key in self._pairs.items())

    def __getitem__(self, item: str) -> str:
        return self._pairs[item]

    def __iter__(self) -> Iterator[str]:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)


_XML_BASE = b"xml:base"


def split_xml(body: bytes, content_type: str | None, final_url: str) -> Split | None:
    """RSS or Atom cut at its ``<item>``/``<entry>`` elements, or None (see the module docstring)."""
    if not _ascii_compatible(body, content_type):
        return None
    scan = _scan(body)
    if scan is None:
        return None
    spans, skeleton = scan
    if not spans:
        return None
    head, tail = body[: spans[0][0]], body[spans[-1][1] :]
    if _XML_BASE in body[spans[0][0] : spans[-1][1]]:
        # feedparser keeps an item's xml:base for the items after it (it restores only a
        # non-empty parent base, and the document's is empty): an item's links and guid
        # then depend on the items before it, so a shorter document could key it apart.
        return None
    for (_, end), (start, _) in itertools.pairwise(spans):
        if body[end:start].strip(_WHITESPACE):
            return None
    lead = body[: body.find(b"<")]  # blank lines before ``<?xml`` make feedparser lenient
    context = b"\0".join(
        [b"xml", final_url.encode("utf-8", "replace"), (content_type or "").encode(), lead, skeleton]
    )
    return Split(head, tuple(body[s:e] for s, e in spans), tail, context)


def _scan(body: bytes) -> tuple[list[tuple[int, int]], bytes] | None:
    """Item spans, and every token outside them but comments and text; None if unusual."""
    scanner = _Scanner()
    pos = body.find(b"<")
    while pos != -1:
        token = _TOKEN.match(body, pos)
        if token is None or not scanner.take(token):
            return None
        pos = body.find(b"<", token.end())
    if scanner.stack or scanner.item_start >= 0:
        return None
    return scanner.spans, b"".join(scanner.skeleton)


class _Scanner:
    """The open elements, the items found so far and the skeleton outside them."""

    def __init__(self) -> None:
        self.stack: list[bytes] = []
        self.spans: list[tuple[int, int]] = []
        self.skeleton: list[bytes] = []
        self.item_depth: int | None = None
        self.item_start = -1

    def take(self, token: re.Match[bytes]) -> bool:
        """One token; False when the document is unusual (see the module docstring)."""
        kind = token.lastgroup
        if kind == "start":
            if _local(token["start"]) in _ITEM_NAMES and not self._item(token):
                return False
            if not token["empty"]:
                self.stack.append(token["start"])
        elif kind == "end":
            if not self.stack or self.stack.pop() != token["end"]:
                return False
            if self.item_start >= 0 and len(self.stack) == self.item_depth:
                self.spans.append((self.item_start, token.end()))
                self.item_start = -1
                return True
        if self.item_start < 0 and kind != "comment":
            self.skeleton.append(token[0] if kind != "cdata" else b"<![CDATA[]]>")
        return True

    def _item(self, token: re.Match[bytes]) -> bool:
        """An item starts: never inside another, never empty, always at the same depth."""
        if self.item_start >= 0 or token["empty"]:
            return False
        if self.item_depth is None:
            self.skeleton.append(b"\0items\0")  # where the items stand among the other tags
        elif self.item_depth != len(self.stack):
            return False
        self.item_depth, self.item_start = len(self.stack), token.start()
        return True


def _local(name: bytes) -> bytes:
    return name.rpartition(b":")[2]


def _ascii_compatible(body: bytes, content_type: str | None) -> bool:
    """No byte order mark but UTF-8's, no NUL, and every declared encoding ASCII-safe."""
    if body.startswith(codecs.BOM_UTF8):
        body = body[3:]
    elif body[:1] != b"<" and body.lstrip(_WHITESPACE)[:1] != b"<":
        return False
    if b"\0" in body[:4096]:
        return False
    declared = _ENCODING.match(body)
    labels = [declared.group(1).decode("ascii")] if declared else []
    charset = _CHARSET.search(content_type or "")
    labels += [charset.group(1)] if charset else []
    return all(_ascii_safe(label) for label in labels)


def _ascii_safe(label: str) -> bool:
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return False
    return bool(_ASCII_SAFE.match(name))


def split_json(document: object, final_url: str) -> Split | None:
    """A loaded JSON Feed cut into its items (objects only: parsing ignores the rest), or
    None when it has no ``items`` list, or holds a number that JSON cannot write back
    (``1e999`` loads as infinity, which would come back as no value: a shorter document
    would key that item apart from the whole one)."""
    if not isinstance(document, dict) or not isinstance(document.get("items"), list):
        return None
    try:
        items = tuple(_canonical(item) for item in document["items"] if isinstance(item, dict))
        rest = {k: v for k, v in document.items() if k != "items"}
        head = _canonical(rest)[:-1] + (b', "items": [' if rest else b'"items": [')
    except ValueError:  # a non-finite number
        return None
    context = b"\0".join([b"json", final_url.encode("utf-8", "replace")])
    return Split(head, items, b"]}", context, separator=b", ")


def _canonical(value: object) -> bytes:
    """JSON that loads back to the same value (ASCII escapes keep lone surrogates)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True, allow_nan=False).encode("ascii")
