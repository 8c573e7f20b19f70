// A horizontal bar chart in plain SVG: few bars, no axes to speak of, no
// chart library to keep up to date.
export interface Bar {
  label: string;
  value: number;
  tone?: string;
}

export function BarChart({ title, bars, testId }: { title: string; bars: Bar[]; testId: string }) {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const row = 26;
  const labelW = 120;
  const width = 420;
  const barW = width - labelW - 50;
  return (
    <figure className="card chart" data-testid={testId}>
      <figcaption>{title}</figcaption>
      {bars.length === 0 ? (
        <p className="muted">No leads yet.</p>
      ) : (
        <svg viewBox={`0 0 ${width} ${bars.length * row}`} role="img" aria-label={title}>
          {bars.map((b, i) => (
            <g key={b.label} transform={`translate(0, ${i * row})`}>
              <text x={labelW - 8} y={row / 2 + 4} textAnchor="end" className="chart-label">
                {b.label}
              </text>
              <rect
                x={labelW}
                y={4}
                height={row - 8}
                width={Math.max(1, (b.value / max) * barW)}
                rx={3}
                className={`bar tone-${b.tone ?? 'neutral'}`}
              />
              <text x={labelW + Math.max(1, (b.value / max) * barW) + 6} y={row / 2 + 4} className="chart-value">
                {b.value}
              </text>
            </g>
          ))}
        </svg>
      )}
    </figure>
  );
}
