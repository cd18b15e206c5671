/**
 * Grouped bar charts as SVG strings (e.g. mAP per method): one group per category, one bar per
 * series inside it (<rect data-series="name" data-category="cat">), values printed above bars,
 * and optional error bars (<path class="errbar">, e.g. a confidence interval or ± sd).
 */
import { escapeXml, legend, niceTicks, num, PALETTE, svgOpen, text, tickLabel } from "./svg.ts";

export interface BarSeries {
  name: string;
  values: readonly number[]; // one per category; NaN = no bar
  /** Optional [low, high] per category drawn as an error bar (null or NaN: none). */
  errors?: readonly ([number, number] | null)[];
  color?: string;
}

export interface BarChartOptions {
  categories: string[];
  series: BarSeries[];
  title?: string;
  yLabel?: string;
  width?: number; // default 640
  height?: number; // default 400
  yMin?: number; // default 0 (or the smallest value when negative)
  yMax?: number;
  format?: (v: number) => string; // value labels; default 1 decimal
}

/** Renders a grouped bar chart to an SVG document string. */
export function barChartSvg(opts: BarChartOptions): string {
  const W = opts.width ?? 640, H = opts.height ?? 400;
  const nc = opts.categories.length, ns = opts.series.length;
  if (nc === 0 || ns === 0) {
    throw new Error("barChartSvg: need at least one category and one series");
  }
  for (const s of opts.series) {
    if (s.values.length !== nc) {
      throw new Error(
        `barChartSvg: series "${s.name}" has ${s.values.length} values for ${nc} categories`,
      );
    }
  }
  const fmt = opts.format ?? ((v: number) => v.toFixed(1));
  const m = { left: 64, right: 16, top: opts.title ? 36 : 16, bottom: 40 };
  const legendH = ns > 1 ? ns * 16 + 8 : 0;
  const pw = W - m.left - m.right, ph = H - m.top - m.bottom - legendH;
  const finite = opts.series.flatMap((s) =>
    [
      ...s.values,
      ...(s.errors ?? []).flatMap((e) => e ?? []),
    ].filter(Number.isFinite)
  );
  const yt = niceTicks(
    opts.yMin ?? Math.min(0, ...finite),
    opts.yMax ?? Math.max(finite.length ? Math.max(...finite) : 1, 0) * 1.08,
    5,
  );
  const sy = (y: number) => m.top + legendH + ph - ((y - yt.lo) / (yt.hi - yt.lo)) * ph;
  const out = [svgOpen(W, H)];
  if (opts.title) {
    out.push(
      text(W / 2, 22, opts.title, {
        "text-anchor": "middle",
        "font-size": 15,
        "font-weight": "bold",
      }),
    );
  }
  out.push(`<g class="grid" stroke="#e6e6e6">`);
  for (const t of yt.ticks) {
    out.push(`<line x1="${m.left}" y1="${num(sy(t))}" x2="${m.left + pw}" y2="${num(sy(t))}"/>`);
  }
  out.push("</g>");
  for (const t of yt.ticks) {
    out.push(text(m.left - 6, sy(t) + 4, tickLabel(t, yt.step), { "text-anchor": "end" }));
  }
  if (opts.yLabel) {
    const cy = m.top + legendH + ph / 2;
    out.push(
      text(16, cy, opts.yLabel, {
        "text-anchor": "middle",
        transform: `rotate(-90 16 ${num(cy)})`,
      }),
    );
  }
  const groupW = pw / nc, barW = (groupW * 0.8) / ns;
  const base = sy(Math.max(yt.lo, Math.min(0, yt.hi)));
  opts.categories.forEach((cat, c) => {
    const gx = m.left + c * groupW + groupW * 0.1;
    opts.series.forEach((s, k) => {
      const v = s.values[c];
      if (!Number.isFinite(v)) return;
      const color = s.color ?? PALETTE[k % PALETTE.length];
      const y = sy(v), top = Math.min(y, base), h = Math.abs(base - y);
      const x = gx + k * barW;
      out.push(
        `<rect data-series="${escapeXml(s.name)}" data-category="${
          escapeXml(cat)
        }" data-value="${v}" ` +
          `x="${num(x + 1)}" y="${num(top)}" width="${num(Math.max(1, barW - 2))}" height="${
            num(h)
          }" fill="${color}"/>`,
      );
      const e = s.errors?.[c];
      let labelY = top - 4;
      if (e && Number.isFinite(e[0]) && Number.isFinite(e[1])) {
        const cx = x + barW / 2, lo = sy(e[0]), hi = sy(e[1]), cap = Math.min(6, barW / 4);
        out.push(
          `<path class="errbar" data-low="${e[0]}" data-high="${e[1]}" stroke="#222222" ` +
            `fill="none" d="M${num(cx)} ${num(lo)}V${num(hi)}M${num(cx - cap)} ${num(hi)}H${
              num(cx + cap)
            }M${num(cx - cap)} ${num(lo)}H${num(cx + cap)}"/>`,
        );
        labelY = Math.min(labelY, hi - 4);
      }
      out.push(text(x + barW / 2, labelY, fmt(v), { "text-anchor": "middle", "font-size": 11 }));
    });
    out.push(
      text(m.left + (c + 0.5) * groupW, m.top + legendH + ph + 18, cat, {
        "text-anchor": "middle",
      }),
    );
  });
  out.push(
    `<line x1="${m.left}" y1="${num(base)}" x2="${m.left + pw}" y2="${
      num(base)
    }" stroke="#333333"/>`,
    `<line x1="${m.left}" y1="${m.top + legendH}" x2="${m.left}" y2="${
      m.top + legendH + ph
    }" stroke="#333333"/>`,
  );
  if (ns > 1) {
    out.push(
      legend(
        m.left + 8,
        m.top,
        opts.series.map((s, k) => ({
          name: s.name,
          color: s.color ?? PALETTE[k % PALETTE.length],
          box: true,
        })),
      ),
    );
  }
  out.push("</svg>");
  return out.join("\n");
}
