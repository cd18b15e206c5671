/**
 * Optimizer state <-> safetensors: momentum buffers ("momentum.<param>"), LookAhead slow weights
 * ("slow.<param>") and scalars (step, counter, group hyper-parameters) in the metadata, so a
 * checkpoint resumes exactly.
 */
import { decodeSafetensors, encodeSafetensors } from "../safetensors.ts";
import type { HostTensor } from "../nn/module.ts";
import { LookAhead } from "./lookahead.ts";
import type { SGD } from "./sgd.ts";

/** Serializes an SGD or LookAhead(SGD) optimizer's full state. */
export async function encodeOptimizerState(opt: SGD | LookAhead): Promise<Uint8Array> {
  const tensors = new Map<string, HostTensor>();
  const meta: Record<string, string> = {};
  const sgd = opt instanceof LookAhead ? opt.inner : opt;
  const s = sgd.stateDict();
  for (const [name, t] of s.momentum) {
    tensors.set(`momentum.${name}`, { shape: [...t.shape], data: await t.data() });
  }
  meta.sgd = JSON.stringify({ step: s.step, groups: s.groups });
  if (opt instanceof LookAhead) {
    const la = opt.stateDict();
    for (const [name, t] of la.slow) {
      tensors.set(`slow.${name}`, { shape: [...t.shape], data: await t.data() });
    }
    meta.lookahead = JSON.stringify({ counter: la.counter, alpha: la.alpha, k: la.k });
  }
  return encodeSafetensors(tensors, meta);
}

/** Restores state written by `encodeOptimizerState` into an optimizer of the same structure. */
export function decodeOptimizerState(opt: SGD | LookAhead, bytes: Uint8Array, source = "<state>") {
  const f = decodeSafetensors(bytes, source);
  const pick = (prefix: string) => {
    const m = new Map<string, Float32Array>();
    for (const [k, v] of f.tensors) {
      if (k.startsWith(prefix)) m.set(k.slice(prefix.length), v.data as Float32Array);
    }
    return m;
  };
  if (!f.metadata.sgd) throw new Error(`${source}: no optimizer state (metadata "sgd" missing)`);
  const inner = { ...JSON.parse(f.metadata.sgd), momentum: pick("momentum.") };
  if (opt instanceof LookAhead) {
    if (!f.metadata.lookahead) throw new Error(`${source}: no LookAhead state`);
    const la = JSON.parse(f.metadata.lookahead);
    if (la.k !== opt.k || la.alpha !== opt.alpha) {
      throw new Error(`${source}: LookAhead(k ${la.k}, alpha ${la.alpha}) differs from optimizer`);
    }
    opt.loadStateDict({ counter: la.counter, slow: pick("slow."), inner });
  } else {
    opt.loadStateDict(inner);
  }
}
