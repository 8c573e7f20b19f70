import { useEffect, useState } from 'react';
import type { Lead } from '../contract.ts';
import { useLeads } from '../contexts/LeadContext.tsx';
import { useLeadGroup } from '../hooks/useSignalR.ts';
import { LeadHistory } from './LeadHistory.tsx';
import { formatTime } from './LeadsTable.tsx';
import { StatusBadge } from './StatusBadge.tsx';

/** LeadDetail shows one lead and its history, and holds its Lead_{id} group while open. */
export function LeadDetail({ id, onClose }: { id: number; onClose: () => void }) {
  const { state, fetchLead, processLead } = useLeads();
  const live = id >= 0;
  const group = useLeadGroup(live ? id : null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const lead: Lead | undefined = state.leads.find((l) => l.id === id);
  const wf = state.workflows[id];
  const events = state.activity.filter((a) => a.leadId === id);

  useEffect(() => {
    if (!live) return;
    setError(null);
    fetchLead(id).catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)));
  }, [id, live, fetchLead]);

  // Without the server's event log: the lead's events seen since the page loaded.
  const recent = events.length > 0 && (
    <>
      <h3>Events</h3>
      <ul className="events">
        {events.map((e) => (
          <li key={e.key} className={`tone-${e.tone}`}>
            <time>{formatTime(e.at)}</time> {e.text}
          </li>
        ))}
      </ul>
    </>
  );

  return (
    <aside className="card detail" data-testid="lead-detail" aria-label="Lead detail">
      <header>
        <h2>{lead?.name ?? `Lead ${id}`}</h2>
        <button type="button" className="link" onClick={onClose} aria-label="Close">
          ✕
        </button>
      </header>
      {live && (
        <p className="muted small" data-testid="lead-group" data-status={group.status}>
          {group.status === 'denied'
            ? `Live updates for this lead unavailable: ${group.error}`
            : group.status === 'joined'
              ? `Following Lead_${id}`
              : `Will follow Lead_${id} once connected`}
        </p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {lead === undefined ? (
        <p className="muted">This lead is not in the list (deleted, or not loaded).</p>
      ) : (
        <dl>
          <dt>Status</dt>
          <dd>
            <StatusBadge status={lead.status} />
            {wf?.status === 'running' && <span className="spinner" title="Workflow running" />}
          </dd>
          <dt>Score</dt>
          <dd>{lead.score === undefined ? '—' : lead.score.toFixed(1)}</dd>
          <dt>Company</dt>
          <dd>{lead.company ?? '—'}</dd>
          <dt>Email</dt>
          <dd>{lead.email ?? '—'}</dd>
          <dt>Phone</dt>
          <dd>{lead.phone ?? '—'}</dd>
          <dt>Website</dt>
          <dd>{lead.website ?? '—'}</dd>
          <dt>Source</dt>
          <dd>{lead.source}</dd>
          <dt>Owner</dt>
          <dd>{lead.owner ?? '—'}</dd>
          <dt>Created</dt>
          <dd>{formatTime(lead.createdAt)}</dd>
          <dt>Processed</dt>
          <dd>{lead.processedAt ? formatTime(lead.processedAt) : '—'}</dd>
          {lead.enrichmentData && (
            <>
              <dt>Enrichment</dt>
              <dd>
                <pre>{JSON.stringify(lead.enrichmentData, null, 2)}</pre>
              </dd>
            </>
          )}
        </dl>
      )}
      {wf && (
        <p className={`workflow tone-${wf.status === 'failed' ? 'bad' : wf.status === 'completed' ? 'good' : 'progress'}`}>
          Workflow {wf.status}
          {wf.message ? `: ${wf.message}` : ''}
        </p>
      )}
      {live && lead && ['New', 'Failed', 'Disqualified'].includes(lead.status) && wf?.status !== 'running' && (
        <button
          type="button"
          disabled={busy}
          onClick={() => {
            setBusy(true);
            setError(null);
            processLead(id)
              .catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)))
              .finally(() => setBusy(false));
          }}
        >
          Process lead
        </button>
      )}
      {live ? <LeadHistory id={id} fallback={recent} /> : recent}
    </aside>
  );
}
