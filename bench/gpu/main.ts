/**
 * bench/gpu: the webgpu backend on whatever adapter is present (a real GPU on the device
 * machine, lavapipe/llvmpipe here), one part per invocation so that a shell `timeout` can bound
 * each part (bench/gpu/device_check.sh runs them all and bench/gpu/torch_cuda.py as reference):
 *
 *   deno run -A bench/gpu/main.ts --part adapter|micro|profile|pretrain [--profile full|local]
 *                                 [--out DIR] [--budget S] [--reserve S] [--require-hardware]
 *   deno run -A bench/gpu/main.ts           # (as `make bench` runs it) the whole check:
 *                                           # device_check.sh, with --local on a software adapter
 *
 * adapter:  prints and writes DIR/adapter.json (name, vendor, fallback flag, features, limits);
 *           exits 3 when there is no adapter (or, with --require-hardware, only a fallback one).
 * micro:    matmul N³ f32 (and f16 operands with f32 accumulation under shader-f16), conv 3×3
 *           forward and forward + backward, one decoder layer forward + backward, shapes from
 *           bench/gpu/shapes.json; each timed as many iterations recorded into one submit, best
 *           of two time-boxed rounds; matmul results spot-checked against an f64 host product.
 *           The largest matmul and the conv forward + backward also run with the legacy kernel
 *           set (before issue 14), in the same process.
 * profile:  per-kernel GPU time of one training step of the profile case, legacy and current
 *           kernel sets (bench/gpu/profile.ts), plus their unprofiled s/step → ours_profile.json.
 * pretrain: each case's bicaptioning training step (bench/pretrain/step.ts: forward + backward,
 *           clip, SGD + LookAhead, loss read back one step late) in img/s, f32 and (with
 *           shader-f16) autocast f16 matrix products without loss scaling; the first case falls
 *           back to batch 8 when its configured batch fails.
 * Results go to DIR/ours_<part>.json, rewritten after every measurement so that a part killed
 * by its timeout keeps what it finished. DIR defaults to $OUT, else bench/out/gpu.
 */
import { parseArgs } from "node:util";
import type { Conv2dParams } from "../../engine/backend.ts";
import {
  createWebGpuBackend,
  probeWebGpu,
  type WebGpuBackend,
} from "../../engine/backends/webgpu.ts";
import { adapterIsFallback, adapterName } from "../../engine/backends/webgpu/adapter.ts";
import { COOP_FEATURE } from "../../engine/backends/webgpu/coop.ts";
import { TransformerDecoderLayer } from "../../engine/nn/index.ts";
import * as ops from "../../engine/ops/index.ts";
import { tidy } from "../../engine/scope.ts";
import { tensor } from "../../engine/tensor.ts";
import { type PartEnv, partPretrain, partProfile } from "./steps.ts";
import { type Profile, readProfile } from "./shapes.ts";
import { squareMatmulParams, uniformValues } from "../common.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    part: { type: "string", default: "all" },
    profile: { type: "string", default: "full" },
    out: { type: "string" },
    budget: { type: "string", default: "1e9" },
    reserve: { type: "string", default: "0" },
    "require-hardware": { type: "boolean", default: false },
    cases: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (args.help) {
  console.log(
    "usage: deno run -A bench/gpu/main.ts [--part all|adapter|micro|profile|pretrain] " +
      "[--profile full|local] [--out DIR] [--budget SECONDS] [--reserve SECONDS] " +
      "[--require-hardware] [--cases 0,1 (pretrain cases to time)]",
  );
  Deno.exit(0);
}
const OUT = args.out ?? Deno.env.get("OUT") ??
  new URL("../out/gpu", import.meta.url).pathname;
/**
 * Seconds after start when no new measurement begins: --budget, and at most the part's end
 * (GPU_CHECK_PART_END, epoch seconds, set by device_check.sh) less --reserve seconds (but never
 * less than half the time left: a part cut short by the global deadline still measures).
 */
function untilEnd(left: number, reserve: number): number {
  return Math.max(left - reserve, left / 2);
}
const partEnd = Number(Deno.env.get("GPU_CHECK_PART_END") ?? NaN);
const budget = Math.min(
  Number(args.budget),
  Number.isFinite(partEnd) ? untilEnd(partEnd - Date.now() / 1000, Number(args.reserve)) : Infinity,
);
if (Number.isNaN(budget) || Number.isNaN(Number(args.reserve))) {
  console.error(
    `bench/gpu: --budget and --reserve must be numbers of seconds, got "${args.budget}", ` +
      `"${args.reserve}"`,
  );
  Deno.exit(2);
}
const started = performance.now();
const elapsed = () => (performance.now() - started) / 1000;
const log = (s: string) => console.log(`[ours ${elapsed().toFixed(1)}s] ${s}`);

/** Writes DIR/name atomically (temp name, then rename). */
async function writeJson(name: string, value: unknown): Promise<void> {
  await Deno.mkdir(OUT, { recursive: true });
  const path = `${OUT}/${name}`;
  await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(value, null, 2) + "\n");
  await Deno.rename(`${path}.tmp`, path);
}

// ---------------------------------------------------------------- adapter

async function partAdapter(): Promise<number> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  const info: Record<string, unknown> = {
    env: {
      DENO_WEBGPU_BACKEND: Deno.env.get("DENO_WEBGPU_BACKEND") ?? null,
      VK_DRIVER_FILES: Deno.env.get("VK_DRIVER_FILES") ?? null,
      VK_ICD_FILENAMES: Deno.env.get("VK_ICD_FILENAMES") ?? null,
    },
  };
  let adapter: GPUAdapter | null = null;
  try {
    adapter = gpu ? await gpu.requestAdapter({ powerPreference: "high-performance" }) : null;
    if (!gpu) info.reason = "navigator.gpu is not defined";
    else if (!adapter) info.reason = "requestAdapter returned null";
  } catch (e) {
    info.reason = `requestAdapter failed: ${(e as Error).message}`;
  }
  if (adapter) {
    const i = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
    const lim = adapter.limits;
    Object.assign(info, {
      available: true,
      name: adapterName(adapter),
      vendor: i.vendor,
      architecture: i.architecture,
      device: i.device,
      description: i.description,
      isFallbackAdapter: adapterIsFallback(adapter),
      features: [...adapter.features].sort(),
      shaderF16: adapter.features.has("shader-f16"),
      subgroups: adapter.features.has("subgroups"),
      cooperativeMatrix: adapter.features.has(COOP_FEATURE),
      subgroupMinSize: (i as { subgroupMinSize?: number }).subgroupMinSize ?? null,
      subgroupMaxSize: (i as { subgroupMaxSize?: number }).subgroupMaxSize ?? null,
      limits: {
        maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
        maxBufferSize: lim.maxBufferSize,
        maxComputeWorkgroupStorageSize: lim.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: lim.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupsPerDimension: lim.maxComputeWorkgroupsPerDimension,
        maxStorageBuffersPerShaderStage: lim.maxStorageBuffersPerShaderStage,
      },
    });
  } else info.available = false;
  console.log(JSON.stringify(info, null, 2));
  await writeJson("adapter.json", info);
  if (!adapter) return 3;
  if (args["require-hardware"] && info.isFallbackAdapter) return 3;
  return 0;
}

// ---------------------------------------------------------------- micro

/** Seconds per iteration: best of two rounds, each ≈ seconds/2 of iterations in one submit. */
interface Timed {
  secondsPerIter: number;
  iters: number[];
  firstSeconds: number; // first call incl. pipeline compilation
}

async function timeBox(
  be: WebGpuBackend,
  fn: () => void | Promise<void>,
  seconds: number,
): Promise<Timed> {
  let t0 = performance.now();
  await fn();
  await be.flush();
  const firstSeconds = (performance.now() - t0) / 1000;
  t0 = performance.now();
  await fn();
  await be.flush();
  const est = Math.max(1e-6, (performance.now() - t0) / 1000);
  const reps = Math.max(1, Math.min(5000, Math.round(seconds / 2 / est)));
  let best = Infinity;
  const iters: number[] = [];
  for (let round = 0; round < 2; round++) {
    t0 = performance.now();
    for (let r = 0; r < reps; r++) await fn();
    await be.flush();
    best = Math.min(best, (performance.now() - t0) / 1000 / reps);
    iters.push(reps);
  }
  return { secondsPerIter: best, iters, firstSeconds };
}

/** Max |c - c64| / (|a|·|b| row-col norm) over 64 spot entries of C = A·B (row-major, n×n). */
function spotCheck(a: Float32Array, b: Float32Array, c: Float32Array, n: number): number {
  let worst = 0;
  for (let k = 0; k < 64; k++) {
    const i = (k * 7919) % n, j = (k * 104729 + 13) % n;
    let dot = 0, scale = 0;
    for (let t = 0; t < n; t++) {
      dot += a[i * n + t] * b[t * n + j];
      scale += Math.abs(a[i * n + t] * b[t * n + j]);
    }
    worst = Math.max(worst, Math.abs(c[i * n + j] - dot) / Math.max(scale, 1e-30));
  }
  return worst;
}

type Operand = Parameters<WebGpuBackend["matmul"]>[0];

interface MicroRow extends Partial<Timed> {
  key: string;
  label: string;
  gflop: number;
  gflops?: number;
  relError?: number;
  error?: string;
}

async function partMicro(p: Profile): Promise<void> {
  const be = await createWebGpuBackend();
  const rows: MicroRow[] = [];
  const save = () =>
    writeJson("ours_micro.json", {
      adapter: be.adapterInfo,
      profile: args.profile,
      supportsF16: be.supportsF16,
      coop: be.coop,
      subgroups: { used: be.subgroups, note: be.subgroupNote },
      date: new Date().toISOString(),
      results: rows,
    });
  const record = async (row: MicroRow) => {
    if (row.secondsPerIter) row.gflops = row.gflop / row.secondsPerIter;
    rows.push(row);
    log(
      `${row.label}: ` +
        (row.error ? `FAILED ${row.error}` : `${row.gflops!.toFixed(1)} GFLOP/s ` +
          `(${(row.secondsPerIter! * 1e3).toFixed(3)} ms/iter, first call ` +
          `${row.firstSeconds!.toFixed(2)} s${
            row.relError !== undefined ? `, spot rel. error ${row.relError.toExponential(1)}` : ""
          })`),
    );
    await save();
  };
  const attempt = async (key: string, label: string, gflop: number, f: () => Promise<MicroRow>) => {
    if (elapsed() > budget) {
      await record({ key, label, gflop, error: "skipped: part budget spent" });
      return;
    }
    try {
      await record(await f());
    } catch (e) {
      await record({ key, label, gflop, error: (e as Error).message });
    }
  };
  log(
    `micro on ${be.adapterInfo.name} (fallback ${be.adapterInfo.isFallback}, f16 ${be.supportsF16})`,
  );

  for (const n of p.matmul) {
    const gflop = (2 * n ** 3) / 1e9;
    const mp = squareMatmulParams(n);
    const ha = uniformValues(n * n, 1), hb = uniformValues(n * n, 2);
    for (const half of be.supportsF16 ? [false, true] : [false]) {
      const key = `matmul${n}_${half ? "f16" : "f32"}`;
      const label = `matmul ${n}³ ${half ? "f16 operands, f32 accumulate" : "f32"}`;
      await attempt(key, label, gflop, async () => {
        const a32 = be.alloc(n * n), b32 = be.alloc(n * n), c = be.alloc(n * n);
        be.write(a32, ha);
        be.write(b32, hb);
        let a: Operand = a32, b: Operand = b32;
        if (half) {
          const a16 = be.allocF16(n * n), b16 = be.allocF16(n * n);
          be.castToF16(a32, a16, n * n);
          be.castToF16(b32, b16, n * n);
          a = a16;
          b = b16;
        }
        try {
          const t = await timeBox(be, () => be.matmul(a, b, c, mp), p.microSeconds);
          const relError = spotCheck(ha, hb, (await be.read(c)) as Float32Array, n);
          return { key, label, gflop, ...t, relError };
        } finally {
          for (const x of new Set([a, b, a32, b32, c])) be.free(x);
        }
      });
    }
  }

  {
    // The largest f32 matmul once more with the legacy kernel set (before / after, same run).
    const n = Math.max(...p.matmul);
    const key = `matmul${n}_f32_legacy`;
    const label = `matmul ${n}³ f32, legacy kernels`;
    await attempt(key, label, (2 * n ** 3) / 1e9, async () => {
      const be2 = await createWebGpuBackend({ kernels: "legacy" });
      try {
        const ha = uniformValues(n * n, 1), hb = uniformValues(n * n, 2);
        const a = be2.alloc(n * n), b = be2.alloc(n * n), c = be2.alloc(n * n);
        be2.write(a, ha);
        be2.write(b, hb);
        const mp = squareMatmulParams(n);
        const t = await timeBox(be2, () => be2.matmul(a, b, c, mp), p.microSeconds);
        const relError = spotCheck(ha, hb, (await be2.read(c)) as Float32Array, n);
        return { key, label, gflop: (2 * n ** 3) / 1e9, ...t, relError };
      } finally {
        be2.destroy();
      }
    });
  }

  const cv = p.conv;
  const conv: Conv2dParams = {
    ...cv,
    KH: 3,
    KW: 3,
    stride: 1,
    pad: 1,
    OH: cv.H,
    OW: cv.W,
  };
  const convFwd = (2 * cv.N * cv.O * cv.H * cv.W * cv.C * 9) / 1e9;
  const convLabel = `conv3x3 ${cv.C}->${cv.O} ${cv.H}x${cv.W} b${cv.N}`;
  for (const kernels of ["current", "legacy"] as const) {
    const cb = kernels === "current" ? be : await createWebGpuBackend({ kernels });
    const tag = kernels === "current" ? "" : "_legacy",
      note = kernels === "current" ? "" : ", legacy kernels";
    const xs = cv.N * cv.C * cv.H * cv.W, ws = cv.O * cv.C * 9, ys = cv.N * cv.O * cv.H * cv.W;
    const x = cb.alloc(xs), w = cb.alloc(ws), y = cb.alloc(ys), dy = cb.alloc(ys);
    const dx = cb.alloc(xs), dw = cb.alloc(ws);
    cb.write(x, uniformValues(xs, 3));
    cb.write(w, uniformValues(ws, 4));
    cb.write(dy, uniformValues(ys, 5));
    if (kernels === "current") {
      await attempt("conv_fwd", `${convLabel} fwd`, convFwd, async () => ({
        key: "conv_fwd",
        label: `${convLabel} fwd`,
        gflop: convFwd,
        ...(await timeBox(
          cb,
          () => cb.conv2d({ x, w, bias: null, y, geom: conv }),
          p.microSeconds,
        )),
      }));
    }
    await attempt(`conv_fwd_bwd${tag}`, `${convLabel} fwd+bwd${note}`, 3 * convFwd, async () => ({
      key: `conv_fwd_bwd${tag}`,
      label: `${convLabel} fwd+bwd${note}`,
      gflop: 3 * convFwd,
      ...(await timeBox(cb, () => {
        cb.conv2d({ x, w, bias: null, y, geom: conv });
        cb.conv2dBackwardData({ dy, w, dx, geom: conv });
        cb.conv2dBackwardFilter({ x, dy, dw, geom: conv, accumulate: false });
      }, p.microSeconds)),
    }));
    for (const t of [x, w, y, dy, dx, dw]) cb.free(t);
    if (cb !== be) cb.destroy();
  }

  const D = p.decoder;
  const decGflop = decoderGflop(D);
  const decLabel = `decoder H${D.H} A${D.heads} T${D.T} S${D.S} b${D.B} fwd+bwd`;
  await attempt("decoder_fwd_bwd", decLabel, decGflop, async () => {
    const layer = new TransformerDecoderLayer(be, D.H, D.heads, D.F, { dropout: 0.1 });
    const tgt = tensor(be, uniformValues(D.B * D.T * D.H, 6), [D.B, D.T, D.H]).persist(); // [B, T, H]
    const mem = tensor(be, uniformValues(D.B * D.S * D.H, 7), [D.B, D.S, D.H]).persist(); // [B, S, H]
    tgt.requiresGrad = true;
    mem.requiresGrad = true;
    try {
      const t = await timeBox(be, () => {
        layer.zeroGrad();
        for (const v of [tgt, mem]) {
          v.grad?.dispose();
          v.grad = null;
        }
        tidy(() => {
          const y = layer.forward(tgt, mem, { causal: true }); // [B, T, H]
          ops.sum(y).backward();
        });
      }, p.microSeconds);
      return { key: "decoder_fwd_bwd", label: decLabel, gflop: decGflop, ...t };
    } finally {
      layer.dispose();
      for (const v of [tgt, mem]) {
        v.grad?.dispose();
        v.dispose();
      }
    }
  });
  be.destroy();
}

/** Forward + backward GFLOP of one post-norm decoder layer (backward = 2× forward GEMMs). */
export function decoderGflop(
  D: { B: number; T: number; S: number; H: number; F: number },
): number {
  const { B, T, S, H, F } = D;
  const proj = 2 * B * T * H * H;
  const self = 4 * proj + 2 * 2 * B * T * T * H; // q, k, v, out + scores + weighted sum
  const cross = 2 * proj + 2 * 2 * B * S * H * H + 2 * 2 * B * T * S * H;
  const ff = 2 * 2 * B * T * H * F;
  return (3 * (self + cross + ff)) / 1e9;
}

// ---------------------------------------------------------------- main

/** Runs bench/gpu/device_check.sh (--local unless a hardware adapter is present). */
async function partAll(): Promise<number> {
  const probe = await probeWebGpu();
  const local = !probe.available || probe.isFallback === true;
  const script = new URL("./device_check.sh", import.meta.url).pathname;
  console.log(
    `bench/gpu: adapter ${probe.adapterName ?? probe.reason}: running ${script}` +
      (local ? " --local (tiny shapes)" : " (full shapes)"),
  );
  const child = new Deno.Command("bash", {
    args: [script, ...(local ? ["--local"] : [])],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  return (await child.status).code;
}

const profile = await readProfile(args.profile);
const env: PartEnv = { profileName: args.profile, budget, elapsed, log, writeJson };
let code = 0;
switch (args.part) {
  case "all":
    code = await partAll();
    break;
  case "adapter":
    code = await partAdapter();
    break;
  case "micro":
    await partMicro(profile);
    break;
  case "pretrain":
    await partPretrain(profile, env, args.cases?.split(",").map(Number));
    break;
  case "profile":
    await partProfile(profile, env);
    break;
  default:
    console.error(
      `bench/gpu: unknown --part "${args.part}" (all, adapter, micro, profile or pretrain)`,
    );
    code = 2;
}
Deno.exit(code);
