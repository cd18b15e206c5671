/**
 * bench/augment: training augmentation throughput (images/s) of ours vs torchvision, same run.
 * Ops: RandomResizedCrop(224, scale 0.2–1) + horizontal flip + ColorJitter(0.4, 0.4, 0.4, 0.1)
 * with p 0.8 + ImageNet normalization, from decoded uint8 images (short side 256).
 *
 *   deno run -A bench/augment/main.ts [--seconds 5] [--images 64] [--size 224] [--threads 1,2]
 *
 * Ours runs through the real loader (shard file reads included): 1 thread = in-process,
 * N threads = N Workers. torchvision runs in Debian's python3 with torch.set_num_threads(N),
 * on uint8 tensors, float tensors and PIL images; the ratio is against its fastest variant.
 * Each side is measured `rounds` times, alternating, and its best rate is kept.
 */
import { parseArgs } from "node:util";
import { AugmentLoader } from "../../pipeline/augment/loader.ts";
import { ShardWriter } from "../../pipeline/augment/shards.ts";
import { transformSchema } from "../../pipeline/augment/transforms.ts";
import type { RgbImage } from "../../pipeline/data/types.ts";

const PY = "/usr/bin/python3";
const here = new URL(".", import.meta.url).pathname;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "2" },
    images: { type: "string", default: "64" },
    size: { type: "string", default: "224" },
    threads: { type: "string", default: "1,2" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(
    "usage: deno run -A bench/augment/main.ts [--seconds S] [--images N] [--size 224] [--threads 1,2]",
  );
  Deno.exit(0);
}
const rounds = Math.max(1, Number(values.rounds));
const seconds = Number(values.seconds), count = Number(values.images), size = Number(values.size);
const threads = values.threads.split(",").map(Number);

async function python(args: string[]): Promise<{ ok: boolean; out: string; err: string }> {
  try {
    const r = await new Deno.Command(PY, { args, stdout: "piped", stderr: "piped" }).output();
    const dec = new TextDecoder();
    return { ok: r.success, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
  } catch (e) {
    return { ok: false, out: "", err: (e as Error).message };
  }
}

/** Reads the raw image file written by torchvision_ref.py prepare. */
async function readRaw(path: string): Promise<{ source: string; images: RgbImage[] }> {
  const buf = await Deno.readFile(path);
  const nl = buf.indexOf(10);
  const header = JSON.parse(new TextDecoder().decode(buf.subarray(0, nl)));
  let off = nl + 1;
  const images = header.images.map((im: { width: number; height: number }) => {
    const n = im.width * im.height * 3;
    const data = buf.slice(off, off + n);
    off += n;
    return { width: im.width, height: im.height, data };
  });
  return { source: header.source, images };
}

/** Synthetic images when python is unavailable: short side 256, assorted widths. */
function synthetic(n: number): RgbImage[] {
  let s = 1;
  return Array.from({ length: n }, (_, i) => {
    const w = 256 + (i * 37) % 128, h = 256;
    const data = new Uint8Array(w * h * 3);
    for (let k = 0; k < data.length; k++) {
      data[k] = (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24;
    }
    return { width: w, height: h, data };
  });
}

const work = await Deno.makeTempDir({ prefix: "virtex-bench-augment-" });
try {
  const hasTorch = (await python(["-c", "import torchvision"])).ok;
  let source = "synthetic", images: RgbImage[];
  const raw = `${work}/images.bin`;
  if (hasTorch) {
    const r = await python([`${here}torchvision_ref.py`, "prepare", raw, String(count), "256"]);
    if (!r.ok) throw new Error(`torchvision_ref.py prepare failed:\n${r.err}`);
    ({ source, images } = await readRaw(raw));
  } else {
    images = synthetic(count);
  }
  const shards = `${work}/shards`;
  const writer = new ShardWriter(shards, 256);
  for (const [i, im] of images.entries()) await writer.add(`img${i}`, im);
  await writer.finish();
  const cfg = transformSchema.parse({ size, evalResize: Math.max(size, 256) });

  /** Images/s of the loader with `workers` (0 = this thread), batch 32, for `seconds`. */
  const ours = async (workers: number): Promise<number> => {
    const loader = await AugmentLoader.open({
      dir: shards,
      batchSize: 32,
      seed: 1,
      mode: "train",
      transform: cfg,
      workers,
      prefetch: 2,
      dropLast: false,
    });
    try {
      for await (const _ of loader.epoch(1000)) break; // warm-up (tier-up, file cache)
      let n = 0, epoch = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < seconds * 1000) {
        for await (const b of loader.epoch(epoch++)) {
          n += b.indices.length;
          if (performance.now() - t0 >= seconds * 1000) break;
        }
      }
      return n / ((performance.now() - t0) / 1000);
    } finally {
      loader.close();
    }
  };

  console.log(
    `augment bench: ${images.length} ${source} images (short side 256) → ${size}×${size}, ` +
      `${seconds} s per measurement, best of ${rounds} alternating rounds, ` +
      `${navigator.hardwareConcurrency} cores`,
  );
  const rows: Record<string, unknown>[] = [];
  for (const t of threads) {
    // Alternate ours and torchvision `rounds` times; keep each side's best (the machine is shared).
    let ourRate = 0;
    let ref: Record<string, number> | null = null;
    for (let round = 0; round < rounds; round++) {
      ourRate = Math.max(ourRate, await ours(t === 1 ? 0 : t));
      if (!hasTorch) continue;
      const r = await python([
        `${here}torchvision_ref.py`,
        "bench",
        raw,
        String(t),
        String(seconds),
        String(size),
      ]);
      if (!r.ok) throw new Error(`torchvision_ref.py bench failed:\n${r.err}`);
      const got: Record<string, number> = JSON.parse(r.out.trim().split("\n").pop()!);
      if (!ref) ref = got;
      else for (const k of ["tensorU8", "tensorF32", "pil"]) ref[k] = Math.max(ref[k], got[k]);
    }
    const best = ref ? Math.max(ref.tensorU8, ref.tensorF32, ref.pil) : NaN;
    const row = {
      threads: t,
      ours: ourRate,
      torchvisionTensorU8: ref?.tensorU8 ?? null,
      torchvisionTensorF32: ref?.tensorF32 ?? null,
      torchvisionPil: ref?.pil ?? null,
      ratioVsFastestTorchvision: ref ? ourRate / best : null,
    };
    rows.push(row);
    const f = (v: number | null | undefined) => (v == null ? "n/a" : v.toFixed(1));
    console.log(
      `threads ${t}: ours ${f(ourRate)} img/s | torchvision uint8-tensor ${f(ref?.tensorU8)}, ` +
        `float-tensor ${f(ref?.tensorF32)}, PIL ${f(ref?.pil)} img/s | ratio vs fastest ` +
        (ref ? `${(ourRate / best).toFixed(2)}×` : "n/a (python3-torchvision missing)"),
    );
  }
  await Deno.mkdir("bench/out", { recursive: true });
  const result = { bench: "augment", source, images: images.length, size, seconds, rounds, rows };
  await Deno.writeTextFile("bench/out/augment.json", JSON.stringify(result, null, 2) + "\n");
  console.log("wrote bench/out/augment.json");
} finally {
  await Deno.remove(work, { recursive: true });
}
