import { describe, expect, it } from 'vitest';
import type { LeadUpdateMessage } from './contract.ts';
import { buildSteps, current, emptyPlayback, playbackReducer, type Playback, type PlaybackAction } from './playback.ts';

const at = (s: number) => `2026-12-03T21:00:${String(s).padStart(2, '0')}.000Z`;

/** A processed lead's history as the example server logs it, positions 10, 12, 14, ... (other leads' events between). */
const history: LeadUpdateMessage[] = ([
  { type: 'NEW_LEAD', leadId: 7, lead: { id: 7, name: 'Ada', status: 'New', source: 'Google' }, source: 'Google', timestamp: at(1) },
  { type: 'WORKFLOW_STARTED', leadId: 7, message: 'LeadProcessing started', timestamp: at(2) },
  { type: 'STATUS_UPDATE', leadId: 7, previousStatus: 'New', newStatus: 'Enriching', timestamp: at(3) },
  { type: 'ENRICHMENT_UPDATE', leadId: 7, lead: { id: 7, enrichmentData: { employees: 120 } }, timestamp: at(4) },
  { type: 'STATUS_UPDATE', leadId: 7, previousStatus: 'Enriching', newStatus: 'Enriched', timestamp: at(5) },
  { type: 'SCORE_UPDATE', leadId: 7, previousScore: 0, newScore: 87.5, timestamp: at(6) },
  { type: 'STATUS_UPDATE', leadId: 7, previousStatus: 'Enriched', newStatus: 'Scored', timestamp: at(7) },
  { type: 'WORKFLOW_FAILED', leadId: 7, message: 'Vet: timeout', timestamp: at(8) },
] as LeadUpdateMessage[]).map((m, i) => ({ ...m, sequence: 10 + 2 * i }));

function run(p: Playback, ...actions: PlaybackAction[]): Playback {
  return actions.reduce(playbackReducer, p);
}

describe('buildSteps', () => {
  it('folds the events into the lead as of each step', () => {
    const steps = buildSteps(history);
    expect(steps.map((s) => s.position)).toEqual([10, 12, 14, 16, 18, 20, 22, 24]);
    expect(steps.map((s) => [s.state.status, s.state.score, s.state.workflow])).toEqual([
      ['New', undefined, undefined],
      ['New', undefined, 'running'],
      ['Enriching', undefined, 'running'],
      ['Enriching', undefined, 'running'],
      ['Enriched', undefined, 'running'],
      ['Enriched', 87.5, 'running'],
      ['Scored', 87.5, 'running'],
      ['Scored', 87.5, 'failed'],
    ]);
    expect(steps[2]!.state.enrichment).toBeUndefined();
    expect(steps[3]!.state.enrichment).toEqual({ employees: 120 });
    expect(steps.map((s) => s.text)).toEqual([
      'Created from Google',
      'LeadProcessing started',
      'Status New → Enriching',
      'Enriched',
      'Status Enriching → Enriched',
      'Scored 87.5',
      'Status Enriched → Scored',
      'Workflow failed: Vet: timeout',
    ]);
    expect(steps.at(-1)!.tone).toBe('bad');
    expect(steps.at(-1)!.state.note).toBe('Vet: timeout');
  });

  it('orders by position and leaves out events without one and repeats', () => {
    const shuffled = [history[2]!, history[0]!, { ...history[1]!, sequence: undefined }, history[0]!];
    expect(buildSteps(shuffled).map((s) => s.position)).toEqual([10, 14]);
  });

  it('marks a deleted lead', () => {
    const steps = buildSteps([history[0]!, { type: 'LEAD_DELETED', leadId: 7, timestamp: at(9), sequence: 30 }]);
    expect(steps.map((s) => s.state.deleted)).toEqual([false, true]);
    expect(steps[1]!.state.status).toBe('New');
  });

  // Every golden lead message of package notify makes a step.
  const golden = Object.entries(
    import.meta.glob<{ default: { type: string } }>('../../../notify/testdata/golden/*.json', { eager: true }),
  ).filter(([, m]) => !['METRICS_UPDATE', 'ANALYTICS_UPDATE', 'RELOAD_REQUIRED'].includes(m.default.type));
  it.each(golden)('shows %s', (_, { default: m }) => {
    const [step] = buildSteps([{ ...(m as LeadUpdateMessage), sequence: 1 }]);
    expect(step?.type).toBe(m.type);
    expect(step?.text).not.toBe('');
  });
});

describe('playbackReducer', () => {
  const loaded = run(emptyPlayback, { type: 'loaded', events: history });
  const last = history.length - 1;

  it('opens on the lead as it is', () => {
    expect(loaded.index).toBe(last);
    expect(loaded.playing).toBe(false);
    expect(current(loaded)?.state.status).toBe('Scored');
  });

  it('plays from the first step when at the last, one step per tick, and stops at the end', () => {
    let p = run(loaded, { type: 'play' });
    expect([p.index, p.playing]).toEqual([0, true]);
    p = run(p, { type: 'tick' }, { type: 'tick' });
    expect(current(p)?.state.status).toBe('Enriching');
    for (let i = 0; i < 10; i++) p = run(p, { type: 'tick' });
    expect([p.index, p.playing]).toEqual([last, false]);
    expect(run(p, { type: 'tick' })).toBe(p);
  });

  it('pauses, and plays on from where it paused', () => {
    const p = run(loaded, { type: 'play' }, { type: 'tick' }, { type: 'pause' });
    expect([p.index, p.playing]).toEqual([1, false]);
    expect(run(p, { type: 'tick' }).index).toBe(1);
    expect(run(p, { type: 'play' }, { type: 'tick' }).index).toBe(2);
  });

  it('steps and goes back within the timeline, pausing', () => {
    let p = run(loaded, { type: 'seek', index: 0 });
    expect(current(p)?.type).toBe('NEW_LEAD');
    p = run(p, { type: 'back' });
    expect(p.index).toBe(0);
    p = run(p, { type: 'play' }, { type: 'step' }, { type: 'step' });
    expect([p.index, p.playing]).toEqual([2, false]);
    p = run(p, { type: 'back' });
    expect(current(p)?.state).toMatchObject({ status: 'New', workflow: 'running' });
    expect(run(p, { type: 'seek', index: 99 }).index).toBe(last);
    expect(run(p, { type: 'seek', index: -5 }).index).toBe(0);
    expect(run(loaded, { type: 'step' }).index).toBe(last);
  });

  it('does nothing without events', () => {
    const p = run(emptyPlayback, { type: 'loaded', events: [] });
    expect(p.index).toBe(-1);
    expect(current(p)).toBeUndefined();
    for (const a of [{ type: 'play' }, { type: 'step' }, { type: 'back' }, { type: 'tick' }, { type: 'seek', index: 0 }] as PlaybackAction[]) {
      expect(run(p, a)).toMatchObject({ index: -1, playing: false });
    }
  });

  it('follows live events when showing the last step, and stays put otherwise', () => {
    const next: LeadUpdateMessage = { type: 'STATUS_UPDATE', leadId: 7, previousStatus: 'Failed', newStatus: 'New', timestamp: at(20), sequence: 40 };
    const followed = run(loaded, { type: 'append', events: [next] });
    expect(followed.index).toBe(last + 1);
    expect(current(followed)?.state.status).toBe('New');
    const back = run(loaded, { type: 'seek', index: 2 }, { type: 'append', events: [next] });
    expect(back.index).toBe(2);
    expect(back.steps).toHaveLength(history.length + 1);
    expect(run(followed, { type: 'append', events: [next, { ...next, sequence: undefined }] })).toBe(followed);
  });

  it('folds a late event into place', () => {
    const late: LeadUpdateMessage = { type: 'SCORE_UPDATE', leadId: 7, previousScore: 0, newScore: 50, timestamp: at(4), sequence: 15 };
    const p = run(loaded, { type: 'append', events: [late] });
    expect(p.steps.map((s) => s.position)).toEqual([10, 12, 14, 15, 16, 18, 20, 22, 24]);
    expect(p.steps.map((s) => s.state.score)).toEqual([undefined, undefined, undefined, 50, 50, 50, 87.5, 87.5, 87.5]);
  });
});
