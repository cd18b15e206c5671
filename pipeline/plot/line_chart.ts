/**
 * Line charts as SVG strings (loss curves): axes with nice ticks, grid, labels, a legend, one
 * <polyline data-series="name"> per continuous run of finite points (NaN/Inf break the line).
 */
import { escapeXml, legend, niceTicks, num, PALETTE, svgOpen, text, tickLabel } from "./svg.ts";

export interface LineSeries {
  name: string;
  x: readonly number[];
  y: readonly number[];
  color?: string;
  dashed?: boolean;
}

export interface LineChartOptions {
  series: LineSeries[];
  title?: string;
  xLabel?: string;
  yLabel?: string;
  width?: number; // default 640
  height?: number; // default 400
  logY?: boolean; // log10 y axis (non-positive values are dropped)
  yMin?: number;
  yMax?: number;
}

/** Renders a line chart to an SVG document string. */
export function lineChartSvg(opts: LineChartOptions): string {
  const W = opts.width ?? 640, H = opts.height ?? 400;
  const m = { left: 64, right: 16, top: opts.title ? 36 : 16, bottom: opts.xLabel ? 48 : 32 };
  const pw = W - m.left - m.right, ph = H - m.top - m.bottom;
  for (const s of opts.series) {
    if (s.x.length !== s.y.length) {
      throw new Error(
        `lineChartSvg: series "${s.name}" has ${s.x.length} x and ${s.y.length} y values`,
      );
    }
  }
  const ty = (v: number) => (opts.logY ? (v > 0 ? Math.log10(v) : NaN) : v);
  const xs: number[] = [], ys: number[] = [];
  for (const s of opts.series) {
    s.x.forEach((x, i) => {
      const y = ty(s.y[i]);
      if (Number.isFinite(x) && Number.isFinite(y)) xs.push(x), ys.push(y);
    });
  }
  const xt = niceTicks(xs.length ? Math.min(...xs) : 0, xs.length ? Math.max(...xs) : 1, 6);
  const yt = niceTicks(
    opts.yMin !== undefined ? ty(opts.yMin) : ys.length ? Math.min(...ys) : 0,
    opts.yMax !== undefined ? ty(opts.yMax) : ys.length ? Math.max(...ys) : 1,
    5,
  );
  const sx = (x: number) => m.left + ((x - xt.lo) / (xt.hi - xt.lo)) * pw;
  const sy = (y: number) => m.top + ph - ((y - yt.lo) / (yt.hi - yt.lo)) * ph;
  const out: string[] = [svgOpen(W, H)];
  if (opts.title) {
    out.push(
      text(W / 2, 22, opts.title, {
        "text-anchor": "middle",
        "font-size": 15,
        "font-weight": "bold",
      }),
    );
  }
  // Grid and ticks.
  out.push(`<g class="grid" stroke="#e6e6e6" stroke-width="1">`);
  for (const t of xt.ticks) {
    out.push(`<line x1="${num(sx(t))}" y1="${m.top}" x2="${num(sx(t))}" y2="${m.top + ph}"/>`);
  }
  for (const t of yt.ticks) {
    out.push(`<line x1="${m.left}" y1="${num(sy(t))}" x2="${m.left + pw}" y2="${num(sy(t))}"/>`);
  }
  out.push(`</g><g class="axes">`);
  out.push(
    `<line x1="${m.left}" y1="${m.top + ph}" x2="${m.left + pw}" y2="${
      m.top + ph
    }" stroke="#333333"/>`,
    `<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + ph}" stroke="#333333"/>`,
  );
  for (const t of xt.ticks) {
    out.push(text(sx(t), m.top + ph + 16, tickLabel(t, xt.step), { "text-anchor": "middle" }));
  }
  for (const t of yt.ticks) {
    const label = opts.logY
      ? tickLabel(Math.pow(10, t), Math.pow(10, t) / 10)
      : tickLabel(t, yt.step);
    out.push(text(m.left - 6, sy(t) + 4, label, { "text-anchor": "end" }));
  }
  if (opts.xLabel) {
    out.push(text(m.left + pw / 2, H - 10, opts.xLabel, { "text-anchor": "middle" }));
  }
  if (opts.yLabel) {
    out.push(text(16, m.top + ph / 2, opts.yLabel, {
      "text-anchor": "middle",
      transform: `rotate(-90 16 ${num(m.top + ph / 2)})`,
    }));
  }
  out.push("</g>");
  // Series.
  const items: { name: string; color: string; dashed?: boolean }[] = [];
  opts.series.forEach((s, k) => {
    const color = s.color ?? PALETTE[k % PALETTE.length];
    items.push({ name: s.name, color, dashed: s.dashed });
    const runs: string[][] = [[]];
    s.x.forEach((x, i) => {
      const y = ty(s.y[i]);
      if (Number.isFinite(x) && Number.isFinite(y)) {
        runs[runs.length - 1].push(`${num(sx(x))},${num(sy(y))}`);
      } else if (runs[runs.length - 1].length > 0) runs.push([]);
    });
    const dash = s.dashed ? ` stroke-dasharray="6 4"` : "";
    for (const run of runs) {
      if (run.length === 0) continue;
      if (run.length === 1) {
        const [cx, cy] = run[0].split(",");
        out.push(
          `<circle data-series="${
            escapeXml(s.name)
          }" cx="${cx}" cy="${cy}" r="2.5" fill="${color}"/>`,
        );
        continue;
      }
      out.push(
        `<polyline data-series="${
          escapeXml(s.name)
        }" fill="none" stroke="${color}" stroke-width="2" ` +
          `stroke-linejoin="round"${dash} points="${run.join(" ")}"/>`,
      );
    }
  });
  if (items.length > 0) {
    out.push(
      legend(m.left + pw - 40 - 7 * Math.max(...items.map((i) => i.name.length)), m.top + 6, items),
    );
  }
  out.push("</svg>");
  return out.join("\n");
}
