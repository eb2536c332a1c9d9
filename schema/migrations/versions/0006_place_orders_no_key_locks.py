"""bourse_place_orders locks its rows FOR NO KEY UPDATE (PostgreSQL only)

0005 locked the batch's accounts and positions FOR UPDATE. That lock also blocks the FOR KEY SHARE a
foreign-key check takes: settlement's INSERTs of trades and ledger rows check their accounts, and with
settlement now locking its own rows first (SELECT ... FOR NO KEY UPDATE), an intake batch holding an
account FOR UPDATE and waiting for a position settlement held was a deadlock (seen in the server log
under the agents bench). The function only changes non-key columns, so FOR NO KEY UPDATE, the lock its
UPDATEs take anyway, is enough. The rest is 0005's function, unchanged.

Revision ID: 0006_place_orders_no_key_locks
Revises: 0005_place_orders_locks_first
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006_place_orders_no_key_locks"
down_revision: str | None = "0005_place_orders_locks_first"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLACE_ORDERS = """
CREATE OR REPLACE FUNCTION bourse_place_orders(
    p_account bigint[], p_coid text[], p_symbol text[], p_side text[], p_type text[], p_tif text[],
    p_qty bigint[], p_limit bigint[], p_stop bigint[], p_expire timestamptz[], p_post_only boolean[],
    p_stp text[], p_hold bigint[], p_now timestamptz[]
) RETURNS TABLE (out_idx integer, out_order_id bigint, out_outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    new_id bigint;
    buy boolean;
BEGIN
    -- Every row this batch will hold, locked first and in settlement's order (see the docstring).
    PERFORM 1 FROM accounts
     WHERE id IN (SELECT t.a FROM unnest(p_account, p_side, p_hold) AS t(a, s, h)
                   WHERE t.s = 'buy' AND t.h > 0)
     ORDER BY id FOR NO KEY UPDATE;
    PERFORM 1 FROM positions
     WHERE (account_id, symbol) IN (SELECT t.a, t.sym FROM unnest(p_account, p_symbol, p_side, p_hold)
                                     AS t(a, sym, s, h) WHERE t.s <> 'buy' AND t.h > 0)
     ORDER BY account_id, symbol FOR NO KEY UPDATE;
    FOR i IN 1 .. coalesce(array_length(p_account, 1), 0) LOOP
        buy := p_side[i] = 'buy';
        new_id := NULL;
        INSERT INTO orders (
            account_id, client_order_id, symbol, side, type, time_in_force, qty, limit_price,
            stop_price, expire_at, post_only, stp, status, filled_qty, filled_notional, canceled_qty,
            hold_cash, hold_qty, pending_hold, reason, triggered, seq, created_at, updated_at
        ) VALUES (
            p_account[i], p_coid[i], p_symbol[i], p_side[i], p_type[i], p_tif[i], p_qty[i], p_limit[i],
            p_stop[i], p_expire[i], p_post_only[i], p_stp[i], 'new', 0, 0, 0,
            CASE WHEN buy THEN p_hold[i] ELSE 0 END, CASE WHEN buy THEN 0 ELSE p_hold[i] END,
            0, NULL, false, NULL, p_now[i], p_now[i]
        )
        ON CONFLICT (account_id, client_order_id) DO NOTHING
        RETURNING id INTO new_id;
        IF new_id IS NULL THEN
            out_idx := i; out_order_id := NULL; out_outcome := 'duplicate';
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF p_hold[i] > 0 THEN
            IF buy THEN
                UPDATE accounts
                   SET cash_available = cash_available - p_hold[i], cash_held = cash_held + p_hold[i]
                 WHERE id = p_account[i] AND cash_available >= p_hold[i];
            ELSE
                UPDATE positions SET held_qty = held_qty + p_hold[i]
                 WHERE account_id = p_account[i] AND symbol = p_symbol[i] AND qty - held_qty >= p_hold[i];
            END IF;
            IF NOT FOUND THEN
                DELETE FROM orders WHERE id = new_id;
                out_idx := i; out_order_id := NULL; out_outcome := 'insufficient';
                RETURN NEXT;
                CONTINUE;
            END IF;
            INSERT INTO ledger (
                account_id, kind, symbol, cash_available_delta, cash_held_delta, qty_delta,
                held_qty_delta, order_id, trade_id, created_at
            ) VALUES (
                p_account[i], 'hold', CASE WHEN buy THEN NULL ELSE p_symbol[i] END,
                CASE WHEN buy THEN -p_hold[i] ELSE 0 END, CASE WHEN buy THEN p_hold[i] ELSE 0 END,
                0, CASE WHEN buy THEN 0 ELSE p_hold[i] END, new_id, NULL, p_now[i]
            );
        END IF;
        out_idx := i; out_order_id := new_id; out_outcome := 'created';
        RETURN NEXT;
    END LOOP;
END
$$;
"""

# 0005's text, to go back to.
PLACE_ORDERS_0005 = """
CREATE OR REPLACE FUNCTION bourse_place_orders(
    p_account bigint[], p_coid text[], p_symbol text[], p_side text[], p_type text[], p_tif text[],
    p_qty bigint[], p_limit bigint[], p_stop bigint[], p_expire timestamptz[], p_post_only boolean[],
    p_stp text[], p_hold bigint[], p_now timestamptz[]
) RETURNS TABLE (out_idx integer, out_order_id bigint, out_outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    new_id bigint;
    buy boolean;
BEGIN
    -- Every row this batch will hold, locked first and in settlement's order (see the docstring).
    PERFORM 1 FROM accounts
     WHERE id IN (SELECT t.a FROM unnest(p_account, p_side, p_hold) AS t(a, s, h)
                   WHERE t.s = 'buy' AND t.h > 0)
     ORDER BY id FOR UPDATE;
    PERFORM 1 FROM positions
     WHERE (account_id, symbol) IN (SELECT t.a, t.sym FROM unnest(p_account, p_symbol, p_side, p_hold)
                                     AS t(a, sym, s, h) WHERE t.s <> 'buy' AND t.h > 0)
     ORDER BY account_id, symbol FOR UPDATE;
    FOR i IN 1 .. coalesce(array_length(p_account, 1), 0) LOOP
        buy := p_side[i] = 'buy';
        new_id := NULL;
        INSERT INTO orders (
            account_id, client_order_id, symbol, side, type, time_in_force, qty, limit_price,
            stop_price, expire_at, post_only, stp, status, filled_qty, filled_notional, canceled_qty,
            hold_cash, hold_qty, pending_hold, reason, triggered, seq, created_at, updated_at
        ) VALUES (
            p_account[i], p_coid[i], p_symbol[i], p_side[i], p_type[i], p_tif[i], p_qty[i], p_limit[i],
            p_stop[i], p_expire[i], p_post_only[i], p_stp[i], 'new', 0, 0, 0,
            CASE WHEN buy THEN p_hold[i] ELSE 0 END, CASE WHEN buy THEN 0 ELSE p_hold[i] END,
            0, NULL, false, NULL, p_now[i], p_now[i]
        )
        ON CONFLICT (account_id, client_order_id) DO NOTHING
        RETURNING id INTO new_id;
        IF new_id IS NULL THEN
            out_idx := i; out_order_id := NULL; out_outcome := 'duplicate';
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF p_hold[i] > 0 THEN
            IF buy THEN
                UPDATE accounts
                   SET cash_available = cash_available - p_hold[i], cash_held = cash_held + p_hold[i]
                 WHERE id = p_account[i] AND cash_available >= p_hold[i];
            ELSE
                UPDATE positions SET held_qty = held_qty + p_hold[i]
                 WHERE account_id = p_account[i] AND symbol = p_symbol[i] AND qty - held_qty >= p_hold[i];
            END IF;
            IF NOT FOUND THEN
                DELETE FROM orders WHERE id = new_id;
                out_idx := i; out_order_id := NULL; out_outcome := 'insufficient';
                RETURN NEXT;
                CONTINUE;
            END IF;
            INSERT INTO ledger (
                account_id, kind, symbol, cash_available_delta, cash_held_delta, qty_delta,
                held_qty_delta, order_id, trade_id, created_at
            ) VALUES (
                p_account[i], 'hold', CASE WHEN buy THEN NULL ELSE p_symbol[i] END,
                CASE WHEN buy THEN -p_hold[i] ELSE 0 END, CASE WHEN buy THEN p_hold[i] ELSE 0 END,
                0, CASE WHEN buy THEN 0 ELSE p_hold[i] END, new_id, NULL, p_now[i]
            );
        END IF;
        out_idx := i; out_order_id := new_id; out_outcome := 'created';
        RETURN NEXT;
    END LOOP;
END
$$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PLACE_ORDERS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PLACE_ORDERS_0005)
