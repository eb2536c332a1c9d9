"""orders, trades and ledger without foreign keys

Every order, trade and ledger row is written by the intake function or by settlement, which lock the
account (and position) rows they write for first and take the symbol from the instrument cache; nothing
deletes accounts or instruments. The foreign keys on these three append-heavy tables therefore never
caught anything, and they cost a trigger and a `FOR KEY SHARE` lookup per row written: in a `perf`
profile of the intake function the foreign-key triggers were ~20% of PostgreSQL's time, and the service
bench at saturation measured PostgreSQL's CPU per message 18–30% lower without them (benchmarks/RESULTS.md,
2026-12-07). `bourse audit` checks the references instead (schema.audit, "references").

Revision ID: 0008_hot_tables_no_fks
Revises: 0007_replace_requests
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008_hot_tables_no_fks"
down_revision: str | None = "0007_replace_requests"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> [(column, referred table, referred column)]
_REFERENCES = {
    "orders": [("account_id", "accounts", "id"), ("symbol", "instruments", "symbol")],
    "trades": [
        ("symbol", "instruments", "symbol"),
        ("buy_order_id", "orders", "id"),
        ("sell_order_id", "orders", "id"),
        ("buyer_account_id", "accounts", "id"),
        ("seller_account_id", "accounts", "id"),
    ],
    "ledger": [("account_id", "accounts", "id")],
}
# SQLite's foreign keys have no names: reflected under this convention, so they can be dropped by name.
_SQLITE_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def _name(table: str, column: str, referred: str, sqlite: bool) -> str:
    return f"fk_{table}_{column}_{referred}" if sqlite else f"{table}_{column}_fkey"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, refs in _REFERENCES.items():
        with op.batch_alter_table(table, naming_convention=_SQLITE_NAMES if sqlite else None) as batch:
            for column, referred, _ in refs:
                batch.drop_constraint(_name(table, column, referred, sqlite), type_="foreignkey")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, refs in _REFERENCES.items():
        with op.batch_alter_table(table) as batch:
            for column, referred, referred_column in refs:
                batch.create_foreign_key(
                    _name(table, column, referred, sqlite), referred, [column], [referred_column]
                )
