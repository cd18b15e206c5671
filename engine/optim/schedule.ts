/** Learning-rate schedules as pure functions of the step: linear warmup then cosine/linear/multistep. */

export interface ScheduleConfig {
  kind: "cosine" | "linear" | "multistep" | "constant";
  warmupSteps: number;
  totalSteps: number;
  /** multistep: steps at which the factor is multiplied by gamma. */
  milestones?: number[];
  gamma?: number; // default 0.1
}

/**
 * Multiplier of the base lr at `step` (0-based, the step about to be taken): step / warmup during
 * warmup, then the chosen decay reaching 0 at totalSteps (cosine, linear) or gamma^k (multistep).
 */
export function lrFactor(step: number, c: ScheduleConfig): number {
  if (step < c.warmupSteps) return step / c.warmupSteps;
  const span = Math.max(1, c.totalSteps - c.warmupSteps);
  const t = Math.min(1, (step - c.warmupSteps) / span);
  switch (c.kind) {
    case "cosine":
      return 0.5 * (1 + Math.cos(Math.PI * t));
    case "linear":
      return 1 - t;
    case "multistep":
      return (c.gamma ?? 0.1) ** (c.milestones ?? []).filter((m) => step >= m).length;
    case "constant":
      return 1;
  }
}
