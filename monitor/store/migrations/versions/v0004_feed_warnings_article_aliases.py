"""Feed warnings and article alias keys.

- feeds: ``last_warning``, ``last_warning_at``: the latest thing a poll had to leave
  out and why (an entry that could not be read, a page over the poll's budget), so
  ``monitor status`` shows it.
- articles: ``alias_key`` (normalised link + title, ``monitor.identity.alias_key``) and
  an index on (feed_id, alias_key): an entry whose guid changes on every poll is still
  recognised. Filled for the articles fetched in the two days before the newest one,
  which is where a publisher that rotates guids keeps its entries; older articles have
  left the feed's document long ago.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

from monitor.identity import alias_key

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_BATCH = 500
_BACKFILL = timedelta(days=2)
_ARTICLES = sa.table(
    "articles",
    sa.column("id", sa.Integer()),
    sa.column("link", sa.Text()),
    sa.column("title", sa.Text()),
    sa.column("fetched_at", sa.DateTime()),
    sa.column("alias_key", sa.Text()),
)


def upgrade() -> None:
    """Add the columns and the index, then fill the aliases of recent articles."""
    with op.batch_alter_table("feeds") as batch:
        batch.add_column(sa.Column("last_warning", sa.Text(), nullable=True))
        batch.add_column(sa.Column("last_warning_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("alias_key", sa.Text(), nullable=True))
    op.create_index("ix_articles_feed_alias", "articles", ["feed_id", "alias_key"])
    _backfill_aliases()


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_index("ix_articles_feed_alias", table_name="articles")
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("alias_key")
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("last_warning_at")
        batch.drop_column("last_warning")


def _backfill_aliases() -> None:
    bind = op.get_bind()
    newest = bind.execute(sa.select(sa.func.max(_ARTICLES.c.fetched_at))).scalar()
    if newest is None:
        return
    rows = bind.execute(
        sa.select(_ARTICLES.c.id, _ARTICLES.c.link, _ARTICLES.c.title).where(
            _ARTICLES.c.fetched_at >= newest - _BACKFILL, _ARTICLES.c.link.is_not(None)
        )
    ).all()
    update = (
        _ARTICLES.update()
        .where(_ARTICLES.c.id == sa.bindparam("article_id"))
        .values(alias_key=sa.bindparam("alias_value"))
    )
    values = [{"article_id": r.id, "alias_value": alias_key(r.link, r.title or "")} for r in rows]
    values = [v for v in values if v["alias_value"] is not None]
    for start in range(0, len(values), _BATCH):
        bind.execute(update, values[start : start + _BATCH])
