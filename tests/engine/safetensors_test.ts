import assert from "node:assert";
import { RefBackend } from "../../engine/backends/ref.ts";
import { Linear, Module } from "../../engine/nn/index.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  loadModule,
  saveModule,
} from "../../engine/safetensors.ts";
import { BatchNorm2d } from "../../engine/nn/index.ts";

Deno.test("safetensors encode/decode round trip with an 8-byte aligned header", () => {
  const tensors = new Map([
    ["b.weight", { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, -6.5]) }],
    ["a.count", { shape: [], data: Int32Array.from([7]) }],
  ]);
  const bytes = encodeSafetensors(tensors, { step: "3" });
  const hlen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.strictEqual(hlen % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hlen)));
  assert.deepStrictEqual(header["a.count"], { dtype: "I32", shape: [], data_offsets: [0, 4] });
  assert.deepStrictEqual(header["b.weight"].data_offsets, [4, 28]);
  const back = decodeSafetensors(bytes);
  assert.deepStrictEqual(back.metadata, { step: "3" });
  assert.deepStrictEqual(Array.from(back.tensors.get("b.weight")!.data), [1, 2, 3, 4, 5, -6.5]);
  assert.deepStrictEqual(back.tensors.get("a.count")!.shape, []);
});

Deno.test("safetensors rejects truncated or inconsistent files naming the source", () => {
  const bytes = encodeSafetensors(new Map([["w", { shape: [4], data: new Float32Array(4) }]]));
  assert.throws(
    () => decodeSafetensors(bytes.subarray(0, bytes.length - 4), "x.st"),
    /x.st: tensor w/,
  );
  assert.throws(() => decodeSafetensors(new Uint8Array(3), "y.st"), /y.st: not a safetensors/);
  const bad = bytes.slice();
  bad[8] = 0x7b + 1; // break the JSON
  assert.throws(() => decodeSafetensors(bad, "z.st"), /z.st: bad JSON header/);
});

Deno.test("F16, BF16, F64 and I64 tensors decode to f32 / i32", () => {
  const header = {
    h: { dtype: "F16", shape: [2], data_offsets: [0, 4] },
    b: { dtype: "BF16", shape: [1], data_offsets: [4, 6] },
    d: { dtype: "F64", shape: [1], data_offsets: [6, 14] },
    i: { dtype: "I64", shape: [1], data_offsets: [14, 22] },
  };
  let json = new TextEncoder().encode(JSON.stringify(header));
  json = Uint8Array.from([...json, ...new Array((8 - json.length % 8) % 8).fill(32)]);
  const data = new Uint8Array(22);
  const dv = new DataView(data.buffer);
  dv.setUint16(0, 0x3c00, true); // 1.0
  dv.setUint16(2, 0xc000, true); // -2.0
  dv.setUint16(4, 0x4040, true); // bf16 3.0
  dv.setFloat64(6, 0.25, true);
  dv.setBigInt64(14, -5n, true);
  const file = new Uint8Array(8 + json.length + 22);
  new DataView(file.buffer).setBigUint64(0, BigInt(json.length), true);
  file.set(json, 8);
  file.set(data, 8 + json.length);
  const t = decodeSafetensors(file).tensors;
  assert.deepStrictEqual(Array.from(t.get("h")!.data), [1, -2]);
  assert.deepStrictEqual(Array.from(t.get("b")!.data), [3]);
  assert.deepStrictEqual(Array.from(t.get("d")!.data), [0.25]);
  assert.deepStrictEqual(Array.from(t.get("i")!.data), [-5]);
});

Deno.test("module state dicts save and load through a .safetensors file", async () => {
  const be = new RefBackend();
  class Net extends Module {
    fc = this.registerModule("fc", new Linear(be, 3, 2));
    bn = this.registerModule("bn", new BatchNorm2d(be, 2));
    constructor() {
      super(be);
    }
  }
  const a = new Net(), b = new Net();
  be.fill(a.bn.runningVar.buf, 4);
  const dir = await Deno.makeTempDir();
  const path = `${dir}/net.safetensors`;
  await saveModule(path, a, { arch: "net" });
  await loadModule(path, b);
  for (const [name, t] of b.stateDict()) {
    const want = a.stateDict().get(name)!;
    assert.deepStrictEqual(Array.from(await t.data()), Array.from(await want.data()), name);
  }
  assert.strictEqual((await Array.fromAsync(Deno.readDir(dir))).length, 1); // no temp left
  await Deno.remove(dir, { recursive: true });
});

const python = "/usr/bin/python3";
const hasPython = (() => {
  try {
    return Deno.statSync(python).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "a file we write parses with Python's struct/json/array (safetensors layout)",
  ignore: !hasPython,
  fn: async () => {
    const bytes = encodeSafetensors(
      new Map([["x", { shape: [3], data: Float32Array.from([1.5, -2, 3]) }]]),
      { k: "v" },
    );
    const dir = await Deno.makeTempDir();
    await Deno.writeFile(`${dir}/t.safetensors`, bytes);
    const script = [
      "import json,struct,sys,array",
      "b=open(sys.argv[1],'rb').read()",
      "n=struct.unpack('<Q',b[:8])[0]",
      "h=json.loads(b[8:8+n])",
      "s,e=h['x']['data_offsets']",
      "a=array.array('f');a.frombytes(b[8+n+s:8+n+e])",
      "print(json.dumps({'meta':h['__metadata__'],'x':list(a),'shape':h['x']['shape']}))",
    ].join("\n");
    const out = await new Deno.Command(python, { args: ["-c", script, `${dir}/t.safetensors`] })
      .output();
    await Deno.remove(dir, { recursive: true });
    assert.strictEqual(out.code, 0, new TextDecoder().decode(out.stderr));
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.deepStrictEqual(r, { meta: { k: "v" }, x: [1.5, -2, 3], shape: [3] });
  },
});
if (!hasPython) console.log("skipping Python safetensors layout check: /usr/bin/python3 absent");
