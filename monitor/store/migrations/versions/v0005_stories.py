"""Stories: one alert per story across feeds (issue 11).

- ``stories``: one row per story, its bounded signature as JSON (``monitor.stories.codec``).
- ``story_terms``: the story index, term -> stories that posted it.
- ``story_articles``: which story each matched article reports on, and why.
- ``story_alerts``: the alert as the pair (story, rule), unique.
- deliveries: ``story_id``, ``kind`` (``alert`` or ``update``) and ``update_slot``
  (unique per channel: at most one threaded update per story an hour).

Existing alerts keep their deliveries; articles stored before this revision belong to
no story, so a later report of the same event alerts once more (one duplicate, never
a loss).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the story tables; give deliveries their story columns."""
    _stories()
    op.create_table(
        "story_terms",
        sa.Column("term", sa.Text(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("posted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["story_id"], ["stories.id"]),
        sa.PrimaryKeyConstraint("term", "story_id"),
    )
    op.create_index("ix_story_terms_story_id", "story_terms", ["story_id"])
    op.create_index("ix_story_terms_term_posted", "story_terms", ["term", "posted_at"])
    op.create_table(
        "story_articles",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"]),
        sa.ForeignKeyConstraint(["story_id"], ["stories.id"]),
        sa.PrimaryKeyConstraint("article_id"),
    )
    op.create_index("ix_story_articles_story_id", "story_articles", ["story_id"])
    _story_alerts()
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("story_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("kind", sa.Text(), nullable=False, server_default="alert"))
        batch.add_column(sa.Column("update_slot", sa.Text(), nullable=True))
        batch.create_index("ix_deliveries_story_id", ["story_id"])
        batch.create_foreign_key("fk_deliveries_story_id_stories", "stories", ["story_id"], ["id"])
        batch.create_unique_constraint("uq_deliveries_channel_update_slot", ["channel", "update_slot"])


def _stories() -> None:
    op.create_table(
        "stories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("first_article_id", sa.Integer(), nullable=True),
        sa.Column("first_seen", sa.DateTime(), nullable=True),
        sa.Column("last_seen", sa.DateTime(), nullable=True),
        sa.Column("articles", sa.Integer(), nullable=False),
        sa.Column("lang", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["first_article_id"], ["articles.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_stories_last_seen", "stories", ["last_seen"])


def _story_alerts() -> None:
    op.create_table(
        "story_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"]),
        sa.ForeignKeyConstraint(["story_id"], ["stories.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("story_id", "rule", name="uq_story_alerts_story_rule"),
    )
    op.create_index("ix_story_alerts_story_id", "story_alerts", ["story_id"])


def downgrade() -> None:
    """Drop the story tables and columns (the alerts themselves stay, per article)."""
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint("uq_deliveries_channel_update_slot", type_="unique")
        batch.drop_constraint("fk_deliveries_story_id_stories", type_="foreignkey")
        batch.drop_index("ix_deliveries_story_id")
        batch.drop_column("update_slot")
        batch.drop_column("kind")
        batch.drop_column("story_id")
    for table in ("story_alerts", "story_articles", "story_terms", "stories"):
        op.drop_table(table)
