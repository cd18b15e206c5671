/** SGD with momentum and weight decay in parameter groups (PyTorch semantics, no dampening). */
import { full, type Tensor } from "../tensor.ts";
import { clipGradNorm, gradSumSquares } from "./clip.ts";
import {
  canFlatten,
  type FlatBucket,
  flattenParams,
  freeFlat,
  gatherGrads,
  mirrorBucket,
} from "./flat.ts";
import type { FlatBuf } from "../backend.ts";

export interface ParamGroup {
  params: Tensor[];
  lr: number;
  momentum: number;
  weightDecay: number;
  /** Free-form label ("decay", "no_decay", "cnn", …). */
  name?: string;
  /** The group's base lr; schedules set lr = baseLr * factor. Defaults to lr. */
  baseLr?: number;
}

export interface GroupSpec {
  /** Parameters whose dotted name matches go to this group (first matching spec wins). */
  match: (name: string) => boolean;
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  name?: string;
}

/**
 * Splits named parameters into groups by name: each spec takes the parameters it matches,
 * the rest use `defaults`. Empty groups are dropped.
 */
export function paramGroups(
  named: [string, Tensor][],
  defaults: { lr: number; momentum?: number; weightDecay?: number; name?: string },
  specs: GroupSpec[] = [],
): ParamGroup[] {
  const groups: ParamGroup[] = specs.map((s) => ({
    params: [],
    lr: s.lr ?? defaults.lr,
    momentum: s.momentum ?? defaults.momentum ?? 0,
    weightDecay: s.weightDecay ?? defaults.weightDecay ?? 0,
    name: s.name,
  }));
  const rest: ParamGroup = {
    params: [],
    lr: defaults.lr,
    momentum: defaults.momentum ?? 0,
    weightDecay: defaults.weightDecay ?? 0,
    name: defaults.name ?? "default",
  };
  for (const [name, t] of named) {
    const i = specs.findIndex((s) => s.match(name));
    (i >= 0 ? groups[i] : rest).params.push(t);
  }
  return [...groups, rest].filter((g) => g.params.length > 0);
}

/**
 * Name test for the usual no-weight-decay set: biases and LayerNorm weights (modules named
 * norm*, ln*, layer_norm); BatchNorm weights (bn*, downsample.1) too when includeBatchNorm.
 */
export function isNoDecayName(name: string, includeBatchNorm = false): boolean {
  if (/(^|\.)bias$/.test(name) || /(^|\.)(norm\d*|ln\w*|layer_norm)\.weight$/.test(name)) {
    return true;
  }
  return includeBatchNorm && /(^|\.)(bn\d*|downsample\.1)\.weight$/.test(name);
}

/** Serializable optimizer state: step counter, group hyper-parameters, momentum buffers by name. */
export interface SgdState {
  step: number;
  groups: { lr: number; baseLr: number; momentum: number; weightDecay: number }[];
  momentum: Map<string, Tensor>;
}

/** A flat arena of parameters with its group and momentum arena. */
interface FlatGroup {
  group: ParamGroup;
  bucket: FlatBucket;
  momentum: FlatBuf;
}

/**
 * SGD over parameter groups; momentum buffers live on the device. On backends with allocFlat
 * (and unless `flat: false`), each group's parameters are moved into flat arenas at construction
 * and `clipAndStep` updates an arena with one fused clip + SGD kernel (see flat.ts).
 */
export class SGD {
  readonly groups: ParamGroup[];
  private readonly momentumBufs = new Map<Tensor, Tensor>();
  stepCount = 0;
  /** The flat arenas (empty when the backend has no allocFlat). */
  readonly flat: FlatGroup[] = [];

  constructor(groups: ParamGroup[], opts: { flat?: boolean } = {}) {
    this.groups = groups.map((g) => ({ ...g, baseLr: g.baseLr ?? g.lr }));
    const seen = new Set<Tensor>();
    for (const g of this.groups) {
      for (const p of g.params) {
        if (seen.has(p)) throw new Error(`SGD: parameter ${p.describe()} is in two groups`);
        seen.add(p);
      }
    }
    const first = this.groups.find((g) => g.params.length > 0)?.params[0];
    if (opts.flat === false || !first || !canFlatten(first.backend)) return;
    const be = first.backend;
    if (this.params().some((p) => p.dtype !== "f32" || p.backend !== be)) return;
    for (const group of this.groups) {
      for (const bucket of flattenParams(be, group.params)) {
        const m = mirrorBucket(be, bucket, false);
        bucket.params.forEach((p, i) => this.momentumBufs.set(p, m.tensors[i]));
        this.flat.push({ group, bucket, momentum: m.flat });
      }
    }
  }

  /**
   * Clips the global gradient norm to `maxNorm` and steps, like `clipGradNorm(params, maxNorm)`
   * then `step()`; returns the [1] tensor of ‖g‖² (before clipping). With flat arenas: gradients
   * are gathered into them, then one sum-of-squares and one fused clip + SGD kernel per arena.
   * `maxNorm` 0 (or below): no clipping, the norm is still computed (for logging).
   */
  clipAndStep(maxNorm: number): Tensor {
    const be = this.flat[0]?.bucket.params[0].backend;
    const clip = maxNorm > 0;
    if (!be || !this.flat.every((f) => gatherGrads(be, f.bucket))) {
      const sumsq = clip ? clipGradNorm(this.params(), maxNorm) : gradSumSquares(this.params());
      this.step();
      return sumsq;
    }
    const sumsq = full(be, [1], 0);
    for (const f of this.flat) {
      be.sumSquares(f.bucket.g.whole, f.bucket.g.whole.numel, sumsq.buf, true);
    }
    for (const { group, bucket, momentum } of this.flat) {
      be.sgdStep({
        w: bucket.p.whole,
        g: bucket.g.whole,
        m: momentum.whole,
        n: bucket.p.whole.numel,
        lr: group.lr,
        momentum: group.momentum,
        weightDecay: group.weightDecay,
        ...(clip ? { clip: { sumsq: sumsq.buf, maxNorm } } : {}),
      });
    }
    this.stepCount++;
    return sumsq;
  }

  /** Every parameter, in group order. */
  params(): Tensor[] {
    return this.groups.flatMap((g) => g.params);
  }

  /** Sets every group's lr to baseLr * factor (for schedules). */
  setLrFactor(factor: number): void {
    for (const g of this.groups) g.lr = g.baseLr! * factor;
  }

  /** One update of every parameter that has a gradient. */
  step(): void {
    for (const g of this.groups) {
      for (const p of g.params) {
        if (!p.grad) continue;
        let m = this.momentumBufs.get(p);
        if (!m) {
          m = full(p.backend, p.shape, 0).persist();
          this.momentumBufs.set(p, m);
        }
        p.backend.sgdStep({
          w: p.buf,
          g: p.grad.buf,
          m: m.buf,
          n: p.numel,
          lr: g.lr,
          momentum: g.momentum,
          weightDecay: g.weightDecay,
        });
      }
    }
    this.stepCount++;
  }

  /** Frees all parameter gradients. */
  zeroGrad(): void {
    for (const p of this.params()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** State keyed by parameter name (parameters must be named, e.g. via namedParameters()). */
  stateDict(): SgdState {
    const momentum = new Map<string, Tensor>();
    for (const p of this.params()) {
      const m = this.momentumBufs.get(p);
      if (m) momentum.set(nameOf(p), m);
    }
    return {
      step: this.stepCount,
      groups: this.groups.map((g) => ({
        lr: g.lr,
        baseLr: g.baseLr!,
        momentum: g.momentum,
        weightDecay: g.weightDecay,
      })),
      momentum,
    };
  }

  /** Restores state; momentum values are copied from host arrays keyed by parameter name. */
  loadStateDict(s: {
    step: number;
    groups: { lr: number; baseLr: number; momentum: number; weightDecay: number }[];
    momentum: Map<string, Float32Array>;
  }): void {
    if (s.groups.length !== this.groups.length) {
      throw new Error(
        `SGD state has ${s.groups.length} groups, optimizer has ${this.groups.length}`,
      );
    }
    this.stepCount = s.step;
    s.groups.forEach((h, i) => Object.assign(this.groups[i], h));
    for (const p of this.params()) {
      const data = s.momentum.get(nameOf(p));
      if (!data) continue;
      if (data.length !== p.numel) throw new Error(`SGD state: momentum of ${nameOf(p)} size`);
      let m = this.momentumBufs.get(p);
      if (!m) {
        m = full(p.backend, p.shape, 0).persist();
        this.momentumBufs.set(p, m);
      }
      p.backend.write(m.buf, data);
    }
  }

  /** Frees the momentum buffers and the flat arenas' own handles. */
  dispose(): void {
    for (const m of this.momentumBufs.values()) m.dispose();
    this.momentumBufs.clear();
    for (const f of this.flat) {
      const be = f.bucket.params[0].backend;
      be.free(f.momentum.whole);
      be.free(f.bucket.p.whole);
      freeFlat(be, f.bucket.g);
    }
    this.flat.length = 0;
  }
}

export function nameOf(p: Tensor): string {
  if (!p.name) throw new Error(`optimizer state needs named parameters: ${p.describe()}`);
  return p.name;
}
