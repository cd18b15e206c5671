/** Neural-network modules, one import. */
export * from "./module.ts";
export * from "./layers.ts";
export * from "./attention.ts";
export * from "./transformer.ts";
export * from "./resnet_blocks.ts";
