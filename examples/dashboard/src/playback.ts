// Historical playback of one lead: its events from the server's event log
// (GET /api/leads/{id}/history) folded into the lead's state as of each
// event, and a player that walks them step by step. Pure, so that tests
// drive it directly; components/LeadHistory.tsx draws it.
import type { Lead, LeadUpdateMessage } from './contract.ts';
import { mapStatus } from './status.ts';

/** The lead as of one step: what the player shows. */
export interface LeadAsOf {
  name?: string;
  status?: string;
  score?: number;
  enrichment?: Record<string, unknown>;
  workflow?: 'running' | 'completed' | 'failed';
  /** The last workflow message (a failure's reason). */
  note?: string;
  deleted: boolean;
}

/** One event of the timeline and the lead after it. */
export interface Step {
  /** The event's log position (its sequence). */
  position: number;
  type: string;
  at: string;
  text: string;
  tone: 'neutral' | 'progress' | 'good' | 'bad';
  state: LeadAsOf;
  /** The event itself, as the history answered it. */
  event: LeadUpdateMessage;
}

/** The player. index is the step shown, -1 before the first (no events). */
export interface Playback {
  steps: Step[];
  index: number;
  playing: boolean;
}

export type PlaybackAction =
  /** The history, oldest first: shows the last step (the lead as it is). */
  | { type: 'loaded'; events: LeadUpdateMessage[] }
  /** Live events of the lead: added when new; the player follows them when it shows the last step. */
  | { type: 'append'; events: LeadUpdateMessage[] }
  /** Plays from the shown step on, or from the first when the last is shown. */
  | { type: 'play' }
  | { type: 'pause' }
  /** The player's clock: one step forward while playing; stops at the last. */
  | { type: 'tick' }
  | { type: 'step' }
  | { type: 'back' }
  | { type: 'seek'; index: number };

export const emptyPlayback: Playback = { steps: [], index: -1, playing: false };

export function playbackReducer(p: Playback, a: PlaybackAction): Playback {
  const last = p.steps.length - 1;
  switch (a.type) {
    case 'loaded': {
      const steps = buildSteps(a.events);
      return { steps, index: steps.length - 1, playing: false };
    }
    case 'append': {
      const known = new Set(p.steps.map((s) => s.position));
      const fresh = a.events.filter((e) => e.sequence !== undefined && !known.has(e.sequence));
      if (fresh.length === 0) return p;
      const steps = extend(p.steps, fresh);
      return { ...p, steps, index: !p.playing && p.index === last ? steps.length - 1 : p.index };
    }
    case 'play':
      if (last < 0) return p;
      return { ...p, playing: true, index: p.index >= last ? 0 : p.index };
    case 'pause':
      return p.playing ? { ...p, playing: false } : p;
    case 'tick': {
      if (!p.playing) return p;
      const index = Math.min(p.index + 1, last);
      return { ...p, index, playing: index < last };
    }
    case 'step':
      return { ...p, playing: false, index: Math.min(p.index + 1, last) };
    case 'back':
      return { ...p, playing: false, index: last < 0 ? -1 : Math.max(p.index - 1, 0) };
    case 'seek':
      if (!Number.isInteger(a.index) || last < 0) return p;
      return { ...p, playing: false, index: Math.max(0, Math.min(a.index, last)) };
  }
}

/** current is the step shown, if any. */
export function current(p: Playback): Step | undefined {
  return p.index >= 0 ? p.steps[p.index] : undefined;
}

/**
 * buildSteps folds a lead's events, oldest first, into the lead's state after
 * each. Events without a position (not from the log) are left out; so are
 * repeats of a position.
 */
export function buildSteps(events: readonly LeadUpdateMessage[]): Step[] {
  return extend([], events);
}

function extend(steps: readonly Step[], events: readonly LeadUpdateMessage[]): Step[] {
  const seen = new Set(steps.map((s) => s.position));
  const fresh: Positioned[] = [];
  for (const e of events) {
    if (e.sequence === undefined || seen.has(e.sequence)) continue;
    seen.add(e.sequence);
    fresh.push(e as Positioned);
  }
  if (fresh.length === 0) return steps.slice();
  fresh.sort((a, b) => a.sequence - b.sequence);
  const lastPos = steps.length > 0 ? steps[steps.length - 1]!.position : -1;
  if (fresh[0]!.sequence < lastPos) {
    // A late event changes every state after it: fold everything again.
    return extend([], [...steps.map((s) => s.event), ...fresh]);
  }
  const out = steps.slice();
  let state: LeadAsOf = out.length > 0 ? out[out.length - 1]!.state : { deleted: false };
  for (const msg of fresh) {
    state = fold(state, msg);
    out.push({ position: msg.sequence, type: msg.type, at: msg.timestamp, ...describe(msg, state), state, event: msg });
  }
  return out;
}

type Positioned = LeadUpdateMessage & { sequence: number };

/** fold applies one event to the lead's state. */
export function fold(s: LeadAsOf, m: LeadUpdateMessage): LeadAsOf {
  const lead: Partial<Lead> = m.lead ?? {};
  switch (m.type) {
    case 'NEW_LEAD':
      return {
        ...s,
        name: lead.name ?? s.name,
        status: lead.status ?? s.status ?? 'New',
        score: lead.score ?? s.score,
        enrichment: lead.enrichmentData ?? s.enrichment,
        deleted: false,
      };
    case 'STATUS_UPDATE':
      return m.newStatus === undefined ? s : { ...s, status: m.newStatus };
    case 'SCORE_UPDATE': {
      const score = m.newScore ?? lead.score;
      return score === undefined ? s : { ...s, score };
    }
    case 'ENRICHMENT_UPDATE':
      return lead.enrichmentData === undefined ? s : { ...s, enrichment: lead.enrichmentData };
    case 'WORKFLOW_STARTED':
      return { ...s, workflow: 'running', note: m.message };
    case 'WORKFLOW_COMPLETED':
      return { ...s, workflow: 'completed', note: m.message };
    case 'WORKFLOW_FAILED':
      return { ...s, workflow: 'failed', note: m.message };
    case 'LEAD_DELETED':
      return { ...s, deleted: true };
    default:
      return s;
  }
}

function describe(m: LeadUpdateMessage, after: LeadAsOf): Pick<Step, 'text' | 'tone'> {
  switch (m.type) {
    case 'NEW_LEAD':
      return { text: `Created${m.source ? ` from ${m.source}` : ''}`, tone: 'neutral' };
    case 'STATUS_UPDATE': {
      const to = mapStatus(m.newStatus ?? after.status ?? '');
      const from = m.previousStatus ? `${mapStatus(m.previousStatus).label} → ` : '';
      return { text: `Status ${from}${to.label}`, tone: to.tone };
    }
    case 'SCORE_UPDATE':
      return { text: `Scored ${after.score === undefined ? '?' : after.score.toFixed(1)}`, tone: 'progress' };
    case 'ENRICHMENT_UPDATE':
      return { text: 'Enriched', tone: 'progress' };
    case 'WORKFLOW_STARTED':
      return { text: m.message ?? 'Workflow started', tone: 'progress' };
    case 'WORKFLOW_COMPLETED':
      return { text: m.message ?? 'Workflow completed', tone: 'good' };
    case 'WORKFLOW_FAILED':
      return { text: m.message ? `Workflow failed: ${m.message}` : 'Workflow failed', tone: 'bad' };
    case 'LEAD_DELETED':
      return { text: 'Deleted', tone: 'neutral' };
    default:
      return { text: m.type, tone: 'neutral' };
  }
}
