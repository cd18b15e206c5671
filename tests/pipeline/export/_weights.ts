/**
 * Shared by the export tests: deterministic values and backbone weights with non-trivial BN
 * parameters and running statistics.
 */
import type { Backend } from "../../../engine/backend.ts";
import { createBackend } from "../../../engine/device.ts";
import type { HostTensor } from "../../../engine/nn/module.ts";
import { createBackbone } from "../../../pipeline/model/backbones.ts";

/** Deterministic uniform values in [lo, hi). */
export function uniform(n: number, seed: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + (hi - lo) * (s / 2 ** 32);
  }
  return out;
}

let shared: Backend | null = null;
/** The wasm backend the export tests share. */
export async function backend(): Promise<Backend> {
  return shared ??= await createBackend("wasm");
}

/** A backbone state dict with non-trivial BN parameters and running statistics. */
export async function perturbedWeights(arch: string): Promise<Map<string, HostTensor>> {
  const be = await backend();
  const net = createBackbone(be, arch);
  const dict = await net.stateDictHost();
  net.dispose();
  let seed = 1;
  for (const [k, t] of dict) {
    const n = t.data.length;
    if (k.endsWith(".weight") && t.shape.length === 1) t.data = uniform(n, seed++, 0.5, 1.5);
    else if (k.endsWith(".bias")) t.data = uniform(n, seed++, -0.2, 0.2);
    else if (k.endsWith("running_mean")) t.data = uniform(n, seed++, -0.1, 0.1);
    else if (k.endsWith("running_var")) t.data = uniform(n, seed++, 0.5, 2);
  }
  return dict;
}
