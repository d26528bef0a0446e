"""The about queue (ADR 0020): articles some ``about`` rule may still match, waiting for
the model, so that a poll never waits for it.

- ``about_queue``: ``article_id`` (the article, primary key), ``state`` (``pending`` or
  ``gave_up``), ``queued_at``, ``not_before`` (indexed: the next try), ``attempts``,
  ``claimed_by`` / ``claimed_until`` (the about job's owned lease) and ``last_error``.
  Empty after the upgrade: articles stored before it were judged in their poll.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the queue table."""
    op.create_table(
        "about_queue",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("queued_at", sa.DateTime(), nullable=True),
        sa.Column("not_before", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"]),
        sa.PrimaryKeyConstraint("article_id"),
    )
    op.create_index("ix_about_queue_not_before", "about_queue", ["not_before"])


def downgrade() -> None:
    """Drop it (pending rows are lost: their articles are not judged by meaning)."""
    op.drop_index("ix_about_queue_not_before", table_name="about_queue")
    op.drop_table("about_queue")
