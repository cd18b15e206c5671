/** Host-side shape helpers for the webgpu backend's strided kernels. */

/** Maximum rank of strided kernels after coalescing. */
export const MAX_RANK = 6;

/** Workgroup grid for `groups` workgroups on a 2-D grid within the 65535-per-axis limit. */
export function grid1d(groups: number): [number, number, number] {
  if (groups <= 0) return [0, 1, 1];
  const x = Math.min(groups, 65535);
  return [x, Math.ceil(groups / x), 1];
}
