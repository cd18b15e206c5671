/** The compute engine's public surface: tensors, autograd, ops, modules, optimizers, devices. */
export type { Backend, Buf, DType } from "./backend.ts";
export { empty, full, parameter, Tensor, tensor, zeros } from "./tensor.ts";
export { isGradEnabled, noGrad, tidy, tidyAsync } from "./scope.ts";
export { autocast, autocastAsync, isAutocast } from "./amp.ts";
export * as ops from "./ops/index.ts";
export * as nn from "./nn/index.ts";
export * as optim from "./optim/index.ts";
export { CounterRng, defaultRng, SeededRng } from "./rng.ts";
export { setInitSeed } from "./init.ts";
export { createBackend, type DeviceName, probeWebGpu, resolveDevice } from "./device.ts";
export * from "./safetensors.ts";
