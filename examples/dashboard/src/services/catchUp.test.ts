import { describe, expect, it } from 'vitest';
import { ServerMethods } from '../contract.ts';
import { LogCursor, isReload, type CatchUpResult } from './catchUp.ts';

interface Msg {
  sequence?: number;
  text?: string;
}

/**
 * A hub for the cursor: answer() decides what CatchUp does — it may first
 * send messages (the replay) through the cursor, as the hub does before it
 * returns.
 */
function setup(answer: (after: number, cursor: LogCursor<Msg>) => CatchUpResult | Error) {
  const got: Msg[] = [];
  const calls: unknown[][] = [];
  const cursor: LogCursor<Msg> = new LogCursor<Msg>({
    invoke: async (method, ...args) => {
      calls.push([method, ...args]);
      await Promise.resolve();
      const r = answer(args[0] as number, cursor);
      if (r instanceof Error) throw r;
      return r;
    },
    deliver: (m) => got.push(m),
  });
  const seqs = () => got.map((m) => m.sequence);
  const send = (...s: number[]) => s.forEach((sequence) => cursor.receive({ sequence }));
  return { cursor, got, calls, seqs, send };
}

describe('LogCursor', () => {
  it('without a log (CatchUp fails) delivers everything as it arrives, sequences being clocks', async () => {
    const { cursor, seqs, send, calls } = setup(() => new Error("Unknown hub method 'CatchUp'"));
    send(1_700_000_000_000_002, 1_700_000_000_000_001);
    expect(seqs()).toEqual([]); // held until the catch-up says how to read them
    const out = await cursor.catchUp(5);
    expect(out).toEqual({ kind: 'unsupported', error: "Unknown hub method 'CatchUp'" });
    expect(calls).toEqual([[ServerMethods.catchUp, 5]]);
    expect(cursor.mode).toBe('none');
    send(1_700_000_000_000_001, 1_700_000_000_000_001);
    // Another producer's clock may be behind: nothing is dropped here.
    expect(seqs()).toEqual([1_700_000_000_000_002, 1_700_000_000_000_001, 1_700_000_000_000_001, 1_700_000_000_000_001]);
  });

  it('after a reconnection delivers the replay and the live messages that overtook it once, in order', async () => {
    let head = 106;
    const froms: number[] = [];
    const { cursor, seqs, send } = setup((after, c) => {
      froms.push(after);
      for (let p = after + 1; p <= head; p++) c.receive({ sequence: p });
      return { position: head, reload: false };
    });
    expect(await cursor.catchUp(100)).toEqual({ kind: 'current', position: 106 });
    expect(seqs()).toEqual([101, 102, 103, 104, 105, 106]);
    send(107, 107, 106);
    expect(seqs().slice(6)).toEqual([107]);

    cursor.hold(); // the connection was lost
    head = 111;
    send(110, 111); // live on the new connection, before the catch-up replays 108-111
    expect(seqs()).toHaveLength(7);
    expect(await cursor.catchUp()).toEqual({ kind: 'current', position: 111 });
    expect(froms).toEqual([100, 107]);
    expect(seqs().slice(7)).toEqual([108, 109, 110, 111]);

    send(112, 112, 111, 113);
    expect(seqs().slice(11)).toEqual([112, 113]);
    expect(cursor.dropped).toBe(2 + 2 + 2);
  });

  it('a position older than the log keeps ends in a reload that continues from the given position', async () => {
    const { cursor, seqs, send } = setup(() => ({ position: 500, reload: true }));
    cursor.release();
    send(499, 501); // mode still unknown: both pass
    cursor.hold();
    send(500, 502, 501);
    expect(await cursor.catchUp(3)).toEqual({ kind: 'reload', position: 500 });
    expect(cursor.position).toBe(502);
    // 500 is covered by the reload; 501 and 502 come after it, in order.
    expect(seqs()).toEqual([499, 501, 501, 502]);
    send(502, 503);
    expect(seqs().slice(4)).toEqual([503]);
  });

  it('ReceiveReload asks for a reload unless a catch-up is answering it', async () => {
    let reloadDuringCatchUp: boolean | undefined;
    const reload = { type: 'RELOAD_REQUIRED', position: 40, oldestPosition: 30, timestamp: '2026-12-03T21:00:00.000Z' };
    const { cursor } = setup((_, c) => {
      reloadDuringCatchUp = c.reloadRequired(reload);
      return { position: 40, reload: true };
    });
    expect(await cursor.catchUp(1)).toEqual({ kind: 'reload', position: 40 });
    expect(reloadDuringCatchUp).toBe(false);
    expect(cursor.reloadRequired({ ...reload, position: 70 })).toBe(true);
    expect(cursor.position).toBe(70);
    expect(cursor.reloadRequired({ type: 'RELOAD_REQUIRED' })).toBe(false);
    expect(cursor.reloadRequired(null)).toBe(false);
  });

  it('without a known position does not ask the hub and delivers what it held', async () => {
    const { cursor, seqs, send, calls } = setup(() => ({ position: 1, reload: false }));
    send(7, 3);
    expect(await cursor.catchUp()).toEqual({ kind: 'unsupported' });
    expect(calls).toEqual([]);
    expect(seqs()).toEqual([7, 3]);
  });

  it('an answer that is not a CatchUp result counts as no log', async () => {
    const { cursor } = setup(() => ({ position: -1, reload: false }));
    expect((await cursor.catchUp(1)).kind).toBe('unsupported');
    expect(cursor.mode).toBe('none');
  });

  it('too many held messages end the catch-up in a reload', async () => {
    const got: Msg[] = [];
    const cursor = new LogCursor<Msg>({
      invoke: async () => ({ position: 10, reload: false }),
      deliver: (m) => got.push(m),
      maxHeld: 3,
    });
    for (const s of [11, 12, 13, 14, 15]) cursor.receive({ sequence: s });
    expect(await cursor.catchUp(10)).toEqual({ kind: 'reload', position: 10 });
    expect(got.map((m) => m.sequence)).toEqual([13, 14, 15]);
  });

  it('runs one catch-up at a time, each from where the previous ended', async () => {
    const froms: number[] = [];
    let head = 20;
    const { cursor } = setup((after, c) => {
      froms.push(after);
      for (let p = after + 1; p <= head; p++) c.receive({ sequence: p });
      return { position: head, reload: false };
    });
    const a = cursor.catchUp(10);
    head = 20;
    const b = cursor.catchUp();
    await Promise.all([a, b]);
    expect(froms).toEqual([10, 20]);
  });

  it('keeps messages without a position', async () => {
    const { cursor, got } = setup((after, c) => {
      c.receive({ sequence: after + 1 });
      return { position: after + 1, reload: false };
    });
    cursor.receive({ text: 'unnumbered' });
    await cursor.catchUp(1);
    cursor.receive({ text: 'later' });
    expect(got.map((m) => m.text ?? m.sequence)).toEqual(['unnumbered', 2, 'later']);
  });
});

describe('isReload', () => {
  it('accepts the contract message only', () => {
    expect(isReload({ type: 'RELOAD_REQUIRED', position: 3, oldestPosition: 2, timestamp: 'x' })).toBe(true);
    expect(isReload({ type: 'RELOAD_REQUIRED', position: '3' })).toBe(false);
    expect(isReload({ type: 'NEW_LEAD', position: 3 })).toBe(false);
  });
});
