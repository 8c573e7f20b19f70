import { HubConnectionState } from '@microsoft/signalr';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { LeadUpdateMessage } from '../contract.ts';
import {
  backoffDelay,
  isUnauthorized,
  RETRY_DELAYS_MS,
  retryPolicy,
  SignalRService,
  type ConnectionStatus,
  type HubConnectionLike,
  type Logger,
} from './signalRService.ts';

describe('backoff policy', () => {
  it('waits 1, 2, 4, 8 and 16 s, then gives up', () => {
    const got = Array.from({ length: 7 }, (_, i) => backoffDelay(i));
    expect(got).toEqual([1000, 2000, 4000, 8000, 16000, null, null]);
    expect(RETRY_DELAYS_MS).toHaveLength(5);
  });

  it('gives up on nonsense counts', () => {
    expect(backoffDelay(-1)).toBeNull();
    expect(backoffDelay(1.5)).toBeNull();
    expect(backoffDelay(Number.NaN)).toBeNull();
  });

  it('is the automatic-reconnect policy', () => {
    const p = retryPolicy();
    const next = (n: number) => p.nextRetryDelayInMilliseconds({ previousRetryCount: n, elapsedMilliseconds: 0, retryReason: new Error('x') });
    expect([0, 1, 2, 3, 4, 5].map(next)).toEqual([1000, 2000, 4000, 8000, 16000, null]);
  });
});

describe('isUnauthorized', () => {
  it('recognises the 401 of negotiate', () => {
    expect(isUnauthorized(new Error("Failed to complete negotiation with the server: Error: Unauthorized: Status code '401'"))).toBe(true);
    expect(isUnauthorized({ statusCode: 401, message: 'Unauthorized' })).toBe(true);
    expect(isUnauthorized(new Error("Status code '503'"))).toBe(false);
    expect(isUnauthorized(undefined)).toBe(false);
  });
});

/** A fake HubConnection: tests fire its callbacks and script start(). */
class FakeConnection implements HubConnectionLike {
  state: HubConnectionState = HubConnectionState.Disconnected;
  connectionId: string | null = null;
  handlers = new Map<string, (...args: any[]) => void>();
  reconnecting: ((e?: Error) => void)[] = [];
  reconnected: ((id?: string) => void)[] = [];
  closed: ((e?: Error) => void)[] = [];
  invoked: [string, ...unknown[]][] = [];
  starts = 0;
  /** What start() does: resolve, or reject with the error. */
  startResults: (Error | null)[] = [];
  denyJoin = false;
  /** What CatchUp does: replays through the handlers and answers, or throws. */
  catchUp: (after: number) => unknown = () => {
    throw new Error("Unknown hub method 'CatchUp'");
  };

  on(m: string, h: (...args: any[]) => void) {
    this.handlers.set(m, h);
  }
  onreconnecting(cb: (e?: Error) => void) {
    this.reconnecting.push(cb);
  }
  onreconnected(cb: (id?: string) => void) {
    this.reconnected.push(cb);
  }
  onclose(cb: (e?: Error) => void) {
    this.closed.push(cb);
  }
  async start() {
    this.starts++;
    const r = this.startResults.shift() ?? null;
    if (r) throw r;
    this.state = HubConnectionState.Connected;
    this.connectionId = `c${this.starts}`;
  }
  async stop() {
    this.state = HubConnectionState.Disconnected;
    this.closed.forEach((cb) => cb());
  }
  async invoke(method: string, ...args: unknown[]) {
    this.invoked.push([method, ...args]);
    if (this.denyJoin && method === 'JoinLeadGroup') throw new Error('denied');
    if (method === 'CatchUp') return this.catchUp(args[0] as number);
    return undefined;
  }
  deliver(method: string, msg: unknown) {
    this.handlers.get(method)!(msg);
  }
  drop(e = new Error('gone')) {
    this.state = HubConnectionState.Reconnecting;
    this.reconnecting.forEach((cb) => cb(e));
  }
  back(id = 'r1') {
    this.state = HubConnectionState.Connected;
    this.connectionId = id;
    this.reconnected.forEach((cb) => cb(id));
  }
  close(e?: Error) {
    this.state = HubConnectionState.Disconnected;
    this.closed.forEach((cb) => cb(e));
  }
}

function setup(opts: { fallbackProbeMs?: number; catchUp?: boolean } = {}) {
  const conn = new FakeConnection();
  const log = { warn: vi.fn(), error: vi.fn() } satisfies Logger;
  const svc = new SignalRService({ accessTokenFactory: () => 'tok', connect: () => conn, logger: log, ...opts });
  const states: ConnectionStatus[] = [];
  svc.onStateChange((s) => states.push(s.status));
  return { conn, svc, log, states };
}

const update: LeadUpdateMessage = { type: 'STATUS_UPDATE', leadId: 1, newStatus: 'Enriched', timestamp: '2026-11-26T18:11:29.123Z' };

describe('SignalRService', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('connects and delivers typed messages to every handler', async () => {
    const { conn, svc, states } = setup();
    const got: LeadUpdateMessage[] = [];
    svc.onLeadUpdate((m) => got.push(m));
    const metrics = vi.fn();
    svc.onMetricsUpdate(metrics);
    await svc.start();
    expect(states).toEqual(['connecting', 'connected']);
    expect(svc.state.connectionId).toBe('c1');
    conn.deliver('ReceiveLeadUpdate', update);
    conn.deliver('ReceiveMetricsUpdate', { type: 'METRICS_UPDATE', metrics: {}, timestamp: update.timestamp });
    expect(got).toEqual([update]);
    expect(metrics).toHaveBeenCalledTimes(1);
  });

  it('logs and isolates a failing handler', async () => {
    const { conn, svc, log } = setup();
    const after = vi.fn();
    svc.onLeadUpdate(() => {
      throw new Error('boom');
    });
    svc.onLeadUpdate(after);
    await svc.start();
    expect(() => conn.deliver('ReceiveLeadUpdate', update)).not.toThrow();
    expect(after).toHaveBeenCalledWith(update);
    expect(log.error).toHaveBeenCalledTimes(1);
    expect(svc.state.status).toBe('connected');
  });

  it('drops malformed messages with a warning', async () => {
    const { conn, svc, log } = setup();
    const h = vi.fn();
    svc.onLeadUpdate(h);
    svc.onMetricsUpdate(h);
    await svc.start();
    conn.deliver('ReceiveLeadUpdate', 'nonsense');
    conn.deliver('ReceiveLeadUpdate', null);
    conn.deliver('ReceiveMetricsUpdate', { type: 'METRICS_UPDATE' });
    expect(h).not.toHaveBeenCalled();
    expect(log.warn).toHaveBeenCalledTimes(3);
  });

  it('unsubscribes', async () => {
    const { conn, svc } = setup();
    const h = vi.fn();
    const off = svc.onLeadUpdate(h);
    off();
    await svc.start();
    conn.deliver('ReceiveLeadUpdate', update);
    expect(h).not.toHaveBeenCalled();
  });

  it('retries a failing start after 1, 2, 4, 8, 16 s, then falls back', async () => {
    const { conn, svc, states } = setup({ fallbackProbeMs: 0 });
    conn.startResults = Array.from({ length: 6 }, () => new Error('refused'));
    const done = svc.start();
    await vi.runAllTimersAsync();
    await done;
    expect(conn.starts).toBe(6);
    expect(states.at(-1)).toBe('fallback');
    expect(svc.state.error).toBe('refused');
    expect(states.filter((s) => s === 'connecting')).toHaveLength(6);
  });

  it('retries with the backoff delays in order', async () => {
    const { conn, svc } = setup({ fallbackProbeMs: 0 });
    conn.startResults = Array.from({ length: 6 }, () => new Error('refused'));
    const delays: number[] = [];
    svc.onStateChange((s) => {
      if (s.nextRetryMs !== undefined) delays.push(s.nextRetryMs);
    });
    const done = svc.start();
    await vi.runAllTimersAsync();
    await done;
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000]);
  });

  it('leaves fallback mode with retry()', async () => {
    const { conn, svc } = setup({ fallbackProbeMs: 0 });
    conn.startResults = Array.from({ length: 6 }, () => new Error('refused'));
    const done = svc.start();
    await vi.runAllTimersAsync();
    await done;
    expect(svc.state.status).toBe('fallback');
    await svc.retry();
    expect(svc.state.status).toBe('connected');
  });

  it('probes from fallback mode on its own', async () => {
    const { conn, svc } = setup({ fallbackProbeMs: 30_000 });
    await svc.start();
    conn.close(new Error('server gone'));
    expect(svc.state).toMatchObject({ status: 'fallback', error: 'server gone' });
    conn.startResults = [new Error('still gone')];
    await vi.advanceTimersByTimeAsync(30_000);
    expect(svc.state.status).toBe('fallback');
    await vi.advanceTimersByTimeAsync(30_000);
    expect(svc.state.status).toBe('connected');
    await svc.stop();
  });

  it('reports reconnecting and reconnected, and rejoins lead groups', async () => {
    const { conn, svc, states } = setup();
    await svc.start();
    expect(await svc.joinLeadGroup(7)).toBe(true);
    expect(conn.invoked).toEqual([['JoinLeadGroup', 7]]);
    conn.drop();
    expect(svc.state).toMatchObject({ status: 'reconnecting', attempt: 1, nextRetryMs: 1000 });
    conn.back('c9');
    await vi.runAllTimersAsync();
    expect(states.slice(-2)).toEqual(['reconnecting', 'connected']);
    expect(svc.state.connectionId).toBe('c9');
    expect(conn.invoked).toEqual([
      ['JoinLeadGroup', 7],
      ['JoinLeadGroup', 7],
    ]);
  });

  it('counts group holders and leaves on the last', async () => {
    const { conn, svc } = setup();
    await svc.start();
    await svc.joinLeadGroup(3);
    await svc.joinLeadGroup(3);
    await svc.leaveLeadGroup(3);
    expect(svc.leadGroups).toEqual([3]);
    await svc.leaveLeadGroup(3);
    expect(svc.leadGroups).toEqual([]);
    expect(conn.invoked).toEqual([
      ['JoinLeadGroup', 3],
      ['LeaveLeadGroup', 3],
    ]);
  });

  it('joins groups asked for before connecting once connected', async () => {
    const { conn, svc } = setup();
    expect(await svc.joinLeadGroup(5)).toBe(false);
    expect(conn.invoked).toEqual([]);
    let invokedWhenConnected: unknown[] = [];
    svc.onStateChange((s) => {
      if (s.status === 'connected') invokedWhenConnected = [...conn.invoked];
    });
    await svc.start();
    expect(invokedWhenConnected).toEqual([['JoinLeadGroup', 5]]);
    expect(await svc.joinLeadGroup(5)).toBe(true);
  });

  it('rejects a denied join and forgets it', async () => {
    const { conn, svc } = setup();
    await svc.start();
    conn.denyJoin = true;
    await expect(svc.joinLeadGroup(9)).rejects.toThrow('denied');
    expect(svc.leadGroups).toEqual([]);
    expect(svc.state.status).toBe('connected');
  });

  it('stops retrying on 401', async () => {
    const { conn, svc, states } = setup();
    conn.startResults = [new Error("Failed to complete negotiation with the server: Error: Unauthorized: Status code '401'")];
    await svc.start();
    expect(states).toEqual(['connecting', 'unauthorized']);
    expect(conn.starts).toBe(1);
  });

  it('falls back when automatic reconnection gives up', async () => {
    const { conn, svc } = setup({ fallbackProbeMs: 0 });
    await svc.start();
    conn.drop();
    conn.close(new Error('Connection disconnected'));
    expect(svc.state.status).toBe('fallback');
  });

  it('stop cancels a pending retry and ends idle', async () => {
    const { conn, svc, states } = setup();
    conn.startResults = [new Error('refused')];
    const done = svc.start();
    await vi.advanceTimersByTimeAsync(0);
    await svc.stop();
    await done;
    await vi.runAllTimersAsync();
    expect(conn.starts).toBe(1);
    expect(states.at(-1)).toBe('idle');
  });

  describe('with catchUp', () => {
    const at = (sequence: number): LeadUpdateMessage => ({ ...update, sequence });

    it('holds lead updates until the app catches up, then delivers them once, in order', async () => {
      const { conn, svc } = setup({ catchUp: true });
      const got: (number | undefined)[] = [];
      svc.onLeadUpdate((m) => got.push(m.sequence));
      await svc.start();
      conn.deliver('ReceiveLeadUpdate', at(12));
      expect(got).toEqual([]);
      conn.catchUp = (after) => {
        for (let p = after + 1; p <= 12; p++) conn.deliver('ReceiveLeadUpdate', at(p));
        return { position: 12, reload: false };
      };
      expect(await svc.catchUp(10)).toEqual({ kind: 'current', position: 12 });
      expect(got).toEqual([11, 12]);
      expect(svc.position).toBe(12);

      conn.drop();
      conn.back('c2');
      conn.deliver('ReceiveLeadUpdate', at(14));
      expect(got).toEqual([11, 12]);
      conn.catchUp = (after) => {
        for (let p = after + 1; p <= 14; p++) conn.deliver('ReceiveLeadUpdate', at(p));
        return { position: 14, reload: false };
      };
      expect(await svc.catchUp()).toEqual({ kind: 'current', position: 14 });
      expect(got).toEqual([11, 12, 13, 14]);
      expect(conn.invoked.filter(([m]) => m === 'CatchUp')).toEqual([
        ['CatchUp', 10],
        ['CatchUp', 12],
      ]);
    });

    it('reports a hub without a log and then delivers as messages arrive', async () => {
      const { conn, svc } = setup({ catchUp: true });
      const got: (number | undefined)[] = [];
      svc.onLeadUpdate((m) => got.push(m.sequence));
      await svc.start();
      conn.deliver('ReceiveLeadUpdate', at(9));
      expect((await svc.catchUp(3)).kind).toBe('unsupported');
      conn.deliver('ReceiveLeadUpdate', at(8));
      expect(got).toEqual([9, 8]);
    });

    it('asks the app to reload on ReceiveReload', async () => {
      const { conn, svc, log } = setup({ catchUp: true });
      const reloads: number[] = [];
      svc.onReload((p) => reloads.push(p));
      await svc.start();
      conn.deliver('ReceiveReload', { type: 'RELOAD_REQUIRED', position: 77, oldestPosition: 50, timestamp: update.timestamp });
      conn.deliver('ReceiveReload', { type: 'RELOAD_REQUIRED' });
      expect(reloads).toEqual([77]);
      expect(svc.position).toBe(77);
      expect(log.error).not.toHaveBeenCalled();
    });
  });
});
