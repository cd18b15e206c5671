/**
 * Export of a pretrained visual backbone as a standalone safetensors file with torchvision (or
 * Detectron2) ResNet key names, checked first by loading it strictly into our own backbone of
 * the same architecture (so a renamed or missing tensor fails here, not in the user's script).
 */
import { join, resolve } from "node:path";
import type { Backend } from "../../engine/backend.ts";
import type { HostTensor } from "../../engine/nn/module.ts";
import { encodeSafetensors, loadSafetensors, writeFileAtomic } from "../../engine/safetensors.ts";
import { createBackbone, parseBackboneName } from "../model/backbones.ts";
import { type NameScheme, renameKey } from "./names.ts";

/** A backbone's weights (torchvision names) and its architecture name. */
export interface BackboneWeights {
  arch: string;
  tensors: Map<string, HostTensor>;
  /** Per-channel input normalisation it was trained with (RGB, 0-1 scale), when known. */
  normalization?: { mean: number[]; std: number[] };
}

/** The transform mean/std recorded in a pretrain artifact's manifest, if any. */
function artifactNormalization(dir: string): BackboneWeights["normalization"] {
  try {
    const m = JSON.parse(Deno.readTextFileSync(join(dir, "manifest.json")));
    const t = m?.config?.transform;
    if (Array.isArray(t?.mean) && Array.isArray(t?.std)) return { mean: t.mean, std: t.std };
  } catch { /* not a cache artifact */ }
  return undefined;
}

/**
 * Reads the backbone of a pretrain artifact folder (visual.safetensors + model.json, and the
 * transform's mean/std from its manifest), or of a plain .safetensors file (keys with or without
 * the `visual.` prefix; `arch` from its metadata or the argument).
 */
export async function readBackboneWeights(path: string, arch?: string): Promise<BackboneWeights> {
  const p = resolve(path);
  if (Deno.statSync(p).isDirectory) {
    const info = JSON.parse(await Deno.readTextFile(join(p, "model.json")));
    const f = await loadSafetensors(join(p, "visual.safetensors"));
    return {
      arch: arch || info.visual,
      tensors: f.tensors,
      normalization: artifactNormalization(p),
    };
  }
  const f = await loadSafetensors(p);
  const tensors = new Map<string, HostTensor>();
  const hasPrefix = [...f.tensors.keys()].some((k) => k.startsWith("visual."));
  for (const [k, t] of f.tensors) {
    if (!hasPrefix) tensors.set(k, t);
    else if (k.startsWith("visual.")) tensors.set(k.slice("visual.".length), t);
  }
  const a = arch || f.metadata.arch;
  if (!a) throw new Error(`${p}: no "arch" in its metadata; name the architecture`);
  return { arch: a, tensors };
}

/**
 * Renames and checks backbone weights for export. Throws when the weights do not fit the
 * architecture (missing / unexpected keys, wrong shapes).
 */
export function prepareExport(
  backend: Backend,
  w: BackboneWeights,
  scheme: NameScheme,
): { tensors: Map<string, HostTensor>; metadata: Record<string, string> } {
  parseBackboneName(w.arch); // throws on an unknown name
  const net = createBackbone(backend, w.arch);
  try {
    net.loadStateDict(w.tensors, true);
  } finally {
    net.dispose();
  }
  const out = new Map<string, HostTensor>();
  for (const [k, t] of w.tensors) {
    const name = renameKey(k, scheme);
    if (name !== null) out.set(name, t);
  }
  const metadata: Record<string, string> = {
    format: "pt",
    arch: w.arch,
    names: scheme,
    note: scheme === "torchvision"
      ? `torchvision.models.${w.arch} keys without the classifier (fc.weight, fc.bias absent: ` +
        "load with strict=False and ignore missing fc.*)"
      : "Detectron2 ResNet keys (stem.*, res2..res5.*), BN as .norm, no num_batches_tracked",
  };
  if (w.normalization) {
    // The input normalisation (RGB, 0-1 scale), for configs of downstream tools.
    metadata.mean = JSON.stringify(w.normalization.mean);
    metadata.std = JSON.stringify(w.normalization.std);
  }
  return { tensors: out, metadata };
}

/** Writes the export atomically. */
export async function writeExport(
  path: string,
  e: { tensors: Map<string, HostTensor>; metadata: Record<string, string> },
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(e.tensors, e.metadata));
}
