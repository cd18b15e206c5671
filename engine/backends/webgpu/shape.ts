/** Host-side shape helpers for the webgpu backend's strided kernels. */

/** Maximum rank of strided kernels after coalescing. */
export const MAX_RANK = 6;

/**
 * Drops size-1 axes and merges neighbouring axes that every view walks contiguously
 * (stride[d] == stride[d+1]·shape[d+1]), so typical views become rank 1 or 2.
 * Returns at least rank 1.
 */
export function coalesce(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (
      last >= 0 &&
      strides.every((s, v) => outStrides[v][last] === s[d] * shape[d])
    ) {
      outShape[last] *= shape[d];
      strides.forEach((s, v) => (outStrides[v][last] = s[d]));
      continue;
    }
    outShape.push(shape[d]);
    strides.forEach((s, v) => outStrides[v].push(s[d]));
  }
  if (outShape.length === 0) {
    outShape.push(1);
    outStrides.forEach((s) => s.push(0));
  }
  return { shape: outShape, strides: outStrides };
}

/** Product of a shape. */
export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/** Workgroup grid for `groups` workgroups on a 2-D grid within the 65535-per-axis limit. */
export function grid1d(groups: number): [number, number, number] {
  if (groups <= 0) return [0, 1, 1];
  const x = Math.min(groups, 65535);
  return [x, Math.ceil(groups / x), 1];
}
