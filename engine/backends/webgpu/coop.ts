/**
 * Tensor-core matmul for AMP: f16 × f16 → f32 products with wgpu's cooperative-matrix extension
 * (WGSL `enable wgpu_cooperative_matrix;`, `coop_mat16x16<f16, A>` …, `coopMultiplyAdd`), used
 * only where the adapter lists the `wgpu-cooperative-matrix` feature. WebGPU itself has no
 * tensor-core access; this extension maps to VK_KHR_cooperative_matrix on Vulkan.
 *
 * Which tile sizes and accumulator types a GPU supports differs, and the extension is young, so
 * nothing is assumed: when the backend is created, `probeCoop` compiles every variant (tile 16 or
 * 8, one or 2×2 tiles per workgroup, each transpose pair) inside validation error scopes, runs it
 * on a small product and compares with the host; only variants that compile and agree are used.
 * A workgroup is one subgroup (the adapter's subgroup size) and owns RT×RT output tiles; it loads
 * its A and B tiles straight from storage (coopLoad, or coopLoadT for transposed operands).
 */
import { assembleWgsl, type KernelSpec, ro, rw } from "./kernel.ts";
import { GEMM_COMMON_PARAMS } from "./wgsl_gemm.ts";
import { MATMUL_LAYOUT_PARAMS } from "./wgsl_linalg.ts";

/** The adapter feature (Deno's name for wgpu's EXPERIMENTAL_COOPERATIVE_MATRIX). */
export const COOP_FEATURE = "wgpu-cooperative-matrix";

/** One verified kernel family: tile size, tiles per workgroup side, and the transpose pairs. */
export interface CoopVariant {
  T: 8 | 16;
  RT: 1 | 2;
  /** "nn", "nt", "tn", "tt" (transA, transB) that compiled and matched the host. */
  trans: string[];
}

/** What the probe found: usable variants (largest first) and why others were dropped. */
export interface CoopSupport {
  workgroup: number;
  variants: CoopVariant[];
  notes: string[];
}

const memo = new Map<string, KernelSpec>();

/** C [M, N] f32 = op(A) · op(B), A and B f16; requires M, N multiples of RT·T, K of T. */
export function coopMatmulKernel(
  T: number,
  RT: number,
  transA: boolean,
  transB: boolean,
  workgroup: number,
): KernelSpec {
  const key = `coop_mm:${T}:${RT}:${transA ? "t" : "n"}${transB ? "t" : "n"}:${workgroup}`;
  let spec = memo.get(key);
  if (spec) return spec;
  const mat = (role: string, t: string) => `coop_mat${T}x${T}<${t}, ${role}>`;
  const loadA = (i: number) =>
    transA
      ? `coopLoadT<${mat("A", "f16")}>(&A[baseA + k * u.M + m0 + ${i * T}u], u.M)`
      : `coopLoad<${mat("A", "f16")}>(&A[baseA + (m0 + ${i * T}u) * u.K + k], u.K)`;
  const loadB = (j: number) =>
    transB
      ? `coopLoadT<${mat("B", "f16")}>(&B[baseB + (n0 + ${j * T}u) * u.K + k], u.K)`
      : `coopLoad<${mat("B", "f16")}>(&B[baseB + k * u.N + n0 + ${j * T}u], u.N)`;
  const idx = Array.from({ length: RT }, (_, i) => i);
  const body = `
@compute @workgroup_size(${workgroup})
fn main(@builtin(workgroup_id) wid: vec3<u32>) {
  let z = wid.z + u.zBase;
  let m0 = wid.y * ${RT * T}u;
  let n0 = wid.x * ${RT * T}u;
  let baseA = u.offA + z * u.strideA;
  let baseB = u.offB + z * u.strideB;
  ${idx.flatMap((i) => idx.map((j) => `var c${i}${j}: ${mat("C", "f32")};`)).join("\n  ")}
  for (var k = 0u; k < u.K; k = k + ${T}u) {
    ${idx.map((i) => `let a${i} = ${loadA(i)};`).join("\n    ")}
    ${idx.map((j) => `let b${j} = ${loadB(j)};`).join("\n    ")}
    ${
    idx.flatMap((i) => idx.map((j) => `c${i}${j} = coopMultiplyAdd(a${i}, b${j}, c${i}${j});`))
      .join("\n    ")
  }
  }
  let baseC = u.offC + z * u.strideC;
  ${
    idx.flatMap((i) =>
      idx.map((j) =>
        `coopStore(c${i}${j}, &C[baseC + (m0 + ${i * T}u) * u.N + n0 + ${j * T}u], u.N);`
      )
    ).join("\n  ")
  }
}`;
  spec = {
    key,
    params: [...GEMM_COMMON_PARAMS, ...MATMUL_LAYOUT_PARAMS],
    bindings: [ro("A", "f16"), ro("B", "f16"), rw("C")],
    body,
    enables: ["f16", "wgpu_cooperative_matrix"],
  };
  memo.set(key, spec);
  return spec;
}

/** Largest verified variant usable for this product, or null. */
export function pickCoop(
  s: CoopSupport | null,
  p: { M: number; N: number; K: number; transA: boolean; transB: boolean },
): CoopVariant | null {
  if (!s) return null;
  const tr = `${p.transA ? "t" : "n"}${p.transB ? "t" : "n"}`;
  return s.variants.find((v) =>
    v.trans.includes(tr) && p.K % v.T === 0 && p.M % (v.RT * v.T) === 0 &&
    p.N % (v.RT * v.T) === 0
  ) ?? null;
}

/** Host reference of op(A)·op(B) for the probe (f16-exact inputs). */
function hostProduct(
  a: Float32Array,
  b: Float32Array,
  M: number,
  N: number,
  K: number,
  tA: boolean,
  tB: boolean,
): Float32Array {
  const c = new Float32Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        s += (tA ? a[k * M + i] : a[i * K + k]) * (tB ? b[j * K + k] : b[k * N + j]);
      }
      c[i * N + j] = s;
    }
  }
  return c;
}

/** Values exactly representable in f16 (multiples of 1/8 in [-2, 2)), as f32 and f16 bits. */
function f16Data(n: number, seed: number): { f32: Float32Array; f16: Uint16Array } {
  const f32 = new Float32Array(n), f16 = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const q = ((i * 37 + seed * 11) % 32) - 16; // −16..15
    f32[i] = q / 8;
    // f16 bits of q/8: sign, exponent, mantissa of an integer multiple of 1/8
    const v = Math.abs(q) / 8;
    if (v === 0) f16[i] = 0;
    else {
      const e = Math.floor(Math.log2(v));
      const mant = Math.round((v / 2 ** e - 1) * 1024);
      f16[i] = (q < 0 ? 0x8000 : 0) | ((e + 15) << 10) | mant;
    }
  }
  return { f32, f16 };
}

/**
 * Compiles and checks every coop variant on `device` (which must have COOP_FEATURE and
 * shader-f16). Returns null when none works; `notes` says why each failed.
 */
export async function probeCoop(device: GPUDevice, workgroup: number): Promise<CoopSupport> {
  const out: CoopSupport = { workgroup, variants: [], notes: [] };
  for (const T of [16, 8] as const) {
    for (const RT of [2, 1] as const) {
      const v: CoopVariant = { T, RT, trans: [] };
      for (const tr of ["nn", "nt", "tn", "tt"]) {
        const why = await checkVariant(device, T, RT, tr[0] === "t", tr[1] === "t", workgroup);
        if (why) out.notes.push(`${T}x${T} ×${RT} ${tr}: ${why}`);
        else v.trans.push(tr);
      }
      if (v.trans.length) out.variants.push(v);
    }
  }
  return out;
}

async function checkVariant(
  device: GPUDevice,
  T: number,
  RT: number,
  tA: boolean,
  tB: boolean,
  workgroup: number,
): Promise<string | null> {
  const M = 2 * RT * T, N = 2 * RT * T, K = 3 * T;
  const spec = coopMatmulKernel(T, RT, tA, tB, workgroup);
  const bufs: GPUBuffer[] = [];
  try {
    device.pushErrorScope("validation");
    const module = device.createShaderModule({ code: assembleWgsl(spec), label: spec.key });
    const pipeline = device.createComputePipeline({
      layout: "auto",
      compute: { module, entryPoint: "main" },
    });
    const err = await device.popErrorScope();
    if (err) return `does not compile: ${err.message.split("\n")[0]}`;
    const a = f16Data(M * K, 1), b = f16Data(K * N, 2);
    const mk = (data: ArrayBufferView, usage: number) => {
      const size = Math.ceil(data.byteLength / 16) * 16;
      const buf = device.createBuffer({ size, usage: usage | GPUBufferUsage.COPY_DST });
      device.queue.writeBuffer(buf, 0, data as BufferSource);
      bufs.push(buf);
      return buf;
    };
    const params = new Uint32Array(16);
    params.set([M, N, K, K, 0, 0, 0, 0, 0, 0, 0]);
    const uni = mk(params, GPUBufferUsage.UNIFORM);
    const A = mk(a.f16, GPUBufferUsage.STORAGE), B = mk(b.f16, GPUBufferUsage.STORAGE);
    const C = mk(new Float32Array(M * N), GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    const read = device.createBuffer({
      size: M * N * 4,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    bufs.push(read);
    device.pushErrorScope("validation");
    const group = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [uni, A, B, C].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(N / (RT * T), M / (RT * T), 1);
    pass.end();
    enc.copyBufferToBuffer(C, 0, read, 0, M * N * 4);
    device.queue.submit([enc.finish()]);
    const err2 = await device.popErrorScope();
    if (err2) return `does not run: ${err2.message.split("\n")[0]}`;
    await read.mapAsync(GPUMapMode.READ);
    const got = new Float32Array(read.getMappedRange().slice(0));
    read.unmap();
    const want = hostProduct(a.f32, b.f32, M, N, K, tA, tB);
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
    // inputs and partial sums are exact in f16×f16→f32: any difference is a wrong result
    return worst <= 1e-3 ? null : `wrong results (max error ${worst})`;
  } catch (e) {
    return `failed: ${(e as Error).message.split("\n")[0]}`;
  } finally {
    for (const b of bufs) b.destroy();
  }
}

const probed = new Map<string, Promise<CoopSupport>>();

/**
 * probeCoop on a device of its own (a fresh adapter), once per adapter name and process: a
 * variant that misbehaves can at worst lose that throwaway device, never the backend's.
 */
export function probeCoopOnce(
  gpu: GPU,
  adapterName: string,
  opts: { powerPreference?: GPUPowerPreference; workgroup: number },
): Promise<CoopSupport> {
  let p = probed.get(adapterName);
  if (!p) {
    p = (async () => {
      const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference });
      if (!adapter) return { workgroup: opts.workgroup, variants: [], notes: ["no adapter"] };
      const device = await adapter.requestDevice({
        requiredFeatures: ["shader-f16", COOP_FEATURE as GPUFeatureName],
      });
      try {
        return await probeCoop(device, opts.workgroup);
      } finally {
        device.destroy();
      }
    })();
    probed.set(adapterName, p);
  }
  return p;
}
