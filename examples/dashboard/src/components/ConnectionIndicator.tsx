import type { ConnectionSnapshot } from '../services/signalRService.ts';

const labels: Record<ConnectionSnapshot['status'], { text: string; tone: string }> = {
  idle: { text: 'Offline', tone: 'bad' },
  connecting: { text: 'Connecting…', tone: 'progress' },
  connected: { text: 'Connected', tone: 'good' },
  reconnecting: { text: 'Reconnecting…', tone: 'progress' },
  fallback: { text: 'Offline', tone: 'bad' },
  unauthorized: { text: 'Not authorized', tone: 'bad' },
};

export function ConnectionIndicator({ connection }: { connection: ConnectionSnapshot }) {
  const { text, tone } = labels[connection.status];
  const retry =
    connection.attempt !== undefined && connection.nextRetryMs !== undefined
      ? ` (attempt ${connection.attempt}, in ${Math.round(connection.nextRetryMs / 1000)} s)`
      : '';
  return (
    <span
      className={`indicator tone-${tone}`}
      data-testid="connection-state"
      data-state={connection.status}
      title={connection.error ?? text}
      role="status"
    >
      <span className="dot" aria-hidden="true" />
      {text}
      {retry && <small>{retry}</small>}
    </span>
  );
}
