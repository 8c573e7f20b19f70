// The processing analytics (ReceiveAnalyticsUpdate): leads created and
// processed per interval by source, the workflow funnel, failures by
// activity and processing-time percentiles. The panel keeps the analytics
// in its own state, so an update re-renders this panel only, and each
// uPlot chart takes the new series with setData.
import { useEffect, useMemo, useState } from 'react';
import uPlot from 'uplot';
import type { Analytics, Percentiles } from '../contract.ts';
import { useSignalR } from '../hooks/useSignalR.ts';
import { mapStatus } from '../status.ts';
import { UPlotChart } from './UPlotChart.tsx';

const HEIGHT = 190;
const RANGES = [1, 6, 24];
const PALETTE = ['#2b6cb0', '#dd6b20', '#2f855a', '#805ad5', '#c53030', '#0987a0', '#b7791f', '#4a5568'];

export function AnalyticsPanel() {
  const { service } = useSignalR();
  const [analytics, setAnalytics] = useState<Analytics | null>(service.lastAnalytics?.analytics ?? null);
  const [hours, setHours] = useState(1);
  useEffect(() => service.onAnalyticsUpdate((m) => setAnalytics(m.analytics)), [service]);

  if (analytics === null) {
    return (
      <section className="analytics" data-testid="analytics">
        <p className="card muted">Waiting for processing analytics…</p>
      </section>
    );
  }
  const minutes = Math.round(analytics.bucketSeconds / 60);
  const per = minutes >= 1 ? `${minutes} min` : `${analytics.bucketSeconds} s`;
  // The last `hours` of the series (all of them when shorter).
  const shown = Math.min(analytics.buckets, Math.max(1, Math.round((hours * 3600) / analytics.bucketSeconds)));
  return (
    <section className="analytics" data-testid="analytics">
      <div className="analytics-range" role="group" aria-label="Time range of the charts">
        <span className="muted small">Processing over the last</span>
        {RANGES.map((h) => (
          <button key={h} type="button" className={h === hours ? 'on' : undefined} aria-pressed={h === hours} onClick={() => setHours(h)}>
            {h} h
          </button>
        ))}
      </div>
      <SeriesCard title={`Leads created per ${per}, by source`} a={analytics} shown={shown} series={analytics.created} testId="chart-created" />
      <SeriesCard title={`Leads processed per ${per}, by source`} a={analytics} shown={shown} series={analytics.processed} testId="chart-processed" />
      <SeriesCard
        title={`Workflow failures per ${per}, by activity`}
        a={analytics}
        shown={shown}
        series={analytics.failures}
        testId="chart-failures"
      />
      <FunnelCard a={analytics} />
      <PercentilesCard a={analytics} />
    </section>
  );
}

function total(series: Record<string, number[]>): number {
  let n = 0;
  for (const s of Object.values(series)) for (const v of s) n += v;
  return n;
}

function SeriesCard({
  title,
  a,
  shown,
  series,
  testId,
  bars = false,
}: {
  title: string;
  a: Analytics;
  shown: number;
  series: Record<string, number[]>;
  testId: string;
  bars?: boolean;
}) {
  const names = useMemo(() => Object.keys(series).sort(), [series]);
  const seriesKey = names.join('\u0000');
  const start = Date.parse(a.start) / 1000;
  const data = useMemo<uPlot.AlignedData>(() => {
    // One more point at the end of the last bucket, so that the steps
    // draw every bucket, the last one included, as [start, end).
    const from = a.buckets - shown;
    const xs = Array.from({ length: shown + 1 }, (_, i) => start + (from + i) * a.bucketSeconds);
    return [
      xs,
      ...names.map((n) => {
        const ys = (series[n] ?? []).slice(from);
        return [...ys, ys[ys.length - 1] ?? 0];
      }),
    ];
  }, [series, names, start, shown, a.buckets, a.bucketSeconds]);
  const n = total(series);
  const options = (width: number): uPlot.Options => ({
    width,
    height: HEIGHT,
    legend: { show: true, live: false },
    cursor: { points: { show: false } },
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
    axes: [{ stroke: '#5a6b85', size: 30 }, { stroke: '#5a6b85', size: 40, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }],
    series: [
      {},
      ...names.map((name, i) => ({
        label: name,
        stroke: PALETTE[i % PALETTE.length],
        fill: PALETTE[i % PALETTE.length] + (bars ? '99' : '22'),
        width: 2,
        points: { show: false },
        paths: bars ? uPlot.paths.bars!({ size: [0.9, 8], align: 1 }) : uPlot.paths.stepped!({ align: 1 }),
      })),
    ],
  });
  return (
    <figure className="card chart analytics-chart" data-testid={testId} data-total={n}>
      <figcaption>
        {title} <span className="muted small">· {n} in the last {span(a)}</span>
      </figcaption>
      {names.length === 0 ? (
        <p className="muted empty">Nothing in the last {span(a)}.</p>
      ) : (
        <UPlotChart seriesKey={seriesKey} options={options} data={data} label={title} />
      )}
    </figure>
  );
}

function span(a: Analytics): string {
  const h = (a.buckets * a.bucketSeconds) / 3600;
  return h >= 1 ? `${Math.round(h)} h` : `${Math.round(h * 60)} min`;
}

function FunnelCard({ a }: { a: Analytics }) {
  const steps = a.funnel;
  const seriesKey = steps.map((s) => s.status).join('\u0000');
  const data = useMemo<uPlot.AlignedData>(
    () => [steps.map((_, i) => i), steps.map((s) => s.leads)],
    [steps],
  );
  const options = (width: number): uPlot.Options => ({
    width,
    height: HEIGHT,
    legend: { show: false },
    cursor: { show: false },
    padding: [8, 44, 0, 0],
    scales: { x: { time: false, range: [-0.5, steps.length - 0.5] }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
    axes: [
      {
        stroke: '#5a6b85',
        size: 44,
        rotate: -18,
        font: '11px system-ui, sans-serif',
        splits: () => steps.map((_, i) => i),
        values: (_u, splits) => splits.map((i) => label(steps[i]?.status ?? '')),
      },
      { stroke: '#5a6b85', size: 40 },
    ],
    series: [{}, { label: 'Leads', stroke: '#2b6cb0', fill: '#2b6cb0aa', paths: uPlot.paths.bars!({ size: [0.7, 80] }), points: { show: false } }],
  });
  const first = steps[0]?.leads ?? 0;
  return (
    <figure className="card chart analytics-chart" data-testid="chart-funnel" data-total={first}>
      <figcaption>
        Funnel <span className="muted small">· live leads that reached each status</span>
      </figcaption>
      {first === 0 ? (
        <p className="muted empty">No leads yet.</p>
      ) : (
        <>
          <UPlotChart seriesKey={seriesKey} options={options} data={data} label="Funnel" />
          <ol className="funnel-steps">
            {steps.map((s, i) => (
              <li key={s.status} data-status={s.status} data-leads={s.leads}>
                {label(s.status)} <strong>{s.leads}</strong>
                {i > 0 && <span className="muted"> ({s.conversion}%)</span>}
              </li>
            ))}
          </ol>
        </>
      )}
    </figure>
  );
}

function label(status: string): string {
  const d = mapStatus(status);
  return d.status === 'unknown' ? status : d.label;
}

function PercentilesCard({ a }: { a: Analytics }) {
  const rows: [string, Percentiles][] = [
    ['Last hour', a.processingTime.lastHour],
    ['Last 24 h', a.processingTime.lastDay],
  ];
  return (
    <figure className="card chart percentiles" data-testid="processing-percentiles" data-count={a.processingTime.lastDay.count}>
      <figcaption>Processing time, creation to processed</figcaption>
      <table>
        <thead>
          <tr>
            <th />
            <th>leads</th>
            <th>p50</th>
            <th>p95</th>
            <th>max</th>
          </tr>
        </thead>
        <tbody>
          {rows.map(([name, p]) => (
            <tr key={name}>
              <th>{name}</th>
              <td>{p.count}</td>
              <td>{p.count ? duration(p.p50) : '–'}</td>
              <td>{p.count ? duration(p.p95) : '–'}</td>
              <td>{p.count ? duration(p.max) : '–'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}

/** duration formats seconds as 850 ms, 4.2 s, 3 min 20 s or 2 h 5 min. */
export function duration(s: number): string {
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}
