import type { Lead } from '../contract.ts';
import type { WorkflowState } from '../contexts/leadReducer.ts';
import { StatusBadge } from './StatusBadge.tsx';

export function LeadsTable({
  leads,
  total,
  sample,
  workflows,
  selected,
  onSelect,
}: {
  sample: boolean;
  leads: Lead[];
  total: number;
  workflows: Record<number, WorkflowState>;
  selected: number | null;
  onSelect: (id: number) => void;
}) {
  return (
    <section className="card leads" aria-label="Leads">
      <h2>
        Leads <small className="muted">{leads.length < total ? `newest ${leads.length} of ${total}` : `${total}`}</small>
        {sample && <small className="badge tone-bad sample-tag">sample data</small>}
      </h2>
      <div className="table-wrap">
        <table data-testid="leads-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Company</th>
              <th>Source</th>
              <th>Status</th>
              <th className="num">Score</th>
              <th>Owner</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {leads.length === 0 && (
              <tr>
                <td colSpan={7} className="muted">
                  No leads yet.
                </td>
              </tr>
            )}
            {leads.map((l) => (
              <tr
                key={l.id}
                data-testid={`lead-row-${l.id}`}
                className={l.id === selected ? 'selected' : undefined}
                onClick={() => onSelect(l.id)}
                tabIndex={0}
                onKeyDown={(e) => {
                  if (e.key === 'Enter') onSelect(l.id);
                }}
              >
                <td>
                  {l.name}
                  {workflows[l.id]?.status === 'running' && (
                    <span className="spinner" title="Workflow running" data-testid="processing" aria-label="processing" />
                  )}
                </td>
                <td>{l.company ?? ''}</td>
                <td>{l.source}</td>
                <td data-testid="lead-status">
                  <StatusBadge status={l.status} />
                </td>
                <td className="num" data-testid="lead-score">
                  {l.score === undefined ? '' : l.score.toFixed(1)}
                </td>
                <td>{l.owner ?? ''}</td>
                <td title={formatTime(l.createdAt)}>{formatShort(l.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

export function formatTime(t: string | undefined): string {
  if (!t) return '';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? t : d.toLocaleString();
}

/** formatShort is the time of day for today, the date otherwise. */
export function formatShort(t: string | undefined, now = new Date()): string {
  if (!t) return '';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return t;
  return d.toDateString() === now.toDateString() ? d.toLocaleTimeString() : d.toLocaleDateString();
}
