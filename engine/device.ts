/**
 * Backend selection: `createBackend("auto" | "wasm" | "webgpu" | "ref")`. `auto` takes webgpu
 * when a hardware adapter exists and wasm otherwise (a fallback / software adapter such as
 * llvmpipe or lavapipe counts as no GPU).
 */
import type { Backend } from "./backend.ts";
import { createRefBackend } from "./backends/ref.ts";

export type DeviceName = "auto" | "wasm" | "webgpu" | "ref";

/** Adapter facts that decide `auto`. */
export interface AdapterProbe {
  available: boolean;
  software: boolean;
  description: string;
}

const SOFTWARE_ADAPTERS = /llvmpipe|lavapipe|swiftshader|softpipe|software|microsoft basic render/i;

/** Asks navigator.gpu for an adapter and classifies it as hardware or software. */
export async function probeWebGpu(): Promise<AdapterProbe> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) return { available: false, software: false, description: "navigator.gpu missing" };
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (e) {
    return { available: false, software: false, description: `requestAdapter failed: ${e}` };
  }
  if (!adapter) return { available: false, software: false, description: "no adapter" };
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const text = info
    ? [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(" ")
    : "";
  // Deno 2.9 reports the flag on adapter.info; older WebGPU drafts had it on the adapter.
  const fallback =
    (info as (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined)?.isFallbackAdapter ===
      true ||
    (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return { available: true, software: fallback || SOFTWARE_ADAPTERS.test(text), description: text };
}

/** Picks the concrete backend `auto` means on this machine. */
export async function resolveDevice(name: DeviceName): Promise<Exclude<DeviceName, "auto">> {
  if (name !== "auto") return name;
  const probe = await probeWebGpu();
  return probe.available && !probe.software ? "webgpu" : "wasm";
}

async function loadModule<T>(path: string, what: string): Promise<T> {
  try {
    return await import(path) as T;
  } catch (e) {
    throw new Error(`the ${what} backend is not available (${path} failed to load): ${e}`);
  }
}

/** Creates a backend by name. */
export async function createBackend(name: DeviceName = "auto"): Promise<Backend> {
  const resolved = await resolveDevice(name);
  switch (resolved) {
    case "ref":
      return await createRefBackend();
    case "wasm": {
      const m = await loadModule<{ createWasmBackend?: () => Promise<Backend> }>(
        "./backends/wasm.ts",
        "wasm",
      );
      if (!m.createWasmBackend) throw new Error("engine/backends/wasm.ts has no createWasmBackend");
      return await m.createWasmBackend();
    }
    case "webgpu": {
      const m = await loadModule<{ createWebGpuBackend?: () => Promise<Backend> }>(
        "./backends/webgpu.ts",
        "webgpu",
      );
      if (!m.createWebGpuBackend) {
        throw new Error("engine/backends/webgpu.ts has no createWebGpuBackend");
      }
      return await m.createWebGpuBackend();
    }
    default:
      throw new Error(`unknown device "${name}" (expected auto, wasm, webgpu or ref)`);
  }
}
