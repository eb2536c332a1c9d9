"""equity snapshots and instrument closes (end-of-day job, analytics, leaderboard)

Revision ID: 0002_analytics
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_analytics"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "equity_snapshots",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("equity", sa.BigInteger(), nullable=False),
        sa.Column("cash", sa.BigInteger(), nullable=False),
        sa.Column("positions_value", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("account_id", "day", name="uq_equity_snapshots_account_day"),
    )
    op.create_index(
        "ix_equity_snapshots_day_account",
        "equity_snapshots",
        ["day", "account_id"],
        postgresql_include=["equity"],
    )
    op.create_table(
        "instrument_closes",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("symbol", sa.String(length=12), sa.ForeignKey("instruments.symbol"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("close", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("symbol", "day", name="uq_instrument_closes_symbol_day"),
    )


def downgrade() -> None:
    op.drop_table("instrument_closes")
    op.drop_index("ix_equity_snapshots_day_account", table_name="equity_snapshots")
    op.drop_table("equity_snapshots")
