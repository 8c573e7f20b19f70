import { useMemo, useState } from 'react';
import { useLeads } from '../contexts/LeadContext.tsx';
import { useSignalR } from '../hooks/useSignalR.ts';
import { displayOrder, mapStatus } from '../status.ts';
import { AnalyticsPanel } from './AnalyticsPanel.tsx';
import { BarChart, type Bar } from './BarChart.tsx';
import { ConnectionIndicator } from './ConnectionIndicator.tsx';
import { LeadDetail } from './LeadDetail.tsx';
import { LeadsTable, formatShort, formatTime } from './LeadsTable.tsx';
import { MetricCards } from './MetricCards.tsx';

export function Dashboard({ onSignOut }: { onSignOut: () => void }) {
  const { state, retry, reload, notifications } = useLeads();
  const { connection, lastLeadUpdate, lastMetricsUpdate } = useSignalR();
  const lastMessage = latest(lastLeadUpdate?.timestamp, lastMetricsUpdate?.timestamp);
  const [selected, setSelected] = useState<number | null>(null);

  const bySource = useMemo<Bar[]>(
    () =>
      Object.entries(state.metrics?.leadsBySource ?? {})
        .sort((a, b) => b[1] - a[1])
        .map(([label, value]) => ({ label, value })),
    [state.metrics],
  );
  const byStatus = useMemo<Bar[]>(
    () =>
      Object.entries(state.metrics?.leadsByStatus ?? {})
        .map(([s, value]) => ({ d: mapStatus(s), s, value }))
        .sort((a, b) => displayOrder.indexOf(a.d.status) - displayOrder.indexOf(b.d.status))
        .map(({ d, s, value }) => ({ label: d.status === 'unknown' ? s : d.label, value, tone: d.tone })),
    [state.metrics],
  );
  const running = Object.values(state.workflows).filter((w) => w.status === 'running').length;

  return (
    <div className="page">
      <header className="topbar">
        <h1>Lead processing</h1>
        <ConnectionIndicator connection={connection} />
        {lastMessage && (
          <small className="muted" data-testid="last-message">
            last update {formatShort(lastMessage)}
          </small>
        )}
        {running > 0 && (
          <span className="processing" data-testid="processing-count">
            <span className="spinner" /> {running} workflow{running === 1 ? '' : 's'} running
          </span>
        )}
        <span className="spacer" />
        {notifications.supported && (
          <label className="toggle">
            <input type="checkbox" checked={notifications.enabled} onChange={notifications.toggle} /> Notify me
          </label>
        )}
        <button type="button" className="link" onClick={onSignOut}>
          Sign out
        </button>
      </header>

      {state.mode === 'fallback' && (
        <div className="banner tone-bad" data-testid="fallback-banner" role="alert">
          <strong>Offline — showing sample data, not live leads.</strong> The server could not be reached
          {connection.error ? ` (${connection.error})` : ''}.{' '}
          {connection.status === 'connecting' ? (
            <span>Trying again…</span>
          ) : (
            <button type="button" data-testid="retry-button" onClick={retry}>
              Retry now
            </button>
          )}
        </div>
      )}
      {state.mode === 'live' && connection.status === 'reconnecting' && (
        <div className="banner tone-progress" data-testid="reconnecting-banner" role="status">
          Connection lost — reconnecting. The figures below are from {state.lastUpdate ? formatTime(state.lastUpdate) : 'before'} and
          may be out of date.
        </div>
      )}
      {state.error && (
        <div className="banner tone-bad" data-testid="error-banner" role="alert">
          Could not load leads: {state.error}{' '}
          <button type="button" onClick={reload}>
            Try again
          </button>
        </div>
      )}
      {state.mode === 'loading' && !state.error && (
        <div className="banner" role="status">
          Connecting to the server…
        </div>
      )}

      <main className={state.mode === 'fallback' ? 'sample' : undefined} data-mode={state.mode} data-testid="dashboard">
        <MetricCards metrics={state.metrics} />
        <section className="charts">
          <BarChart title="Leads by source" bars={bySource} testId="chart-source" />
          <BarChart title="Leads by status" bars={byStatus} testId="chart-status" />
        </section>
        {state.mode !== 'fallback' && <AnalyticsPanel />}
        <div className="columns">
          <LeadsTable
            leads={state.leads}
            total={state.total}
            sample={state.mode === 'fallback'}
            workflows={state.workflows}
            selected={selected}
            onSelect={setSelected}
          />
          <div className="side">
            {selected !== null && <LeadDetail key={selected} id={selected} onClose={() => setSelected(null)} />}
            <section className="card activity" aria-label="Activity">
              <h2>Live activity</h2>
              {state.activity.length === 0 ? (
                <p className="muted">Nothing yet.</p>
              ) : (
                <ul className="events" data-testid="activity">
                  {state.activity.map((a) => (
                    <li key={a.key} className={`tone-${a.tone}`} data-type={a.type} data-lead={a.leadId}>
                      <time>{formatTime(a.at)}</time> {a.text}
                    </li>
                  ))}
                </ul>
              )}
            </section>
          </div>
        </div>
      </main>
    </div>
  );
}

function latest(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}
