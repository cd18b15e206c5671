/**
 * bench/engine: wasm backend GFLOP/s next to PyTorch CPU (Debian python3-torch, same thread
 * count, same shapes, same run) and as a share of this machine's f32 peak
 * (cores x 32 FLOP/cycle x clock).
 *
 *   deno run -A bench/engine/main.ts [--threads N] [--reps R] [--rounds K] [--no-torch]
 *                                    [--no-unchecked]
 *
 * wasm and torch alternate for --rounds rounds (default 2); each side keeps its best median.
 * Each round also runs the wasm side in a child Deno with `--v8-flags=--no-wasm-bounds-checks`
 * ("unchecked"): Deno does not enable V8's WebAssembly trap handler, so every wasm load and store
 * carries a software bounds check; the child measures what those checks cost on this machine.
 * Benchmarks: matmul 1024^3 (on all threads and on one, for both sides: the thread scaling this
 * host gives); conv 3x3 64->64 at 56x56 batch 16 forward, and forward + backward (data + filter);
 * one TransformerDecoderLayer (H 512, 8 heads, FF 2048, 30 tokens, 49 memory tokens, batch 16)
 * forward + backward. Results also go to bench/out/engine.json.
 */
import { parseArgs } from "node:util";
import type { Backend, Conv2dParams } from "../../engine/backend.ts";
import { createWasmBackend } from "../../engine/backends/wasm.ts";
import { TransformerDecoderLayer } from "../../engine/nn/index.ts";
import * as ops from "../../engine/ops/index.ts";
import { tidy } from "../../engine/scope.ts";
import { tensor } from "../../engine/tensor.ts";
import { uniformValues } from "../common.ts";

const { values: args } = parseArgs({
  options: {
    threads: { type: "string", default: String(navigator.hardwareConcurrency) },
    reps: { type: "string", default: "7" },
    rounds: { type: "string", default: "2" },
    "no-torch": { type: "boolean", default: false },
    "no-unchecked": { type: "boolean", default: false },
    // Internal: run one wasm round and print its timings as JSON (the unchecked child).
    "child-json": { type: "boolean", default: false },
    // Internal: time the matmul on one thread and print the timing as JSON (the host-ceiling
    // children, several at once).
    "child-matmul-1t": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  console.log(
    "usage: deno run -A bench/engine/main.ts [--threads N] [--reps R] [--rounds K] [--no-torch]\n" +
      "                                        [--no-unchecked]\n" +
      "  wasm and torch alternate for K rounds; each side keeps its best median per benchmark.\n" +
      "  Each round also times wasm in a child Deno without V8's software bounds checks\n" +
      "  (--v8-flags=--no-wasm-bounds-checks); --no-unchecked skips it.",
  );
  Deno.exit(0);
}
const threads = Number(args.threads), reps = Number(args.reps), rounds = Number(args.rounds);
if (!(threads >= 1 && reps >= 1 && rounds >= 1)) {
  console.error("bench/engine: --threads, --reps and --rounds must be positive integers");
  Deno.exit(2);
}

interface Timing {
  median: number;
  min: number;
}

async function timeit(fn: () => void | Promise<void>, n: number, warmup = 2): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await fn();
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    ts.push((performance.now() - t0) / 1000);
  }
  ts.sort((a, b) => a - b);
  return { median: ts[Math.floor(ts.length / 2)], min: ts[0] };
}

/** Max clock in GHz from /proc/cpuinfo (falls back to lscpu's max MHz). */
function clockGHz(): number {
  try {
    const mhz = [...Deno.readTextFileSync("/proc/cpuinfo").matchAll(/cpu MHz\s*:\s*([\d.]+)/g)]
      .map((m) => Number(m[1]));
    if (mhz.length) return Math.max(...mhz) / 1000;
  } catch { /* not Linux */ }
  return NaN;
}

// ---- FLOP counts (multiply-adds x 2), shared by both sides ----
const MM = 1024;
const matmulFlops = 2 * MM ** 3;
const conv: Conv2dParams = {
  N: 16,
  C: 64,
  H: 56,
  W: 56,
  O: 64,
  KH: 3,
  KW: 3,
  stride: 1,
  pad: 1,
  OH: 56,
  OW: 56,
};
const convFwdFlops = 2 * conv.N * conv.O * conv.OH * conv.OW * conv.C * conv.KH * conv.KW;
const D = { B: 16, T: 30, S: 49, H: 512, heads: 8, F: 2048 };
function decoderFwdFlops(): number {
  const { B, T, S, H, F } = D;
  const proj = 2 * B * T * H * H;
  const self = 4 * proj + 2 * 2 * B * T * T * H; // q,k,v,out + scores + weighted sum
  const cross = 2 * proj + 2 * 2 * B * S * H * H + 2 * 2 * B * T * S * H;
  const ff = 2 * 2 * B * T * H * F;
  return self + cross + ff;
}
/** Backward costs two forward GEMMs per forward GEMM. */
const decoderFlops = 3 * decoderFwdFlops();

function benchMatmul(be: Backend): Promise<Timing> {
  const a = be.alloc(MM * MM), b = be.alloc(MM * MM), c = be.alloc(MM * MM);
  be.write(a, uniformValues(MM * MM, 1));
  be.write(b, uniformValues(MM * MM, 2));
  const p = {
    batch: 1,
    M: MM,
    N: MM,
    K: MM,
    transA: false,
    transB: false,
    strideA: 0,
    strideB: 0,
    strideC: 0,
  };
  return timeit(() => be.matmul(a, b, c, p), reps).finally(() => {
    for (const x of [a, b, c]) be.free(x);
  });
}

async function benchWasm(be: Backend): Promise<Record<string, Timing>> {
  const out: Record<string, Timing> = {};
  out.matmul = await benchMatmul(be);
  {
    const xs = conv.N * conv.C * conv.H * conv.W, ws = conv.O * conv.C * 9;
    const ys = conv.N * conv.O * conv.OH * conv.OW;
    const x = be.alloc(xs), w = be.alloc(ws), y = be.alloc(ys), dy = be.alloc(ys);
    const dx = be.alloc(xs), dw = be.alloc(ws);
    be.write(x, uniformValues(xs, 3));
    be.write(w, uniformValues(ws, 4));
    be.write(dy, uniformValues(ys, 5));
    out.conv_fwd = await timeit(() => be.conv2d({ x, w, bias: null, y, geom: conv }), reps);
    out.conv_fwd_bwd = await timeit(() => {
      be.conv2d({ x, w, bias: null, y, geom: conv });
      be.conv2dBackwardData({ dy, w, dx, geom: conv });
      be.conv2dBackwardFilter({ x, dy, dw, geom: conv, accumulate: false });
    }, reps);
    for (const t of [x, w, y, dy, dx, dw]) be.free(t);
  }
  {
    const layer = new TransformerDecoderLayer(be, D.H, D.heads, D.F, { dropout: 0.1 });
    const tgt = tensor(be, uniformValues(D.B * D.T * D.H, 6), [D.B, D.T, D.H]).persist();
    const mem = tensor(be, uniformValues(D.B * D.S * D.H, 7), [D.B, D.S, D.H]).persist();
    tgt.requiresGrad = true;
    mem.requiresGrad = true;
    out.decoder_fwd_bwd = await timeit(async () => {
      layer.zeroGrad();
      tgt.grad?.dispose();
      mem.grad?.dispose();
      tgt.grad = null;
      mem.grad = null;
      tidy(() => {
        const y = layer.forward(tgt, mem, { causal: true });
        ops.sum(y).backward();
      });
      await be.flush();
    }, reps);
    layer.dispose();
    for (const t of [tgt, mem]) {
      t.grad?.dispose();
      t.dispose();
    }
  }
  return out;
}

let torchVersion: string | null = null;

async function benchTorch(): Promise<Record<string, Timing> | string> {
  const script = new URL("./torch_ref.py", import.meta.url).pathname;
  try {
    const r = await new Deno.Command("/usr/bin/python3", {
      args: [script, "--threads", String(threads), "--reps", String(reps)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!r.success) return `torch_ref.py failed: ${new TextDecoder().decode(r.stderr).trim()}`;
    const parsed = JSON.parse(new TextDecoder().decode(r.stdout));
    torchVersion = parsed.torch;
    const out: Record<string, Timing> = {};
    for (const [k, v] of Object.entries(parsed)) {
      if (typeof v === "object" && v && "median" in v) out[k] = v as Timing;
    }
    return out;
  } catch (e) {
    return `cannot run /usr/bin/python3: ${(e as Error).message}`;
  }
}

if (args["child-json"]) {
  console.log(JSON.stringify(await wasmRound()));
  Deno.exit(0);
}
if (args["child-matmul-1t"]) {
  const be1 = await createWasmBackend({ threads: 1 });
  console.log(JSON.stringify(await benchMatmul(be1)));
  be1.destroy();
  Deno.exit(0);
}

/** Runs this script in a child Deno (with `v8Flags`) and parses the JSON it prints. */
async function runChild<T>(what: string, v8Flags: string[], flags: string[]): Promise<T | string> {
  try {
    const self = new URL(import.meta.url).pathname;
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", ...v8Flags, self, ...flags, "--reps", String(reps)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!r.success) return `${what} failed: ${new TextDecoder().decode(r.stderr).trim()}`;
    return JSON.parse(new TextDecoder().decode(r.stdout));
  } catch (e) {
    return `cannot run ${what}: ${(e as Error).message}`;
  }
}

/**
 * The host's ceiling for independent work: `threads` separate processes each time the matmul on
 * one thread, all at once. Returned as the timing one process would need for the combined rate.
 */
async function processesRound(): Promise<Timing | string> {
  const runs = await Promise.all(
    Array.from(
      { length: threads },
      () => runChild<Timing>("a matmul child", [], ["--child-matmul-1t"]),
    ),
  );
  const timings: Timing[] = [];
  for (const t of runs) {
    if (typeof t === "string") return t;
    timings.push(t);
  }
  const rate = (f: (t: Timing) => number) => timings.reduce((a, t) => a + 1 / f(t), 0);
  return { median: 1 / rate((t) => t.median), min: 1 / rate((t) => t.min) };
}

/** One wasm round in a child Deno whose wasm code has no software bounds checks. */
function uncheckedRound(): Promise<Record<string, Timing> | string> {
  return runChild(
    "the unchecked child",
    ["--v8-flags=--no-wasm-bounds-checks"],
    ["--child-json", "--threads", String(threads)],
  );
}

const ghz = clockGHz();
const peak = threads * 32 * ghz * 1e9;
console.log(
  `bench/engine: ${threads} threads, clock ${ghz.toFixed(3)} GHz, ` +
    `f32 peak ${(peak / 1e9).toFixed(1)} GFLOP/s (threads x 32 FLOP/cycle x clock)`,
);
/** Keeps, per benchmark, the timing with the lower median. */
function keepBest(acc: Record<string, Timing>, add: Record<string, Timing>): void {
  for (const [k, t] of Object.entries(add)) {
    if (!acc[k] || t.median < acc[k].median) acc[k] = t;
  }
}

async function wasmRound(): Promise<Record<string, Timing>> {
  const be = await createWasmBackend({ threads });
  const r = await benchWasm(be);
  be.destroy();
  if (threads > 1) {
    // Thread scaling: the same matmul on one thread.
    const be1 = await createWasmBackend({ threads: 1 });
    r.matmul_1t = await benchMatmul(be1);
    be1.destroy();
  }
  return r;
}

// Alternate the sides so that all see the same (shared, noisy) machine.
const ours: Record<string, Timing> = {};
let torch: Record<string, Timing> | string = args["no-torch"] ? "skipped (--no-torch)" : {};
let unchecked: Record<string, Timing> | string = args["no-unchecked"]
  ? "skipped (--no-unchecked)"
  : {};
for (let round = 0; round < rounds; round++) {
  keepBest(ours, await wasmRound());
  if (threads > 1) {
    const procs = await processesRound();
    if (typeof procs === "string") console.log(`host ceiling: ${procs}`);
    else keepBest(ours, { matmul_procs: procs });
  }
  if (typeof unchecked !== "string") {
    const u = await uncheckedRound();
    if (typeof u === "string") unchecked = u;
    else keepBest(unchecked, u);
  }
  if (typeof torch !== "string") {
    const t = await benchTorch();
    if (typeof t === "string") torch = t;
    else keepBest(torch, t);
  }
}
if (typeof torch === "string") console.log(`torch reference: ${torch}`);
if (typeof unchecked === "string") console.log(`wasm unchecked: ${unchecked}`);

const rows: [string, string, number][] = [
  ["matmul", "matmul 1024^3", matmulFlops],
  ["matmul_1t", "matmul 1024^3 on 1 thread", matmulFlops],
  ["matmul_procs", `matmul, ${threads} processes x 1 thread`, matmulFlops],
  ["conv_fwd", "conv3x3 64->64 56x56 b16 fwd", convFwdFlops],
  ["conv_fwd_bwd", "conv3x3 64->64 56x56 b16 fwd+bwd", 3 * convFwdFlops],
  ["decoder_fwd_bwd", "decoder H512 A8 T30 S49 b16 fwd+bwd", decoderFlops],
];
const report: Record<string, unknown>[] = [];
const pad = (s: string, n: number) => s.padEnd(n);
const gf = (flops: number, t: Timing | null) => (t ? flops / t.median / 1e9 : NaN);
console.log(
  `${pad("benchmark", 36)}${pad("wasm", 8)}${pad("unchk", 8)}${pad("torch", 8)}` +
    `${pad("ratio", 7)}${pad("unchk", 7)}${
      pad("%peak", 8)
    }best of medians, GFLOP/s; ms wasm / torch`,
);
for (const [key, label, flops] of rows) {
  const w = ours[key];
  if (!w) continue;
  const t = typeof torch === "string" ? null : torch[key] ?? null;
  const u = typeof unchecked === "string" ? null : unchecked[key] ?? null;
  const rowPeak = key.endsWith("_1t") ? peak / threads : peak;
  const gw = gf(flops, w), gt = gf(flops, t), gu = gf(flops, u);
  const ratio = t ? t.median / w.median : NaN;
  const ratioUnchecked = t && u ? t.median / u.median : NaN;
  const ratioMin = t ? t.min / w.min : NaN;
  report.push({
    key,
    label,
    gflop: flops / 1e9,
    wasm: w,
    wasmUnchecked: u,
    torch: t,
    wasmGflops: gw,
    wasmUncheckedGflops: gu,
    torchGflops: gt,
    ratio,
    ratioUnchecked,
    ratioMin,
    shareOfPeak: (flops / w.median) / rowPeak,
  });
  console.log(
    `${pad(label, 36)}${pad(gw.toFixed(1), 8)}${pad(gu.toFixed(1), 8)}${pad(gt.toFixed(1), 8)}` +
      `${pad(ratio.toFixed(2), 7)}${pad(ratioUnchecked.toFixed(2), 7)}` +
      `${pad(((100 * flops) / w.median / rowPeak).toFixed(1) + "%", 8)}` +
      `${(w.median * 1e3).toFixed(1)} / ${t ? (t.median * 1e3).toFixed(1) : "-"}` +
      ` (fastest single runs: ratio ${ratioMin.toFixed(2)})`,
  );
}
// What bounds the figures on this host: thread scaling of each side, and each side's one-thread
// matmul in FLOP per cycle at the reported clock, next to its instruction set's FMA peak (AVX2:
// 32 FLOP/cycle; wasm SIMD128: 16, half of it, whatever the CPU).
const scaling = (side: Record<string, Timing> | string) =>
  typeof side === "string" || !side.matmul || !side.matmul_1t
    ? NaN
    : side.matmul_1t.median / side.matmul.median;
const perCycle = (side: Record<string, Timing> | string) =>
  typeof side === "string" || !side.matmul_1t
    ? NaN
    : matmulFlops / side.matmul_1t.median / (ghz * 1e9);
const hostNotes = {
  /** N independent one-thread processes at once over one: what the host gives independent work. */
  matmulProcessesScaling: ours.matmul_procs && ours.matmul_1t
    ? ours.matmul_1t.median / ours.matmul_procs.median
    : NaN,
  matmulThreadScaling: {
    wasm: scaling(ours),
    wasmUnchecked: scaling(unchecked),
    torch: scaling(torch),
  },
  matmul1tFlopPerCycle: {
    wasm: perCycle(ours),
    wasmUnchecked: perCycle(unchecked),
    torch: perCycle(torch),
  },
};
if (threads > 1) {
  const sc = hostNotes.matmulThreadScaling, pc = hostNotes.matmul1tFlopPerCycle;
  console.log(
    `matmul speed-up ${threads} threads over 1: wasm ${sc.wasm.toFixed(2)}x, unchecked ` +
      `${sc.wasmUnchecked.toFixed(2)}x, torch ${sc.torch.toFixed(2)}x; ${threads} separate ` +
      `1-thread wasm processes at once: ${hostNotes.matmulProcessesScaling.toFixed(2)}x`,
  );
  console.log(
    `matmul on 1 thread, FLOP/cycle at ${ghz.toFixed(3)} GHz: wasm ${pc.wasm.toFixed(1)}, ` +
      `unchecked ${pc.wasmUnchecked.toFixed(1)} (SIMD128 FMA peak 16); torch ` +
      `${pc.torch.toFixed(1)} (AVX2 FMA peak 32)`,
  );
}
const outDir = new URL("../out/", import.meta.url);
await Deno.mkdir(outDir, { recursive: true });
const outFile = new URL("engine.json", outDir);
const tmp = new URL(`engine.json.tmp.${Deno.pid}`, outDir);
await Deno.writeTextFile(
  tmp,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      threads,
      clockGHz: ghz,
      peakGflops: peak / 1e9,
      loadavg: Deno.loadavg(),
      results: report,
      host: hostNotes,
      rounds,
      reps,
      torchVersion,
    },
    null,
    2,
  ) + "\n",
);
await Deno.rename(tmp, outFile);
console.log(`wrote ${outFile.pathname}`);
