/** All differentiable ops, one import. */
export * from "./elementwise.ts";
export * from "./shape.ts";
export * from "./linalg.ts";
export * from "./conv.ts";
export * from "./norm.ts";
export * from "./reduce.ts";
export * from "./nnfunc.ts";
export * from "./loss.ts";
export * from "./attention.ts";
export { broadcastTo, sumToShape } from "./util.ts";
