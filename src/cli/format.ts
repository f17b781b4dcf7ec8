/**
 * Formatting for the CLI and the demo: durations, rates, percentiles and
 * plain-text tables.
 *
 * @module
 */

/** Formats milliseconds for people: µs below 1 ms, ms below 10 s, else s. */
export function formatMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "–";
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 10_000) return `${ms.toFixed(2)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Formats a count with thousands separators. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** The `q` quantile (0–1) of sorted samples; undefined when empty. */
export function quantile(
  sorted: ArrayLike<number>,
  q: number,
): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Renders rows as an aligned plain-text table; numbers align right. */
export function renderTable(
  header: string[],
  rows: (string | number)[][],
): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  // A loop, not Math.max(...): spreading many rows overflows the stack.
  const widths = header.map((_, i) => {
    let width = 0;
    for (const r of cells) width = Math.max(width, (r[i] ?? "").length);
    return width;
  });
  const line = (r: string[], raw: (string | number)[] | undefined) =>
    r.map((c, i) =>
      typeof raw?.[i] === "number" ? c.padStart(widths[i]) : c.padEnd(widths[i])
    ).join("  ").trimEnd();
  return [
    line(cells[0], undefined),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.map((r, i) => line(cells[i + 1], r)),
  ].join("\n");
}
