"""bourse_place_orders decides a batch in memory and writes it with one statement per table (PostgreSQL)

Same signature, same outcomes, same locks (accounts by id, then positions by account and symbol, before
anything is written) as 0005's function. 0005 ran three statements per order (INSERT the order, the
conditional hold UPDATE, INSERT the ledger row) and was about half of PostgreSQL's CPU under the service
bench. Here, after the locks, the function reads the locked balances and the client_order_ids already
taken, walks the batch in order deciding each order's outcome on those numbers (the input is sorted by
account, see schema.intake_batch.lock_order, so each account's state is a few variables), and then writes
the created orders, the accounts' and positions' holds and the ledger rows with one statement each.

A client_order_id inserted by another transaction between the read and the insert (two API processes
placing the same retry at once) makes the INSERT skip a row the walk counted as created: the function
then raises serialization_failure (40001) and the API runs the batch again, when the read sees it.

Revision ID: 0006_place_orders_set_based
Revises: 0005_place_orders_locks_first
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006_place_orders_set_based"
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
    n integer := coalesce(array_length(p_account, 1), 0);
    outcome text[];
    ids bigint[];
    acc_id bigint[];
    acc_avail bigint[];
    pos_acct bigint[];
    pos_sym text[];
    pos_avail bigint[];
    existing text[];       -- 'account/client_order_id' already in orders (retries)
    cur_coids text[];      -- client_order_ids created earlier in this batch by the current account
    cur_account bigint := NULL;
    a integer := 1;        -- walks acc_id (sorted, like the input's accounts)
    ps integer := 1;       -- first position of the current account in pos_* (sorted by account, symbol)
    k integer;
    created integer := 0;
    new_idx integer[];
    new_ids bigint[];
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;
    outcome := array_fill(NULL::text, ARRAY[n]);
    ids := array_fill(NULL::bigint, ARRAY[n]);
    -- The rows this batch may hold, locked first and in settlement's order (0005), and their balances.
    SELECT coalesce(array_agg(l.id ORDER BY l.id), '{}'),
           coalesce(array_agg(l.cash_available ORDER BY l.id), '{}')
      INTO acc_id, acc_avail
      FROM (SELECT id, cash_available FROM accounts
             WHERE id IN (SELECT t.a FROM unnest(p_account, p_side, p_hold) AS t(a, s, h)
                           WHERE t.s = 'buy' AND t.h > 0)
             ORDER BY id FOR UPDATE) AS l;
    SELECT coalesce(array_agg(l.account_id ORDER BY l.account_id, l.symbol), '{}'),
           coalesce(array_agg(l.symbol ORDER BY l.account_id, l.symbol), '{}'),
           coalesce(array_agg(l.free ORDER BY l.account_id, l.symbol), '{}')
      INTO pos_acct, pos_sym, pos_avail
      FROM (SELECT account_id, symbol, qty - held_qty AS free FROM positions
             WHERE (account_id, symbol) IN (SELECT t.a, t.sym FROM unnest(p_account, p_symbol, p_side, p_hold)
                                             AS t(a, sym, s, h) WHERE t.s <> 'buy' AND t.h > 0)
             ORDER BY account_id, symbol FOR UPDATE) AS l;
    SELECT coalesce(array_agg(o.account_id || '/' || o.client_order_id), '{}') INTO existing
      FROM orders AS o
     WHERE (o.account_id, o.client_order_id) IN (SELECT t.a, t.c FROM unnest(p_account, p_coid) AS t(a, c));

    -- Each order's outcome, in order, on the locked numbers: what 0005's loop decided row by row.
    FOR i IN 1 .. n LOOP
        IF cur_account IS DISTINCT FROM p_account[i] THEN
            cur_account := p_account[i];
            cur_coids := '{}';
        END IF;
        IF p_coid[i] = ANY(cur_coids)
           OR (cardinality(existing) > 0 AND (p_account[i] || '/' || p_coid[i]) = ANY(existing)) THEN
            outcome[i] := 'duplicate';
            CONTINUE;
        END IF;
        IF p_hold[i] > 0 THEN
            IF p_side[i] = 'buy' THEN
                WHILE a <= cardinality(acc_id) AND acc_id[a] < p_account[i] LOOP
                    a := a + 1;
                END LOOP;
                IF a > cardinality(acc_id) OR acc_id[a] <> p_account[i] OR acc_avail[a] < p_hold[i] THEN
                    outcome[i] := 'insufficient';
                    CONTINUE;
                END IF;
                acc_avail[a] := acc_avail[a] - p_hold[i];
            ELSE
                WHILE ps <= cardinality(pos_acct) AND pos_acct[ps] < p_account[i] LOOP
                    ps := ps + 1;
                END LOOP;
                k := ps;
                WHILE k <= cardinality(pos_acct) AND pos_acct[k] = p_account[i]
                      AND pos_sym[k] <> p_symbol[i] LOOP
                    k := k + 1;
                END LOOP;
                IF k > cardinality(pos_acct) OR pos_acct[k] <> p_account[i] OR pos_avail[k] < p_hold[i] THEN
                    outcome[i] := 'insufficient';
                    CONTINUE;
                END IF;
                pos_avail[k] := pos_avail[k] - p_hold[i];
            END IF;
        END IF;
        outcome[i] := 'created';
        cur_coids := cur_coids || p_coid[i];
        created := created + 1;
    END LOOP;

    IF created > 0 THEN
        WITH src AS (
            SELECT t.* FROM unnest(p_account, p_coid, p_symbol, p_side, p_type, p_tif, p_qty, p_limit, p_stop,
                                   p_expire, p_post_only, p_stp, p_hold, p_now)
                   WITH ORDINALITY AS t(acct, coid, sym, side, typ, tif, qty, lim, stp_price, exp, post,
                                        stp, hold, ts, idx)
             WHERE outcome[t.idx::integer] = 'created'
        ), ins AS (
            INSERT INTO orders (
                account_id, client_order_id, symbol, side, type, time_in_force, qty, limit_price,
                stop_price, expire_at, post_only, stp, status, filled_qty, filled_notional, canceled_qty,
                hold_cash, hold_qty, pending_hold, reason, triggered, seq, created_at, updated_at
            )
            SELECT acct, coid, sym, side, typ, tif, qty, lim, stp_price, exp, post, stp, 'new', 0, 0, 0,
                   CASE WHEN side = 'buy' THEN hold ELSE 0 END, CASE WHEN side = 'buy' THEN 0 ELSE hold END,
                   0, NULL, false, NULL, ts, ts
              FROM src ORDER BY idx
            ON CONFLICT (account_id, client_order_id) DO NOTHING
            RETURNING id, account_id, client_order_id
        )
        SELECT coalesce(array_agg(src.idx::integer ORDER BY src.idx), '{}'),
               coalesce(array_agg(ins.id ORDER BY src.idx), '{}')
          INTO new_idx, new_ids
          FROM ins JOIN src ON src.acct = ins.account_id AND src.coid = ins.client_order_id;
        IF cardinality(new_idx) <> created THEN
            -- Another transaction took one of these client_order_ids since the read above.
            RAISE EXCEPTION 'a client_order_id of this batch was inserted concurrently'
                USING ERRCODE = 'serialization_failure';
        END IF;
        FOR k IN 1 .. created LOOP
            ids[new_idx[k]] := new_ids[k];
        END LOOP;

        UPDATE accounts AS acc
           SET cash_available = acc.cash_available - d.h, cash_held = acc.cash_held + d.h
          FROM (SELECT t.a, sum(t.h) AS h FROM unnest(p_account, p_side, p_hold, outcome) AS t(a, s, h, oc)
                 WHERE t.oc = 'created' AND t.s = 'buy' AND t.h > 0 GROUP BY t.a) AS d
         WHERE acc.id = d.a;
        UPDATE positions AS pos
           SET held_qty = pos.held_qty + d.h
          FROM (SELECT t.a, t.sym, sum(t.h) AS h
                  FROM unnest(p_account, p_symbol, p_side, p_hold, outcome) AS t(a, sym, s, h, oc)
                 WHERE t.oc = 'created' AND t.s <> 'buy' AND t.h > 0 GROUP BY t.a, t.sym) AS d
         WHERE pos.account_id = d.a AND pos.symbol = d.sym;
        INSERT INTO ledger (
            account_id, kind, symbol, cash_available_delta, cash_held_delta, qty_delta,
            held_qty_delta, order_id, trade_id, created_at
        )
        SELECT p_account[x.i], 'hold', CASE WHEN p_side[x.i] = 'buy' THEN NULL ELSE p_symbol[x.i] END,
               CASE WHEN p_side[x.i] = 'buy' THEN -p_hold[x.i] ELSE 0 END,
               CASE WHEN p_side[x.i] = 'buy' THEN p_hold[x.i] ELSE 0 END,
               0, CASE WHEN p_side[x.i] = 'buy' THEN 0 ELSE p_hold[x.i] END, x.oid, NULL, p_now[x.i]
          FROM unnest(new_idx, new_ids) AS x(i, oid)
         WHERE p_hold[x.i] > 0
         ORDER BY x.i;
    END IF;

    RETURN QUERY SELECT g.i, ids[g.i], outcome[g.i] FROM generate_series(1, n) AS g(i);
END
$$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PLACE_ORDERS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # 0005's function again, read from its own file (a migration is not an importable module name).
        import importlib.util
        from pathlib import Path

        path = Path(__file__).with_name("0005_place_orders_locks_first.py")
        spec = importlib.util.spec_from_file_location("bourse_migration_0005", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        op.execute(module.PLACE_ORDERS)
