import { useContext, useEffect, useReducer, useRef, useState, type ReactNode } from 'react';
import type { LeadUpdateMessage } from '../contract.ts';
import { useLeads } from '../contexts/LeadContext.tsx';
import { SignalRContext } from '../hooks/useSignalR.ts';
import { current, emptyPlayback, playbackReducer } from '../playback.ts';
import { ApiError } from '../services/api.ts';
import { formatTime } from './LeadsTable.tsx';
import { StatusBadge } from './StatusBadge.tsx';

/** How long the player shows each step while playing. */
const STEP_MS = 700;

/**
 * LeadHistory is a lead's timeline from the server's event log with a player
 * that replays its processing step by step, showing the lead as of each
 * step. New events of the lead (its Lead_{id} group) join the timeline as
 * they arrive. Without a log on the server it shows `fallback`.
 */
export function LeadHistory({ id, fallback }: { id: number; fallback?: ReactNode }) {
  const { fetchHistory } = useLeads();
  const service = useContext(SignalRContext);
  const [p, dispatch] = useReducer(playbackReducer, emptyPlayback);
  const [load, setLoad] = useState<{ status: 'loading' | 'ready' | 'off' | 'error'; error?: string }>({ status: 'loading' });
  // Live events that arrive before the history: added once it is in.
  const early = useRef<LeadUpdateMessage[] | null>([]);

  useEffect(() => {
    let live = true;
    early.current = [];
    const off = service?.onLeadUpdate((m) => {
      if ((m.leadId ?? m.lead?.id) !== id || m.sequence === undefined || service.logMode !== 'log') return;
      if (early.current) early.current.push(m);
      else dispatch({ type: 'append', events: [m] });
    });
    fetchHistory(id).then(
      (events) => {
        if (!live) return;
        dispatch({ type: 'loaded', events });
        dispatch({ type: 'append', events: early.current ?? [] });
        early.current = null;
        setLoad({ status: 'ready' });
      },
      (err: unknown) => {
        if (!live) return;
        early.current = null;
        if (err instanceof ApiError && err.status === 503 && /event log is off/.test(err.message)) setLoad({ status: 'off' });
        else setLoad({ status: 'error', error: err instanceof Error ? err.message : String(err) });
      },
    );
    return () => {
      live = false;
      off?.();
    };
  }, [id, fetchHistory, service]);

  useEffect(() => {
    if (!p.playing) return;
    const t = setInterval(() => dispatch({ type: 'tick' }), STEP_MS);
    return () => clearInterval(t);
  }, [p.playing]);

  if (load.status === 'off') return <>{fallback}</>;
  const step = current(p);
  const s = step?.state;
  return (
    <section className="history" data-testid="lead-history" data-status={load.status} data-steps={p.steps.length} data-index={p.index}>
      <h3>History</h3>
      {load.status === 'loading' && <p className="muted small">Loading the lead's history…</p>}
      {load.status === 'error' && (
        <p className="error small" role="alert">
          History unavailable: {load.error}
        </p>
      )}
      {load.status === 'ready' && p.steps.length === 0 && <p className="muted small">No events kept for this lead.</p>}
      {p.steps.length > 0 && (
        <>
          <div className="player" role="group" aria-label="Replay">
            <button type="button" data-testid="history-back" onClick={() => dispatch({ type: 'back' })} disabled={p.index <= 0}>
              ‹ Back
            </button>
            {p.playing ? (
              <button type="button" data-testid="history-pause" onClick={() => dispatch({ type: 'pause' })}>
                Pause
              </button>
            ) : (
              <button type="button" data-testid="history-play" onClick={() => dispatch({ type: 'play' })}>
                ▶ {p.index >= p.steps.length - 1 ? 'Replay' : 'Play'}
              </button>
            )}
            <button
              type="button"
              data-testid="history-step"
              onClick={() => dispatch({ type: 'step' })}
              disabled={p.index >= p.steps.length - 1}
            >
              Step ›
            </button>
            <span className="muted small" data-testid="history-position">
              step {p.index + 1} of {p.steps.length}
            </span>
          </div>
          {step && s && (
            <dl className="as-of" data-testid="history-state" data-position={step.position}>
              <dt>As of</dt>
              <dd>
                <time>{formatTime(step.at)}</time> <span className="muted">#{step.position}</span>
              </dd>
              <dt>Status</dt>
              <dd data-testid="history-status">
                {s.status ? <StatusBadge status={s.status} /> : '—'}
                {s.deleted && <span className="badge tone-neutral">deleted</span>}
              </dd>
              <dt>Score</dt>
              <dd data-testid="history-score">{s.score === undefined ? '—' : s.score.toFixed(1)}</dd>
              <dt>Workflow</dt>
              <dd data-testid="history-workflow">
                {s.workflow ?? '—'}
                {s.note ? `: ${s.note}` : ''}
              </dd>
              <dt>Enrichment</dt>
              <dd data-testid="history-enrichment">{s.enrichment ? <pre>{JSON.stringify(s.enrichment, null, 2)}</pre> : '—'}</dd>
            </dl>
          )}
          <ol className="timeline" data-testid="history-timeline">
            {p.steps.map((st, i) => (
              <li
                key={st.position}
                data-position={st.position}
                data-type={st.type}
                className={`tone-${st.tone}${i === p.index ? ' current' : i > p.index ? ' later' : ''}`}
                onClick={() => dispatch({ type: 'seek', index: i })}
                aria-current={i === p.index ? 'step' : undefined}
              >
                <time>{formatTime(st.at)}</time> {st.text}
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}
