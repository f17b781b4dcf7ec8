/**
 * A small SVG line-chart writer for the benchmark report: panels with
 * linear or log axes, one polyline per series, a legend, and a grid of
 * panels in one document. Plain strings, no dependencies.
 *
 * @module
 */

/** One line of a chart. */
export interface Series {
  /** Legend text. */
  name: string;
  /** Points as [x, y]; non-finite or (on a log axis) non-positive ones are skipped. */
  points: [number, number][];
  /** Stroke colour. */
  color: string;
  /** Draws the line dashed. */
  dashed?: boolean;
}

/** One panel. */
export interface Chart {
  title: string;
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  yLog?: boolean;
  /** Start the (linear) y axis at zero. Default true. */
  yFromZero?: boolean;
  series: Series[];
  /** A horizontal reference line, such as a target. */
  reference?: { y: number; label: string };
}

const PANEL_WIDTH = 460;
const PANEL_HEIGHT = 300;
const MARGIN = { left: 64, right: 16, top: 34, bottom: 78 };

/** Escapes text for SVG content and attributes. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(
    />/g,
    "&gt;",
  ).replace(/"/g, "&quot;");
}

/** A short label for a tick value: 1.5k, 10k, 2M, 0.25. */
export function tickLabel(value: number): string {
  const abs = Math.abs(value);
  const trim = (n: number) => String(Number(n.toPrecision(3)));
  if (abs >= 1e6) return `${trim(value / 1e6)}M`;
  if (abs >= 1e3) return `${trim(value / 1e3)}k`;
  return trim(value);
}

interface Axis {
  toPixel(value: number): number;
  ticks: number[];
  accepts(value: number): boolean;
}

function logAxis(min: number, max: number, from: number, to: number): Axis {
  const lo = Math.floor(Math.log10(min));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(max)));
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e++) ticks.push(10 ** e);
  return {
    toPixel: (v) => from + ((Math.log10(v) - lo) / (hi - lo)) * (to - from),
    ticks,
    accepts: (v) => Number.isFinite(v) && v > 0,
  };
}

function linearAxis(
  min: number,
  max: number,
  from: number,
  to: number,
): Axis {
  if (max === min) max = min + 1;
  const rough = (max - min) / 5;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rough)!;
  const lo = Math.floor(min / step) * step;
  const hi = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let v = lo; v <= hi + step / 2; v += step) ticks.push(v);
  return {
    toPixel: (v) => from + ((v - lo) / (hi - lo)) * (to - from),
    ticks,
    accepts: Number.isFinite,
  };
}

/** Renders one panel as an SVG group placed at (`x`, `y`). */
export function renderChart(chart: Chart, x = 0, y = 0): string {
  const left = MARGIN.left;
  const right = PANEL_WIDTH - MARGIN.right;
  const top = MARGIN.top;
  const bottom = PANEL_HEIGHT - MARGIN.bottom;
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of chart.series) {
    for (const [px, py] of s.points) {
      if (!Number.isFinite(px) || !Number.isFinite(py)) continue;
      if (chart.xLog && px <= 0) continue;
      if (chart.yLog && py <= 0) continue;
      xs.push(px);
      ys.push(py);
    }
  }
  if (chart.reference) ys.push(chart.reference.y);
  const out: string[] = [`<g transform="translate(${x},${y})">`];
  out.push(
    `<text x="${PANEL_WIDTH / 2}" y="20" text-anchor="middle" ` +
      `font-size="14" font-weight="bold">${escapeXml(chart.title)}</text>`,
  );
  if (xs.length === 0) {
    out.push(
      `<text x="${PANEL_WIDTH / 2}" y="${PANEL_HEIGHT / 2}" ` +
        `text-anchor="middle" fill="#888">no data</text></g>`,
    );
    return out.join("\n");
  }
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const yMin = chart.yLog || chart.yFromZero === false ? Math.min(...ys) : 0;
  const yMax = Math.max(...ys);
  const xAxis = chart.xLog
    ? logAxis(xMin, xMax, left, right)
    : linearAxis(xMin, xMax, left, right);
  const yAxis = chart.yLog
    ? logAxis(yMin, yMax, bottom, top)
    : linearAxis(yMin, yMax, bottom, top);
  const fx = (v: number) => xAxis.toPixel(v).toFixed(1);
  const fy = (v: number) => yAxis.toPixel(v).toFixed(1);

  for (const t of xAxis.ticks) {
    out.push(
      `<line x1="${fx(t)}" y1="${top}" x2="${fx(t)}" y2="${bottom}" ` +
        `stroke="#e5e5e5"/>`,
      `<text x="${fx(t)}" y="${bottom + 16}" text-anchor="middle" ` +
        `font-size="11">${tickLabel(t)}</text>`,
    );
  }
  for (const t of yAxis.ticks) {
    out.push(
      `<line x1="${left}" y1="${fy(t)}" x2="${right}" y2="${fy(t)}" ` +
        `stroke="#e5e5e5"/>`,
      `<text x="${left - 6}" y="${fy(t)}" text-anchor="end" ` +
        `dominant-baseline="middle" font-size="11">${tickLabel(t)}</text>`,
    );
  }
  out.push(
    `<rect x="${left}" y="${top}" width="${right - left}" ` +
      `height="${bottom - top}" fill="none" stroke="#999"/>`,
    `<text x="${(left + right) / 2}" y="${bottom + 34}" ` +
      `text-anchor="middle" font-size="12">${escapeXml(chart.xLabel)}</text>`,
    `<text transform="translate(16,${(top + bottom) / 2}) rotate(-90)" ` +
      `text-anchor="middle" font-size="12">${escapeXml(chart.yLabel)}</text>`,
  );
  if (chart.reference) {
    const ry = fy(chart.reference.y);
    out.push(
      `<line x1="${left}" y1="${ry}" x2="${right}" y2="${ry}" ` +
        `stroke="#c00" stroke-dasharray="2 3"/>`,
      `<text x="${right - 4}" y="${Number(ry) - 4}" text-anchor="end" ` +
        `font-size="10" fill="#c00">${escapeXml(chart.reference.label)}</text>`,
    );
  }
  for (const s of chart.series) {
    const pts = s.points.filter(([px, py]) =>
      xAxis.accepts(px) && yAxis.accepts(py)
    ).sort((a, b) => a[0] - b[0]);
    if (pts.length === 0) continue;
    const dash = s.dashed ? ` stroke-dasharray="6 4"` : "";
    out.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} ` +
        `points="${pts.map(([px, py]) => `${fx(px)},${fy(py)}`).join(" ")}"/>`,
    );
    for (const [px, py] of pts) {
      out.push(
        `<circle cx="${fx(px)}" cy="${fy(py)}" r="3" fill="${s.color}"/>`,
      );
    }
  }
  // Legend below the axis label, in columns of up to three entries.
  chart.series.forEach((s, i) => {
    const lx = left + Math.floor(i / 3) * 150;
    const ly = bottom + 50 + (i % 3) * 13;
    const dash = s.dashed ? ` stroke-dasharray="6 4"` : "";
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" ` +
        `stroke="${s.color}" stroke-width="2"${dash}/>`,
      `<text x="${lx + 27}" y="${ly}" dominant-baseline="middle" ` +
        `font-size="11">${escapeXml(s.name)}</text>`,
    );
  });
  out.push("</g>");
  return out.join("\n");
}

/**
 * Lays `charts` out in a grid of `columns` and returns a standalone SVG
 * document, with an optional caption line at the bottom.
 *
 * @example
 * ```ts
 * import { svgDocument } from "./svg.ts";
 * const svg = svgDocument([{
 *   title: "t", xLabel: "x", yLabel: "y",
 *   series: [{ name: "a", color: "#1f77b4", points: [[1, 2], [2, 3]] }],
 * }], 1);
 * console.log(svg.startsWith("<svg")); // true
 * ```
 */
export function svgDocument(
  charts: Chart[],
  columns = 2,
  caption?: string,
): string {
  const rows = Math.ceil(charts.length / columns);
  const width = PANEL_WIDTH * Math.min(columns, charts.length);
  const height = PANEL_HEIGHT * rows + (caption ? 24 : 0);
  const panels = charts.map((c, i) =>
    renderChart(
      c,
      (i % columns) * PANEL_WIDTH,
      Math.floor(i / columns) * PANEL_HEIGHT,
    )
  );
  const footer = caption
    ? `<text x="8" y="${height - 8}" font-size="11" fill="#555">${
      escapeXml(caption)
    }</text>`
    : "";
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" ` +
    `height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...panels,
    footer,
    "</svg>",
    "",
  ].join("\n");
}
