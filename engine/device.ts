/**
 * Backend selection: `createBackend("auto" | "wasm" | "webgpu" | "ref")`. `auto` takes webgpu
 * when a hardware adapter exists and wasm otherwise (a fallback / software adapter such as
 * llvmpipe or lavapipe counts as no GPU).
 */
import type { Backend } from "./backend.ts";
import { createRefBackend } from "./backends/ref.ts";
import { probeWebGpu } from "./backends/webgpu/adapter.ts";

export { probeWebGpu, type WebGpuProbe } from "./backends/webgpu/adapter.ts";

/** Every device name a command accepts, `auto` first: the one list the CLI and configs use. */
export const DEVICE_NAMES = ["auto", "wasm", "webgpu", "ref"] as const;
export type DeviceName = typeof DEVICE_NAMES[number];

/** True when `name` is one of DEVICE_NAMES. */
export function isDeviceName(name: string): name is DeviceName {
  return (DEVICE_NAMES as readonly string[]).includes(name);
}

/** Picks the concrete backend `auto` means on this machine. */
export async function resolveDevice(name: DeviceName): Promise<Exclude<DeviceName, "auto">> {
  if (name !== "auto") return name;
  const probe = await probeWebGpu();
  return probe.available && !probe.isFallback ? "webgpu" : "wasm";
}

async function loadModule<T>(path: string, what: string): Promise<T> {
  try {
    return await import(path) as T;
  } catch (e) {
    throw new Error(`the ${what} backend is not available (${path} failed to load): ${e}`);
  }
}

/** Options of createBackend. */
export interface BackendOptions {
  /** wasm: threads (main + workers); default every core. */
  threads?: number;
}

/** Creates a backend by name. */
export async function createBackend(
  name: DeviceName = "auto",
  opts: BackendOptions = {},
): Promise<Backend> {
  const resolved = await resolveDevice(name);
  switch (resolved) {
    case "ref":
      return await createRefBackend();
    case "wasm": {
      const m = await loadModule<
        { createWasmBackend?: (o: { threads?: number }) => Promise<Backend> }
      >(
        "./backends/wasm.ts",
        "wasm",
      );
      if (!m.createWasmBackend) throw new Error("engine/backends/wasm.ts has no createWasmBackend");
      return await m.createWasmBackend({ threads: opts.threads });
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
      throw new Error(`unknown device "${name}" (expected ${DEVICE_NAMES.join(", ")})`);
  }
}
