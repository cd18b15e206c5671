/**
 * Captioning with a pretrain artifact: loads the model (model.json + model.safetensors) and the
 * vocabulary of its tokenize artifact, runs the eval transform and the backbone once per batch of
 * images, then decodes each image with greedy / beam / nucleus search over the forward decoder,
 * or (cappa models) in parallel: every position predicted at once from all-[MASK] inputs, as the
 * model was trained; optionally with the decoder's cross-attention for every generated token.
 */
import { dirname, join, resolve } from "node:path";
import type { Backend } from "../../engine/backend.ts";
import { createBackend, type DeviceName } from "../../engine/device.ts";
import * as ops from "../../engine/ops/index.ts";
import { loadSafetensors } from "../../engine/safetensors.ts";
import { noGrad, tidy } from "../../engine/scope.ts";
import { type Tensor, tensor } from "../../engine/tensor.ts";
import { AugmentKernel } from "../../kernels/augment.ts";
import { applyEval, type TransformConfig, transformSchema } from "../augment/transforms.ts";
import type { RgbImage } from "../data/types.ts";
import { parallelLogits } from "../model/caption_losses.ts";
import { CAPTION_TASKS, PretrainingModel, SOS, type TaskName } from "../model/tasks.ts";
import { Vocab } from "../tokenize/vocab.ts";
import {
  decode,
  type DecodeMethod,
  type DecodeOptions,
  logSoftmaxGenerable,
  parallelPick,
  type StepFn,
} from "./decoding.ts";

/** A loaded captioning model. */
export interface Captioner {
  backend: Backend;
  model: PretrainingModel;
  vocab: Vocab;
  transform: TransformConfig;
  kernel: AugmentKernel;
  /** Caption length of the training data ([SOS] … [EOS]); parallel decoding predicts one less. */
  captionLength: number;
}

/** One captioned image. */
export interface CaptionResult {
  tokens: number[];
  text: string;
  logprob: number;
  /** Per generated token (then [EOS]), head-averaged cross-attention over the h×w grid. */
  attention?: Float32Array[];
  grid?: [number, number];
}

function readJson(path: string): Record<string, unknown> {
  try {
    return JSON.parse(Deno.readTextFileSync(path));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

/**
 * Opens a pretrain artifact folder. The vocabulary comes from its tokenize artifact (a sibling
 * folder in the cache, key in model.json `tokens`); the eval transform from its manifest's
 * `transform` config (resize short side → centre crop `size`) unless `resize` / `size` are given.
 */
export async function openCaptioner(
  artifactDir: string,
  o: { device?: DeviceName; resize?: number; size?: number } = {},
): Promise<Captioner> {
  const dir = resolve(artifactDir);
  const info = readJson(join(dir, "model.json"));
  if (!CAPTION_TASKS.includes(info.task as TaskName)) {
    throw new Error(`${dir}/model.json: task "${info.task}" has no caption decoder`);
  }
  const tokensKey = String(info.tokens ?? "");
  const vocabPath = join(dirname(dir), tokensKey, "vocab.json");
  let vocabText: string;
  try {
    vocabText = Deno.readTextFileSync(vocabPath);
  } catch {
    throw new Error(
      `${dir}/model.json: its tokenize artifact ${
        tokensKey.slice(0, 12)
      } (vocab.json) is not in the cache`,
    );
  }
  const vocab = Vocab.fromJson(vocabText, vocabPath);
  let manifestTransform: Record<string, unknown> = {};
  try {
    const m = readJson(join(dir, "manifest.json"));
    manifestTransform = ((m.config as Record<string, unknown>)?.transform ?? {}) as Record<
      string,
      unknown
    >;
  } catch { /* not a cache artifact: defaults below */ }
  const size = o.size ?? Number(info.imageSize ?? manifestTransform.size ?? 224);
  const evalResize = o.resize ?? Number(manifestTransform.evalResize ?? Math.round(size * 8 / 7));
  const transform = transformSchema.parse({
    ...manifestTransform,
    size,
    evalResize: Math.max(evalResize, size),
  });
  const backend = await createBackend(o.device ?? "auto");
  const model = await PretrainingModel.create(backend, {
    task: info.task as TaskName,
    visual: String(info.visual),
    textual: String(info.textual),
    vocabSize: Number(info.vocabSize),
    maxLength: Number(info.maxLength ?? 30),
    dropout: 0,
  });
  const weights = join(dir, "model.safetensors");
  try {
    model.loadStateDict((await loadSafetensors(weights)).tensors, true);
  } catch (e) {
    throw new Error(`${weights}: ${(e as Error).message}`);
  }
  model.eval();
  if (vocab.size !== Number(info.vocabSize)) {
    throw new Error(`${vocabPath}: ${vocab.size} pieces, model.json says ${info.vocabSize}`);
  }
  const captionLength = Number(info.captionLength ?? info.maxLength ?? 30);
  return { backend, model, vocab, transform, kernel: await AugmentKernel.load(), captionLength };
}

/**
 * Step function over one image's projected memory [1, S, H], repeating it per prefix; `dispose`
 * frees the repeated copies.
 */
function stepOver(c: Captioner, memory: Tensor): { step: StepFn; dispose(): void } {
  const head = c.model.textual!;
  const repeated = new Map<number, Tensor>();
  const step: StepFn = async (prefixes) => {
    const N = prefixes.length, t = prefixes[0].length;
    let mem = N === 1 ? memory : repeated.get(N);
    if (!mem) {
      mem = noGrad(() => ops.concat(Array(N).fill(memory), 0)); // [N, S, H]
      repeated.set(N, mem);
    }
    const last = noGrad(() =>
      tidy(() => {
        const ids = tensor(c.backend, Int32Array.from(prefixes.flat()), [N, t], "i32");
        return ops.slice(head.decode(mem!, ids), 1, t - 1, t); // [N, 1, V]
      })
    );
    const data = await last.f32();
    last.dispose();
    const V = data.length / N;
    return Array.from(
      { length: N },
      (_, i) => logSoftmaxGenerable(data.subarray(i * V, (i + 1) * V)),
    );
  };
  return {
    step,
    dispose: () => {
      for (const m of repeated.values()) m.dispose();
    },
  };
}

/** Cross-attention rows [T][S] of the last decoder layer for [SOS] + tokens (teacher-forced). */
async function crossAttention(
  c: Captioner,
  memory: Tensor,
  tokens: number[],
): Promise<Float32Array[]> {
  const head = c.model.textual!;
  const T = tokens.length + 1;
  const w = noGrad(() =>
    tidy(() => {
      const ids = tensor(c.backend, Int32Array.from([SOS, ...tokens]), [1, T], "i32");
      head.decode(memory, ids, { needCrossWeights: true });
      return head.lastCrossWeights()!; // [1, T, S]
    })
  );
  const data = await w.f32();
  w.dispose();
  const S = data.length / T;
  return Array.from({ length: T }, (_, i) => data.slice(i * S, (i + 1) * S));
}

/**
 * Captions a batch of decoded images. With `attention`, each result carries one attention row per
 * generated token plus the row for [EOS], and the grid shape.
 */
export async function captionImages(
  c: Captioner,
  images: RgbImage[],
  method: DecodeMethod,
  opts: DecodeOptions & { attention?: boolean } = {},
): Promise<CaptionResult[]> {
  const S = c.transform.size, B = images.length;
  const batch = new Float32Array(B * 3 * S * S);
  images.forEach((im, b) => applyEval(c.kernel, im, c.transform, batch, b * 3 * S * S));
  const { memory, h, w } = noGrad(() =>
    tidy(() => {
      const grid = c.model.visual.forward(tensor(c.backend, batch, [B, 3, S, S])); // [B, C, h, w]
      return { memory: c.model.textual!.projectVisual(grid), h: grid.shape[2], w: grid.shape[3] };
    })
  ); // memory [B, h*w, H]
  const maxSteps = Math.min(opts.maxSteps ?? 30, c.model.config.maxLength ?? 30);
  if (method === "parallel") {
    try {
      return await parallelCaptions(c, memory, maxSteps, opts.attention ? [h, w] : null);
    } finally {
      memory.dispose();
    }
  }
  const out: CaptionResult[] = [];
  try {
    for (let b = 0; b < B; b++) {
      const mem1 = noGrad(() => ops.slice(memory, 0, b, b + 1)); // [1, hw, H]
      const stepper = stepOver(c, mem1);
      try {
        const d = await decode(method, stepper.step, {
          ...opts,
          maxSteps,
          seed: (opts.seed ?? 0) + b,
        });
        const r: CaptionResult = {
          tokens: d.tokens,
          text: c.vocab.decode(d.tokens),
          logprob: d.logprob,
        };
        if (opts.attention) {
          r.attention = await crossAttention(c, mem1, d.tokens.slice(0, maxSteps - 1));
          r.grid = [h, w];
        }
        out.push(r);
      } finally {
        stepper.dispose();
        mem1.dispose();
      }
    }
  } finally {
    memory.dispose();
  }
  return out;
}

/**
 * Parallel decoding of projected memory [B, S, H]: one decoder pass over captionLength - 1 [MASK]
 * inputs (as cappa trained), each position's most likely token, cut at [EOS] and at maxSteps.
 * `grid` set: each result carries its positions' cross-attention rows from that same pass.
 */
async function parallelCaptions(
  c: Captioner,
  memory: Tensor,
  maxSteps: number,
  grid: [number, number] | null,
): Promise<CaptionResult[]> {
  if (c.model.config.task !== "cappa") {
    throw new Error(
      `parallel decoding needs a model trained with task cappa (this one: ${c.model.config.task})`,
    );
  }
  const head = c.model.textual!;
  const L = c.captionLength - 1;
  const { logits, weights } = noGrad(() =>
    tidy(() => {
      const logits = parallelLogits(head, memory, L, { needCrossWeights: grid !== null }); // [B, L, V]
      return { logits, weights: grid ? head.lastCrossWeights()! : null }; // [B, L, S]
    })
  );
  const data = await logits.f32();
  const att = weights ? await weights.f32() : null;
  logits.dispose();
  weights?.dispose();
  const B = memory.shape[0], V = data.length / (B * L), S = memory.shape[1];
  return Array.from({ length: B }, (_, b) => {
    const rows = Array.from(
      { length: Math.min(L, maxSteps) },
      (_, i) => logSoftmaxGenerable(data.subarray((b * L + i) * V, (b * L + i + 1) * V)),
    );
    const d = parallelPick(rows);
    const r: CaptionResult = {
      tokens: d.tokens,
      text: c.vocab.decode(d.tokens),
      logprob: d.logprob,
    };
    if (att && grid) {
      // One row per generated token plus [EOS] when it was generated.
      const n = Math.min(rows.length, d.tokens.length + 1);
      r.attention = Array.from(
        { length: n },
        (_, i) => att.slice((b * L + i) * S, (b * L + i + 1) * S),
      );
      r.grid = grid;
    }
    return r;
  });
}

/** The display text of one token (its piece without the word-start marker). */
export function tokenText(vocab: Vocab, id: number): string {
  return (vocab.pieces[id]?.piece ?? "?").replaceAll("\u2581", "");
}
