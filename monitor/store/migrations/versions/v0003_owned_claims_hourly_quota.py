"""Owned delivery claims and an hourly quota per channel.

- deliveries: ``claim_token``, the owner of a claim (one token per claim). Settling,
  renewing or deferring a delivery names the token, so a worker whose claim expired
  and was taken by another can no longer change the row.
- ``delivery_quota``: one row per (channel, clock hour) counting the individual
  messages given out, so ``max_per_hour`` holds across threads and daemons. The
  current hour is filled in from the deliveries already sent in it, so the limit
  also holds across the upgrade.

Older code cannot open this revision (it is unknown to it), so ``schema_version``
stays 2.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_DELIVERIES = sa.table(
    "deliveries",
    sa.column("channel", sa.Text()),
    sa.column("state", sa.String()),
    sa.column("batched", sa.Boolean()),
    sa.column("sent_at", sa.DateTime()),
)


def upgrade() -> None:
    """Add the claim owner and the quota table; count the current hour's messages."""
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("claim_token", sa.Text(), nullable=True))
    quota = op.create_table(
        "delivery_quota",
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("hour", sa.DateTime(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "hour"),
    )
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)  # naive UTC, as stored
    sent = (
        op.get_bind()
        .execute(
            sa.select(_DELIVERIES.c.channel, sa.func.count())
            .where(
                _DELIVERIES.c.state == "sent",
                _DELIVERIES.c.batched.is_(False),
                _DELIVERIES.c.sent_at >= hour,
            )
            .group_by(_DELIVERIES.c.channel)
        )
        .all()
    )
    if sent:
        op.bulk_insert(quota, [{"channel": c, "hour": hour, "used": int(n)} for c, n in sent])


def downgrade() -> None:
    """Back to unowned claims and a limit counted from the deliveries table."""
    op.drop_table("delivery_quota")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("claim_token")
