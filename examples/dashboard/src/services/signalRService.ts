// The SignalR service of the seed: one connection to the lead-updates hub
// with reconnection, typed handlers, group membership and connection-state
// events. It knows nothing of React; hooks/useSignalR.ts binds it to
// components.
import {
  HubConnectionBuilder,
  HubConnectionState,
  LogLevel,
  type IRetryPolicy,
  type RetryContext,
} from '@microsoft/signalr';
import {
  ClientMethods,
  ServerMethods,
  type AnalyticsUpdateMessage,
  type LeadUpdateMessage,
  type MetricsUpdateMessage,
} from '../contract.ts';
import { LogCursor, type CatchUpOutcome, type LogMode } from './catchUp.ts';

/** The reconnection delays of the seed: 1, 2, 4, 8 and 16 s, then give up. */
export const RETRY_DELAYS_MS: readonly number[] = [1000, 2000, 4000, 8000, 16000];

/**
 * backoffDelay is the wait before retry number previousRetryCount+1, or null
 * when the attempts are used up (after delays.length retries).
 */
export function backoffDelay(previousRetryCount: number, delays: readonly number[] = RETRY_DELAYS_MS): number | null {
  if (!Number.isInteger(previousRetryCount) || previousRetryCount < 0 || previousRetryCount >= delays.length) {
    return null;
  }
  return delays[previousRetryCount] ?? null;
}

/** retryPolicy is backoffDelay as the @microsoft/signalr automatic-reconnect policy. */
export function retryPolicy(delays: readonly number[] = RETRY_DELAYS_MS): IRetryPolicy {
  return { nextRetryDelayInMilliseconds: (ctx: RetryContext) => backoffDelay(ctx.previousRetryCount, delays) };
}

/**
 * The connection's state as the UI shows it. `fallback` means the retries
 * are used up: the UI shows sample data and offers a retry. `unauthorized`
 * means the hub rejected the token (401); retrying will not help.
 */
export type ConnectionStatus = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'fallback' | 'unauthorized';

/** A connection-state event. */
export interface ConnectionSnapshot {
  status: ConnectionStatus;
  /** Why the connection is not connected, when known. */
  error?: string;
  /** The retry about to be made (1-based), while connecting or reconnecting. */
  attempt?: number;
  /** The wait before that retry, in milliseconds. */
  nextRetryMs?: number;
  connectionId?: string;
}

/** The part of a @microsoft/signalr HubConnection the service uses. */
export interface HubConnectionLike {
  readonly state: HubConnectionState | string;
  readonly connectionId: string | null;
  on(method: string, handler: (...args: any[]) => void): void;
  onreconnecting(cb: (error?: Error) => void): void;
  onreconnected(cb: (connectionId?: string) => void): void;
  onclose(cb: (error?: Error) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  invoke(method: string, ...args: unknown[]): Promise<unknown>;
}

/** Logs what goes wrong; console by default. */
export interface Logger {
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

export interface SignalRServiceOptions {
  /** The hub URL. Defaults to '/leadupdates'. */
  url?: string;
  /** Returns the JWT sent on negotiate (bearer) and as access_token on WebSockets and SSE. */
  accessTokenFactory: () => string | Promise<string>;
  /** Reconnection delays. Defaults to RETRY_DELAYS_MS. */
  delays?: readonly number[];
  /** How often fallback mode tries one reconnect on its own; 0 never. Defaults to 30 s. */
  fallbackProbeMs?: number;
  /** Builds the connection; tests pass a fake. Defaults to a HubConnectionBuilder. */
  connect?: (url: string, opts: { accessTokenFactory: () => string | Promise<string>; delays: readonly number[] }) => HubConnectionLike;
  logger?: Logger;
  /**
   * Whether the app catches up from the hub's event log. False (the
   * default): lead updates are delivered as they arrive. True: from the
   * start and from every lost connection, lead updates wait until the app
   * calls catchUp() (or release(), for data without a position); then they
   * are delivered once each, in position order (catchUp.ts).
   */
  catchUp?: boolean;
}

type Handler<T> = (msg: T) => void;

function defaultConnect(
  url: string,
  opts: { accessTokenFactory: () => string | Promise<string>; delays: readonly number[] },
): HubConnectionLike {
  return new HubConnectionBuilder()
    .withUrl(url, { accessTokenFactory: opts.accessTokenFactory })
    .withAutomaticReconnect(retryPolicy(opts.delays))
    .configureLogging(LogLevel.Warning)
    .build();
}

/** isUnauthorized reports whether err is the hub's 401 (bad or expired token). */
export function isUnauthorized(err: unknown): boolean {
  const e = err as { statusCode?: number; message?: string } | undefined;
  return e?.statusCode === 401 || /Status code '401'/.test(String(e?.message ?? ''));
}

function errorText(err: unknown): string | undefined {
  if (err === undefined || err === null) return undefined;
  return err instanceof Error ? err.message : String(err);
}

/**
 * SignalRService owns one hub connection. Handlers registered with
 * onLeadUpdate/onMetricsUpdate/onAnalyticsUpdate/onStateChange return their unsubscribe
 * function; a handler that throws is logged and the others still run, so one
 * bad component never breaks the connection or the rest of the UI.
 */
export class SignalRService {
  private readonly conn: HubConnectionLike;
  private readonly delays: readonly number[];
  private readonly probeMs: number;
  private readonly log: Logger;
  private readonly leadHandlers = new Set<Handler<LeadUpdateMessage>>();
  private readonly metricsHandlers = new Set<Handler<MetricsUpdateMessage>>();
  private readonly analyticsHandlers = new Set<Handler<AnalyticsUpdateMessage>>();
  private analytics: AnalyticsUpdateMessage | null = null;
  private readonly stateHandlers = new Set<Handler<ConnectionSnapshot>>();
  private readonly reloadHandlers = new Set<Handler<number>>();
  private readonly cursor: LogCursor<LeadUpdateMessage>;
  private readonly holdOnLoss: boolean;
  /** Lead groups wanted, with how many holders want each. */
  private readonly groups = new Map<number, number>();
  private snap: ConnectionSnapshot = { status: 'idle' };
  private stopped = true;
  private starting: Promise<void> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private wake: (() => void) | null = null;

  constructor(opts: SignalRServiceOptions) {
    this.delays = opts.delays ?? RETRY_DELAYS_MS;
    this.probeMs = opts.fallbackProbeMs ?? 30_000;
    this.log = opts.logger ?? console;
    const connect = opts.connect ?? defaultConnect;
    this.conn = connect(opts.url ?? '/leadupdates', { accessTokenFactory: opts.accessTokenFactory, delays: this.delays });
    this.cursor = new LogCursor<LeadUpdateMessage>({
      invoke: (method, ...args) => this.conn.invoke(method, ...args),
      deliver: (msg) => this.emit(this.leadHandlers, msg, ClientMethods.leadUpdate),
    });
    this.holdOnLoss = opts.catchUp ?? false;
    if (!this.holdOnLoss) this.cursor.release();

    this.conn.on(ClientMethods.leadUpdate, (msg: unknown) => {
      if (!isMessage(msg)) {
        this.log.warn('signalr: ignoring malformed ReceiveLeadUpdate', msg);
        return;
      }
      this.cursor.receive(msg as LeadUpdateMessage);
    });
    this.conn.on(ClientMethods.reload, (msg: unknown) => {
      if (this.cursor.reloadRequired(msg)) {
        this.emit(this.reloadHandlers, this.cursor.position ?? 0, ClientMethods.reload);
      }
    });
    this.conn.on(ClientMethods.metricsUpdate, (msg: unknown) => {
      if (!isMessage(msg) || typeof (msg as { metrics?: unknown }).metrics !== 'object') {
        this.log.warn('signalr: ignoring malformed ReceiveMetricsUpdate', msg);
        return;
      }
      this.emit(this.metricsHandlers, msg as MetricsUpdateMessage, ClientMethods.metricsUpdate);
    });
    this.conn.on(ClientMethods.analyticsUpdate, (msg: unknown) => {
      if (!isMessage(msg) || typeof (msg as { analytics?: unknown }).analytics !== 'object') {
        this.log.warn('signalr: ignoring malformed ReceiveAnalyticsUpdate', msg);
        return;
      }
      this.analytics = msg as AnalyticsUpdateMessage;
      this.emit(this.analyticsHandlers, this.analytics, ClientMethods.analyticsUpdate);
    });
    this.conn.onreconnecting((err) => {
      if (this.holdOnLoss) this.cursor.hold();
      this.setState({ status: 'reconnecting', attempt: 1, nextRetryMs: this.delays[0] ?? 0, ...withError(err) });
    });
    this.conn.onreconnected((id) => {
      void this.rejoin().then(() => this.setState({ status: 'connected', ...(id ? { connectionId: id } : {}) }));
    });
    this.conn.onclose((err) => {
      if (this.holdOnLoss) this.cursor.hold();
      if (this.stopped) {
        this.setState({ status: 'idle' });
        return;
      }
      if (isUnauthorized(err)) {
        this.setState({ status: 'unauthorized', ...withError(err) });
        return;
      }
      this.enterFallback(err);
    });
  }

  /** The current connection state. */
  get state(): ConnectionSnapshot {
    return this.snap;
  }

  /** The lead groups currently wanted (joined while connected). */
  get leadGroups(): number[] {
    return [...this.groups.keys()];
  }

  onLeadUpdate(h: Handler<LeadUpdateMessage>): () => void {
    return subscribe(this.leadHandlers, h);
  }

  onMetricsUpdate(h: Handler<MetricsUpdateMessage>): () => void {
    return subscribe(this.metricsHandlers, h);
  }

  /** The last analytics received, for a component that mounts after them. */
  get lastAnalytics(): AnalyticsUpdateMessage | null {
    return this.analytics;
  }

  onAnalyticsUpdate(h: Handler<AnalyticsUpdateMessage>): () => void {
    return subscribe(this.analyticsHandlers, h);
  }

  /**
   * onReload calls h with the position to continue from when the hub says
   * this client is too far behind to catch up (ReceiveReload outside a
   * catchUp): the app reloads its data.
   */
  onReload(h: Handler<number>): () => void {
    return subscribe(this.reloadHandlers, h);
  }

  /** Whether the hub serves an event log, as the last catch-up found; sequences are then log positions. */
  get logMode(): LogMode {
    return this.cursor.mode;
  }

  /** The highest log position applied, null when unknown (no log, or nothing yet). */
  get position(): number | null {
    return this.cursor.position;
  }

  /**
   * catchUp asks the hub for every lead update after `after` (default: the
   * last position applied) and delivers them, with those that arrived
   * meanwhile, once each and in order. See CatchUpOutcome for what the app
   * does next; it never rejects.
   */
  catchUp(after?: number): Promise<CatchUpOutcome> {
    return this.cursor.catchUp(after);
  }

  /** release delivers the lead updates held since a connection began, for data loaded without a position. */
  release(): void {
    this.cursor.release();
  }

  /** onStateChange calls h on every connection-state change. */
  onStateChange(h: Handler<ConnectionSnapshot>): () => void {
    return subscribe(this.stateHandlers, h);
  }

  /**
   * start connects, retrying with the backoff delays; when they are used up
   * it enters fallback mode. It resolves once connected or given up, and
   * never rejects.
   */
  start(): Promise<void> {
    if (this.starting) return this.starting;
    if (this.snap.status === 'connected' || this.snap.status === 'reconnecting') return Promise.resolve();
    this.stopped = false;
    this.clearTimer();
    this.starting = this.connectLoop().finally(() => {
      this.starting = null;
    });
    return this.starting;
  }

  /** retry leaves fallback (or unauthorized, after a new token) and starts over. */
  retry(): Promise<void> {
    return this.start();
  }

  /** stop closes the connection and cancels every pending retry. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clearTimer();
    try {
      await this.conn.stop();
    } catch (err) {
      this.log.warn('signalr: stop', err);
    }
    await this.starting;
    this.setState({ status: 'idle' });
  }

  /**
   * joinLeadGroup asks for lead id's events (group Lead_{id}). Membership
   * is counted, kept across reconnects, and sent only while connected. It
   * resolves true once the hub is in the group, false when the join waits
   * for a connection, and rejects when the hub denies it.
   */
  async joinLeadGroup(id: number): Promise<boolean> {
    const n = this.groups.get(id) ?? 0;
    this.groups.set(id, n + 1);
    if (this.conn.state !== HubConnectionState.Connected) return false;
    if (n > 0) return true;
    try {
      await this.conn.invoke(ServerMethods.joinLeadGroup, id);
      return true;
    } catch (err) {
      this.dropHold(id);
      throw err;
    }
  }

  /** leaveLeadGroup undoes one joinLeadGroup; the last one leaves the group. */
  async leaveLeadGroup(id: number): Promise<void> {
    if (!this.dropHold(id) || this.conn.state !== HubConnectionState.Connected) return;
    try {
      await this.conn.invoke(ServerMethods.leaveLeadGroup, id);
    } catch (err) {
      this.log.warn(`signalr: leaving Lead_${id}`, err);
    }
  }

  /** dropHold drops one hold on id and reports whether it was the last. */
  private dropHold(id: number): boolean {
    const n = this.groups.get(id) ?? 0;
    if (n <= 1) {
      this.groups.delete(id);
      return n === 1;
    }
    this.groups.set(id, n - 1);
    return false;
  }

  private async connectLoop(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      if (attempt === 0) this.setState({ status: 'connecting' });
      try {
        await this.conn.start();
        if (this.stopped) return;
        await this.rejoin();
        this.setState({ status: 'connected', ...(this.conn.connectionId ? { connectionId: this.conn.connectionId } : {}) });
        return;
      } catch (err) {
        if (this.stopped) return;
        if (isUnauthorized(err)) {
          this.setState({ status: 'unauthorized', ...withError(err) });
          return;
        }
        const delay = backoffDelay(attempt, this.delays);
        if (delay === null) {
          this.enterFallback(err);
          return;
        }
        this.setState({ status: 'connecting', attempt: attempt + 1, nextRetryMs: delay, ...withError(err) });
        await this.sleep(delay);
      }
    }
  }

  private enterFallback(err?: unknown): void {
    this.setState({ status: 'fallback', ...withError(err) });
    this.clearTimer();
    if (this.probeMs > 0 && !this.stopped) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.probe();
      }, this.probeMs);
    }
  }

  /** probe makes one quiet attempt from fallback mode. */
  private async probe(): Promise<void> {
    if (this.stopped || this.starting || this.snap.status !== 'fallback') return;
    try {
      await this.conn.start();
      await this.rejoin();
      this.setState({ status: 'connected', ...(this.conn.connectionId ? { connectionId: this.conn.connectionId } : {}) });
    } catch (err) {
      if (isUnauthorized(err)) {
        this.setState({ status: 'unauthorized', ...withError(err) });
        return;
      }
      this.enterFallback(err);
    }
  }

  /**
   * rejoin re-enters the wanted lead groups: a new connection starts in
   * none. It runs before the connection is announced, so that whoever sees
   * 'connected' may count on its groups.
   */
  private async rejoin(): Promise<void> {
    for (const id of this.groups.keys()) {
      try {
        await this.conn.invoke(ServerMethods.joinLeadGroup, id);
      } catch (err) {
        this.log.warn(`signalr: rejoining Lead_${id}`, err);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(() => {
        this.timer = null;
        this.wake = null;
        resolve();
      }, ms);
    });
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private setState(s: ConnectionSnapshot): void {
    this.snap = s;
    this.emit(this.stateHandlers, s, 'state');
  }

  private emit<T>(handlers: Set<Handler<T>>, msg: T, what: string): void {
    for (const h of [...handlers]) {
      try {
        h(msg);
      } catch (err) {
        this.log.error(`signalr: a ${what} handler failed`, err);
      }
    }
  }
}

function subscribe<T>(set: Set<Handler<T>>, h: Handler<T>): () => void {
  set.add(h);
  return () => {
    set.delete(h);
  };
}

function isMessage(msg: unknown): boolean {
  return typeof msg === 'object' && msg !== null && typeof (msg as { type?: unknown }).type === 'string';
}

function withError(err: unknown): { error?: string } {
  const text = errorText(err);
  return text === undefined ? {} : { error: text };
}
