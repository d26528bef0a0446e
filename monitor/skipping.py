"""Item skipping: parse only the items of a changed document that the feed has not
stored yet, with feedparser still the parser of record (ADR 0019).

``skim(fetched, split, parse_noted)`` gets the document cut into items (``items``) and
the feed's record of stored items (``Fetched.known``: item digest -> key digest). When
some items are known, the document is put back together without them and parsed; the
result stands only if it is what parsing the whole document would have given:

- the shorter document parsed without any feedparser complaint (no bozo warning but
  one about the document's first bytes, which the whole document shares) and no entry
  was left out, and it gave one entry per item kept;
- no key that a new entry took on the way (its own, the one without its guid, its
  final one) is the key of a skipped item. Keys are told apart across a document
  (``entries.settle``): a new item sharing a guid with a skipped one would change the
  skipped one's key, and its own. The skipped items cannot change each other's keys:
  they are recorded only when nothing in their document changed their key.

Otherwise the whole document is parsed, as before. Either way the result carries the
record for next time (``ParsedFeed.items``): every item whose entry is stored once this
poll is saved, None when that cannot be said (a document feedparser complains about,
items the scan and feedparser count differently). Pure: no I/O, runs where ``parse`` runs (the workers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from monitor.entries import ItemKeys
from monitor.errors import ParseError
from monitor.items import Record, Split
from monitor.models import Fetched, ParsedFeed

Noted = tuple[ParsedFeed, Sequence[ItemKeys], bool]
"""A whole parse, what each item became, and whether its items parse alone (``steady``:
no complaint from feedparser, or only one about the document's first bytes)."""
ParseNoted = Callable[[Fetched], Noted]


def skim(fetched: Fetched, split: Split | None, parse_noted: ParseNoted) -> ParsedFeed:
    """The document's new entries (all of them when nothing is known), and its record."""
    if split is None:
        return parse_noted(fetched)[0]
    digests = split.digests()
    known = Record.decode(fetched.known)
    old = [i for i, d in enumerate(digests) if d in known]
    if old:
        partial = _partial(fetched, split, digests, old, known, parse_noted)
        if partial is not None:
            return partial
    parsed, notes, steady = parse_noted(fetched)
    return replace(parsed, items=_record(notes, digests) if steady else None)


def _partial(
    fetched: Fetched,
    split: Split,
    digests: Sequence[str],
    old: Sequence[int],
    known: Record,
    parse_noted: ParseNoted,
) -> ParsedFeed | None:
    """The parse of the document without the known items, or None if it may differ."""
    new = [i for i in range(len(digests)) if i not in set(old)]
    parsed = _without(fetched, split, digests, old, new, known, parse_noted)
    if parsed is None and not new:  # to feedparser's lenient parser a feed without items is broken
        parsed = _without(fetched, split, digests, old[1:], [old[0]], known, parse_noted)
    return parsed


def _without(
    fetched: Fetched,
    split: Split,
    digests: Sequence[str],
    old: Sequence[int],
    new: Sequence[int],
    known: Record,
    parse_noted: ParseNoted,
) -> ParsedFeed | None:
    """The document with only the ``new`` items parsed, if that is what the whole gives."""
    try:
        parsed, notes, steady = parse_noted(replace(fetched, body=split.document(new)))
    except ParseError:
        return None
    if not steady or parsed.dropped or len(notes) != len(new):
        return None
    taken = {known[digests[i]] for i in old} - {""}
    if any(note.touched & taken for note in notes):
        return None
    recorded = {i: known[digests[i]] for i in old}
    recorded.update((i, note.record) for i, note in zip(new, notes, strict=True) if note.record is not None)
    record = Record((digests[i], recorded[i]) for i in sorted(recorded))
    return replace(parsed, items=record.encode(), skipped=len(old))


def _record(notes: Sequence[ItemKeys], digests: Sequence[str]) -> str | None:
    """The record after parsing the whole document; None when items and entries do not pair up."""
    if len(notes) != len(digests):
        return None
    pairs = ((d, note.record) for d, note in zip(digests, notes, strict=True) if note.record is not None)
    return Record(pairs).encode()
