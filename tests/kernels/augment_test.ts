import { assert, assertEquals, assertThrows } from "../pipeline/augment/_assert.ts";
import { AugmentKernel } from "../../kernels/augment.ts";
import { evalGeometry } from "../../pipeline/augment/transforms.ts";
import type { RgbImage } from "../../pipeline/data/types.ts";
import { refColor, refResample } from "./augment_reference.ts";

type Op = "brightness" | "contrast" | "saturation" | "hue";
interface Fixture {
  image: RgbImage & { data: number[] };
  crops: {
    box: { x: number; y: number; w: number; h: number };
    outW: number;
    outH: number;
    flip: boolean;
    expected: number[];
  }[];
  evals: { resize: number; crop: number; expected: number[] }[];
  jitterImage: { width: number; height: number; data: number[] };
  jitter: { op: Op; factor: number; expected: number[] }[];
  resize_u8: {
    width: number;
    height: number;
    data: number[];
    outW: number;
    outH: number;
    expected: number[];
  }[];
}

const fixture: Fixture = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/augment_torchvision.json", import.meta.url)),
);
const kernel = await AugmentKernel.load();

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assertEquals(a.length, b.length, "length");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Small deterministic PRNG for test inputs. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function randomImage(w: number, h: number, r: () => number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(r() * 256);
  return { width: w, height: h, data };
}

const fixtureImage: RgbImage = {
  width: fixture.image.width,
  height: fixture.image.height,
  data: Uint8Array.from(fixture.image.data),
};

Deno.test("augment kernel: resample matches the TS reference on random boxes", () => {
  const r = rng(7);
  for (let t = 0; t < 40; t++) {
    const img = randomImage(5 + Math.floor(r() * 60), 5 + Math.floor(r() * 60), r);
    const w = 1 + Math.floor(r() * img.width), h = 1 + Math.floor(r() * img.height);
    const box = {
      x: Math.floor(r() * (img.width - w + 1)),
      y: Math.floor(r() * (img.height - h + 1)),
      w,
      h,
    };
    const outW = 1 + Math.floor(r() * 40), outH = 1 + Math.floor(r() * 40);
    const fullW = outW + Math.floor(r() * 5), fullH = outH + Math.floor(r() * 5);
    const offX = Math.floor(r() * (fullW - outW + 1)), offY = Math.floor(r() * (fullH - outH + 1));
    const flip = r() < 0.5;
    kernel.setImage(img);
    kernel.resample(box, fullW, fullH, offX, offY, outW, outH, flip);
    const got = kernel.read();
    const want = refResample(img, box, fullW, fullH, offX, offY, outW, outH, flip);
    const d = maxAbsDiff(got, want);
    assert(d < 1e-5, `case ${t}: max diff ${d} (${JSON.stringify({ box, outW, outH, flip })})`);
  }
});

Deno.test("augment kernel: resized crop + flip matches torchvision", () => {
  for (const c of fixture.crops) {
    kernel.setImage(fixtureImage);
    kernel.resample(c.box, c.outW, c.outH, 0, 0, c.outW, c.outH, c.flip);
    const d = maxAbsDiff(kernel.read(), c.expected);
    assert(d < 1e-5, `crop ${JSON.stringify(c.box)}: max diff ${d}`);
  }
});

Deno.test("augment kernel: resize short side + centre crop matches torchvision", () => {
  for (const c of fixture.evals) {
    const g = evalGeometry(fixtureImage.width, fixtureImage.height, c.resize, c.crop);
    kernel.setImage(fixtureImage);
    kernel.resample(
      { x: 0, y: 0, w: fixtureImage.width, h: fixtureImage.height },
      g.fullW,
      g.fullH,
      g.offX,
      g.offY,
      c.crop,
      c.crop,
      false,
    );
    const d = maxAbsDiff(kernel.read(), c.expected);
    assert(d < 1e-5, `eval resize ${c.resize} crop ${c.crop}: max diff ${d}`);
  }
});

function runOp(op: Op, f: number): void {
  if (op === "brightness") kernel.brightness(f);
  else if (op === "contrast") kernel.contrast(f);
  else if (op === "saturation") kernel.saturation(f);
  else kernel.hue(f);
}

Deno.test("augment kernel: colour ops match torchvision.transforms.functional", () => {
  const { width, height, data } = fixture.jitterImage;
  for (const c of fixture.jitter) {
    kernel.setPlanar(Float32Array.from(data), width, height);
    runOp(c.op, c.factor);
    const d = maxAbsDiff(kernel.read(), c.expected);
    assert(d < 1e-5, `${c.op}(${c.factor}): max diff ${d}`);
  }
});

Deno.test("augment kernel: colour ops match the TS reference (odd sizes, SIMD tails)", () => {
  const r = rng(11);
  for (const [w, h] of [[7, 5], [16, 9], [33, 3]]) {
    const n = w * h;
    const x = new Float32Array(3 * n);
    for (let i = 0; i < x.length; i++) x[i] = Math.round(r() * 255) / 255;
    for (const op of ["brightness", "contrast", "saturation", "hue"] as Op[]) {
      for (const f of op === "hue" ? [-0.37, 0.02, 0.25] : [0.6, 1.0, 1.4]) {
        kernel.setPlanar(x, w, h);
        runOp(op, f);
        const d = maxAbsDiff(kernel.read(), refColor(x, n, op, f));
        assert(d < 1e-5, `${op}(${f}) on ${w}×${h}: max diff ${d}`);
      }
    }
  }
});

Deno.test("augment kernel: fused jitter + normalize equals the single ops in turn", () => {
  const r = rng(5);
  const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
  const names: Op[] = ["brightness", "contrast", "saturation", "hue"];
  for (const [w, h] of [[7, 5], [45, 31], [3, 1]]) { // tails, several 1024-pixel blocks
    const x = Float32Array.from({ length: 3 * w * h }, () => Math.round(r() * 255) / 255);
    for (let t = 0; t < 12; t++) {
      const order = [0, 1, 2, 3].sort(() => r() - 0.5).slice(0, t % 5);
      const factors = [0.6 + r() * 0.8, 0.6 + r() * 0.8, 0.6 + r() * 0.8, -0.1 + r() * 0.2];
      kernel.setPlanar(x, w, h);
      for (const op of order) runOp(names[op], factors[op]);
      kernel.normalize(mean, std);
      const want = kernel.read();
      kernel.setPlanar(x, w, h);
      kernel.jitterNormalize(order, factors, mean, std);
      const d = maxAbsDiff(kernel.read(), want);
      assert(d < 1e-5, `order ${order} on ${w}×${h}: max diff ${d}`);
    }
  }
  assertThrows(() => kernel.jitterNormalize([0, 7], [1, 1, 1, 0], mean, std));
});

Deno.test("augment kernel: normalize", () => {
  const x = Float32Array.from({ length: 3 * 5 }, (_, i) => i / 15);
  kernel.setPlanar(x, 5, 1);
  const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
  kernel.normalize(mean, std);
  const want = Array.from(x, (v, i) => (v - mean[Math.floor(i / 5)]) / std[Math.floor(i / 5)]);
  assert(maxAbsDiff(kernel.read(), want) < 1e-6);
});

Deno.test("augment kernel: antialiased uint8 resize is within 1 of PIL's BILINEAR", () => {
  for (const c of fixture.resize_u8) {
    const img = { width: c.width, height: c.height, data: Uint8Array.from(c.data) };
    const got = kernel.resizeU8(img, c.outW, c.outH);
    assertEquals([got.width, got.height], [c.outW, c.outH]);
    const d = maxAbsDiff(got.data, c.expected);
    assert(d <= 1, `${c.width}×${c.height} → ${c.outW}×${c.outH}: max diff ${d}`);
  }
});

Deno.test("augment kernel: rejects boxes outside the image and bad buffers", () => {
  kernel.setImage(fixtureImage);
  assertThrows(() => kernel.resample({ x: 20, y: 0, w: 5, h: 5 }, 4, 4, 0, 0, 4, 4, false));
  assertThrows(() => kernel.resample({ x: 0, y: 0, w: 5, h: 5 }, 4, 4, 1, 0, 4, 4, false));
  assertThrows(() => kernel.setImage({ width: 2, height: 2, data: new Uint8Array(5) }));
});
