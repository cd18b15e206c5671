/** `virtex coco-to-voc`: turn a COCO-layout folder into a VOC2007-style 20-class folder. */
import { convertCocoToVoc, DEFAULT_COCO_VOC_SPLITS } from "../pipeline/data/coco_to_voc.ts";
import { out, parseFlags, UsageError } from "./common.ts";

/** The `coco-to-voc --help` text. */
export const COCO_TO_VOC_HELP = `usage: ./virtex coco-to-voc --coco DIR --out DIR [options]

Builds a PASCAL VOC2007-style classification folder (JPEGImages/, ImageSets/Main/<class>_<split>.txt)
with the 20 VOC classes from a COCO folder (<split>/ images, annotations/instances_<split>.json),
mapping COCO names to VOC ones (airplane→aeroplane, motorcycle→motorbike, couch→sofa, …).

options:
  --coco DIR            COCO root (e.g. ../shared/data/coco-tiny)
  --out DIR             output folder (written atomically; must not exist unless --force)
  --split COCO=VOC      split mapping, repeatable (default: train2017=trainval val2017=test)
  --copy                copy images instead of symlinking them
  --only-voc-images     keep only images holding at least one VOC object
  --force               replace an existing output folder
  --json                print a one-line JSON summary`;

/** Runs the command; returns the exit code. */
export async function cocoToVocCommand(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    coco: { type: "string" },
    out: { type: "string" },
    split: { type: "string", multiple: true },
    copy: { type: "boolean" },
    "only-voc-images": { type: "boolean" },
    force: { type: "boolean" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, "coco-to-voc");
  if (values.help) {
    out(COCO_TO_VOC_HELP);
    return 0;
  }
  if (!values.coco || !values.out) {
    throw new UsageError("coco-to-voc: --coco and --out are required");
  }
  const splits = values.split?.length
    ? values.split.map((s) => {
      const [coco, voc] = s.split("=");
      if (!coco || !voc) throw new UsageError(`coco-to-voc: --split "${s}" is not COCO=VOC`);
      return { coco, voc };
    })
    : DEFAULT_COCO_VOC_SPLITS;
  const r = await convertCocoToVoc({
    cocoRoot: values.coco,
    outDir: values.out,
    splits,
    copy: values.copy,
    onlyWithVocObjects: values["only-voc-images"],
    force: values.force,
  });
  if (values.json) {
    out(JSON.stringify({ command: "coco-to-voc", ...r }));
  } else {
    for (const [split, n] of Object.entries(r.images)) {
      const pos = Object.entries(r.positives[split]).filter(([, c]) => c > 0)
        .map(([k, c]) => `${k} ${c}`).join(", ");
      out(`${split}: ${n} images; positives: ${pos || "none"}`);
    }
    out(`wrote ${r.outDir}`);
  }
  return 0;
}
