// A small typed event bus shared by the views.
import type {
  Account,
  DepthDelta,
  DepthSnapshot,
  Fill,
  Market,
  OrderEvent,
  Position,
  Trade,
} from './types';

export interface BusEvents {
  session: { loggedIn: boolean };
  socketStatus: { connected: boolean; authenticated: boolean };
  ticker: Market;
  trade: Trade;
  depth: DepthDelta;
  depthSnapshot: DepthSnapshot;
  order: OrderEvent;
  fill: Fill;
  account: Partial<Account>;
  position: Position;
  symbolSelected: { symbol: string };
  pickPrice: { price: string; side?: 'buy' | 'sell' };
  markets: Market[];
}

type Handler<T> = (payload: T) => void;

class Bus {
  private handlers = new Map<keyof BusEvents, Set<Handler<never>>>();

  on<K extends keyof BusEvents>(event: K, fn: Handler<BusEvents[K]>): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(fn as Handler<never>);
    return () => set.delete(fn as Handler<never>);
  }

  emit<K extends keyof BusEvents>(event: K, payload: BusEvents[K]): void {
    const set = this.handlers.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        (fn as Handler<BusEvents[K]>)(payload);
      } catch (err) {
        console.error(`bus handler for ${String(event)} failed`, err);
      }
    }
  }
}

export const bus = new Bus();
