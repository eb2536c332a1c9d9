"""bourse_place_orders inserts the batch's orders and ledger rows with one statement each (PostgreSQL only)

0006's function ran three statements per order (the order's INSERT, the hold's UPDATE, the ledger's
INSERT). In a `perf` profile of PostgreSQL running it, executor start-up per statement was 27% of the
time. Here the orders are inserted by one `INSERT … SELECT FROM unnest … ON CONFLICT DO NOTHING` in the
batch's order (so the ids follow it, as before), each created order is then held by its conditional
UPDATE in that order, the orders whose hold failed are deleted, and the holds' ledger rows are inserted
by one statement: per order one statement instead of three, and the same outcome for every order
(tests/schema/test_intake_batch.py compares batches with one transaction per order). A batch that
repeats a client_order_id goes through 0006's loop, kept as `bourse_place_orders_one_by_one`: there each
order sees the ones before it (a first that fails its hold frees the id for the second).

Revision ID: 0009_place_orders_set_based
Revises: 0008_hot_tables_no_fks
"""

from collections.abc import Sequence
from importlib import import_module

from alembic import op

revision: str = "0009_place_orders_set_based"
down_revision: str | None = "0008_hot_tables_no_fks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PLACE_ORDERS_0006: str = import_module(
    "schema.migrations.versions.0006_place_orders_no_key_locks"
).PLACE_ORDERS
ONE_BY_ONE = _PLACE_ORDERS_0006.replace(
    "CREATE OR REPLACE FUNCTION bourse_place_orders(",
    "CREATE OR REPLACE FUNCTION bourse_place_orders_one_by_one(",
    1,
)

PLACE_ORDERS = """CREATE OR REPLACE FUNCTION bourse_place_orders(
    p_account bigint[], p_coid text[], p_symbol text[], p_side text[], p_type text[], p_tif text[],
    p_qty bigint[], p_limit bigint[], p_stop bigint[], p_expire timestamptz[], p_post_only boolean[],
    p_stp text[], p_hold bigint[], p_now timestamptz[]
) RETURNS TABLE (out_idx integer, out_order_id bigint, out_outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    n integer := coalesce(array_length(p_account, 1), 0);
    ids bigint[];
    i integer;
    new_id bigint;
    buy boolean;
    failed bigint[] := '{}';
    held integer[] := '{}';
BEGIN
    IF (SELECT count(DISTINCT (a, c)) FROM unnest(p_account, p_coid) AS k(a, c)) < n THEN
        -- A client_order_id repeated within the batch: each order must see the ones before it (the first
        -- may fail its hold and free the id), so the batch goes through 0006's loop, one order at a time.
        RETURN QUERY SELECT * FROM bourse_place_orders_one_by_one(
            p_account, p_coid, p_symbol, p_side, p_type, p_tif, p_qty, p_limit, p_stop, p_expire,
            p_post_only, p_stp, p_hold, p_now);
        RETURN;
    END IF;
    -- Every row this batch will hold, locked first and in settlement's order (migration 0006).
    PERFORM 1 FROM accounts
     WHERE id IN (SELECT t.a FROM unnest(p_account, p_side, p_hold) AS t(a, s, h)
                   WHERE t.s = 'buy' AND t.h > 0)
     ORDER BY id FOR NO KEY UPDATE;
    PERFORM 1 FROM positions
     WHERE (account_id, symbol) IN (SELECT t.a, t.sym FROM unnest(p_account, p_symbol, p_side, p_hold)
                                     AS t(a, sym, s, h) WHERE t.s <> 'buy' AND t.h > 0)
     ORDER BY account_id, symbol FOR NO KEY UPDATE;
    -- Every order inserted by one statement, in the given order (ids follow it); a client_order_id that
    -- is taken, or repeated within the batch, inserts nothing: the element's id stays NULL (duplicate).
    ids := array_fill(NULL::bigint, ARRAY[n]);
    FOR i, new_id IN
        WITH ins AS (
            INSERT INTO orders (
                account_id, client_order_id, symbol, side, type, time_in_force, qty, limit_price,
                stop_price, expire_at, post_only, stp, status, filled_qty, filled_notional, canceled_qty,
                hold_cash, hold_qty, pending_hold, reason, triggered, seq, created_at, updated_at
            )
            SELECT a, c, sy, sd, ty, tf, q, lp, sp, ex, po, st, 'new', 0, 0, 0,
                   CASE WHEN sd = 'buy' THEN h ELSE 0 END, CASE WHEN sd = 'buy' THEN 0 ELSE h END,
                   0, NULL, false, NULL, nw, nw
            FROM unnest(p_account, p_coid, p_symbol, p_side, p_type, p_tif, p_qty, p_limit, p_stop,
                        p_expire, p_post_only, p_stp, p_hold, p_now)
                 WITH ORDINALITY AS u(a, c, sy, sd, ty, tf, q, lp, sp, ex, po, st, h, nw, ord)
            ORDER BY ord
            ON CONFLICT (account_id, client_order_id) DO NOTHING
            RETURNING id, account_id, client_order_id
        )
        SELECT DISTINCT ON (k.a, k.c) k.ord::integer, ins.id
          FROM ins JOIN unnest(p_account, p_coid) WITH ORDINALITY AS k(a, c, ord)
            ON k.a = ins.account_id AND k.c = ins.client_order_id
         ORDER BY k.a, k.c, k.ord
    LOOP
        ids[i] := new_id;
    END LOOP;
    FOR i IN 1 .. n LOOP
        IF ids[i] IS NULL THEN
            out_idx := i; out_order_id := NULL; out_outcome := 'duplicate';
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF p_hold[i] > 0 THEN
            buy := p_side[i] = 'buy';
            IF buy THEN
                UPDATE accounts
                   SET cash_available = cash_available - p_hold[i], cash_held = cash_held + p_hold[i]
                 WHERE id = p_account[i] AND cash_available >= p_hold[i];
            ELSE
                UPDATE positions SET held_qty = held_qty + p_hold[i]
                 WHERE account_id = p_account[i] AND symbol = p_symbol[i] AND qty - held_qty >= p_hold[i];
            END IF;
            IF NOT FOUND THEN
                failed := failed || ids[i];
                out_idx := i; out_order_id := NULL; out_outcome := 'insufficient';
                RETURN NEXT;
                CONTINUE;
            END IF;
            held := held || i;
        END IF;
        out_idx := i; out_order_id := ids[i]; out_outcome := 'created';
        RETURN NEXT;
    END LOOP;
    IF cardinality(failed) > 0 THEN
        DELETE FROM orders WHERE id = ANY(failed);
    END IF;
    -- The holds' ledger rows, in the batch's order, by one statement.
    INSERT INTO ledger (
        account_id, kind, symbol, cash_available_delta, cash_held_delta, qty_delta, held_qty_delta,
        order_id, trade_id, created_at
    )
    SELECT p_account[j], 'hold', CASE WHEN p_side[j] = 'buy' THEN NULL ELSE p_symbol[j] END,
           CASE WHEN p_side[j] = 'buy' THEN -p_hold[j] ELSE 0 END,
           CASE WHEN p_side[j] = 'buy' THEN p_hold[j] ELSE 0 END,
           0, CASE WHEN p_side[j] = 'buy' THEN 0 ELSE p_hold[j] END, ids[j], NULL, p_now[j]
      FROM unnest(held) WITH ORDINALITY AS h(j, ord)
     ORDER BY ord;
END
$$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ONE_BY_ONE)
        op.execute(PLACE_ORDERS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PLACE_ORDERS_0006)
        op.execute(
            "DROP FUNCTION bourse_place_orders_one_by_one(bigint[], text[], text[], text[], text[], text[],"
            " bigint[], bigint[], bigint[], timestamptz[], boolean[], text[], bigint[], timestamptz[])"
        )
