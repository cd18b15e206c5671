import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  blit,
  createImage,
  fillCircle,
  fillPolygon,
  fillRect,
  fillRing,
  hsvToRgb,
  sdPolygon,
} from "../../../pipeline/image/draw.ts";

Deno.test("filled areas match geometry", () => {
  const img = createImage(64, 64);
  assertEquals(fillRect(img, 10, 10, 8, 5, [255, 0, 0]), 40);
  assert(Math.abs(fillCircle(img, 32, 32, 10, [0, 255, 0]) - Math.PI * 100) < 2);
  assert(Math.abs(fillRing(img, 32, 32, 10, 5, [0, 0, 255]) - Math.PI * 75) < 2);
  const tri = fillPolygon(img, [[40, 40], [60, 40], [40, 60]], [9, 9, 9]);
  assert(Math.abs(tri - 200) < 1.5);
  // A pixel inside the rectangle is exactly the fill colour; outside untouched.
  assertEquals([...img.data.subarray(3 * (12 * 64 + 12), 3 * (12 * 64 + 12) + 3)], [255, 0, 0]);
  assertEquals([...img.data.subarray(0, 3)], [0, 0, 0]);
});

Deno.test("antialias off gives only full or empty pixels; on gives partial edges", () => {
  const hard = createImage(32, 32), soft = createImage(32, 32);
  fillCircle(hard, 16.3, 15.7, 7.2, [200, 200, 200], { antialias: false });
  fillCircle(soft, 16.3, 15.7, 7.2, [200, 200, 200]);
  assert(hard.data.every((v) => v === 0 || v === 200));
  assert(soft.data.some((v) => v > 0 && v < 200));
});

Deno.test("polygon distance is exact and signed (non-convex star-like outline)", () => {
  const sq = sdPolygon([[0, 0], [10, 0], [10, 10], [0, 10]]);
  assertEquals(sq(5, 5), -5);
  assertEquals(sq(13, 14), 5);
  assertEquals(sq(5, -2), 2);
  const l = sdPolygon([[0, 0], [10, 0], [10, 4], [4, 4], [4, 10], [0, 10]]); // an L
  assert(l(7, 7) > 0 && l(2, 7) < 0 && l(7, 2) < 0);
});

Deno.test("blit scales and clips; hsvToRgb hits the primaries", () => {
  const src = createImage(2, 2, [7, 8, 9]);
  const dst = createImage(5, 5);
  blit(dst, src, 3, 3, 2); // 4x4 block, clipped to 2x2
  assertEquals([...dst.data.subarray(3 * (4 * 5 + 4))], [7, 8, 9]);
  assertEquals([...dst.data.subarray(3 * (2 * 5 + 2), 3 * (2 * 5 + 2) + 3)], [0, 0, 0]);
  assertEquals(hsvToRgb(0, 1, 1), [255, 0, 0]);
  assertEquals(hsvToRgb(120, 1, 1), [0, 255, 0]);
  assertEquals(hsvToRgb(240, 1, 1), [0, 0, 255]);
});
