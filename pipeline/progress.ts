/**
 * Progress reporting on stderr: a redrawn bar with rate and ETA on a terminal, a plain line every
 * few seconds otherwise (logs, CI). `VIRTEX_PROGRESS=bar|lines|off` overrides the choice.
 */
import type { Progress } from "./stage.ts";

type Mode = "bar" | "lines" | "off";

/** Options for createProgress; the defaults suit the CLI. */
export interface ProgressOptions {
  mode?: Mode;
  /** Seconds between plain lines (lines mode). */
  lineEvery?: number;
  write?: (text: string) => void;
  now?: () => number; // ms clock, for tests
  /** Work already done before this run (a resumed job): the bar starts there; rate and ETA
   * count only this run's work. */
  initial?: number;
}

const enc = new TextEncoder();
function writeStderr(text: string): void {
  Deno.stderr.writeSync(enc.encode(text));
}

function defaultMode(): Mode {
  const env = Deno.env.get("VIRTEX_PROGRESS");
  if (env === "bar" || env === "lines" || env === "off") return env;
  return Deno.stderr.isTerminal() ? "bar" : "lines";
}

/** Formats seconds as m:ss or h:mm:ss. */
export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return "--:--";
  const s = Math.round(sec);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? h + ":" : ""}${mm}:${String(r).padStart(2, "0")}`;
}

function formatRate(rate: number, unit: string): string {
  if (!Number.isFinite(rate)) return `? ${unit}/s`;
  if (rate >= 100) return `${rate.toFixed(0)} ${unit}/s`;
  if (rate >= 1) return `${rate.toFixed(1)} ${unit}/s`;
  return `${(1 / Math.max(rate, 1e-9)).toFixed(1)} s/${unit}`;
}

/**
 * Starts reporting progress of `total` units of work (total 0 = unknown). tick(n, info) advances
 * by n and shows the latest `info` (e.g. {loss: 2.31}); done() prints the final line.
 */
export function createProgress(
  label: string,
  total: number,
  unit = "it",
  opts: ProgressOptions = {},
): Progress {
  const mode = opts.mode ?? defaultMode();
  const write = opts.write ?? writeStderr;
  const now = opts.now ?? (() => performance.now());
  const lineEveryMs = (opts.lineEvery ?? 5) * 1000;
  const start = now();
  const initial = opts.initial ?? 0;
  let count = initial;
  let lastDraw = -Infinity;
  let lastLine = start;
  let info: Record<string, string | number> = {};
  let finished = false;

  const render = (final: boolean): string => {
    const elapsed = (now() - start) / 1000;
    const rate = elapsed > 0 ? (count - initial) / elapsed : NaN;
    const infoText = Object.entries(info)
      .map(([k, v]) => `${k}=${typeof v === "number" ? fmtNum(v) : v}`)
      .join(" ");
    const parts: string[] = [label];
    if (total > 0) {
      const frac = Math.min(1, count / total);
      if (mode === "bar") {
        const width = 24;
        const full = Math.round(frac * width);
        parts.push(`[${"#".repeat(full)}${".".repeat(width - full)}]`);
      }
      parts.push(`${(frac * 100).toFixed(0).padStart(3)}%`, `${count}/${total}`);
    } else {
      parts.push(`${count} ${unit}`);
    }
    parts.push(formatRate(rate, unit));
    if (final) parts.push(`in ${formatDuration(elapsed)}`);
    else if (total > 0) {
      parts.push(`ETA ${formatDuration(rate > 0 ? (total - count) / rate : NaN)}`);
    }
    if (infoText) parts.push(infoText);
    return parts.join(" ");
  };

  return {
    tick(n = 1, newInfo?: Record<string, string | number>) {
      if (finished || mode === "off") return;
      count += n;
      if (newInfo) info = { ...info, ...newInfo };
      const t = now();
      if (mode === "bar") {
        if (t - lastDraw >= 100 || count === total) {
          lastDraw = t;
          write(`\r\x1b[2K${render(false)}`);
        }
      } else if (t - lastLine >= lineEveryMs) {
        lastLine = t;
        write(render(false) + "\n");
      }
    },
    done() {
      if (finished || mode === "off") return;
      finished = true;
      write(mode === "bar" ? `\r\x1b[2K${render(true)}\n` : render(true) + "\n");
    },
  };
}

function fmtNum(v: number): string {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toPrecision(4);
}
