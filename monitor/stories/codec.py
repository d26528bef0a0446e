"""A story's state as JSON-ready data and back, for the store's ``stories`` table.

The state is bounded (``state`` caps every vector and count), so a row stays a few
kilobytes. ``VERSION`` names the layout: a row of another version is not read back
(its story is closed for new reports, and a new one starts), never misread.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from monitor.stories.features import Vector
from monitor.stories.state import Counts, StoryState

VERSION = 1


def dump(story: StoryState) -> dict[str, Any]:
    """The state as lists, numbers and ISO times."""
    return {
        "v": VERSION,
        "id": story.id,
        "first_article": story.first_article,
        "first_seen": _time(story.first_seen),
        "last_seen": _time(story.last_seen),
        "articles": story.articles,
        "lang": story.lang,
        "words": [[t, w] for t, w in story.words],
        "names": [[t, w] for t, w in story.names],
        "numbers": [[t, w] for t, w in story.numbers],
        "name_counts": [[t, n] for t, n in story.name_counts],
        "lead_counts": [[t, n] for t, n in story.lead_counts],
    }


def load(data: dict[str, Any]) -> StoryState | None:
    """The state back; None for another layout or a damaged row."""
    if data.get("v") != VERSION:
        return None
    try:
        return StoryState(
            id=str(data["id"]),
            first_article=str(data["first_article"]),
            first_seen=_parse(data["first_seen"]),
            last_seen=_parse(data["last_seen"]),
            articles=int(data["articles"]),
            lang=str(data["lang"]),
            words=_vector(data["words"]),
            names=_vector(data["names"]),
            numbers=_vector(data["numbers"]),
            name_counts=_counts(data["name_counts"]),
            lead_counts=_counts(data["lead_counts"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _time(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _parse(text: object) -> datetime | None:
    return None if text is None else datetime.fromisoformat(str(text))


def _vector(rows: list[list[Any]]) -> Vector:
    # A list comprehension, not a generator: every candidate story of every matched
    # article is decoded here (about 15% faster on a 224-pair state).
    return tuple([(sys.intern(str(t)), float(w)) for t, w in rows])


def _counts(rows: list[list[Any]]) -> Counts:
    return tuple([(sys.intern(str(t)), int(n)) for t, n in rows])
