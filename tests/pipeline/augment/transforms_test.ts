import { AugmentKernel } from "../../../kernels/augment.ts";
import {
  applyEval,
  applyTrain,
  evalGeometry,
  roundHalfEven,
  sampleCrop,
  sampleKey,
  sampleTrainParams,
  transformSchema,
} from "../../../pipeline/augment/transforms.ts";
import type { RgbImage } from "../../../pipeline/data/types.ts";
import { refColor, refResample } from "../../kernels/augment_reference.ts";
import { assert, assertEquals, assertThrows } from "./_assert.ts";

const cfg = transformSchema.parse({});
const kernel = await AugmentKernel.load();

function image(w: number, h: number, seed: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  return { width: w, height: h, data };
}

Deno.test("transforms: config defaults are the paper's; bad keys are errors", () => {
  assertEquals(cfg.size, 224);
  assertEquals(cfg.scale, [0.2, 1]);
  assertEquals(cfg.jitter, { p: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 });
  assertEquals(cfg.evalResize, 256);
  assertThrows(() => transformSchema.parse({ sise: 3 }));
  assertThrows(() => transformSchema.parse({ size: 300 })); // evalResize 256 < size
});

Deno.test("transforms: roundHalfEven is Python's round", () => {
  assertEquals([0.5, 1.5, 2.5, -0.5, 2.4, 2.6, 3].map(roundHalfEven), [0, 2, 2, -0, 2, 3, 3]);
});

Deno.test("transforms: random resized crop stays inside with the right scale and ratio", () => {
  let areaSum = 0;
  for (let i = 0; i < 2000; i++) {
    const p = sampleTrainParams(sampleKey(5, 0, i), 300, 200, cfg);
    const b = p.box;
    assert(b.x >= 0 && b.y >= 0 && b.x + b.w <= 300 && b.y + b.h <= 200, JSON.stringify(b));
    const share = (b.w * b.h) / (300 * 200);
    assert(share > 0.18 && share <= 1.0, `area share ${share}`);
    const r = b.w / b.h;
    assert(r > 0.7 && r < 1.4, `ratio ${r}`);
    areaSum += share;
  }
  // Same algorithm driven by an independent uniform source: the means agree (RNG is uniform).
  let s = 12345, refSum = 0;
  const lcg = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  for (let i = 0; i < 20000; i++) {
    const b = sampleCrop(lcg, 300, 200, [0.2, 1], [3 / 4, 4 / 3]);
    refSum += (b.w * b.h) / (300 * 200);
  }
  const mean = areaSum / 2000, ref = refSum / 20000;
  assert(Math.abs(mean - ref) < 0.02, `mean area share ${mean}, independent RNG ${ref}`);
});

Deno.test("transforms: crop falls back to a centre crop after 10 failed attempts", () => {
  // Scale 1 with ratio 4/3 never fits a square image: the whole image.
  assertEquals(sampleCrop(() => 0.999, 100, 100, [0.2, 1], [3 / 4, 4 / 3]), {
    x: 0,
    y: 0,
    w: 100,
    h: 100,
  });
  // A very wide image: height kept, width = round(10 * 4/3) = 13, centred.
  assertEquals(sampleCrop(() => 0.999, 1000, 10, [0.9, 1], [3 / 4, 4 / 3]), {
    x: 493,
    y: 0,
    w: 13,
    h: 10,
  });
  // A very tall one: width kept, height = round(10 / (3/4)) = 13.
  assertEquals(sampleCrop(() => 0.999, 10, 1000, [0.9, 1], [3 / 4, 4 / 3]), {
    x: 0,
    y: 493,
    w: 10,
    h: 13,
  });
});

Deno.test("transforms: flip and jitter rates, factor ranges, op order, determinism", () => {
  let flips = 0, jit = 0;
  const firstOp = [0, 0, 0, 0];
  for (let i = 0; i < 4000; i++) {
    const p = sampleTrainParams(sampleKey(9, 2, i), 256, 256, cfg);
    assertEquals(p, sampleTrainParams(sampleKey(9, 2, i), 256, 256, cfg));
    if (p.flip) flips++;
    if (p.jitter) {
      jit++;
      assertEquals([...p.jitter.order].sort(), [0, 1, 2, 3]);
      firstOp[p.jitter.order[0]]++;
      const [b, c, s, h] = p.jitter.factors;
      assert(b >= 0.6 && b <= 1.4 && c >= 0.6 && c <= 1.4 && s >= 0.6 && s <= 1.4, "factors");
      assert(h >= -0.1 && h <= 0.1, "hue");
    }
  }
  assert(Math.abs(flips / 4000 - 0.5) < 0.04, `flip rate ${flips / 4000}`);
  assert(Math.abs(jit / 4000 - 0.8) < 0.04, `jitter rate ${jit / 4000}`);
  for (const n of firstOp) assert(Math.abs(n / jit - 0.25) < 0.05, `op order ${firstOp}`);
  // Keys differ across seed, epoch and index.
  const keys = new Set([
    sampleKey(1, 0, 0),
    sampleKey(2, 0, 0),
    sampleKey(1, 1, 0),
    sampleKey(1, 0, 1),
  ]);
  assertEquals(keys.size, 4);
});

function reference(img: RgbImage, p: ReturnType<typeof sampleTrainParams>, S: number) {
  let x = refResample(img, p.box, S, S, 0, 0, S, S, p.flip);
  const names = ["brightness", "contrast", "saturation", "hue"] as const;
  for (const op of p.jitter?.order ?? []) x = refColor(x, S * S, names[op], p.jitter!.factors[op]);
  return x.map((v, i) =>
    (v - cfg.mean[Math.floor(i / (S * S))]) / cfg.std[Math.floor(i / (S * S))]
  );
}

Deno.test("transforms: train transform equals the composed reference", () => {
  const small = transformSchema.parse({ size: 24, evalResize: 28 });
  const img = image(41, 33, 3);
  let jittered = 0;
  for (let i = 0; i < 12; i++) {
    const p = sampleTrainParams(sampleKey(1, 0, i), img.width, img.height, small);
    if (p.jitter) jittered++;
    const out = new Float32Array(3 * 24 * 24 + 5);
    applyTrain(kernel, img, p, small, out, 5);
    const want = reference(img, p, 24);
    let d = 0;
    for (let k = 0; k < want.length; k++) d = Math.max(d, Math.abs(out[5 + k] - want[k]));
    assert(d < 1e-4, `sample ${i}: max diff ${d}`);
  }
  assert(jittered > 0, "some samples jittered");
});

Deno.test("transforms: flip mirrors the image", () => {
  const small = transformSchema.parse({ size: 16, evalResize: 16, jitter: { p: 0 } });
  const img = image(30, 20, 9);
  const p = sampleTrainParams(sampleKey(1, 0, 0), 30, 20, small);
  const a = new Float32Array(3 * 256), b = new Float32Array(3 * 256);
  applyTrain(kernel, img, { ...p, flip: false }, small, a);
  applyTrain(kernel, img, { ...p, flip: true }, small, b);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < 16; y++) {
      for (let x = 0; x < 16; x++) {
        assertEquals(a[c * 256 + y * 16 + x], b[c * 256 + y * 16 + 15 - x]);
      }
    }
  }
});

Deno.test("transforms: eval = resize short side + centre crop + normalize", () => {
  const small = transformSchema.parse({ size: 16, evalResize: 20 });
  const img = image(37, 25, 4);
  const g = evalGeometry(37, 25, 20, 16);
  assertEquals(g, { fullW: 29, fullH: 20, offX: 6, offY: 2 }); // int(20*37/25) = 29; round(6.5) = 6
  const out = new Float32Array(3 * 256);
  applyEval(kernel, img, small, out);
  const x = refResample(img, { x: 0, y: 0, w: 37, h: 25 }, 29, 20, 6, 2, 16, 16, false);
  const want = x.map((v, i) =>
    (v - small.mean[Math.floor(i / 256)]) / small.std[Math.floor(i / 256)]
  );
  let d = 0;
  for (let k = 0; k < want.length; k++) d = Math.max(d, Math.abs(out[k] - want[k]));
  assert(d < 1e-4, `max diff ${d}`);
});
