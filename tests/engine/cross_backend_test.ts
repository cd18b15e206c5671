/**
 * wasm vs webgpu on the same model step (small shapes): outputs and every gradient of the
 * bottleneck block and the decoder layer agree within 1e-4 (scaled). Skipped with a message
 * when either backend cannot start here.
 */
import type { Backend } from "../../engine/backend.ts";
import { createBackend, probeWebGpu } from "../../engine/device.ts";
import { Bottleneck, type Module, TransformerDecoderLayer } from "../../engine/nn/index.ts";
import * as ops from "../../engine/ops/index.ts";
import { loadSafetensors } from "../../engine/safetensors.ts";
import { tidy } from "../../engine/scope.ts";
import { type Tensor, tensor } from "../../engine/tensor.ts";
import { assertClose } from "./suite_util.ts";
import { FIXTURE_DIR } from "./torch_parity_suite.ts";

if (!Deno.env.get("XDG_RUNTIME_DIR")) {
  const dir = `${Deno.env.get("TMPDIR") ?? "/tmp"}/virtex-xdg`;
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  Deno.env.set("XDG_RUNTIME_DIR", dir);
}

const wasmBuilt = await Deno.stat(new URL("../../kernels/build/engine.wasm", import.meta.url))
  .then(() => true, () => false);
const gpu = await probeWebGpu();
const ready = wasmBuilt && gpu.available;
if (!ready) {
  console.log(
    `cross-backend test skipped: ${!wasmBuilt ? "kernels/build/engine.wasm missing" : ""} ${
      !gpu.available ? `no WebGPU adapter (${gpu.reason})` : ""
    }`,
  );
}

/** Loads fixture parameters, runs forward + backward, returns output and all gradients. */
async function step(
  be: Backend,
  which: "bottleneck" | "decoder",
): Promise<Map<string, Float32Array>> {
  const file = which === "bottleneck" ? "bottleneck.safetensors" : "decoder_postnorm.safetensors";
  const fx = (await loadSafetensors(new URL(file, FIXTURE_DIR).pathname)).tensors;
  const params = new Map(
    [...fx].filter(([k]) => k.startsWith("param.")).map(([k, v]) => [k.slice(6), v]),
  );
  const up = (name: string, grad = false) => {
    const h = fx.get(name)!;
    const t = tensor(be, h.data, h.shape).persist();
    t.requiresGrad = grad;
    return t;
  };
  let m: Module;
  let inputs: Tensor[];
  let fwd: () => Tensor;
  if (which === "bottleneck") {
    const block = new Bottleneck(be, 16, 4, 2);
    const x = up("input.x", true);
    inputs = [x];
    fwd = () => block.forward(x);
    m = block;
  } else {
    const layer = new TransformerDecoderLayer(be, 16, 4, 32, { dropout: 0 });
    const tgt = up("input.tgt", true), mem = up("input.memory", true);
    const pad = up("input.tgt_key_padding_mask");
    inputs = [tgt, mem, pad];
    fwd = () => layer.forward(tgt, mem, { causal: true, tgtKeyPaddingMask: pad });
    m = layer;
  }
  m.loadStateDict(params);
  const proj = up("proj");
  const y = tidy(() => {
    const y = fwd();
    ops.sum(ops.mul(y, proj)).backward();
    return y;
  });
  const out = new Map<string, Float32Array>([["output", (await y.data()) as Float32Array]]);
  for (const [name, p] of m.namedParameters()) {
    out.set(name, (await p.grad!.data()) as Float32Array);
  }
  for (const [i, t] of inputs.entries()) {
    if (t.grad) out.set(`input ${i}`, (await t.grad.data()) as Float32Array);
  }
  m.dispose();
  for (const t of [...inputs, proj, y]) {
    t.grad?.dispose();
    t.dispose();
  }
  return out;
}

for (const which of ["bottleneck", "decoder"] as const) {
  Deno.test({
    name: `wasm vs webgpu: ${which} forward and gradients agree within 1e-4`,
    ignore: !ready,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const wasm = await createBackend("wasm"), webgpu = await createBackend("webgpu");
      try {
        const a = await step(wasm, which), b = await step(webgpu, which);
        if (a.size !== b.size) throw new Error(`${a.size} vs ${b.size} results`);
        for (const [name, va] of a) assertClose(`${which} ${name}`, b.get(name)!, va, 1e-4);
      } finally {
        wasm.destroy();
        webgpu.destroy();
      }
    },
  });
}
