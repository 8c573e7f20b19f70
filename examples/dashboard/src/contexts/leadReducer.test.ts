import { describe, expect, it } from 'vitest';
import type { Lead, LeadUpdateMessage, Metrics, MetricsUpdateMessage } from '../contract.ts';
import { mockLeads, mockMetrics } from '../mockData.ts';
import { initialLeadState, isProcessing, leadReducer, MAX_ACTIVITY, type LeadAction, type LeadState } from './leadReducer.ts';
import { isReload } from '../services/catchUp.ts';

const t0 = '2026-11-26T18:00:00.000Z';
const t1 = '2026-11-26T18:00:01.000Z';
const t2 = '2026-11-26T18:00:02.000Z';

function lead(id: number, over: Partial<Lead> = {}): Lead {
  return { id, name: `Lead ${id} name`, source: 'Google', status: 'New', createdAt: t0, updatedAt: t0, ...over };
}

const metrics: Metrics = {
  ...mockMetrics,
  totalLeads: 2,
  leadsBySource: { Google: 2 },
  leadsByStatus: { New: 2 },
};

function reduce(state: LeadState, ...actions: LeadAction[]): LeadState {
  return actions.reduce(leadReducer, state);
}

function loaded(...leads: Lead[]): LeadState {
  return reduce(initialLeadState, { type: 'loaded', leads, total: leads.length, metrics });
}

function msg(m: Partial<LeadUpdateMessage> & Pick<LeadUpdateMessage, 'type'>): LeadAction {
  return { type: 'leadUpdate', msg: { timestamp: t1, ...m } };
}

describe('leadReducer', () => {
  it('loads leads and metrics', () => {
    const s = loaded(lead(2), lead(1));
    expect(s.mode).toBe('live');
    expect(s.leads.map((l) => l.id)).toEqual([2, 1]);
    expect(s.total).toBe(2);
    expect(s.metrics).toEqual(metrics);
    expect(s.error).toBeNull();
  });

  it('NEW_LEAD adds the lead on top and counts it', () => {
    const s = reduce(loaded(lead(1)), msg({ type: 'NEW_LEAD', leadId: 2, lead: lead(2, { name: 'Ada' }), source: 'Google' }));
    expect(s.leads.map((l) => l.id)).toEqual([2, 1]);
    expect(s.leads[0]!.name).toBe('Ada');
    expect(s.total).toBe(2);
    expect(s.activity[0]).toMatchObject({ type: 'NEW_LEAD', leadId: 2, text: 'New lead Ada from Google' });
  });

  it('NEW_LEAD of a lead already shown updates it instead of adding a second row', () => {
    const s = reduce(loaded(lead(1)), msg({ type: 'NEW_LEAD', leadId: 1, lead: lead(1, { name: 'Renamed', updatedAt: t1 }) }));
    expect(s.leads).toHaveLength(1);
    expect(s.leads[0]!.name).toBe('Renamed');
    expect(s.total).toBe(1);
  });

  it('NEW_LEAD with a partial lead fills in defaults', () => {
    const s = reduce(loaded(), msg({ type: 'NEW_LEAD', leadId: 7, source: 'LinkedIn' }));
    expect(s.leads[0]).toMatchObject({ id: 7, name: 'Lead 7', source: 'LinkedIn', status: 'New' });
  });

  it('STATUS_UPDATE changes the status in place', () => {
    const s = reduce(loaded(lead(1), lead(2)), msg({ type: 'STATUS_UPDATE', leadId: 1, previousStatus: 'New', newStatus: 'Enriching' }));
    expect(s.leads.map((l) => [l.id, l.status])).toEqual([
      [1, 'Enriching'],
      [2, 'New'],
    ]);
    expect(s.leads[0]!.updatedAt).toBe(t1);
    expect(s.activity[0]).toMatchObject({ text: 'Lead 1 name: New → Enriching', tone: 'progress' });
  });

  it('SCORE_UPDATE sets the score', () => {
    const s = reduce(loaded(lead(1)), msg({ type: 'SCORE_UPDATE', leadId: 1, previousScore: 0, newScore: 87.5 }));
    expect(s.leads[0]!.score).toBe(87.5);
    expect(s.activity[0]!.text).toBe('Lead 1 name: scored 87.5');
  });

  it('ENRICHMENT_UPDATE merges the enrichment data', () => {
    const s = reduce(
      loaded(lead(1, { company: 'Kept' })),
      msg({ type: 'ENRICHMENT_UPDATE', leadId: 1, lead: { id: 1, enrichmentData: { employees: 120 } } }),
    );
    expect(s.leads[0]).toMatchObject({ id: 1, company: 'Kept', enrichmentData: { employees: 120 }, updatedAt: t1 });
  });

  it('WORKFLOW_STARTED, _COMPLETED and _FAILED track the workflow', () => {
    let s = reduce(loaded(lead(1)), msg({ type: 'WORKFLOW_STARTED', leadId: 1, message: 'LeadProcessing started' }));
    expect(isProcessing(s, 1)).toBe(true);
    expect(s.workflows[1]).toEqual({ status: 'running', message: 'LeadProcessing started', at: t1 });
    s = reduce(s, msg({ type: 'WORKFLOW_COMPLETED', leadId: 1, timestamp: t2 }));
    expect(isProcessing(s, 1)).toBe(false);
    expect(s.workflows[1]).toEqual({ status: 'completed', at: t2 });
    s = reduce(s, msg({ type: 'WORKFLOW_FAILED', leadId: 1, timestamp: t2, message: 'zoho upsert: 503' }));
    expect(s.workflows[1]).toMatchObject({ status: 'failed', message: 'zoho upsert: 503' });
    expect(s.activity.map((a) => a.tone)).toEqual(['bad', 'good', 'progress']);
  });

  it('LEAD_DELETED removes the lead and its workflow', () => {
    const s = reduce(
      loaded(lead(1), lead(2)),
      msg({ type: 'WORKFLOW_STARTED', leadId: 1 }),
      msg({ type: 'LEAD_DELETED', leadId: 1, timestamp: t2 }),
    );
    expect(s.leads.map((l) => l.id)).toEqual([2]);
    expect(s.total).toBe(1);
    expect(s.workflows[1]).toBeUndefined();
  });

  it('METRICS_UPDATE replaces the metrics', () => {
    const next: MetricsUpdateMessage = { type: 'METRICS_UPDATE', metrics: { ...metrics, totalLeads: 3 }, timestamp: t1, sequence: 4 };
    const s = reduce(loaded(), { type: 'metricsUpdate', msg: next });
    expect(s.metrics?.totalLeads).toBe(3);
    expect(s.metricsSeq).toBe(4);
  });

  it('ignores messages with a sequence older than the state', () => {
    let s = reduce(loaded(lead(1)), msg({ type: 'STATUS_UPDATE', leadId: 1, newStatus: 'Enriching', sequence: 5 }));
    s = reduce(s, msg({ type: 'STATUS_UPDATE', leadId: 1, newStatus: 'Failed', sequence: 4 }));
    s = reduce(s, msg({ type: 'STATUS_UPDATE', leadId: 1, newStatus: 'Failed', sequence: 5 }));
    expect(s.leads[0]!.status).toBe('Enriching');
    const m = (seq: number, total: number): LeadAction => ({
      type: 'metricsUpdate',
      msg: { type: 'METRICS_UPDATE', metrics: { ...metrics, totalLeads: total }, timestamp: t1, sequence: seq },
    });
    s = reduce(s, m(9, 9), m(8, 8));
    expect(s.metrics?.totalLeads).toBe(9);
  });

  it('forgets sequences when the connection is lost: a restarted server counts from 1', () => {
    let s = reduce(loaded(lead(1)), msg({ type: 'STATUS_UPDATE', leadId: 1, newStatus: 'Enriching', sequence: 50 }));
    s = reduce(s, { type: 'connectionLost' }, msg({ type: 'STATUS_UPDATE', leadId: 1, newStatus: 'Enriched', sequence: 1, timestamp: t2 }));
    expect(s.leads[0]!.status).toBe('Enriched');
  });

  it('ignores a change older than the loaded lead', () => {
    const s = reduce(loaded(lead(1, { status: 'Scored', updatedAt: t2 })), msg({ type: 'STATUS_UPDATE', leadId: 1, newStatus: 'Enriching', timestamp: t1 }));
    expect(s.leads[0]!.status).toBe('Scored');
  });

  it('holds live messages until the load lands, then replays them', () => {
    let s = reduce(
      initialLeadState,
      msg({ type: 'NEW_LEAD', leadId: 3, lead: lead(3, { createdAt: t1, updatedAt: t1 }) }),
      msg({ type: 'STATUS_UPDATE', leadId: 1, newStatus: 'Enriching', timestamp: t1 }),
    );
    expect(s.leads).toEqual([]);
    expect(s.pending).toHaveLength(2);
    s = reduce(s, { type: 'loaded', leads: [lead(1)], total: 1, metrics });
    expect(s.leads.map((l) => [l.id, l.status])).toEqual([
      [3, 'New'],
      [1, 'Enriching'],
    ]);
    expect(s.total).toBe(2);
    expect(s.pending).toEqual([]);
  });

  it('falls back to sample data, and leaves it on the next load', () => {
    let s = reduce(loaded(lead(1)), { type: 'fallback' });
    expect(s.mode).toBe('fallback');
    expect(s.leads).toEqual(mockLeads);
    expect(s.leads.every((l) => l.id < 0 && l.name.startsWith('Sample lead'))).toBe(true);
    expect(s.metrics).toEqual(mockMetrics);
    s = reduce(s, msg({ type: 'STATUS_UPDATE', leadId: -1, newStatus: 'Failed' }));
    expect(s.leads).toEqual(mockLeads);
    s = reduce(s, { type: 'loaded', leads: [lead(1)], total: 1, metrics });
    expect(s.mode).toBe('live');
    expect(s.leads.map((l) => l.id)).toEqual([1]);
  });

  it('keeps a live change newer than a reload', () => {
    let s = reduce(loaded(lead(1)), msg({ type: 'STATUS_UPDATE', leadId: 1, newStatus: 'Enriching', timestamp: t2 }));
    s = reduce(s, { type: 'loaded', leads: [lead(1, { updatedAt: t1 })], total: 1, metrics });
    expect(s.leads[0]!.status).toBe('Enriching');
  });

  it('records load errors and clears them on success', () => {
    let s = reduce(initialLeadState, { type: 'loadFailed', error: 'GET /leads: 500' });
    expect(s.error).toBe('GET /leads: 500');
    s = reduce(s, { type: 'loaded', leads: [], total: 0, metrics });
    expect(s.error).toBeNull();
  });

  it('bounds the activity feed', () => {
    const actions = Array.from({ length: MAX_ACTIVITY + 10 }, (_, i) => msg({ type: 'WORKFLOW_STARTED', leadId: i }));
    expect(reduce(loaded(), ...actions).activity).toHaveLength(MAX_ACTIVITY);
  });

  it('ignores an unknown message type and one without a lead id', () => {
    const s = loaded(lead(1));
    expect(reduce(s, msg({ type: 'SOMETHING_NEW' as LeadUpdateMessage['type'], leadId: 1 }))).toBe(s);
    expect(reduce(s, msg({ type: 'STATUS_UPDATE', newStatus: 'Failed' }))).toBe(s);
  });

  // Every golden lead and metrics message of package notify, as the Go side
  // encodes it (the analytics go to AnalyticsPanel and the reload message to
  // LogCursor, not to this reducer).
  const all = import.meta.glob<{ default: { type: string } }>('../../../../notify/testdata/golden/*.json', { eager: true });
  const golden = Object.fromEntries(
    Object.entries(all).filter(([, m]) => m.default.type !== 'ANALYTICS_UPDATE' && m.default.type !== 'RELOAD_REQUIRED'),
  ) as Record<string, { default: LeadUpdateMessage | MetricsUpdateMessage }>;
  it('knows the golden reload message for one', () => {
    const reloads = Object.values(all).filter((m) => m.default.type === 'RELOAD_REQUIRED');
    expect(reloads).toHaveLength(1);
    expect(isReload(reloads[0]!.default)).toBe(true);
  });
  it('has the golden messages', () => {
    expect(Object.keys(golden).length).toBeGreaterThanOrEqual(9);
  });
  it.each(Object.entries(golden))('applies %s', (_, { default: m }) => {
    const s = loaded({ ...lead(42), updatedAt: '2026-11-26T18:11:00.000Z' });
    const next =
      m.type === 'METRICS_UPDATE'
        ? leadReducer(s, { type: 'metricsUpdate', msg: m })
        : leadReducer(s, { type: 'leadUpdate', msg: m as LeadUpdateMessage });
    expect(next).not.toBe(s);
    if (m.type === 'METRICS_UPDATE') expect(next.metrics).toEqual(m.metrics);
    else expect(next.activity[0]?.type).toBe(m.type);
  });
});
