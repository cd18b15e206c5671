/** Shared pieces of the SVG charts: escaping, number formatting, colours and nice axis ticks. */

/** Escapes text for SVG/XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}

/** A colour-blind-friendly palette (Okabe–Ito order), cycled by series index. */
export const PALETTE = [
  "#0072b2",
  "#e69f00",
  "#009e73",
  "#d55e00",
  "#cc79a7",
  "#56b4e9",
  "#f0e442",
  "#000000",
];

/** Coordinates with at most 2 decimals, no trailing zeros. */
export function num(v: number): string {
  return String(Math.round(v * 100) / 100);
}

/** Tick label: compact, as many decimals as the tick step needs. */
export function tickLabel(v: number, step: number): string {
  if (v === 0) return "0";
  const abs = Math.abs(v);
  if (abs >= 1e5 || abs < 1e-3) return v.toExponential(1).replace("e+", "e");
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return v.toFixed(decimals);
}

/** About `count` round-numbered ticks covering [lo, hi] (steps of 1, 2, 2.5 or 5 × 10^k). */
export function niceTicks(
  lo: number,
  hi: number,
  count = 5,
): { ticks: number[]; step: number; lo: number; hi: number } {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    throw new Error(`niceTicks: bad range ${lo}..${hi}`);
  }
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw * 0.999) ?? 10 * mag;
  const first = Math.floor(lo / step + 1e-9) * step;
  const last = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0; first + i * step <= last + step * 1e-9; i++) {
    ticks.push(Number((first + i * step).toPrecision(12)));
  }
  return { ticks, step, lo: first, hi: last };
}

/** Text element. */
export function text(
  x: number,
  y: number,
  s: string,
  attrs: Record<string, string | number> = {},
): string {
  const a = Object.entries(attrs).map(([k, v]) => ` ${k}="${escapeXml(String(v))}"`).join("");
  return `<text x="${num(x)}" y="${num(y)}"${a}>${escapeXml(s)}</text>`;
}

/** Opening tag of a chart: white background, default font. */
export function svgOpen(width: number, height: number): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">` +
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`;
}

/** Legend: coloured swatches with names, stacked from (x, y). */
export function legend(
  x: number,
  y: number,
  items: { name: string; color: string; dashed?: boolean; box?: boolean }[],
): string {
  const rowH = 16;
  const widest = Math.max(...items.map((it) => it.name.length), 1);
  const w = 34 + widest * 7;
  const parts = [
    `<g class="legend"><rect x="${num(x)}" y="${num(y)}" width="${num(w)}" height="${
      num(items.length * rowH + 8)
    }" fill="#ffffff" fill-opacity="0.85" stroke="#cccccc"/>`,
  ];
  items.forEach((it, i) => {
    const cy = y + 4 + i * rowH + rowH / 2;
    const dash = it.dashed ? ` stroke-dasharray="5 3"` : "";
    parts.push(
      it.box
        ? `<rect x="${num(x + 8)}" y="${num(cy - 5)}" width="16" height="10" fill="${it.color}"/>`
        : `<line x1="${num(x + 6)}" y1="${num(cy)}" x2="${num(x + 26)}" y2="${
          num(cy)
        }" stroke="${it.color}" stroke-width="2.5"${dash}/>`,
    );
    parts.push(text(x + 32, cy + 4, it.name));
  });
  parts.push("</g>");
  return parts.join("");
}
