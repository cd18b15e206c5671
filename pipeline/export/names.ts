/**
 * Backbone parameter names for export. Our ResNet already uses torchvision's names (conv1, bn1,
 * layer1.0.conv1, layer1.0.downsample.0, …), so the torchvision map is the identity on backbone
 * keys; torchvision's classifier `fc.*` has no counterpart and is absent. The Detectron2 map
 * follows its ResNet: stem.conv1 with BN as `.norm`, layerN → res(N+1), downsample.0/1 →
 * shortcut / shortcut.norm, and no num_batches_tracked (Detectron2's BN does not keep one).
 */

/** Name schemes `export --names` accepts. */
export const NAME_SCHEMES = ["torchvision", "detectron2"] as const;
export type NameScheme = typeof NAME_SCHEMES[number];

const BN_FIELDS = /^(weight|bias|running_mean|running_var|num_batches_tracked)$/;

/** torchvision key → Detectron2 key, or null for keys Detectron2 has no slot for. */
export function torchvisionToDetectron2(key: string): string | null {
  if (key.endsWith(".num_batches_tracked")) return null;
  if (key === "conv1.weight") return "stem.conv1.weight";
  let m = key.match(/^bn1\.(\w+)$/);
  if (m && BN_FIELDS.test(m[1])) return `stem.conv1.norm.${m[1]}`;
  m = key.match(/^layer([1-4])\.(\d+)\.(.+)$/);
  if (!m) throw new Error(`no Detectron2 name for "${key}"`);
  const prefix = `res${Number(m[1]) + 1}.${m[2]}`;
  const rest = m[3];
  let r = rest.match(/^conv(\d)\.weight$/);
  if (r) return `${prefix}.conv${r[1]}.weight`;
  r = rest.match(/^bn(\d)\.(\w+)$/);
  if (r && BN_FIELDS.test(r[2])) return `${prefix}.conv${r[1]}.norm.${r[2]}`;
  if (rest === "downsample.0.weight") return `${prefix}.shortcut.weight`;
  r = rest.match(/^downsample\.1\.(\w+)$/);
  if (r && BN_FIELDS.test(r[1])) return `${prefix}.shortcut.norm.${r[1]}`;
  throw new Error(`no Detectron2 name for "${key}"`);
}

/** Renames a torchvision-named backbone key under `scheme` (null: dropped). */
export function renameKey(key: string, scheme: NameScheme): string | null {
  return scheme === "torchvision" ? key : torchvisionToDetectron2(key);
}
