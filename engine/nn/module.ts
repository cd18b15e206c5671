/**
 * Module base: named parameters, buffers and child modules with PyTorch-style dotted names
 * ("layer1.0.conv1.weight"), train/eval mode, state dicts.
 */
import type { Backend, DType } from "../backend.ts";
import { empty, parameter, type Tensor } from "../tensor.ts";

/** Host copy of one tensor of a state dict. */
export interface HostTensor {
  shape: number[];
  data: Float32Array | Int32Array;
}

export class Module {
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  constructor(readonly backend: Backend) {}

  /** Creates (uninitialised) and registers a trainable parameter. */
  protected param(name: string, shape: number[]): Tensor {
    return this.registerParameter(name, empty(this.backend, shape));
  }

  /** Registers an existing tensor as a parameter (marks it trainable and kept). */
  registerParameter(name: string, t: Tensor): Tensor {
    this.checkName(name);
    this.params.set(name, parameter(t, name));
    return t;
  }

  /** The parameter registered here under a local name. */
  getParameter(name: string): Tensor | undefined {
    return this.params.get(name);
  }

  /**
   * Replaces parameter `name` by a tensor shared with another module (weight tying, e.g. the
   * output layer and the token embedding); the replaced tensor is freed.
   */
  tieParameter(name: string, shared: Tensor): void {
    const old = this.params.get(name);
    if (!old) throw new Error(`tieParameter: no parameter "${name}"`);
    if (old.numel !== shared.numel || old.shape.join() !== shared.shape.join()) {
      throw new Error(`tieParameter: ${name} [${old.shape}] vs shared [${shared.shape}]`);
    }
    if (old !== shared) {
      old.grad?.dispose();
      old.dispose();
    }
    this.params.set(name, shared);
  }

  /** Creates (uninitialised) and registers a non-trainable state tensor (running stats). */
  protected buffer(name: string, shape: number[], dtype: DType = "f32"): Tensor {
    return this.registerBuffer(name, empty(this.backend, shape, dtype));
  }

  registerBuffer(name: string, t: Tensor): Tensor {
    this.checkName(name);
    t.name = name;
    this.buffers.set(name, t.persist());
    return t;
  }

  /** Registers a child module under `name` and returns it. */
  registerModule<M extends Module>(name: string, m: M): M {
    this.checkName(name);
    this.children.set(name, m);
    return m;
  }

  private checkName(name: string): void {
    if (!name || name.includes(".")) throw new Error(`bad module member name "${name}"`);
    if (this.params.has(name) || this.buffers.has(name) || this.children.has(name)) {
      throw new Error(`module member "${name}" registered twice`);
    }
  }

  /** This module ("" ) and every descendant with dotted names, parents first. */
  namedModules(): [string, Module][] {
    const out: [string, Module][] = [];
    this.visit("", (m, prefix) => out.push([prefix.replace(/\.$/, ""), m]));
    return out;
  }

  /** Child modules with their local names. */
  namedChildren(): [string, Module][] {
    return [...this.children];
  }

  /**
   * All parameters with dotted names, each tensor once (the first name wins for shared ones,
   * like torch's named_parameters). Also stamps the names onto the tensors.
   */
  namedParameters(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    this.walk(prefix, (name, t, kind) => {
      if (kind !== "param" || seen.has(t)) return;
      seen.add(t);
      t.name = name;
      out.push([name, t]);
    });
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    this.walk(prefix, (name, t, kind) => {
      if (kind === "buffer") out.push([name, t]);
    });
    return out;
  }

  private walk(prefix: string, fn: (name: string, t: Tensor, kind: "param" | "buffer") => void) {
    for (const [n, t] of this.params) fn(prefix + n, t, "param");
    for (const [n, t] of this.buffers) fn(prefix + n, t, "buffer");
    for (const [n, m] of this.children) m.walk(`${prefix}${n}.`, fn);
  }

  /** Every parameter and buffer by dotted name (shared tensors under every name, as torch). */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    this.walk("", (name, t) => out.set(name, t));
    return out;
  }

  /** Reads the state dict back to the host. */
  async stateDictHost(): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const [name, t] of this.stateDict()) {
      out.set(name, { shape: [...t.shape], data: await t.data() });
    }
    return out;
  }

  /**
   * Copies values into the module's tensors. strict: every key must match exactly (missing and
   * unexpected keys are errors); otherwise they are returned.
   */
  loadStateDict(
    dict: Map<string, HostTensor>,
    strict = true,
  ): { missing: string[]; unexpected: string[] } {
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !dict.has(k));
    const unexpected = [...dict.keys()].filter((k) => !own.has(k));
    if (strict && (missing.length > 0 || unexpected.length > 0)) {
      throw new Error(
        `loadStateDict: missing [${missing.join(", ")}], unexpected [${unexpected.join(", ")}]`,
      );
    }
    for (const [name, t] of own) {
      const h = dict.get(name);
      if (!h) continue;
      const n = h.shape.reduce((a, b) => a * b, 1);
      if (n !== t.numel || h.data.length !== t.numel) {
        throw new Error(`loadStateDict: ${name} has shape [${h.shape}], expected [${t.shape}]`);
      }
      const data = t.dtype === "f32"
        ? (h.data instanceof Float32Array ? h.data : Float32Array.from(h.data))
        : (h.data instanceof Int32Array ? h.data : Int32Array.from(h.data));
      if (t.numel > 0) this.backend.write(t.buf, data);
    }
    this.visit("", (m, prefix) => m.afterLoad(dict, prefix));
    return { missing, unexpected };
  }

  /** Hook run on every module after `loadStateDict` (host-side state such as counters). */
  protected afterLoad(_dict: Map<string, HostTensor>, _prefix: string): void {}

  private visit(prefix: string, fn: (m: Module, prefix: string) => void): void {
    fn(this, prefix);
    for (const [n, m] of this.children) m.visit(`${prefix}${n}.`, fn);
  }

  /** Sets training mode recursively. */
  train(on = true): this {
    this.training = on;
    for (const m of this.children.values()) m.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Drops every parameter's gradient (frees the buffers). */
  zeroGrad(): void {
    for (const t of this.parameters()) {
      t.grad?.dispose();
      t.grad = null;
    }
  }

  /** Frees all parameters, buffers and gradients (shared tensors once). */
  dispose(): void {
    this.zeroGrad();
    const all = new Set<Tensor>();
    this.walk("", (_, t) => all.add(t));
    for (const t of all) t.dispose();
  }
}

/** Children applied in order, named "0", "1", … (torch.nn.Sequential). */
export class Sequential<M extends Module & { forward(x: Tensor): Tensor }> extends Module {
  readonly layers: M[];
  constructor(backend: Backend, layers: M[]) {
    super(backend);
    this.layers = layers;
    layers.forEach((m, i) => this.registerModule(String(i), m));
  }
  forward(x: Tensor): Tensor {
    for (const m of this.layers) x = m.forward(x);
    return x;
  }
}
