// The client side of the hub's event log: de-duplication by position and
// catch-up after a (re)connection. With the log on, every lead event's
// `sequence` is its position in one log that every instance and client
// agrees on; delivery is at-least-once, so the client drops what it has
// already applied and asks the hub (CatchUp) for what it missed. It knows
// nothing of React or of the connection's life: signalRService.ts feeds it.
import { ServerMethods, type ReloadMessage } from '../contract.ts';

/** What CatchUp answers. */
export interface CatchUpResult {
  /** The last position covered: everything up to it was replayed (or is to be reloaded). */
  position: number;
  /** The position asked for is older than the log keeps: reload the data, then continue from position. */
  reload: boolean;
}

/** Whether the hub serves a log: unknown until a CatchUp answers. */
export type LogMode = 'unknown' | 'log' | 'none';

/**
 * How a catch-up ended. `current`: everything after the position was
 * replayed, nothing to reload. `reload`: the position is too old — reload the
 * data. `unsupported`: the hub has no log (CatchUp answered an error) or no
 * position is known yet — reload the data, as without a log.
 */
export type CatchUpOutcome =
  | { kind: 'current'; position: number }
  | { kind: 'reload'; position: number }
  | { kind: 'unsupported'; error?: string };

/** A message with an optional position, as a LeadUpdateMessage. */
export interface Positioned {
  sequence?: number;
}

export interface CatchUpOptions<T extends Positioned> {
  /** Invokes a hub method (HubConnection.invoke). */
  invoke: (method: string, ...args: unknown[]) => Promise<unknown>;
  /** Receives every message to apply, once, in position order. */
  deliver: (msg: T) => void;
  /**
   * How many messages may wait while a catch-up runs. Past it the oldest are
   * dropped and the catch-up ends in a reload. Defaults to 10,000.
   */
  maxHeld?: number;
}

/**
 * A LogCursor tracks the highest position applied and holds messages while
 * it cannot yet tell new from old: from construction, and from hold() (the
 * connection was lost) until catchUp() or release(). Held messages are then
 * delivered in position order, each once; live messages after that are
 * delivered when their position is above the last one applied.
 *
 * Until a CatchUp has answered, sequences may be a producer's clock rather
 * than positions (a hub without a log): then nothing is dropped here, and
 * messages are delivered as they arrive.
 */
export class LogCursor<T extends Positioned> {
  private readonly invoke: CatchUpOptions<T>['invoke'];
  private readonly deliver: (msg: T) => void;
  private readonly maxHeld: number;
  private last: number | null = null;
  private logMode: LogMode = 'unknown';
  private holding = true;
  private held: T[] = [];
  private overflowed = false;
  private inFlight = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private droppedCount = 0;

  constructor(opts: CatchUpOptions<T>) {
    this.invoke = opts.invoke;
    this.deliver = opts.deliver;
    this.maxHeld = opts.maxHeld ?? 10_000;
  }

  /** The highest position applied (or covered by a reload), null when none is known. */
  get position(): number | null {
    return this.last;
  }

  get mode(): LogMode {
    return this.logMode;
  }

  /** How many duplicates were dropped. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** receive takes one message as it arrives from the hub. */
  receive(msg: T): void {
    if (this.holding) {
      this.held.push(msg);
      if (this.held.length > this.maxHeld) {
        this.held.shift();
        this.overflowed = true;
      }
      return;
    }
    this.apply(msg);
  }

  /**
   * hold keeps arriving messages back until the next catchUp or release:
   * call it when the connection is lost, since a new connection delivers
   * live messages before the catch-up's replay of older ones.
   */
  hold(): void {
    this.holding = true;
  }

  /**
   * catchUp invokes CatchUp(after) — after defaults to the position — and
   * then delivers the held messages in position order, skipping those
   * already applied. Calls run one at a time.
   */
  catchUp(after?: number): Promise<CatchUpOutcome> {
    const run = this.queue.then(() => this.run(after));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * release delivers the held messages without a catch-up (the data was
   * loaded from a source without a position) and stops holding.
   */
  release(): void {
    this.flush(this.logMode === 'log' ? this.last : null);
  }

  /**
   * reloadRequired takes a ReceiveReload message and reports whether the
   * data must be reloaded. While a catch-up runs it is that catch-up's
   * answer (which says reload too), so false.
   */
  reloadRequired(msg: unknown): boolean {
    if (!isReload(msg)) return false;
    this.logMode = 'log';
    if (this.inFlight > 0) return false;
    this.last = msg.position;
    return true;
  }

  private async run(after: number | undefined): Promise<CatchUpOutcome> {
    const from = after ?? this.last;
    if (from === null || from === undefined || !Number.isSafeInteger(from) || from < 0) {
      this.release();
      return { kind: 'unsupported' };
    }
    this.holding = true;
    this.inFlight++;
    let res: unknown;
    try {
      res = await this.invoke(ServerMethods.catchUp, from);
    } catch (err) {
      this.logMode = 'none';
      this.flush(null);
      return { kind: 'unsupported', error: err instanceof Error ? err.message : String(err) };
    } finally {
      this.inFlight--;
    }
    if (!isResult(res)) {
      this.logMode = 'none';
      this.flush(null);
      return { kind: 'unsupported', error: `CatchUp answered ${JSON.stringify(res)}` };
    }
    this.logMode = 'log';
    if (res.reload || this.overflowed) {
      const position = Math.max(res.position, from);
      this.overflowed = false;
      this.last = position;
      this.flush(position);
      return { kind: 'reload', position };
    }
    // Whatever was applied before this call stays applied: a snapshot
    // loaded since reflects it.
    const floor = Math.max(from, this.last ?? 0);
    this.flush(floor);
    this.last = Math.max(this.last ?? 0, res.position);
    return { kind: 'current', position: this.last };
  }

  /**
   * flush stops holding and delivers the held messages: in position order
   * above floor (duplicates once), or, floor null, in arrival order.
   */
  private flush(floor: number | null): void {
    const held = this.held;
    this.held = [];
    this.holding = false;
    if (floor === null) {
      held.forEach((m) => this.apply(m));
      return;
    }
    const sorted = held
      .map((m, i) => ({ m, i }))
      .sort((a, b) => (a.m.sequence ?? -1) - (b.m.sequence ?? -1) || a.i - b.i)
      .map((x) => x.m);
    this.last = floor;
    sorted.forEach((m) => this.apply(m));
  }

  private apply(msg: T): void {
    const seq = msg.sequence;
    if (this.logMode !== 'log' || seq === undefined) {
      this.deliver(msg);
      return;
    }
    if (this.last !== null && seq <= this.last) {
      this.droppedCount++;
      return;
    }
    this.last = seq;
    this.deliver(msg);
  }
}

function isResult(v: unknown): v is CatchUpResult {
  const r = v as CatchUpResult | null;
  return typeof r === 'object' && r !== null && Number.isSafeInteger(r.position) && r.position >= 0 && typeof r.reload === 'boolean';
}

/** isReload reports whether v is a well-formed ReceiveReload argument. */
export function isReload(v: unknown): v is ReloadMessage {
  const r = v as ReloadMessage | null;
  return typeof r === 'object' && r !== null && r.type === 'RELOAD_REQUIRED' && Number.isSafeInteger(r.position) && r.position >= 0;
}
