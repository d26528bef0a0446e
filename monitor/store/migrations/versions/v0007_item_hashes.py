"""Item skipping (ADR 0019): ``feeds.item_hashes``, the items of a feed's last document
whose entries are stored (item digest -> key digest, at most 1,000).

Empty for every feed after the upgrade: each feed's next changed body is parsed whole,
as before, and from then on only its new items are.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the column; nothing to backfill (no record means: parse the whole body)."""
    with op.batch_alter_table("feeds") as batch:
        batch.add_column(sa.Column("item_hashes", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("item_hashes")
