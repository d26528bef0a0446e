"""Stories: which story each matched article reports on (fold), or a new one.

Pure: no I/O, no database, no configuration. ``StoryAssigner`` decides over a
``StoryIndex`` (``MemoryIndex`` here; the store can persist the same plain data)
with ``TermStats`` from a general word-frequency source. The method, its numbers on
the ECB+ story set and the persistence plan are in docs/decisions/0014.
"""

from monitor.stories.assign import (
    DEFAULT_THRESHOLD,
    DEFAULT_WINDOW,
    Assignment,
    Explanation,
    StoryAssigner,
)
from monitor.stories.background import TermStats, UniformStats, WordfreqStats, base_language
from monitor.stories.decide import Evidence, evidence
from monitor.stories.features import Signature, StoryArticle, extract, lexicon
from monitor.stories.index import MemoryIndex, StoryIndex, query_terms, story_terms
from monitor.stories.state import StoryState, add_article, new_story

__all__ = [
    "DEFAULT_THRESHOLD",
    "DEFAULT_WINDOW",
    "Assignment",
    "Evidence",
    "Explanation",
    "MemoryIndex",
    "Signature",
    "StoryArticle",
    "StoryAssigner",
    "StoryIndex",
    "StoryState",
    "TermStats",
    "UniformStats",
    "WordfreqStats",
    "add_article",
    "base_language",
    "evidence",
    "extract",
    "lexicon",
    "new_story",
    "query_terms",
    "story_terms",
]
