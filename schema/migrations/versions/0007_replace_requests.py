"""orders.replace_*: the pending replace request, kept so a lost Replace is sent again; partial indexes
for the reconciler's scans

A PATCH answered 202 held the extra the new terms need (orders.pending_hold) and published a Replace. If
the stream lost it (a Redis restart, a crash between commit and XADD), nothing sent it again: the order
kept its old terms and the hold stayed reserved until the order ended. The request is now a row state:
its Replace's ts (the request's identity) and new terms, cleared by the settlement of that Replace. The
reconciler's scans (pending replaces; pending holds of ended orders) read partial indexes, which hold
only the few orders concerned; the pending-hold scan used to read every ended order of the symbol.

Upgrading with a replace in flight: its request was not recorded, so the matcher skips its Replace (it
applies a Replace only while it is the order's pending request) and its extra hold stays pending until
the order ends, when release_stranded_holds gives it back, as a lost Replace was handled before.

Revision ID: 0007_replace_requests
Revises: 0006_place_orders_no_key_locks
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_replace_requests"
down_revision: str | None = "0006_place_orders_no_key_locks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("replace_ts", "replace_qty", "replace_limit_price", "replace_stop_price")
_PARTIAL = {
    "ix_orders_replace_pending": "replace_ts IS NOT NULL",
    "ix_orders_pending_hold": "pending_hold > 0",
}


def upgrade() -> None:
    for name in _COLUMNS:
        op.add_column("orders", sa.Column(name, sa.BigInteger(), nullable=True))
    for name, where in _PARTIAL.items():
        op.create_index(
            name, "orders", ["symbol"], postgresql_where=sa.text(where), sqlite_where=sa.text(where)
        )


def downgrade() -> None:
    for name in _PARTIAL:
        op.drop_index(name, table_name="orders")
    with op.batch_alter_table("orders") as batch:
        for name in _COLUMNS:
            batch.drop_column(name)
