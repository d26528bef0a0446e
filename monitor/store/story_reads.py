"""Reading stories back for people: ``monitor stories`` and ``monitor stories show``.

Pure reads (DEFERRED on SQLite), so they never wait for a polling daemon.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from monitor.models import StoryDetail, StoryReport, StorySummary
from monitor.store.json_columns import read_json
from monitor.store.tables import ARTICLES, FEEDS, STORIES, STORY_ALERTS, STORY_ARTICLES

LIMIT = 500


class StoryReads(ABC):
    """Story read methods of the Store."""

    @abstractmethod
    def reading(self) -> AbstractContextManager[Connection]:
        """One read-only transaction that never waits for writers."""

    def stories(
        self, *, since: datetime | None = None, rule: str | None = None, limit: int = LIMIT
    ) -> list[StorySummary]:
        """Stories with a report since ``since`` (or alerted by ``rule``), latest first."""
        query = select(STORIES.c.id).order_by(STORIES.c.last_seen.desc(), STORIES.c.id.desc()).limit(limit)
        if since is not None:
            query = query.where(STORIES.c.last_seen >= since)
        if rule is not None:
            alerted = select(STORY_ALERTS.c.story_id).where(STORY_ALERTS.c.rule == rule)
            query = query.where(STORIES.c.id.in_(alerted))
        with self.reading() as conn:
            ids = list(conn.execute(query).scalars())
            return _summaries(conn, ids)

    def story(self, story_id: int) -> StoryDetail | None:
        """One story with every report still stored, and its alerts."""
        with self.reading() as conn:
            found = _summaries(conn, [story_id])
            if not found:
                return None
            reports = (
                select(
                    STORY_ARTICLES, ARTICLES.c.title, ARTICLES.c.link, ARTICLES.c.published_at, FEEDS.c.name
                )
                .join(ARTICLES, ARTICLES.c.id == STORY_ARTICLES.c.article_id)
                .join(FEEDS, FEEDS.c.id == ARTICLES.c.feed_id)
                .where(STORY_ARTICLES.c.story_id == story_id)
                .order_by(ARTICLES.c.published_at, ARTICLES.c.id)
            )
            rows = [_report(row) for row in conn.execute(reports)]
            alerts = conn.execute(
                select(STORY_ALERTS.c.rule, STORY_ALERTS.c.created_at)
                .where(STORY_ALERTS.c.story_id == story_id)
                .order_by(STORY_ALERTS.c.created_at, STORY_ALERTS.c.rule)
            ).all()
        return StoryDetail(found[0], tuple(rows), tuple((r.rule, r.created_at) for r in alerts))


def _summaries(conn: Connection, ids: list[int]) -> list[StorySummary]:
    """Summaries of these stories, in this order."""
    if not ids:
        return []
    first = (
        select(STORIES, ARTICLES.c.title)
        .outerjoin(ARTICLES, ARTICLES.c.id == STORIES.c.first_article_id)
        .where(STORIES.c.id.in_(ids))
    )
    outlets: dict[int, int] = {
        story_id: n
        for story_id, n in conn.execute(
            select(STORY_ARTICLES.c.story_id, func.count(func.distinct(ARTICLES.c.feed_id)))
            .join(ARTICLES, ARTICLES.c.id == STORY_ARTICLES.c.article_id)
            .where(STORY_ARTICLES.c.story_id.in_(ids))
            .group_by(STORY_ARTICLES.c.story_id)
        )
    }
    rules: dict[int, list[str]] = {}
    alerted = select(STORY_ALERTS.c.story_id, STORY_ALERTS.c.rule).where(STORY_ALERTS.c.story_id.in_(ids))
    for story_id, rule in conn.execute(alerted.order_by(STORY_ALERTS.c.id)):
        rules.setdefault(story_id, []).append(rule)
    found = {
        row.id: StorySummary(
            id=row.id,
            title=row.title or "(its first report is no longer stored)",
            first_seen=row.first_seen,
            last_seen=row.last_seen,
            articles=row.articles,
            outlets=int(outlets.get(row.id, 0)),
            rules=tuple(rules.get(row.id, ())),
        )
        for row in conn.execute(first)
    }
    return [found[i] for i in ids if i in found]


def _started(explained: Any) -> bool:
    """Whether the explanation says the article started its story (a dict's ``created``)."""
    return isinstance(explained, dict) and bool(explained.get("created"))


def _report(row: Any) -> StoryReport:
    return StoryReport(
        article_id=row.article_id,
        feed=row.name,
        title=row.title,
        link=row.link,
        published=row.published_at,
        score=float(row.score),
        started=read_json(row.explanation, _started, False),  # a damaged row still lists
    )
