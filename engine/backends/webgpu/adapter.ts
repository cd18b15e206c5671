/**
 * The one WebGPU adapter probe: availability, name, software/fallback detection, f16 support.
 * Used by device selection (`auto`), the webgpu backend, the CLI, tests and benchmarks.
 */

/** What the device chooser needs to know about the WebGPU adapter. */
export interface WebGpuProbe {
  available: boolean;
  adapterName?: string;
  vendor?: string;
  /** True for software/fallback adapters (e.g. llvmpipe): `auto` does not pick those. */
  isFallback?: boolean;
  hasF16?: boolean;
  /** Why no adapter is available. */
  reason?: string;
}

const SOFTWARE_NAMES = /llvmpipe|lavapipe|swiftshader|softpipe|software|\bwarp\b|basic render/i;

/**
 * True for software adapters: Deno reports `info.isFallbackAdapter` (true for llvmpipe/lavapipe);
 * older implementations put it on the adapter; known software names count too.
 */
export function adapterIsFallback(a: GPUAdapter): boolean {
  const info = a.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const legacy = (a as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter;
  const text = [info.vendor, info.architecture, info.device, info.description].join(" ");
  return info.isFallbackAdapter === true || legacy === true || SOFTWARE_NAMES.test(text);
}

/** A human-readable adapter name (description, else device, else vendor). */
export function adapterName(a: GPUAdapter): string {
  const i = a.info;
  return i.description || i.device || i.vendor || "unknown adapter";
}

/** Looks for a WebGPU adapter without creating a device. */
export async function probeWebGpu(
  opts: { powerPreference?: GPUPowerPreference } = {},
): Promise<WebGpuProbe> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) return { available: false, reason: "navigator.gpu is not defined" };
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference });
  } catch (e) {
    return { available: false, reason: `requestAdapter failed: ${(e as Error).message}` };
  }
  if (!adapter) return { available: false, reason: "no WebGPU adapter" };
  return {
    available: true,
    adapterName: adapterName(adapter),
    vendor: adapter.info.vendor,
    isFallback: adapterIsFallback(adapter),
    hasF16: adapter.features.has("shader-f16"),
  };
}
