// The lead-updates wire contract: what the hub sends to @microsoft/signalr
// clients. It is the TypeScript side of package notify's message.go
// (LeadUpdateMessage and MetricsUpdateMessage, plus additive optional fields),
// and `go test ./notify` type-checks it against the golden JSON of every
// message, so the two cannot drift. No imports: copy or import it as is.
//
//   connection.on(ClientMethods.leadUpdate, (msg: LeadUpdateMessage<Lead>) => { ... });
//   await connection.invoke('JoinLeadGroup', leadId); // then receives leadGroup(leadId)'s events

/** The `type` of a LeadUpdateMessage. LEAD_DELETED is additive: older clients ignore it. */
export type LeadUpdateType =
  | 'NEW_LEAD'
  | 'STATUS_UPDATE'
  | 'SCORE_UPDATE'
  | 'ENRICHMENT_UPDATE'
  | 'WORKFLOW_STARTED'
  | 'WORKFLOW_COMPLETED'
  | 'WORKFLOW_FAILED'
  | 'LEAD_DELETED';

/**
 * The argument of ReceiveLeadUpdate. Optional fields are absent, never null or
 * empty, when they do not apply. TLead is the application's lead model, which
 * the server sends as is.
 */
export interface LeadUpdateMessage<TLead = unknown> {
  type: LeadUpdateType;
  leadId?: number;
  lead?: TLead;
  source?: string;
  previousStatus?: string;
  newStatus?: string;
  /** Set on SCORE_UPDATE (additive, optional). */
  previousScore?: number;
  /** Set on SCORE_UPDATE (additive, optional). */
  newScore?: number;
  /** RFC 3339 UTC with milliseconds, e.g. "2026-11-26T18:11:29.123Z": `new Date(timestamp)`. */
  timestamp: string;
  message?: string;
  /**
   * Increases with every message of one producer (microseconds since the epoch, so producers compare by their clocks); gaps are normal (additive, optional).
   * With the server's durable event log it is the event's log position instead: increasing across every instance, the same number for the
   * same event at every client, live or caught up. Delivery is then at least once: drop a message whose sequence is not above the last one
   * applied, and pass that last one to `connection.invoke('CatchUp', last)` after reconnecting.
   */
  sequence?: number;
}

/** The dashboard figures of a MetricsUpdateMessage; every field is always present. */
export interface Metrics {
  totalLeads: number;
  qualifiedLeads: number;
  conversionRate: number;
  activeHarvesters: number;
  processingTime: number;
  scoreAverage: number;
  dailyGrowth: number;
  weeklyGrowth: number;
  newLeadsToday: number;
  processedToday: number;
  leadsBySource: Record<string, number>;
  leadsByStatus: Record<string, number>;
}

/** The argument of ReceiveMetricsUpdate. */
export interface MetricsUpdateMessage {
  type: 'METRICS_UPDATE';
  metrics: Metrics;
  /** RFC 3339 UTC with milliseconds, as on LeadUpdateMessage. */
  timestamp: string;
  /** As on LeadUpdateMessage (additive, optional). */
  sequence?: number;
}

/** Count, median, 95th percentile (interpolated) and maximum of processing times, in seconds; all 0 when count is 0. */
export interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  max: number;
}

/** One status of the funnel: leads that reached it, and as a % of the previous step's. */
export interface FunnelStep {
  status: string;
  leads: number;
  conversion: number;
}

/**
 * The processing analytics of an AnalyticsUpdateMessage (additive); every
 * field is always present. The series hold `buckets` counts,
 * bucket i starting at start + i × bucketSeconds; the last holds the time of
 * computation. Definitions: package metrics (README, Analytics).
 */
export interface Analytics {
  /** RFC 3339 UTC with milliseconds: the start of the first bucket. */
  start: string;
  bucketSeconds: number;
  buckets: number;
  /** Leads created per bucket, by source. */
  created: Record<string, number[]>;
  /** Leads processed per bucket, by source. */
  processed: Record<string, number[]>;
  /** Workflow failures per bucket, by activity. */
  failures: Record<string, number[]>;
  processingTime: { lastHour: Percentiles; lastDay: Percentiles };
  funnel: FunnelStep[];
}

/** The argument of ReceiveAnalyticsUpdate (additive, optional). */
export interface AnalyticsUpdateMessage {
  type: 'ANALYTICS_UPDATE';
  analytics: Analytics;
  /** RFC 3339 UTC with milliseconds, as on LeadUpdateMessage. */
  timestamp: string;
  /** As on LeadUpdateMessage. */
  sequence?: number;
}

/**
 * The argument of ReceiveReload (additive): the client asked to catch up from a position the server's event log no longer holds. Reload
 * the state (e.g. over REST), then treat `position` as the last position seen. Sent only by a server with a durable event log.
 */
export interface ReloadMessage {
  type: 'RELOAD_REQUIRED';
  /** The log's head when the message was made: reloaded state includes every event up to it. */
  position: number;
  /** The oldest event the log still holds: a last position of at least oldestPosition - 1 can catch up. */
  oldestPosition: number;
  /** RFC 3339 UTC with milliseconds, as on LeadUpdateMessage. */
  timestamp: string;
}

/** The client methods the hub invokes, for connection.on(...). */
export const ClientMethods = {
  leadUpdate: 'ReceiveLeadUpdate',
  metricsUpdate: 'ReceiveMetricsUpdate',
  analyticsUpdate: 'ReceiveAnalyticsUpdate',
  reload: 'ReceiveReload',
} as const;

/** The group every connection is in from the start. */
export const LEAD_UPDATES_GROUP = 'LeadUpdates';

/** The group of one lead, joined with connection.invoke('JoinLeadGroup', id). */
export function leadGroup(id: number): `Lead_${number}` {
  return `Lead_${id}`;
}
