// The lead state and its reducer: REST loads, every live message type,
// connection loss and fallback mode. Pure, so that tests drive it directly.
import type { Lead, LeadUpdateMessage, Metrics, MetricsUpdateMessage } from '../contract.ts';
import { mockLeads, mockMetrics } from '../mockData.ts';
import { mapStatus } from '../status.ts';

/** Where the data on screen comes from. */
export type DataMode = 'loading' | 'live' | 'fallback';

/** The last workflow event of a lead. */
export interface WorkflowState {
  status: 'running' | 'completed' | 'failed';
  message?: string;
  at: string;
}

/** One line of the activity feed. */
export interface ActivityItem {
  key: number;
  type: string;
  leadId?: number;
  text: string;
  at: string;
  tone: 'neutral' | 'progress' | 'good' | 'bad';
}

export interface LeadState {
  mode: DataMode;
  /** Newest first, at most MAX_LEADS. */
  leads: Lead[];
  /** Total live leads the server reported, kept current by NEW_LEAD and LEAD_DELETED. */
  total: number;
  metrics: Metrics | null;
  workflows: Record<number, WorkflowState>;
  /** Newest first, at most MAX_ACTIVITY. */
  activity: ActivityItem[];
  /**
   * The highest sequence applied per lead and for metrics: a message with a
   * sequence at or below it is old and ignored. Without an event log,
   * sequences are microseconds on each producer's clock, so the instances of
   * a hub compare as their clocks do; they are forgotten when the connection
   * is lost all the same. With one they are log positions, and LogCursor
   * (services/catchUp.ts) has already dropped duplicates and ordered them.
   */
  leadSeq: Record<number, number>;
  metricsSeq?: number;
  /** The last load error, shown with a retry. */
  error: string | null;
  /** When the last live message was applied. */
  lastUpdate: string | null;
  /**
   * Live messages received before the data they change was loaded (mode not
   * live): replayed, oldest first, on top of the load.
   */
  pending: LiveAction[];
  nextKey: number;
}

/** The actions a live message becomes. */
export type LiveAction = { type: 'leadUpdate'; msg: LeadUpdateMessage } | { type: 'metricsUpdate'; msg: MetricsUpdateMessage };

export const MAX_LEADS = 200;
export const MAX_ACTIVITY = 50;
export const MAX_PENDING = 1000;

export type LeadAction =
  | { type: 'loaded'; leads: Lead[]; total: number; metrics: Metrics }
  | { type: 'loadFailed'; error: string }
  | { type: 'leadFetched'; lead: Lead }
  | LiveAction
  | { type: 'connectionLost' }
  | { type: 'fallback' };

export const initialLeadState: LeadState = {
  mode: 'loading',
  leads: [],
  total: 0,
  metrics: null,
  workflows: {},
  activity: [],
  leadSeq: {},
  error: null,
  lastUpdate: null,
  pending: [],
  nextKey: 1,
};

export function leadReducer(state: LeadState, action: LeadAction): LeadState {
  switch (action.type) {
    case 'loaded': {
      const loaded: LeadState = {
        ...state,
        mode: 'live',
        leads: mergeLoaded(state.mode === 'live' ? state.leads : [], action.leads),
        total: action.total,
        metrics: action.metrics,
        workflows: state.mode === 'live' ? state.workflows : {},
        error: null,
        pending: [],
      };
      return state.pending.reduce(leadReducer, loaded);
    }
    case 'loadFailed':
      return { ...state, error: action.error };
    case 'leadFetched': {
      if (state.mode !== 'live') return state;
      const i = state.leads.findIndex((l) => l.id === action.lead.id);
      if (i < 0) return state;
      const leads = state.leads.slice();
      leads[i] = action.lead;
      return { ...state, leads };
    }
    case 'connectionLost':
      return { ...state, leadSeq: {}, metricsSeq: undefined, pending: [] };
    case 'fallback':
      return {
        ...state,
        mode: 'fallback',
        leads: mockLeads,
        total: mockLeads.length,
        metrics: mockMetrics,
        workflows: {},
        leadSeq: {},
        metricsSeq: undefined,
        pending: [],
      };
    case 'metricsUpdate': {
      if (state.mode !== 'live') return hold(state, action);
      const seq = action.msg.sequence;
      if (seq !== undefined && state.metricsSeq !== undefined && seq <= state.metricsSeq) return state;
      return { ...state, metrics: action.msg.metrics, metricsSeq: seq ?? state.metricsSeq, lastUpdate: action.msg.timestamp };
    }
    case 'leadUpdate':
      if (state.mode !== 'live') return hold(state, action);
      return applyLeadUpdate(state, action.msg);
  }
}

/** hold keeps a live message until the load it applies to lands. */
function hold(state: LeadState, action: LiveAction): LeadState {
  return { ...state, pending: [...state.pending, action].slice(-MAX_PENDING) };
}

function applyLeadUpdate(state: LeadState, msg: LeadUpdateMessage): LeadState {
  const id = msg.leadId ?? msg.lead?.id;
  if (id === undefined) return state;
  if (msg.sequence !== undefined) {
    const last = state.leadSeq[id];
    if (last !== undefined && msg.sequence <= last) return state;
  }
  const next: LeadState = {
    ...state,
    lastUpdate: msg.timestamp,
    leadSeq: msg.sequence === undefined ? state.leadSeq : { ...state.leadSeq, [id]: msg.sequence },
  };
  const i = state.leads.findIndex((l) => l.id === id);
  const current = i >= 0 ? state.leads[i] : undefined;
  if (current !== undefined && msg.timestamp < current.updatedAt && changesFields(msg.type)) {
    // Produced before the loaded state of this lead was read: the lead
    // already shows this change or a later one.
    return next;
  }
  const name = current?.name ?? msg.lead?.name ?? `Lead ${id}`;

  switch (msg.type) {
    case 'NEW_LEAD': {
      const lead: Lead = {
        id,
        name: `Lead ${id}`,
        source: msg.source ?? 'Unknown',
        status: 'New',
        createdAt: msg.timestamp,
        updatedAt: msg.timestamp,
        ...current,
        ...stripUndefined(msg.lead ?? {}),
      };
      lead.id = id;
      const leads = current ? replaceAt(state.leads, i, lead) : [lead, ...state.leads].slice(0, MAX_LEADS);
      return addActivity(
        { ...next, leads, total: current ? state.total : state.total + 1 },
        msg, id, `New lead ${lead.name} from ${lead.source}`, 'neutral',
      );
    }
    case 'STATUS_UPDATE': {
      if (msg.newStatus === undefined) return next;
      const shown = mapStatus(msg.newStatus);
      const leads = current ? replaceAt(state.leads, i, { ...current, status: msg.newStatus, updatedAt: msg.timestamp }) : state.leads;
      const from = msg.previousStatus ? `${mapStatus(msg.previousStatus).label} → ` : '';
      return addActivity({ ...next, leads }, msg, id, `${name}: ${from}${shown.label}`, shown.tone);
    }
    case 'SCORE_UPDATE': {
      const score = msg.newScore ?? msg.lead?.score;
      if (score === undefined) return next;
      const leads = current ? replaceAt(state.leads, i, { ...current, score, updatedAt: msg.timestamp }) : state.leads;
      return addActivity({ ...next, leads }, msg, id, `${name}: scored ${score.toFixed(1)}`, 'progress');
    }
    case 'ENRICHMENT_UPDATE': {
      const leads = current
        ? replaceAt(state.leads, i, { ...current, ...stripUndefined(msg.lead ?? {}), id, updatedAt: msg.timestamp })
        : state.leads;
      return addActivity({ ...next, leads }, msg, id, `${name}: enriched`, 'progress');
    }
    case 'WORKFLOW_STARTED':
    case 'WORKFLOW_COMPLETED':
    case 'WORKFLOW_FAILED': {
      const status = msg.type === 'WORKFLOW_STARTED' ? 'running' : msg.type === 'WORKFLOW_COMPLETED' ? 'completed' : 'failed';
      const wf: WorkflowState = { status, at: msg.timestamp, ...(msg.message ? { message: msg.message } : {}) };
      const tone = status === 'running' ? 'progress' : status === 'completed' ? 'good' : 'bad';
      const text = `${name}: ${msg.message ?? `workflow ${status}`}`;
      return addActivity({ ...next, workflows: { ...state.workflows, [id]: wf } }, msg, id, text, tone);
    }
    case 'LEAD_DELETED': {
      const workflows = { ...state.workflows };
      delete workflows[id];
      const leads = current ? state.leads.filter((l) => l.id !== id) : state.leads;
      return addActivity(
        { ...next, leads, workflows, total: current ? Math.max(0, state.total - 1) : state.total },
        msg, id, `${name}: deleted`, 'neutral',
      );
    }
    default:
      // A type added to the contract later: nothing to show yet.
      return state;
  }
}

function changesFields(t: string): boolean {
  return t === 'NEW_LEAD' || t === 'STATUS_UPDATE' || t === 'SCORE_UPDATE' || t === 'ENRICHMENT_UPDATE';
}

/** isProcessing reports whether a lead's workflow is running. */
export function isProcessing(state: LeadState, id: number): boolean {
  return state.workflows[id]?.status === 'running';
}

function addActivity(state: LeadState, msg: LeadUpdateMessage, leadId: number, text: string, tone: ActivityItem['tone']): LeadState {
  const item: ActivityItem = { key: state.nextKey, type: msg.type, leadId, text, at: msg.timestamp, tone };
  return { ...state, activity: [item, ...state.activity].slice(0, MAX_ACTIVITY), nextKey: state.nextKey + 1 };
}

/**
 * mergeLoaded takes a REST page as the truth, except for leads that a live
 * message changed after the page was read (a newer updatedAt), and keeps
 * live leads the page does not hold (e.g. created while it loaded).
 */
function mergeLoaded(current: Lead[], loaded: Lead[]): Lead[] {
  const byId = new Map(current.map((l) => [l.id, l]));
  const seen = new Set<number>();
  const merged = loaded.map((l) => {
    seen.add(l.id);
    const cur = byId.get(l.id);
    return cur !== undefined && cur.updatedAt > l.updatedAt ? cur : l;
  });
  const newest = loaded.length > 0 ? loaded[0]!.createdAt : '';
  const extra = current.filter((l) => !seen.has(l.id) && l.createdAt > newest);
  return [...extra, ...merged].slice(0, MAX_LEADS);
}

function replaceAt(leads: Lead[], i: number, lead: Lead): Lead[] {
  const out = leads.slice();
  out[i] = lead;
  return out;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
