"""orders.cancel_requested_at: accepted cancel requests, kept so a lost Cancel is sent again

Revision ID: 0004_cancel_requests
Revises: 0003_place_orders_function
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_cancel_requests"
down_revision: str | None = "0003_place_orders_function"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("cancel_requested_at")
