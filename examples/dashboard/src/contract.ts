// The wire contract, single-sourced from package notify: `go test ./notify`
// checks that file against the Go side's golden messages, and `tsc` here
// checks the dashboard against it.
export type {
  Analytics,
  AnalyticsUpdateMessage,
  FunnelStep,
  Percentiles,
  LeadUpdateMessage as WireLeadUpdateMessage,
  LeadUpdateType,
  Metrics,
  MetricsUpdateMessage,
  ReloadMessage,
} from '../../../notify/ts/leadupdates.ts';
export { ClientMethods, LEAD_UPDATES_GROUP, leadGroup } from '../../../notify/ts/leadupdates.ts';

import type { LeadUpdateMessage as Wire } from '../../../notify/ts/leadupdates.ts';

/**
 * A lead as examples/server sends it: in REST answers and as the `lead` of a
 * NEW_LEAD message (examples/server/API.md, "The lead"). An ENRICHMENT_UPDATE
 * carries only `id` and `enrichmentData`, hence the Partial in LeadUpdate.
 */
export interface Lead {
  id: number;
  name: string;
  company?: string;
  email?: string;
  phone?: string;
  website?: string;
  source: string;
  status: string;
  score?: number;
  owner?: string;
  enrichmentData?: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
  processedAt?: string;
}

/** The argument of ReceiveLeadUpdate as this dashboard receives it. */
export type LeadUpdateMessage = Wire<Partial<Lead>>;

/** The hub's client → server methods. */
export const ServerMethods = {
  joinLeadGroup: 'JoinLeadGroup',
  leaveLeadGroup: 'LeaveLeadGroup',
  /** With the server's event log: replays what a client missed since a position. */
  catchUp: 'CatchUp',
} as const;
