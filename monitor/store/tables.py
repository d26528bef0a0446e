"""SQLModel tables. Rows never leave the ``store`` package; callers get models.

Times are stored as naive UTC on every backend and come back UTC-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Index, LargeBinary, Table, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

SCHEMA_VERSION = 2
"""``schema_version`` at the head revision: a fence for releases older than migrations.

Alembic's revision is the real version (``monitor.store.migrate``). A migration that
older code cannot run on raises this number; the first release refuses any above 1.
"""


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive UTC in the column."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _when(*, nullable: bool = True, index: bool = False) -> datetime | None:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)  # type: ignore[no-any-return]


class SchemaVersionRow(SQLModel, table=True):
    """One row: the schema version this database was created or migrated to (see SCHEMA_VERSION)."""

    __tablename__ = "schema_version"
    id: int = Field(default=1, primary_key=True)
    version: int


class FeedRow(SQLModel, table=True):
    """A watched feed and its polling state; the database is the schedule."""

    __tablename__ = "feeds"
    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(sa_type=Text, unique=True)  # as configured
    fetch_url: str | None = Field(default=None, sa_type=Text)  # after a permanent redirect
    name: str = Field(sa_type=Text)
    active: bool = True
    disabled_reason: str | None = Field(default=None, sa_type=Text)  # e.g. HTTP 410
    title: str | None = Field(default=None, sa_type=Text)
    etag: str | None = Field(default=None, sa_type=Text)
    last_modified: str | None = Field(default=None, sa_type=Text)
    created_at: datetime | None = _when()
    last_poll_at: datetime | None = _when()
    last_success_at: datetime | None = _when()
    last_error: str | None = Field(default=None, sa_type=Text)
    last_error_at: datetime | None = _when()
    error_count: int = 0
    poll_count: int = 0
    next_poll_at: datetime | None = _when(index=True)
    last_new_at: datetime | None = _when()
    health: str = "ok"  # ok | failing | silent: what the health channel was last told
    leased_until: datetime | None = _when()  # a poller owns this feed until then
    leased_by: str | None = Field(default=None, sa_type=Text)
    body_hash: str | None = Field(default=None, sa_type=Text)  # skip parsing an identical body
    item_hashes: str | None = Field(default=None, sa_type=Text)  # skip parsing stored items (ADR 0019)
    last_warning: str | None = Field(default=None, sa_type=Text)  # e.g. an entry dropped, and why
    last_warning_at: datetime | None = _when()
    # First fetched as a public origin (ADR 0026): from then on always one, across restarts.
    public_seen_at: datetime | None = _when()


class ArticleRow(SQLModel, table=True):
    """An entry seen in a feed, unique on (feed, key)."""

    __tablename__ = "articles"
    __table_args__ = (
        UniqueConstraint("feed_id", "key", name="uq_articles_feed_key"),
        Index("ix_articles_feed_alias", "feed_id", "alias_key"),
    )
    id: int | None = Field(default=None, primary_key=True)
    feed_id: int = Field(foreign_key="feeds.id", index=True)
    key: str = Field(sa_type=Text)
    alias_key: str | None = Field(default=None, sa_type=Text)  # normalised link + title (identity.alias_key)
    title: str = Field(sa_type=Text)
    link: str | None = Field(default=None, sa_type=Text)
    author: str | None = Field(default=None, sa_type=Text)
    published_at: datetime | None = _when(index=True)
    fetched_at: datetime | None = _when()
    summary_html: str = Field(default="", sa_type=Text)
    summary_text: str = Field(default="", sa_type=Text)
    content_html: str = Field(default="", sa_type=Text)
    content_text: str = Field(default="", sa_type=Text)
    page_text: str = Field(default="", sa_type=Text)  # article text from its web page
    page_error: str | None = Field(default=None, sa_type=Text)


class MatchRow(SQLModel, table=True):
    """An alert: the pair (article, rule), recorded at most once."""

    __tablename__ = "matches"
    __table_args__ = (UniqueConstraint("article_id", "rule", name="uq_matches_article_rule"),)
    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="articles.id", index=True)
    rule: str = Field(sa_type=Text)
    field: str
    terms: str = Field(sa_type=Text)  # JSON list
    snippet: str = Field(sa_type=Text)
    highlights: str = Field(sa_type=Text)  # JSON list of [start, end]
    created_at: datetime | None = _when()


class DeliveryRow(SQLModel, table=True):
    """The outbox: one message per (article, channel) and its delivery state."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("article_id", "channel", name="uq_deliveries_article_channel"),
        UniqueConstraint("channel", "update_slot", name="uq_deliveries_channel_update_slot"),
        Index("ix_deliveries_due", "state", "next_attempt_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    article_id: int | None = Field(default=None, foreign_key="articles.id", index=True)  # None: a notice
    channel: str = Field(sa_type=Text)
    notice_title: str | None = Field(default=None, sa_type=Text)  # feed-health notices
    notice_body: str | None = Field(default=None, sa_type=Text)
    message_key: str = Field(sa_type=Text)
    rules: str = Field(sa_type=Text)  # JSON list of rule names
    batched: bool = False  # sent with others as one digest / rate-limit summary
    done_targets: str = Field(default="[]", sa_type=Text)  # JSON list of URL indexes
    state: str = "pending"
    attempts: int = 0
    next_attempt_at: datetime | None = _when()
    claimed_until: datetime | None = _when()  # the claim's deadline
    claim_token: str | None = Field(default=None, sa_type=Text)  # who holds the claim (one per claim)
    story_id: int | None = Field(default=None, foreign_key="stories.id", index=True)
    kind: str = Field(default="alert", sa_type=Text)  # alert | update (a later report of an alerted story)
    update_slot: str | None = Field(default=None, sa_type=Text)  # thread updates: one per story an hour
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime | None = _when()
    sent_at: datetime | None = _when()


class DeliveryQuotaRow(SQLModel, table=True):
    """Individual messages given out to a channel in one clock hour (UTC): ``max_per_hour``.

    Raised by a conditional upsert before each send, so every thread and daemon on the
    database shares one count.
    """

    __tablename__ = "delivery_quota"
    channel: str = Field(sa_type=Text, primary_key=True)
    hour: datetime = Field(sa_type=UTCDateTime, primary_key=True)
    used: int = 0


class StoryRow(SQLModel, table=True):
    """A story: the reports of one event, from any feed, folded together (``monitor.stories``)."""

    __tablename__ = "stories"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(sa_type=Text, unique=True)  # the assigner's id: "a" + its first article's id
    first_article_id: int | None = Field(default=None, foreign_key="articles.id")
    first_seen: datetime | None = _when()  # publication time of its earliest report
    last_seen: datetime | None = _when(index=True)  # ... and of its latest: open until + window
    articles: int = 1
    lang: str = Field(default="", sa_type=Text)
    state: str = Field(sa_type=Text)  # JSON: the bounded signature (monitor.stories.codec)
    created_at: datetime | None = _when()


class StoryTermRow(SQLModel, table=True):
    """The story index: a story is found by the terms it posted (newest postings first)."""

    __tablename__ = "story_terms"
    __table_args__ = (Index("ix_story_terms_term_posted", "term", "posted_at"),)
    term: str = Field(sa_type=Text, primary_key=True)
    story_id: int = Field(foreign_key="stories.id", primary_key=True, index=True)
    posted_at: datetime | None = _when()


class StoryArticleRow(SQLModel, table=True):
    """Which story an article reports on (once: an article is assigned at most once)."""

    __tablename__ = "story_articles"
    article_id: int = Field(foreign_key="articles.id", primary_key=True)
    story_id: int = Field(foreign_key="stories.id", index=True)
    score: float = 0.0
    explanation: str = Field(default="{}", sa_type=Text)  # JSON: why it joined or started the story
    created_at: datetime | None = _when()


class StoryAlertRow(SQLModel, table=True):
    """An alert is the pair (story, rule), recorded at most once (rules that fold by story)."""

    __tablename__ = "story_alerts"
    __table_args__ = (UniqueConstraint("story_id", "rule", name="uq_story_alerts_story_rule"),)
    id: int | None = Field(default=None, primary_key=True)
    story_id: int = Field(foreign_key="stories.id", index=True)
    rule: str = Field(sa_type=Text)
    article_id: int | None = Field(default=None, foreign_key="articles.id")  # the report that alerted
    created_at: datetime | None = _when()


class EmbeddingRow(SQLModel, table=True):
    """An article's embedding for ``about`` rules (``monitor.semantic.codec`` bytes), keyed
    by ``AboutMatcher.content_key``: its passage and model, so the same wire story in
    several feeds, a re-poll and ``rules test`` share one. Pruned with the articles."""

    __tablename__ = "embeddings"
    key: str = Field(sa_type=Text, primary_key=True)
    vector: bytes = Field(sa_type=LargeBinary)
    created_at: datetime | None = _when(index=True)


class AboutQueueRow(SQLModel, table=True):
    """An article some ``about`` rule may still match, waiting for the model (ADR 0020).

    The poll stores the article and this row in one transaction; the about job claims
    rows (``claimed_by``, ``claimed_until``: an owned lease like a feed's), judges them
    and deletes them with the alerts they make. A row the model keeps failing on ends
    ``gave_up`` with its ``last_error``, so nothing waits forever and the reason stays.
    """

    __tablename__ = "about_queue"
    article_id: int = Field(foreign_key="articles.id", primary_key=True)
    state: str = Field(default="pending", sa_type=Text)  # pending | gave_up
    queued_at: datetime | None = _when()
    not_before: datetime | None = _when(index=True)  # the next try (a failure backs off)
    attempts: int = 0
    claimed_by: str | None = Field(default=None, sa_type=Text)
    claimed_until: datetime | None = _when()
    last_error: str | None = Field(default=None, sa_type=Text)


FEEDS: Table = FeedRow.__table__  # type: ignore[attr-defined]
ARTICLES: Table = ArticleRow.__table__  # type: ignore[attr-defined]
MATCHES: Table = MatchRow.__table__  # type: ignore[attr-defined]
DELIVERIES: Table = DeliveryRow.__table__  # type: ignore[attr-defined]
QUOTA: Table = DeliveryQuotaRow.__table__  # type: ignore[attr-defined]
STORIES: Table = StoryRow.__table__  # type: ignore[attr-defined]
STORY_TERMS: Table = StoryTermRow.__table__  # type: ignore[attr-defined]
STORY_ARTICLES: Table = StoryArticleRow.__table__  # type: ignore[attr-defined]
STORY_ALERTS: Table = StoryAlertRow.__table__  # type: ignore[attr-defined]
EMBEDDINGS: Table = EmbeddingRow.__table__  # type: ignore[attr-defined]
ABOUT_QUEUE: Table = AboutQueueRow.__table__  # type: ignore[attr-defined]
