// Status mapping: the backend's lead statuses (examples/server/API.md) to
// what the dashboard shows. Other producers of the same contract spell
// statuses differently ("synced_to_crm", "Rejected"), so matching ignores
// case and separators, and an unknown status is shown as is, never dropped.

/** The statuses the dashboard displays. */
export type DisplayStatus =
  | 'new'
  | 'enriching'
  | 'enriched'
  | 'scored'
  | 'vetted'
  | 'qualified'
  | 'disqualified'
  | 'synced'
  | 'failed'
  | 'unknown';

/** How a status reads and looks: tone picks its colour. */
export interface StatusDisplay {
  status: DisplayStatus;
  label: string;
  tone: 'neutral' | 'progress' | 'good' | 'bad';
  /** Whether the workflow is still working on a lead in this status. */
  inProgress: boolean;
}

const table: Record<Exclude<DisplayStatus, 'unknown'>, Omit<StatusDisplay, 'status'>> = {
  new: { label: 'New', tone: 'neutral', inProgress: false },
  enriching: { label: 'Enriching', tone: 'progress', inProgress: true },
  enriched: { label: 'Enriched', tone: 'progress', inProgress: true },
  scored: { label: 'Scored', tone: 'progress', inProgress: true },
  vetted: { label: 'Vetted', tone: 'progress', inProgress: true },
  qualified: { label: 'Qualified', tone: 'good', inProgress: false },
  disqualified: { label: 'Disqualified', tone: 'bad', inProgress: false },
  synced: { label: 'Synced to CRM', tone: 'good', inProgress: false },
  failed: { label: 'Failed', tone: 'bad', inProgress: false },
};

const aliases: Record<string, Exclude<DisplayStatus, 'unknown'>> = {
  new: 'new',
  enriching: 'enriching',
  enriched: 'enriched',
  scored: 'scored',
  vetted: 'vetted',
  qualified: 'qualified',
  disqualified: 'disqualified',
  rejected: 'disqualified',
  syncedtocrm: 'synced',
  synced: 'synced',
  failed: 'failed',
  error: 'failed',
};

/** The display statuses in workflow order, for charts and filters. */
export const displayOrder: DisplayStatus[] = [
  'new', 'enriching', 'enriched', 'scored', 'vetted', 'qualified', 'synced', 'disqualified', 'failed', 'unknown',
];

/** mapStatus maps a backend status to its display; unknown ones keep their text. */
export function mapStatus(backend: string | undefined | null): StatusDisplay {
  const raw = (backend ?? '').trim();
  const key = aliases[raw.toLowerCase().replace(/[\s_-]/g, '')];
  if (key === undefined) {
    return { status: 'unknown', label: raw === '' ? 'Unknown' : raw, tone: 'neutral', inProgress: false };
  }
  return { status: key, ...table[key] };
}
