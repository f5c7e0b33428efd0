/**
 * A small hand-written SVG line chart for bench/memory.ts: stacked panels over one x axis, a legend beside each
 * panel, optional reference lines (targets, caps) and end-of-line notes. No chart dependency.
 */

export interface Series {
  label: string;
  /** A second, quieter legend line (peak, growth, ledger). */
  detail?: string;
  color: string;
  /** `stroke-dasharray`, e.g. '7 4'; solid when absent. */
  dash?: string;
  points: readonly (readonly [number, number])[];
  /** Marks the last point with a dot and this note (e.g. why the line stops). */
  endNote?: string;
}

export interface RefLine {
  y: number;
  label: string;
  color: string;
}

export interface Panel {
  title: string;
  yLabel: string;
  height: number;
  series: Series[];
  /** Upper end of the y axis: rounded up to a tick, or exactly this with `yStep`; the data maximum when absent. */
  yMax?: number;
  /** Ticks at multiples of this (e.g. 256 MiB), up to `yMax`. */
  yStep?: number;
  refLines?: RefLine[];
  yFormat?: (v: number) => string;
}

export interface Chart {
  title: string;
  subtitle: string[];
  xLabel: string;
  xMax: number;
  xFormat: (v: number) => string;
  panels: Panel[];
  width?: number;
}

/** Okabe–Ito: distinguishable with the common colour-vision deficiencies, and in greyscale by dash. */
export const COLORS = {
  darkBlue: '#004e7a',
  darkOrange: '#9c6500',
  darkVermillion: '#8f3a00',
  blue: '#0072B2',
  orange: '#E69F00',
  vermillion: '#D55E00',
  green: '#009E73',
  purple: '#CC79A7',
  sky: '#56B4E9',
  grey: '#6b6b6b',
};

const FONT = `font-family="DejaVu Sans, Helvetica, Arial, sans-serif"`;

/** A white outline behind text that sits on lines. */
const HALO = `stroke="#ffffff" stroke-width="3.5" stroke-linejoin="round" paint-order="stroke"`;
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const r1 = (v: number) => Math.round(v * 10) / 10;

/** Ticks at 1, 2, 2.5 or 5 × 10^k, about `target` of them from 0 to at least `max`. */
export function niceTicks(max: number, target = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Math.round(v * 1e6) / 1e6);
  return ticks;
}

export function renderChart(chart: Chart): string {
  const width = chart.width ?? 1000;
  const left = 78;
  const legendWidth = 290;
  const right = 24;
  const plotWidth = width - left - legendWidth - right;
  const headerHeight = 48 + chart.subtitle.length * 18;
  const panelGap = 78;
  const xTicks = niceTicks(chart.xMax, 5);
  const xMax = xTicks[xTicks.length - 1]!;
  const x = (v: number) => left + (v / xMax) * plotWidth;

  const out: string[] = [];
  let top = headerHeight + 30;
  const body: string[] = [];
  chart.panels.forEach((panel, index) => {
    const dataMax = Math.max(0, ...panel.series.flatMap((s) => s.points.map((p) => p[1])), ...(panel.refLines ?? []).map((r) => r.y));
    let yTicks: number[];
    let yMax: number;
    if (panel.yStep) {
      yMax = panel.yMax ?? dataMax * 1.05;
      yTicks = Array.from({ length: Math.floor(yMax / panel.yStep) + 1 }, (_, i) => i * panel.yStep!);
    } else {
      yTicks = niceTicks(panel.yMax ?? dataMax * 1.05, 5);
      yMax = yTicks[yTicks.length - 1]!;
    }
    const h = panel.height;
    const y = (v: number) => top + h - (Math.min(v, yMax) / yMax) * h;
    const fmt = panel.yFormat ?? ((v: number) => String(v));
    const clip = `clip${index}`;

    body.push(`<g>`);
    body.push(`<text x="${left}" y="${top - 12}" ${FONT} font-size="14" font-weight="600" fill="#222">${esc(panel.title)}</text>`);
    // grid and y axis
    for (const t of yTicks) {
      body.push(`<line x1="${left}" x2="${left + plotWidth}" y1="${r1(y(t))}" y2="${r1(y(t))}" stroke="${t === 0 ? '#9a9a9a' : '#e6e6e6'}" stroke-width="1"/>`);
      body.push(`<text x="${left - 8}" y="${r1(y(t) + 4)}" ${FONT} font-size="11" fill="#555" text-anchor="end">${esc(fmt(t))}</text>`);
    }
    for (const t of xTicks) {
      body.push(`<line x1="${r1(x(t))}" x2="${r1(x(t))}" y1="${top}" y2="${top + h}" stroke="#f0f0f0" stroke-width="1"/>`);
      body.push(`<text x="${r1(x(t))}" y="${top + h + 16}" ${FONT} font-size="11" fill="#555" text-anchor="middle">${esc(chart.xFormat(t))}</text>`);
    }
    body.push(
      `<text transform="translate(${left - 54} ${top + h / 2}) rotate(-90)" ${FONT} font-size="12" fill="#333" text-anchor="middle">${esc(panel.yLabel)}</text>`,
    );
    body.push(`<clipPath id="${clip}"><rect x="${left}" y="${top - 2}" width="${plotWidth}" height="${h + 4}"/></clipPath>`);
    // reference lines
    for (const ref of panel.refLines ?? []) {
      const yy = r1(y(ref.y));
      body.push(`<line x1="${left}" x2="${left + plotWidth}" y1="${yy}" y2="${yy}" stroke="${ref.color}" stroke-width="1.2" stroke-dasharray="2 3"/>`);
      body.push(
        `<text x="${left + plotWidth - 4}" y="${yy - 5}" ${FONT} font-size="11" fill="${ref.color}" text-anchor="end" ${HALO}>${esc(ref.label)}</text>`,
      );
    }
    // the lines
    for (const s of panel.series) {
      if (s.points.length === 0) continue;
      const d = s.points.map(([px, py], i) => `${i ? 'L' : 'M'}${r1(x(px))} ${r1(y(py))}`).join(' ');
      body.push(
        `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2.2" stroke-linejoin="round" stroke-linecap="round"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} clip-path="url(#${clip})"/>`,
      );
      if (s.endNote) {
        const [lx, ly] = s.points[s.points.length - 1]!;
        body.push(`<circle cx="${r1(x(lx))}" cy="${r1(y(ly))}" r="4" fill="#fff" stroke="${s.color}" stroke-width="2"/>`);
        body.push(
          `<text x="${r1(x(lx) + 9)}" y="${r1(y(ly) + 18)}" ${FONT} font-size="11" fill="${s.color}" ${HALO}>${esc(s.endNote)}</text>`,
        );
      }
    }
    // legend, beside the panel
    const lx = left + plotWidth + 22;
    let ly = top + 6;
    for (const s of panel.series) {
      body.push(
        `<line x1="${lx}" x2="${lx + 30}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2.6"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
      );
      body.push(`<text x="${lx + 38}" y="${ly + 4}" ${FONT} font-size="12" fill="#222">${esc(s.label)}</text>`);
      if (s.detail) {
        body.push(`<text x="${lx + 38}" y="${ly + 19}" ${FONT} font-size="11" fill="#666">${esc(s.detail)}</text>`);
        ly += 16;
      }
      ly += 24;
    }
    body.push(`</g>`);
    top += h + (index < chart.panels.length - 1 ? panelGap : 0);
  });
  const bottom = top + 46;
  body.push(`<text x="${left + plotWidth / 2}" y="${top + 38}" ${FONT} font-size="12" fill="#333" text-anchor="middle">${esc(chart.xLabel)}</text>`);

  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${bottom}" viewBox="0 0 ${width} ${bottom}" role="img">`);
  out.push(`<title>${esc(chart.title)}</title>`);
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(`<text x="${left}" y="30" ${FONT} font-size="19" font-weight="700" fill="#111">${esc(chart.title)}</text>`);
  chart.subtitle.forEach((line, i) => {
    out.push(`<text x="${left}" y="${52 + i * 18}" ${FONT} font-size="12" fill="#555">${esc(line)}</text>`);
  });
  out.push(...body, '</svg>', '');
  return out.join('\n');
}
