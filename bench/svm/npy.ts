/** Writes NumPy .npy (version 1.0) files for float32 and int8 C-order arrays. */

/** Encodes `data` with `shape` as .npy bytes. */
export function encodeNpy(data: Float32Array | Int8Array, shape: number[]): Uint8Array {
  const descr = data instanceof Float32Array ? "<f4" : "|i1";
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Magic (6) + version (2) + length (2) + header + "\n" is padded to a multiple of 64.
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += " ".repeat(pad % 64) + "\n";
  const head = new TextEncoder().encode(header);
  const out = new Uint8Array(10 + head.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0); // \x93NUMPY v1.0
  new DataView(out.buffer).setUint16(8, head.length, true);
  out.set(head, 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + head.length);
  return out;
}

/** Writes an .npy file atomically (temp name, then rename). */
export async function writeNpy(
  path: string,
  data: Float32Array | Int8Array,
  shape: number[],
): Promise<void> {
  const tmp = `${path}.tmp.${Deno.pid}`;
  await Deno.writeFile(tmp, encodeNpy(data, shape));
  await Deno.rename(tmp, path);
}
