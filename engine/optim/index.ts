/** Optimizers, clipping and schedules, one import. */
export * from "./sgd.ts";
export * from "./lookahead.ts";
export * from "./clip.ts";
export * from "./loss_scaler.ts";
export * from "./schedule.ts";
export * from "./state_io.ts";
