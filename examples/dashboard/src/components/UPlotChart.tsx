// UPlotChart draws one uPlot chart (https://github.com/leeoniya/uPlot: small,
// fast canvas charts for time series) and keeps it: new data goes to the
// existing chart with setData, so a live update redraws the canvas and
// nothing else; the chart is rebuilt only when its series change (a new
// source or activity appears), and resized with its container.
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface UPlotChartProps {
  /** Identifies the series: the chart is rebuilt when it changes. */
  seriesKey: string;
  /** The chart's options for a width; called when (re)building. */
  options: (width: number) => uPlot.Options;
  data: uPlot.AlignedData;
  label: string;
}

export function UPlotChart({ seriesKey, options, data, label }: UPlotChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const latest = useRef({ options, data });
  latest.current = { options, data };

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = Math.max(200, el.clientWidth);
    const u = new uPlot(latest.current.options(width), latest.current.data, el);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      if (Math.abs(w - u.width) > 1) u.setSize({ width: w, height: u.height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [seriesKey]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  return <div ref={box} className="uplot-box" role="img" aria-label={label} />;
}
