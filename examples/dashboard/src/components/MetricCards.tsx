import type { Metrics } from '../contract.ts';

const cards: { key: keyof Metrics; label: string; format: (v: number) => string }[] = [
  { key: 'totalLeads', label: 'Total leads', format: (v) => v.toLocaleString() },
  { key: 'qualifiedLeads', label: 'Qualified', format: (v) => v.toLocaleString() },
  { key: 'conversionRate', label: 'Conversion', format: (v) => `${v.toFixed(1)} %` },
  { key: 'scoreAverage', label: 'Average score', format: (v) => v.toFixed(1) },
  { key: 'newLeadsToday', label: 'New today', format: (v) => v.toLocaleString() },
  { key: 'processedToday', label: 'Processed today', format: (v) => v.toLocaleString() },
  { key: 'processingTime', label: 'Processing time', format: (v) => `${v.toFixed(2)} s` },
  { key: 'activeHarvesters', label: 'Active scrapers', format: (v) => v.toLocaleString() },
  { key: 'dailyGrowth', label: 'Daily growth', format: signedPercent },
  { key: 'weeklyGrowth', label: 'Weekly growth', format: signedPercent },
];

function signedPercent(v: number): string {
  return `${v > 0 ? '+' : ''}${v.toFixed(1)} %`;
}

export function MetricCards({ metrics }: { metrics: Metrics | null }) {
  return (
    <section className="metrics" aria-label="Metrics">
      {cards.map(({ key, label, format }) => {
        const v = metrics?.[key];
        return (
          <div className="card metric" key={key} data-testid={`metric-${key}`}>
            <div className="metric-label">{label}</div>
            <div className="metric-value" data-testid={`metric-${key}-value`}>
              {typeof v === 'number' ? format(v) : '—'}
            </div>
          </div>
        );
      })}
    </section>
  );
}
