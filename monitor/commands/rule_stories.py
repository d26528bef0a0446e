"""``rules test`` by story: which story each stored match reports on, and what folding
changes (alerts per day per article, and per story).

The grouping is what the daemon would do: the matched articles, in publication order,
through the same story assignment (``monitor.stories``), in memory; nothing is written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from monitor.folding import story_article
from monitor.match import Explanation
from monitor.models import StoredArticle
from monitor.stories import MemoryIndex, StoryAssigner, WordfreqStats


@dataclass
class Grouping:
    """Article id -> story label (S1, S2, ... in order of first report), and per rule the
    stories it matched."""

    story_of: dict[int, str] = field(default_factory=dict)
    stories_per_rule: dict[str, set[str]] = field(default_factory=dict)
    sizes: Counter[str] = field(default_factory=Counter)

    def alerts(self, rule: str) -> int:
        """Alerts the rule would send folding by story: one per story it matched."""
        return len(self.stories_per_rule.get(rule, ()))


def group(found: Sequence[tuple[StoredArticle | None, Explanation]], window: timedelta) -> Grouping:
    """Assign the matched stored articles to stories, oldest first."""
    articles = {a.id: a for a, _ in found if a is not None}
    assigner = StoryAssigner(MemoryIndex(), WordfreqStats(), window=window)
    labels: dict[str, str] = {}
    grouping = Grouping()
    for article in sorted(articles.values(), key=lambda a: (a.entry.published, a.id)):
        done = assigner.assign(story_article(article.entry, article.feed))
        label = labels.setdefault(done.story.id, f"S{len(labels) + 1}")
        grouping.story_of[article.id] = label
        grouping.sizes[label] += 1
    for matched, explained in found:
        if matched is not None:
            rule = explained.match.rule
            grouping.stories_per_rule.setdefault(rule, set()).add(grouping.story_of[matched.id])
    return grouping


def folded_line(grouping: Grouping, rule: str, matches: int, days: float) -> str:
    """``folded by story: 3 alerts (about 0.4/day) instead of 11``."""
    alerts = grouping.alerts(rule)
    return (
        f"  folded by story: {alerts} alert{'s' if alerts != 1 else ''} "
        f"(about {alerts / days:.1f}/day) instead of {matches}"
    )
