import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { createHash } from "node:crypto";
import { inflateSync } from "node:zlib";
import { crc32, encodePng } from "../../../pipeline/image/png.ts";

const enc = new TextEncoder();

/** Parses chunks, checks every CRC, inflates IDAT and undoes the filters (test-side decoder). */
function decodeOwnPng(
  png: Uint8Array,
): { width: number; height: number; channels: number; data: Uint8Array; types: string[] } {
  assertEquals([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let off = 8, width = 0, height = 0, channels = 0;
  const idat: Uint8Array[] = [];
  const types: string[] = [];
  while (off < png.length) {
    const len = view.getUint32(off);
    const type = String.fromCharCode(...png.subarray(off + 4, off + 8));
    const body = png.subarray(off + 8, off + 8 + len);
    assertEquals(
      view.getUint32(off + 8 + len),
      crc32(png.subarray(off + 4, off + 8 + len)),
      `CRC of ${type}`,
    );
    types.push(type);
    if (type === "IHDR") {
      const h = new DataView(body.buffer, body.byteOffset, body.byteLength);
      width = h.getUint32(0);
      height = h.getUint32(4);
      assertEquals(body[8], 8);
      channels = body[9] === 6 ? 4 : body[9] === 2 ? 3 : 0;
      assertEquals([body[10], body[11], body[12]], [0, 0, 0]);
    } else if (type === "IDAT") idat.push(body);
    off += 12 + len;
  }
  const z = new Uint8Array(idat.reduce((n, b) => n + b.length, 0));
  let k = 0;
  for (const b of idat) z.set(b, k), k += b.length;
  const raw = new Uint8Array(inflateSync(z));
  const stride = width * channels;
  assertEquals(raw.length, height * (stride + 1));
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i];
      const a = i >= channels ? out[y * stride + i - channels] : 0;
      const b = y > 0 ? out[(y - 1) * stride + i] : 0;
      const c = y > 0 && i >= channels ? out[(y - 1) * stride + i - channels] : 0;
      let pred = 0;
      if (f === 1) pred = a;
      else if (f === 2) pred = b;
      else if (f === 3) pred = (a + b) >> 1;
      else if (f === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else assertEquals(f, 0, "filter type");
      out[y * stride + i] = (x + pred) & 0xff;
    }
  }
  return { width, height, channels, data: out, types };
}

function testImage(w: number, h: number, channels: 3 | 4, seed: number): Uint8Array {
  const d = new Uint8Array(w * h * channels);
  let s = seed;
  for (let i = 0; i < d.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    // smooth gradient plus noise, so every filter type gets chosen somewhere
    d[i] = ((i % (w * channels)) * 3 + Math.floor(i / (w * channels)) * 5 + (s >>> 28)) & 0xff;
  }
  return d;
}

Deno.test("crc32 matches the standard check values", () => {
  assertEquals(crc32(enc.encode("123456789")), 0xcbf43926);
  assertEquals(crc32(enc.encode("IEND")), 0xae426082);
  assertEquals(crc32(new Uint8Array()), 0);
  // Running CRC over two parts equals CRC over the whole.
  const all = enc.encode("The quick brown fox jumps over the lazy dog");
  assertEquals(crc32(all), 0x414fa339);
  assertEquals(crc32(all.subarray(10), crc32(all.subarray(0, 10))), 0x414fa339);
});

Deno.test("encodePng round-trips RGB and RGBA with every filter mode", () => {
  for (const [w, h] of [[1, 1], [7, 5], [64, 64], [33, 2]]) {
    for (const channels of [3, 4] as const) {
      const data = testImage(w, h, channels, w * 31 + h);
      for (const filter of ["paeth", "adaptive", "none"] as const) {
        const png = encodePng({ width: w, height: h, data, channels }, { filter });
        const dec = decodeOwnPng(png);
        assertEquals(dec.types, ["IHDR", "IDAT", "IEND"]);
        assertEquals([dec.width, dec.height, dec.channels], [w, h, channels]);
        assert(
          dec.data.every((v, i) => v === data[i]),
          `${w}x${h}x${channels} ${filter} pixels differ`,
        );
      }
    }
  }
});

Deno.test("encodePng is deterministic and rejects inconsistent input", () => {
  const data = testImage(16, 16, 3, 7);
  assertEquals(
    encodePng({ width: 16, height: 16, data }),
    encodePng({ width: 16, height: 16, data }),
  );
  throws(() => encodePng({ width: 16, height: 15, data }), /expected 16x15x3/);
  throws(() => encodePng({ width: 0, height: 16, data }), /bad size/);
});

const hasPil = (() => {
  try {
    const r = new Deno.Command("/usr/bin/python3", {
      args: ["-c", "import PIL"],
      stdout: "null",
      stderr: "null",
    })
      .outputSync();
    return r.success;
  } catch {
    return false;
  }
})();
if (!hasPil) {
  console.log("png_test: /usr/bin/python3 with PIL not found; skipping the PIL cross-check");
}

Deno.test({
  name: "PIL decodes our PNGs to the same pixels",
  ignore: !hasPil,
  fn() {
    const dir = Deno.makeTempDirSync({ prefix: "png_test_" });
    try {
      const cases: [string, number, number, 3 | 4][] = [
        ["a.png", 37, 23, 3],
        ["b.png", 64, 64, 4],
        ["c.png", 1, 9, 3],
      ];
      const expected: string[] = [];
      for (const [name, w, h, ch] of cases) {
        const data = testImage(w, h, ch, w + h);
        Deno.writeFileSync(
          `${dir}/${name}`,
          encodePng({ width: w, height: h, data, channels: ch }),
        );
        expected.push(
          `${name} ${w} ${h} ${ch === 4 ? "RGBA" : "RGB"} ${
            createHash("sha256").update(data).digest("hex")
          }`,
        );
      }
      const script = "import sys, hashlib\nfrom PIL import Image\n" +
        "for n in sys.argv[2:]:\n im = Image.open(sys.argv[1] + '/' + n); im.load()\n" +
        " print(n, im.size[0], im.size[1], im.mode, hashlib.sha256(im.tobytes()).hexdigest())\n";
      const r = new Deno.Command("/usr/bin/python3", {
        args: ["-c", script, dir, ...cases.map((c) => c[0])],
      })
        .outputSync();
      assert(r.success, new TextDecoder().decode(r.stderr));
      assertEquals(new TextDecoder().decode(r.stdout).trim().split("\n"), expected);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
