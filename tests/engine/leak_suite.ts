/**
 * Leak test: 1,000 training steps of a tiny conv + attention model (forward, backward, clipping,
 * SGD inside LookAhead) must leave the backend's allocation counters flat.
 */
import type { Backend } from "../../engine/backend.ts";
import {
  BatchNorm2d,
  Conv2d,
  Embedding,
  LayerNorm,
  Linear,
  Module,
  MultiheadAttention,
} from "../../engine/nn/index.ts";
import * as ops from "../../engine/ops/index.ts";
import { clipGradNorm, LookAhead, paramGroups, SGD } from "../../engine/optim/index.ts";
import { CounterRng } from "../../engine/rng.ts";
import { tidy } from "../../engine/scope.ts";
import { type Tensor, tensor } from "../../engine/tensor.ts";
import type { BackendFactory } from "./suite_util.ts";

class TinyNet extends Module {
  conv: Conv2d;
  bn: BatchNorm2d;
  proj: Linear;
  emb: Embedding;
  attn: MultiheadAttention;
  ln: LayerNorm;
  head: Linear;
  rng = new CounterRng(7);
  constructor(be: Backend) {
    super(be);
    this.conv = this.registerModule("conv", new Conv2d(be, 3, 8, 3, { padding: 1, bias: false }));
    this.bn = this.registerModule("bn", new BatchNorm2d(be, 8));
    this.proj = this.registerModule("proj", new Linear(be, 8, 8));
    this.emb = this.registerModule("emb", new Embedding(be, 10, 8));
    this.attn = this.registerModule("attn", new MultiheadAttention(be, 8, 2, 0.1, this.rng));
    this.ln = this.registerModule("ln", new LayerNorm(be, 8));
    this.head = this.registerModule("head", new Linear(be, 8, 10));
  }
  forward(img: Tensor, ids: Tensor, pad: Tensor): Tensor {
    const [B] = img.shape;
    let v = ops.relu(this.bn.forward(this.conv.forward(img))); // [B, 8, 6, 6]
    v = ops.maxPool2d(v, 3, 2, 1); // [B, 8, 3, 3]
    const grid = ops.permute(ops.reshape(v, [B, 8, 9]), [0, 2, 1]); // [B, 9, 8]
    const mem = this.proj.forward(grid);
    const x = this.emb.forward(ids); // [B, T, 8]
    const { out } = this.attn.forward(x, mem, mem);
    const self = this.attn.forward(x, x, x, { causal: true, keyPaddingMask: pad }).out;
    const h = ops.dropout(this.ln.forward(ops.add(ops.add(x, out), self)), 0.1, true, this.rng);
    return this.head.forward(h); // [B, T, 10]
  }
}

/**
 * Trains `steps` steps; returns counters after step `warm` and at the end (both after a flush),
 * counters sampled every `sampleEvery` steps, and the first and last losses.
 */
export async function runLeakCheck(
  be: Backend,
  steps = 1000,
  warm = Math.min(100, Math.max(1, Math.floor(steps / 4))),
  sampleEvery = warm,
) {
  const net = new TinyNet(be);
  const sgd = new SGD(
    paramGroups(net.namedParameters(), { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 }, [
      { match: (n) => n.endsWith("bias") || n.startsWith("ln."), weightDecay: 0 },
    ]),
  );
  const opt = new LookAhead(sgd, 0.5, 5);
  const B = 2, T = 4;
  const img = tensor(be, Float32Array.from({ length: B * 3 * 6 * 6 }, (_, i) => Math.sin(i)), [
    B,
    3,
    6,
    6,
  ]).persist();
  const idsHost = Int32Array.from([1, 2, 3, 4, 5, 6, 0, 0]);
  const ids = tensor(be, idsHost, [B, T]).persist();
  const pad = tensor(be, [0, 0, 0, 0, 0, 0, 1, 1], [B, T]).persist();
  const targets = Int32Array.from([2, 3, 4, 0, 6, 7, -100, -100]);
  let warmStats = be.stats();
  const samples: { step: number; liveBuffers: number; liveBytes: number; pooledBytes: number }[] =
    [];
  let first = NaN, last = NaN;
  for (let step = 0; step < steps; step++) {
    const loss = tidy(() => {
      const logits = net.forward(img, ids, pad);
      const loss = ops.crossEntropy(logits, targets);
      loss.backward();
      clipGradNorm(opt.inner.params(), 1.0);
      opt.step();
      opt.zeroGrad();
      return step === 0 || step === steps - 1 ? loss : null;
    });
    if (loss) {
      const v = await loss.item();
      loss.dispose();
      if (step === 0) first = v;
      else last = v;
    }
    if (step + 1 === warm) {
      await be.flush();
      warmStats = be.stats();
    }
    if ((step + 1) % sampleEvery === 0) {
      await be.flush();
      samples.push({ step: step + 1, ...be.stats() });
    }
  }
  await be.flush();
  const endStats = be.stats();
  net.dispose();
  opt.dispose();
  for (const t of [img, ids, pad]) t.dispose();
  return { warmStats, endStats, samples, first, last, after: be.stats() };
}

/** Registers the leak test for a backend. */
export function runLeakSuite(label: string, factory: BackendFactory, steps = 1000): void {
  Deno.test({
    name: `${label}: ${steps} training steps leave allocation counters flat`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const be = await factory();
      try {
        const r = await runLeakCheck(be, steps);
        const w = r.warmStats, e = r.endStats;
        if (w.liveBuffers !== e.liveBuffers || w.liveBytes !== e.liveBytes) {
          throw new Error(`live memory grew: ${JSON.stringify(w)} -> ${JSON.stringify(e)}`);
        }
        for (const smp of r.samples) {
          if (smp.liveBuffers !== w.liveBuffers || smp.liveBytes !== w.liveBytes) {
            throw new Error(`live memory changed at step ${smp.step}: ${JSON.stringify(smp)}`);
          }
          if (smp.pooledBytes > w.pooledBytes) {
            throw new Error(
              `pool grew by step ${smp.step}: ${w.pooledBytes} -> ${smp.pooledBytes}`,
            );
          }
        }
        if (r.after.liveBuffers !== 0) {
          throw new Error(`${r.after.liveBuffers} buffers alive after disposing everything`);
        }
        if (!(r.last < r.first)) throw new Error(`loss did not decrease: ${r.first} -> ${r.last}`);
      } finally {
        be.destroy();
      }
    },
  });
}
