"""What the story step of a poll needs: the matched entries as story assignment reads
them, and which rules fold by story. Pure; the store does the assignment inside the
poll's transaction (``monitor.store.stories``).

Only entries a rule matched get a story (the others can never alert), so the cost of
stories grows with the alerts, not with the feeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from monitor.config import Settings
from monitor.language import detect
from monitor.models import Entry, Match
from monitor.store.stories import StoryPlan
from monitor.stories import StoryArticle, TermStats

TEXT_CHARS = 6000  # the lead and first paragraphs state the event; the rest adds cost only


def story_article(entry: Entry, feed_name: str, language: str | None = None) -> StoryArticle:
    """An entry as story assignment reads it: title, the best text there is, time, outlet."""
    text = entry.page_text or entry.content_text or entry.summary_text
    body = text[:TEXT_CHARS]
    return StoryArticle(
        key=entry.key,
        title=entry.title,
        text=body,
        published=entry.published,
        outlet=feed_name,
        lang=language or detect(f"{entry.title}\n{body}") or "en",
    )


def story_plan(
    settings: Settings,
    entries: Sequence[Entry],
    matches: Mapping[str, Sequence[Match]],
    feed_name: str,
    stats: TermStats,
    language: str | None = None,
) -> StoryPlan:
    """The story step's work for one poll: every matched entry, and the folding rules."""
    articles = {e.key: story_article(e, feed_name, language) for e in entries if matches.get(e.key)}
    return StoryPlan(
        articles=articles,
        folds=frozenset(r.name for r in settings.rules if r.stories == "fold"),
        updates={name: spec.story_updates for name, spec in settings.channels.items()},
        window=settings.stories.window,
        stats=stats,
    )
