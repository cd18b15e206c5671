import assert from "node:assert";
import { createBackend, probeWebGpu, resolveDevice } from "../../engine/device.ts";

// Deno's WebGPU wants a runtime dir; give it a private one when the environment has none.
if (!Deno.env.get("XDG_RUNTIME_DIR")) {
  const dir = `${Deno.env.get("TMPDIR") ?? "/tmp"}/virtex-xdg`;
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  Deno.env.set("XDG_RUNTIME_DIR", dir);
}

Deno.test("createBackend('ref') gives a working reference backend", async () => {
  const be = await createBackend("ref");
  assert.strictEqual(be.name, "ref");
  const b = be.alloc(3);
  be.write(b, Float32Array.from([1, 2, 3]));
  assert.deepStrictEqual(Array.from(await be.read(b)), [1, 2, 3]);
  be.free(b);
  assert.strictEqual(be.stats().liveBuffers, 0);
});

Deno.test("explicit device names resolve to themselves; unknown names fail", async () => {
  assert.strictEqual(await resolveDevice("wasm"), "wasm");
  assert.strictEqual(await resolveDevice("webgpu"), "webgpu");
  await assert.rejects(() => createBackend("cuda" as "ref"), /unknown device "cuda"/);
});

Deno.test({
  name: "auto picks webgpu only for a hardware adapter (software/fallback adapters -> wasm)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const probe = await probeWebGpu();
    const dev = await resolveDevice("auto");
    assert.strictEqual(dev, probe.available && !probe.isFallback ? "webgpu" : "wasm");
    if (/llvmpipe|lavapipe/i.test(probe.adapterName ?? "")) assert.strictEqual(dev, "wasm");
  },
});
