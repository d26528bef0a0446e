"""What a message says about its story: the first report, how many outlets so far, and
the latest reports (for an update). Read when the message is claimed, so "so far" is
as of sending."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, func, select

from monitor.models import StoryRef
from monitor.store.tables import ARTICLES, FEEDS, STORIES, STORY_ARTICLES

LATEST = 5  # reports named in an update ("also reported by")


def story_refs(conn: Connection, story_ids: Collection[int]) -> dict[int, StoryRef]:
    """Story row id -> StoryRef, for the stories that exist."""
    ids = sorted(set(story_ids))
    if not ids:
        return {}
    first = (
        select(STORIES.c.id, ARTICLES.c.title, ARTICLES.c.link, FEEDS.c.name)
        .outerjoin(ARTICLES, ARTICLES.c.id == STORIES.c.first_article_id)
        .outerjoin(FEEDS, FEEDS.c.id == ARTICLES.c.feed_id)
        .where(STORIES.c.id.in_(ids))
    )
    counts = dict(_counts(conn, ids))
    latest = _latest(conn, ids)
    refs = {}
    for story_id, title, link, feed in conn.execute(first):
        outlets, articles = counts.get(story_id, (0, 0))
        refs[story_id] = StoryRef(
            id=story_id,
            first_title=title or "(a report no longer stored)",
            first_link=link,
            first_feed=feed or "?",
            outlets=outlets,
            articles=articles,
            also=tuple(latest.get(story_id, ())),
        )
    return refs


def _counts(conn: Connection, ids: list[int]) -> list[tuple[int, tuple[int, int]]]:
    """Per story: distinct feeds that reported it, and its reports (those still stored)."""
    query = (
        select(STORY_ARTICLES.c.story_id, func.count(func.distinct(ARTICLES.c.feed_id)), func.count())
        .join(ARTICLES, ARTICLES.c.id == STORY_ARTICLES.c.article_id)
        .where(STORY_ARTICLES.c.story_id.in_(ids))
        .group_by(STORY_ARTICLES.c.story_id)
    )
    return [(sid, (int(outlets), int(articles))) for sid, outlets, articles in conn.execute(query)]


def _latest(conn: Connection, ids: list[int]) -> dict[int, list[str]]:
    """Per story: the feeds of its latest reports, newest first, at most LATEST."""
    newest = func.row_number().over(
        partition_by=STORY_ARTICLES.c.story_id,
        order_by=(ARTICLES.c.published_at.desc(), ARTICLES.c.id.desc()),
    )
    ranked = (
        select(STORY_ARTICLES.c.story_id, FEEDS.c.name, newest.label("n"))
        .join(ARTICLES, ARTICLES.c.id == STORY_ARTICLES.c.article_id)
        .join(FEEDS, FEEDS.c.id == ARTICLES.c.feed_id)
        .where(STORY_ARTICLES.c.story_id.in_(ids))
        .subquery()
    )
    found: dict[int, list[str]] = {}
    kept = select(ranked.c.story_id, ranked.c.name).where(ranked.c.n <= LATEST)
    for story_id, name in conn.execute(kept):
        found.setdefault(story_id, []).append(name)
    return found
