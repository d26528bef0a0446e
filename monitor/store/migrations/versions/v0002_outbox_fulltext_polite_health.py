"""Everything added after the first release: outbox keys and notices, full text,
polite polling, feed health.

- feeds: ``fetch_url`` (permanent redirects), ``disabled_reason`` (HTTP 410),
  ``last_new_at`` (backfilled from the feed's newest article), ``health``, and the
  poller lease (``leased_until``, ``leased_by``) that lets several daemons share feeds,
  and ``body_hash`` (an unchanged body from a server without validators is not parsed).
- articles: ``page_text`` and ``page_error`` (the article's own web page).
- deliveries: ``message_key`` (backfilled), ``batched``, ``done_targets``,
  ``notice_title`` and ``notice_body``; ``article_id`` may be NULL (a feed-health notice).
- ``schema_version`` becomes 2, which the first release refuses to run on: it would
  write deliveries without a message key.

New NOT NULL columns get a server default, so existing rows are filled in place
(``ALTER TABLE ... ADD COLUMN`` on both backends, no table copy); only ``deliveries``
is rebuilt on SQLite, to change its column constraints.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_BATCH = 500
_FEEDS = sa.table("feeds", sa.column("id", sa.Integer()), sa.column("last_new_at", sa.DateTime()))
_ARTICLES = sa.table(
    "articles",
    sa.column("id", sa.Integer()),
    sa.column("feed_id", sa.Integer()),
    sa.column("key", sa.Text()),
    sa.column("fetched_at", sa.DateTime()),
)
_DELIVERIES = sa.table(
    "deliveries",
    sa.column("id", sa.Integer()),
    sa.column("article_id", sa.Integer()),
    sa.column("channel", sa.Text()),
    sa.column("message_key", sa.Text()),
)
_SCHEMA_VERSION = sa.table(
    "schema_version", sa.column("id", sa.Integer()), sa.column("version", sa.Integer())
)


def upgrade() -> None:
    """Add the columns, fill them for existing rows, then tighten the constraints."""
    _add_feed_columns()
    _add_article_columns()
    _add_delivery_columns()
    _backfill_last_new_at()
    _backfill_message_keys()
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column("article_id", existing_type=sa.Integer(), nullable=True)
        batch.alter_column("message_key", existing_type=sa.Text(), nullable=False)
    _set_schema_version(2)


def downgrade() -> None:
    """Back to the first release's tables; feed-health notices have no place there."""
    _set_schema_version(1)
    op.execute(_DELIVERIES.delete().where(_DELIVERIES.c.article_id.is_(None)))
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column("article_id", existing_type=sa.Integer(), nullable=False)
        for column in ("notice_title", "notice_body", "message_key", "batched", "done_targets"):
            batch.drop_column(column)
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("page_text")
        batch.drop_column("page_error")
    with op.batch_alter_table("feeds") as batch:
        for column in (
            "fetch_url",
            "disabled_reason",
            "last_new_at",
            "health",
            "leased_until",
            "leased_by",
            "body_hash",
        ):
            batch.drop_column(column)


def _add_feed_columns() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.add_column(sa.Column("fetch_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("disabled_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("last_new_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("health", sa.String(), nullable=False, server_default="ok"))
        batch.add_column(sa.Column("leased_until", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("leased_by", sa.Text(), nullable=True))
        batch.add_column(sa.Column("body_hash", sa.Text(), nullable=True))


def _add_article_columns() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("page_text", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("page_error", sa.Text(), nullable=True))


def _add_delivery_columns() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("notice_title", sa.Text(), nullable=True))
        batch.add_column(sa.Column("notice_body", sa.Text(), nullable=True))
        batch.add_column(sa.Column("message_key", sa.Text(), nullable=True))
        batch.add_column(sa.Column("batched", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("done_targets", sa.Text(), nullable=False, server_default="[]"))


def _backfill_last_new_at() -> None:
    """A feed last brought something new when its newest article arrived."""
    newest = (
        sa.select(sa.func.max(_ARTICLES.c.fetched_at))
        .where(_ARTICLES.c.feed_id == _FEEDS.c.id)
        .scalar_subquery()
    )
    op.execute(_FEEDS.update().values(last_new_at=newest))


def _backfill_message_keys() -> None:
    """The key the outbox gives a new delivery: feed, article key and channel."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_DELIVERIES.c.id, _ARTICLES.c.feed_id, _ARTICLES.c.key, _DELIVERIES.c.channel)
        .join(_ARTICLES, _ARTICLES.c.id == _DELIVERIES.c.article_id)
        .where(_DELIVERIES.c.message_key.is_(None))
    ).all()
    update = (
        _DELIVERIES.update()
        .where(_DELIVERIES.c.id == sa.bindparam("delivery_id"))
        .values(message_key=sa.bindparam("key_value"))
    )
    for start in range(0, len(rows), _BATCH):
        batch = rows[start : start + _BATCH]
        bind.execute(
            update,
            [{"delivery_id": r.id, "key_value": _digest(str(r.feed_id), r.key, r.channel)} for r in batch],
        )


def _digest(*parts: str) -> str:
    """``monitor.identity.digest`` as it was when this revision was written, frozen here."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:32]


def _set_schema_version(version: int) -> None:
    op.execute(_SCHEMA_VERSION.delete())
    op.bulk_insert(_SCHEMA_VERSION, [{"id": 1, "version": version}])
