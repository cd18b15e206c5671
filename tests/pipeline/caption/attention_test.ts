import { assert, assertEquals } from "../cache/_assert.ts";
import {
  bicubicResize,
  evalCropView,
  heatColor,
  overlayAttention,
  renderAttentionGrid,
} from "../../../pipeline/caption/attention.ts";
import { drawText, GLYPH_W, textWidth } from "../../../pipeline/caption/font.ts";
import { createImage } from "../../../pipeline/image/draw.ts";

Deno.test("bicubic upsampling keeps constants and puts a peak where the cell is", () => {
  const flat = bicubicResize([0.25, 0.25, 0.25, 0.25], 2, 2, 8, 8);
  for (const v of flat) assert(Math.abs(v - 0.25) < 1e-6);
  // 7×7 with one hot cell at (row 1, col 5) -> 70×70: the maximum lies inside that cell.
  const m = new Float32Array(49);
  m[1 * 7 + 5] = 1;
  const up = bicubicResize(m, 7, 7, 70, 70);
  let best = 0;
  for (let i = 1; i < up.length; i++) if (up[i] > up[best]) best = i;
  const y = Math.floor(best / 70), x = best % 70;
  assert(y >= 10 && y < 20 && x >= 50 && x < 60, `peak at (${y}, ${x})`);
  // Half-pixel centres: 2 -> 4 interpolates between the two cells (1/4 and 3/4 positions).
  const line = bicubicResize([0, 1], 1, 2, 1, 4);
  assert(line[0] < line[1] && line[1] < line[2] && line[2] < line[3]);
});

Deno.test("heat colours run from blue to red; overlay blends half and half", () => {
  assertEquals(heatColor(0).map(Math.round), [0, 0, 128]);
  assertEquals(heatColor(1).map(Math.round), [128, 0, 0]);
  const view = createImage(4, 4, [100, 100, 100]);
  const o = overlayAttention(view, [0, 0, 0, 1], 2, 2);
  // Bottom-right pixel is the hottest (red-ish), top-left the coldest (blue-ish).
  const px = (x: number, y: number) => [...o.data.subarray((y * 4 + x) * 3, (y * 4 + x) * 3 + 3)];
  assert(px(3, 3)[0] > px(3, 3)[2] && px(0, 0)[2] > px(0, 0)[0], `${px(3, 3)} ${px(0, 0)}`);
  // Half image grey (100) + half a cold colour (no red): red channel exactly 50.
  assertEquals(px(0, 0)[0], 50);
  assert(px(0, 0)[2] > 100);
});

Deno.test("eval crop view shows the centre crop of the model's input", () => {
  // Left half black, right half white, 200×100: the centre crop straddles the boundary.
  const img = createImage(200, 100, [0, 0, 0]);
  for (let y = 0; y < 100; y++) {
    for (let x = 100; x < 200; x++) img.data.fill(255, (y * 200 + x) * 3, (y * 200 + x) * 3 + 3);
  }
  const v = evalCropView(img, 256, 224, 32);
  assertEquals(v.width, 32);
  assert(v.data[(16 * 32 + 2) * 3] < 10 && v.data[(16 * 32 + 29) * 3] > 245);
});

Deno.test("grid: one tile per token plus the image, labels drawn", () => {
  const img = createImage(64, 48, [90, 120, 150]);
  const labels = ["a", "red", "circle", "[eos]"];
  const attention = labels.map((_, k) =>
    Float32Array.from({ length: 4 }, (_, i) => (i === k ? 1 : 0))
  );
  const g = renderAttentionGrid({
    image: img,
    resize: 64,
    size: 48,
    caption: "a red circle",
    labels,
    attention,
    grid: [2, 2],
    tile: 40,
    columns: 3,
  });
  // 5 tiles on 3 columns -> 2 rows.
  assertEquals(g.width, 3 * 40 + 4 * 6);
  const dark = g.data.filter((v) => v === 0).length;
  assert(dark > 0, "text drawn");
});

Deno.test("bitmap font draws known glyphs and boxes for unknown ones", () => {
  const img = createImage(20, 9, [255, 255, 255]);
  drawText(img, "I", 1, 1, [0, 0, 0]);
  // "I": top row 01110 -> pixels x = 2..4 on y = 1.
  assertEquals([1, 2, 3, 4, 5].map((x) => img.data[(1 * 20 + x) * 3]), [255, 0, 0, 0, 255]);
  assertEquals(textWidth("abc", 2), 3 * GLYPH_W * 2);
  const box = createImage(8, 9, [255, 255, 255]);
  drawText(box, "\u00e9", 0, 0, [0, 0, 0]);
  assertEquals(box.data[0], 0);
});
