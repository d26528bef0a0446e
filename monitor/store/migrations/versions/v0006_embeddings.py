"""Embeddings of articles for ``about`` rules (ADR 0018).

- ``embeddings``: ``key`` (``AboutMatcher.content_key``: the embedded passage and the
  model), ``vector`` (``monitor.semantic.codec`` bytes, float16, about 800 bytes) and
  ``created_at`` (indexed: pruned with the articles). Nothing to fill: vectors are made
  when an ``about`` rule first needs them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the embeddings table."""
    op.create_table(
        "embeddings",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_embeddings_created_at", "embeddings", ["created_at"])


def downgrade() -> None:
    """Drop it (the vectors are a cache: made again when needed)."""
    op.drop_index("ix_embeddings_created_at", table_name="embeddings")
    op.drop_table("embeddings")
