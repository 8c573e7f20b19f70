import { mapStatus } from '../status.ts';

export function StatusBadge({ status }: { status: string }) {
  const d = mapStatus(status);
  return (
    <span className={`badge tone-${d.tone}`} data-status={d.status}>
      {d.label}
    </span>
  );
}
