/**
 * Kernel descriptions for the webgpu backend: a uniform parameter struct, a list of storage
 * bindings and a WGSL body. `assembleWgsl` turns a spec into a complete shader module so every
 * kernel declares its bindings the same way (binding 0 = uniform params, 1.. = storage).
 */

/** Scalar type of one uniform parameter field. */
export type ParamType = "u32" | "i32" | "f32";

/** One field of a kernel's uniform struct `P` (read in WGSL as `u.<name>`). */
export type ParamField = readonly [name: string, type: ParamType];

/**
 * Element type a storage binding is declared with in WGSL; the vec4 forms let GEMM kernels load
 * 16 (or 8) bytes at once from operands whose rows and offsets are multiples of four elements.
 */
export type ElemType = "f32" | "i32" | "u32" | "f16" | "vec4<f32>" | "vec4<f16>";

/** True for bindings that hold f16 data (scalar or vec4). */
export function isHalf(t: ElemType): boolean {
  return t === "f16" || t === "vec4<f16>";
}

/** One storage binding; `rw` marks it writable (read_write), otherwise read-only. */
export interface BindingSpec {
  readonly name: string;
  readonly type: ElemType;
  readonly rw: boolean;
}

/** A compute kernel: compiled once per `key` and cached. */
export interface KernelSpec {
  readonly key: string;
  readonly params: readonly ParamField[];
  readonly bindings: readonly BindingSpec[];
  /** WGSL functions and the `@compute fn main` entry point; may use `u` and binding names. */
  readonly body: string;
  /** Extra `enable` directives, e.g. "f16". */
  readonly enables?: readonly string[];
}

/** Shorthand for a read-only storage binding. */
export function ro(name: string, type: ElemType = "f32"): BindingSpec {
  return { name, type, rw: false };
}

/** Shorthand for a writable storage binding. */
export function rw(name: string, type: ElemType = "f32"): BindingSpec {
  return { name, type, rw: true };
}

/** Byte size of the uniform struct (fields are 4 bytes; struct size rounds up to 16). */
export function paramBytes(params: readonly ParamField[]): number {
  return Math.max(16, Math.ceil((params.length * 4) / 16) * 16);
}

/** Builds the full WGSL module text for a kernel spec. */
export function assembleWgsl(spec: KernelSpec): string {
  const lines: string[] = [];
  for (const e of spec.enables ?? []) lines.push(`enable ${e};`);
  const fields = spec.params.length > 0 ? spec.params : [["_pad", "u32"] as const];
  lines.push(`struct P {\n${fields.map(([n, t]) => `  ${n}: ${t},`).join("\n")}\n};`);
  lines.push(`@group(0) @binding(0) var<uniform> u: P;`);
  spec.bindings.forEach((b, i) => {
    const access = b.rw ? "read_write" : "read";
    lines.push(`@group(0) @binding(${i + 1}) var<storage, ${access}> ${b.name}: array<${b.type}>;`);
  });
  lines.push(spec.body);
  return lines.join("\n");
}

/**
 * WGSL snippet: flat workgroup index over a 2-D dispatch grid (x up to 65535, then y), for
 * kernels whose workgroup count can exceed the per-dimension limit. Needs `wid` and `nwg`.
 */
export const FLAT_WG = `(wid.y * nwg.x + wid.x)`;

/** Entry-point builtins used with FLAT_WG. */
export const WG_BUILTINS =
  `@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, ` +
  `@builtin(local_invocation_index) lid: u32`;
