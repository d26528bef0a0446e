"""Public origins kept (ADR 0026): ``feeds.public_seen_at``, when the feed was first
fetched as a public origin; from then on it is fetched as one after every restart, so
its publisher cannot buy the intranet's trust by answering with a private address.

Empty for every feed after the upgrade: each feed's next fetch under public trust sets it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the column; nothing to backfill (the next public fetch records it)."""
    with op.batch_alter_table("feeds") as batch:
        batch.add_column(sa.Column("public_seen_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("public_seen_at")
