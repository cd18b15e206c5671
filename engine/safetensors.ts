/**
 * safetensors format: 8-byte little-endian header length, a JSON header
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}} padded with
 * spaces to a multiple of 8, then the raw little-endian tensor bytes. Layout-compatible with the
 * Python `safetensors` package.
 */
import type { HostTensor, Module } from "./nn/module.ts";
import type { Tensor } from "./tensor.ts";

export type StDType = "F32" | "F16" | "BF16" | "F64" | "I32" | "I64" | "U8" | "I8" | "BOOL";

const SIZES: Record<StDType, number> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I32: 4,
  I64: 8,
  U8: 1,
  I8: 1,
  BOOL: 1,
};

const LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Serializes host tensors (f32 -> F32, i32 -> I32) in name order. */
export function encodeSafetensors(
  tensors: Map<string, HostTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  if (!LE) throw new Error("safetensors: big-endian hosts are not supported");
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`safetensors: ${name} shape [${t.shape}] != data`);
    const dtype = t.data instanceof Float32Array ? "F32" : "I32";
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + 4 * n] };
    offset += 4 * n;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const name of names) {
    const d = tensors.get(name)!.data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Parsed file: tensors (floats as Float32Array, integers as Int32Array) and metadata. */
export interface SafetensorsFile {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

/** Parses a safetensors byte buffer; `source` names the file in errors. */
export function decodeSafetensors(bytes: Uint8Array, source = "<buffer>"): SafetensorsFile {
  if (bytes.length < 8) throw new Error(`${source}: not a safetensors file (too short)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = Number(dv.getBigUint64(0, true));
  if (8 + hlen > bytes.length) throw new Error(`${source}: header length ${hlen} exceeds file`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hlen)));
  } catch (e) {
    throw new Error(`${source}: bad JSON header: ${e}`);
  }
  const base = 8 + hlen;
  const tensors = new Map<string, HostTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = v as Record<string, string>;
      continue;
    }
    const info = v as { dtype: StDType; shape: number[]; data_offsets: [number, number] };
    const size = SIZES[info.dtype];
    if (!size) throw new Error(`${source}: tensor ${name}: unsupported dtype ${info.dtype}`);
    const n = info.shape.reduce((a, b) => a * b, 1);
    const [b, e] = info.data_offsets;
    if (e - b !== n * size || base + e > bytes.length) {
      throw new Error(`${source}: tensor ${name}: data_offsets [${b}, ${e}] do not fit`);
    }
    const raw = bytes.slice(base + b, base + e);
    const rv = new DataView(raw.buffer);
    let data: Float32Array | Int32Array;
    switch (info.dtype) {
      case "F32":
        data = new Float32Array(raw.buffer);
        break;
      case "F64":
        data = Float32Array.from(new Float64Array(raw.buffer));
        break;
      case "F16":
        data = Float32Array.from({ length: n }, (_, i) => f16ToF32(rv.getUint16(2 * i, true)));
        break;
      case "BF16": {
        const bits = new Uint32Array(n);
        for (let i = 0; i < n; i++) bits[i] = rv.getUint16(2 * i, true) << 16;
        data = new Float32Array(bits.buffer);
        break;
      }
      case "I32":
        data = new Int32Array(raw.buffer);
        break;
      case "I64":
        data = Int32Array.from({ length: n }, (_, i) => {
          const x = rv.getBigInt64(8 * i, true);
          if (x > 2147483647n || x < -2147483648n) {
            throw new Error(`${source}: tensor ${name}: I64 value ${x} exceeds i32`);
          }
          return Number(x);
        });
        break;
      case "U8":
      case "BOOL":
        data = Int32Array.from(raw);
        break;
      case "I8":
        data = Int32Array.from(new Int8Array(raw.buffer));
        break;
    }
    tensors.set(name, { shape: info.shape, data });
  }
  return { tensors, metadata };
}

/** Reads device tensors back to the host. */
export async function toHost(tensors: Map<string, Tensor>): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  for (const [name, t] of tensors) out.set(name, { shape: [...t.shape], data: await t.data() });
  return out;
}

/** Writes a file atomically (temp name in the same directory, then rename). */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.${Deno.pid}.${Date.now()}.tmp`;
  try {
    await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Saves device tensors (e.g. module.stateDict()) to a .safetensors file. */
export async function saveSafetensors(
  path: string,
  tensors: Map<string, Tensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(await toHost(tensors), metadata));
}

/** Loads a .safetensors file to the host. */
export async function loadSafetensors(path: string): Promise<SafetensorsFile> {
  return decodeSafetensors(await Deno.readFile(path), path);
}

/** Saves a module's state dict. */
export async function saveModule(path: string, m: Module, meta?: Record<string, string>) {
  await saveSafetensors(path, m.stateDict(), meta);
}

/** Loads a module's state dict (strict by default). */
export async function loadModule(path: string, m: Module, strict = true) {
  const f = await loadSafetensors(path);
  try {
    return m.loadStateDict(f.tensors, strict);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}
