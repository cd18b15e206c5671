/**
 * PyTorch parity: loads fixtures written by tools/torch_fixtures.py (torchvision Bottleneck in
 * train mode, TransformerDecoderLayer post-/pre-norm with causal + key-padding masks) and checks
 * outputs, input gradients, parameter gradients and running statistics on any backend.
 */
import type { Backend } from "../../engine/backend.ts";
import type { HostTensor, Module } from "../../engine/nn/module.ts";
import { Bottleneck, TransformerDecoderLayer } from "../../engine/nn/index.ts";
import * as ops from "../../engine/ops/index.ts";
import { loadSafetensors } from "../../engine/safetensors.ts";
import { tidy } from "../../engine/scope.ts";
import { type Tensor, tensor } from "../../engine/tensor.ts";
import { assertClose, type BackendFactory } from "./suite_util.ts";

export const FIXTURE_DIR = new URL("../fixtures/engine/", import.meta.url);

/** Entries of a fixture whose name starts with `prefix`, prefix removed. */
function group(all: Map<string, HostTensor>, prefix: string): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [k, v] of all) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}

function up(be: Backend, h: HostTensor, grad = false): Tensor {
  const t = tensor(be, h.data, h.shape).persist();
  t.requiresGrad = grad;
  return t;
}

async function checkGrads(m: Module, fx: Map<string, HostTensor>, tol: number, label: string) {
  const want = group(fx, "grad.");
  const params = m.namedParameters();
  if (params.length !== want.size) {
    throw new Error(`${label}: ${params.length} parameters, fixture has ${want.size} gradients`);
  }
  for (const [name, p] of params) {
    const w = want.get(name);
    if (!w) throw new Error(`${label}: fixture has no gradient for ${name}`);
    if (!p.grad) throw new Error(`${label}: ${name} got no gradient`);
    assertClose(`${label} grad ${name}`, await p.grad.data(), w.data, tol);
  }
}

/** Bottleneck block, train-mode BN: forward, backward, running stats, then eval forward. */
export async function checkBottleneck(be: Backend, tol = 1e-4): Promise<void> {
  const fx =
    (await loadSafetensors(new URL("bottleneck.safetensors", FIXTURE_DIR).pathname)).tensors;
  const block = new Bottleneck(be, 16, 4, 2);
  block.loadStateDict(group(fx, "param."));
  block.train();
  const x = up(be, fx.get("input.x")!, true);
  const proj = up(be, fx.get("proj")!);
  const before = be.stats().liveBuffers;
  const y = tidy(() => {
    const y = block.forward(x);
    ops.sum(ops.mul(y, proj)).backward();
    return y;
  });
  assertClose("bottleneck output", await y.data(), fx.get("output")!.data, tol);
  assertClose("bottleneck grad x", await x.grad!.data(), fx.get("grad_input.x")!.data, tol);
  await checkGrads(block, fx, tol, "bottleneck");
  for (const [name, t] of block.namedBuffers()) {
    assertClose(
      `bottleneck ${name} after step`,
      await t.data(),
      fx.get(`after.${name}`)!.data,
      tol,
    );
  }
  y.dispose();
  block.eval();
  const ye = tidy(() => block.forward(x));
  assertClose("bottleneck eval output", await ye.data(), fx.get("eval_output")!.data, tol);
  ye.dispose();
  block.zeroGrad();
  x.grad?.dispose();
  if (be.stats().liveBuffers !== before) {
    throw new Error(`bottleneck: live buffers ${be.stats().liveBuffers}, expected ${before}`);
  }
  block.dispose();
  x.dispose();
  proj.dispose();
}

/** TransformerDecoderLayer (GELU, dropout 0, causal + key padding) forward and backward. */
export async function checkDecoder(be: Backend, normFirst: boolean, tol = 1e-4): Promise<void> {
  const file = normFirst ? "decoder_prenorm.safetensors" : "decoder_postnorm.safetensors";
  const f = await loadSafetensors(new URL(file, FIXTURE_DIR).pathname);
  const fx = f.tensors;
  const meta = Object.fromEntries(Object.entries(f.metadata).map(([k, v]) => [k, JSON.parse(v)]));
  const layer = new TransformerDecoderLayer(be, meta.d_model, meta.nhead, meta.dim_feedforward, {
    dropout: 0,
    normFirst,
  });
  layer.loadStateDict(group(fx, "param."));
  const tgt = up(be, fx.get("input.tgt")!, true);
  const memory = up(be, fx.get("input.memory")!, true);
  const pad = up(be, fx.get("input.tgt_key_padding_mask")!);
  const proj = up(be, fx.get("proj")!);
  const label = normFirst ? "decoder pre-norm" : "decoder post-norm";
  const y = tidy(() => {
    const y = layer.forward(tgt, memory, { causal: true, tgtKeyPaddingMask: pad });
    ops.sum(ops.mul(y, proj)).backward();
    return y;
  });
  assertClose(`${label} output`, await y.data(), fx.get("output")!.data, tol);
  assertClose(`${label} grad tgt`, await tgt.grad!.data(), fx.get("grad_input.tgt")!.data, tol);
  assertClose(
    `${label} grad memory`,
    await memory.grad!.data(),
    fx.get("grad_input.memory")!.data,
    tol,
  );
  await checkGrads(layer, fx, tol, label);
  for (const t of [y, tgt, memory, pad, proj]) {
    t.grad?.dispose();
    t.dispose();
  }
  layer.dispose();
}

/** Registers the parity tests for a backend. */
export function runTorchParitySuite(label: string, factory: BackendFactory, tol = 1e-4): void {
  const opts = { sanitizeResources: false, sanitizeOps: false };
  const withBackend = (fn: (be: Backend) => Promise<void>) => async () => {
    const be = await factory();
    try {
      await fn(be);
    } finally {
      be.destroy();
    }
  };
  Deno.test({
    name: `${label}: torchvision Bottleneck (train-mode BN) matches PyTorch`,
    ...opts,
    fn: withBackend((be) => checkBottleneck(be, tol)),
  });
  Deno.test({
    name: `${label}: TransformerDecoderLayer post-norm matches PyTorch`,
    ...opts,
    fn: withBackend((be) => checkDecoder(be, false, tol)),
  });
  Deno.test({
    name: `${label}: TransformerDecoderLayer pre-norm matches PyTorch`,
    ...opts,
    fn: withBackend((be) => checkDecoder(be, true, tol)),
  });
}
