/** `virtex export`: a pretrained backbone as safetensors with torchvision or Detectron2 names. */
import { createBackend } from "../engine/device.ts";
import { Cache } from "../pipeline/cache/store.ts";
import { prepareExport, readBackboneWeights, writeExport } from "../pipeline/export/export.ts";
import { NAME_SCHEMES, type NameScheme } from "../pipeline/export/names.ts";
import { out, parseFlags, UsageError } from "./common.ts";

/** The `export --help` text. */
export const EXPORT_HELP = `usage: ./virtex export --model REF --out FILE.safetensors [options]

Writes the visual backbone of a pretrain artifact as a standalone safetensors file.
With --names torchvision (default) the keys are torchvision.models.<arch>'s (conv1.weight,
layer1.0.bn1.running_mean, …; fc.* absent, so load with strict=False); with --names detectron2
they follow Detectron2's ResNet (stem.conv1.norm.*, res2.0.conv1.weight, res3.0.shortcut.*).
The metadata holds the architecture and, for a pretrain artifact, the input mean/std (RGB, 0-1).
tools/check_export.py loads a torchvision export into torchvision and prints pooled features;
tools/detectron2_handoff.py turns a detectron2 export into a Detectron2 checkpoint (.pkl) and the
paper's Faster R-CNN C4 (VOC) and Mask R-CNN FPN (COCO) configs.

options:
  --model REF           pretrain artifact (key, key prefix or ref), a folder holding
                        visual.safetensors + model.json, or a .safetensors file
  --out FILE            output file (written atomically)
  --names SCHEME        torchvision | detectron2 (default torchvision)
  --arch NAME           architecture when the input does not say (e.g. resnet50)
  --json                print a one-line JSON summary`;

/** Resolves `--model`: an existing path, else a cache reference. */
export function resolveModelPath(ref: string): string {
  try {
    Deno.statSync(ref);
    return ref;
  } catch {
    return new Cache().resolve(ref).dir;
  }
}

/** Runs the command; returns the exit code. */
export async function exportCommand(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    model: { type: "string" },
    out: { type: "string" },
    names: { type: "string" },
    arch: { type: "string" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, "export");
  if (values.help) {
    out(EXPORT_HELP);
    return 0;
  }
  if (!values.model || !values.out) throw new UsageError("export: --model and --out are required");
  const names = (values.names ?? "torchvision") as NameScheme;
  if (!NAME_SCHEMES.includes(names)) {
    throw new UsageError(`export: --names must be one of ${NAME_SCHEMES.join(", ")}`);
  }
  const w = await readBackboneWeights(resolveModelPath(values.model), values.arch);
  const backend = await createBackend("ref"); // only loads and checks shapes
  const e = prepareExport(backend, w, names);
  await writeExport(values.out, e);
  const summary = {
    command: "export",
    out: values.out,
    arch: w.arch,
    names,
    tensors: e.tensors.size,
  };
  out(
    values.json
      ? JSON.stringify(summary)
      : `wrote ${values.out}: ${w.arch}, ${e.tensors.size} tensors (${names} names)`,
  );
  return 0;
}
