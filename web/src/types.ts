// Shapes from docs/api.md (v1). Money, prices and quantities are decimal strings.

export type Dec = string;

export interface Market {
  symbol: string;
  name: string;
  tick: Dec;
  lot: Dec;
  min_qty: Dec;
  status: string;
  last: Dec | null;
  bid: Dec | null;
  ask: Dec | null;
  prev_close: Dec | null;
  change: Dec | null;
  change_pct: Dec | null;
  volume: Dec | null;
  high: Dec | null;
  low: Dec | null;
  band_low: Dec | null;
  band_high: Dec | null;
}

export interface Level {
  price: Dec;
  qty: Dec;
  orders: number;
}

export interface DepthSnapshot {
  symbol: string;
  seq: number;
  bids: Level[];
  asks: Level[];
}

export interface DepthDelta {
  symbol: string;
  first_seq: number;
  last_seq: number;
  bids: Level[];
  asks: Level[];
}

export interface Trade {
  symbol?: string;
  id: number;
  seq: number;
  price: Dec;
  qty: Dec;
  aggressor: 'buy' | 'sell' | string;
  executed_at: string;
}

export interface Candle {
  time: number;
  open: Dec;
  high: Dec;
  low: Dec;
  close: Dec;
  volume: Dec;
}

export interface MarketStatus {
  open: boolean;
  now: string;
  next_open: string | null;
  next_close: string | null;
  timezone: string;
}

export type Side = 'buy' | 'sell';
export type OrderType = 'market' | 'limit' | 'stop' | 'stop_limit';
export type TimeInForce = 'day' | 'gtc' | 'gtd' | 'ioc' | 'fok';

export interface Order {
  id: number;
  client_order_id: string | null;
  symbol: string;
  side: Side;
  type: OrderType;
  time_in_force: TimeInForce;
  qty: Dec;
  filled_qty: Dec;
  leaves_qty: Dec;
  canceled_qty: Dec;
  filled_avg_price: Dec | null;
  limit_price: Dec | null;
  stop_price: Dec | null;
  expire_at: string | null;
  post_only: boolean;
  stp: string;
  status: string;
  reason: string | null;
  hold: Dec;
  created_at: string;
  updated_at: string;
}

export interface OrderEvent {
  event: string;
  order: Order;
}

export interface Fill {
  trade_id: number;
  order_id: number;
  symbol: string;
  side: Side;
  price: Dec;
  qty: Dec;
  liquidity: 'maker' | 'taker' | string;
  executed_at: string;
}

export interface Account {
  account_id: number;
  email: string;
  display_name: string | null;
  cash: Dec;
  cash_available: Dec;
  cash_held: Dec;
  positions_value: Dec;
  equity: Dec;
  starting_cash: Dec;
  buying_power: Dec;
  realized_pl: Dec;
  unrealized_pl: Dec;
}

export interface Position {
  symbol: string;
  qty: Dec;
  qty_available: Dec;
  held_qty: Dec;
  avg_entry_price: Dec | null;
  cost_basis: Dec | null;
  current_price: Dec | null;
  market_value: Dec | null;
  unrealized_pl: Dec | null;
  unrealized_plpc: Dec | null;
  realized_pl: Dec | null;
}

export interface AuthTokens {
  user_id?: number;
  account_id?: number;
  access_token: string;
  refresh_token: string;
  token_type?: string;
  expires_in?: number;
}

export interface PortfolioHistory {
  timestamp: number[];
  equity: (Dec | null)[];
  profit_loss: (Dec | null)[];
  profit_loss_pct: (Dec | null)[];
  base_value: Dec | number | null;
  timeframe?: string;
}

export interface LeaderboardEntry {
  rank: number;
  display_name: string;
  return_pct: Dec | number;
  equity: Dec | number;
}

export interface Leaderboard {
  period: string;
  entries: LeaderboardEntry[];
}
