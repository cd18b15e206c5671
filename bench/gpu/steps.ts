/**
 * The training-step parts of bench/gpu/main.ts: `pretrain` (img/s of each case of the shapes
 * profile, f32 and AMP, losses read one step late like the trainer) and `profile` (per-kernel GPU
 * time of one step, legacy vs current kernel sets, see profile.ts).
 */
import { ampSupported, autocast } from "../../engine/amp.ts";
import { createWebGpuBackend } from "../../engine/backends/webgpu.ts";
import { type BenchCase, buildStep } from "../pretrain/step.ts";
import { type KernelProfile, profileStep } from "./profile.ts";
import type { PretrainCase, Profile } from "./shapes.ts";

/** What a part needs from main.ts: time budget, logging and atomic JSON output. */
export interface PartEnv {
  profileName: string;
  /** Seconds after start when no new measurement begins. */
  budget: number;
  elapsed(): number;
  log(s: string): void;
  writeJson(name: string, value: unknown): Promise<void>;
}

interface PretrainRow {
  case: number;
  label: string;
  batch: number;
  amp: boolean;
  imgPerSec?: number;
  stepSeconds?: number;
  steps?: number;
  warmupSeconds?: number[];
  losses?: number[];
  parameters?: number;
  /** Submits and dispatches per timed step (host-side overhead diagnostics). */
  submitsPerStep?: number;
  dispatchesPerStep?: number;
  error?: string;
}

/** "resnet50 224 px + transdec_postnorm::L1_H2048_A32_F8192, vocab 10000". */
export function caseLabel(c: PretrainCase): string {
  return `${c.visual} ${c.size} px + ${c.textual}, vocab ${c.vocab}`;
}

/** One row: build, warm up, then time steps (each loss awaited one step later). */
async function timeCase(
  p: Profile,
  env: PartEnv,
  c: BenchCase,
  row: PretrainRow,
  save: () => Promise<void>,
): Promise<void> {
  const be = await createWebGpuBackend();
  try {
    if (row.amp && !ampSupported(be)) throw new Error("skipped: no shader-f16");
    const runner = await buildStep(be, c);
    try {
      row.parameters = runner.parameters;
      const start = (s: number) => autocast(row.amp, () => runner.start(s));
      row.warmupSeconds = [];
      row.losses = [];
      let s = 0;
      for (; s < p.pretrainWarmup; s++) {
        const t0 = performance.now();
        row.losses.push(await start(s).loss);
        row.warmupSeconds.push((performance.now() - t0) / 1000);
        env.log(`  warmup step ${s + 1}: ${row.warmupSeconds.at(-1)!.toFixed(2)} s`);
        await save();
      }
      const c0 = be.counters();
      const t0 = performance.now();
      let n = 0, prev: Promise<number> | null = null;
      while (
        n < p.pretrainMinSteps ||
        (performance.now() - t0 < p.pretrainSeconds * 1000 && env.elapsed() < env.budget)
      ) {
        const { loss } = start(s++);
        if (prev) row.losses.push(await prev);
        prev = loss;
        n++;
        if (n >= p.pretrainMinSteps && env.elapsed() > env.budget) break;
      }
      if (prev) row.losses.push(await prev);
      await be.flush(); // the last optimizer step
      const total = (performance.now() - t0) / 1000;
      row.steps = n;
      row.stepSeconds = total / n;
      row.imgPerSec = (c.batch * n) / total;
      const c1 = be.counters();
      row.submitsPerStep = (c1.submits - c0.submits) / n;
      row.dispatchesPerStep = (c1.dispatches - c0.dispatches) / n;
      const finite = row.losses.every(Number.isFinite);
      env.log(
        `  ${row.imgPerSec.toFixed(2)} img/s over ${n} steps (${
          row.stepSeconds.toFixed(3)
        } s/step, ` +
          `${row.submitsPerStep} submits and ${row.dispatchesPerStep} dispatches per step), ` +
          `losses ${row.losses.map((l) => l.toFixed(3)).join(" ")}${finite ? "" : " NON-FINITE"}`,
      );
    } finally {
      runner.dispose();
    }
  } finally {
    be.destroy();
  }
}

/** The pretrain part: every case (or those in `only`), f32 then AMP. */
export async function partPretrain(p: Profile, env: PartEnv, only?: number[]): Promise<void> {
  const rows: PretrainRow[] = [];
  const save = () =>
    env.writeJson("ours_pretrain.json", {
      profile: env.profileName,
      cases: p.pretrain,
      warmup: p.pretrainWarmup,
      minSteps: p.pretrainMinSteps,
      seconds: p.pretrainSeconds,
      date: new Date().toISOString(),
      results: rows,
    });
  for (const [ci, pc] of p.pretrain.entries()) {
    if (only && !only.includes(ci)) continue;
    // the first (paper) case falls back to batch 8 when its batch fails (memory)
    const batches = ci === 0 && pc.batch > 8 ? [pc.batch, 8] : [pc.batch];
    for (const batch of batches) {
      const c: BenchCase = { key: `gpu${ci}`, ...pc, batch, accumulate: 1 };
      let f32Ok = false;
      for (const amp of [false, true]) {
        const row: PretrainRow = { case: ci, label: caseLabel(pc), batch, amp };
        rows.push(row);
        if (rows.length > 1 && env.elapsed() > env.budget) {
          row.error = "skipped: part budget spent";
          env.log(`case ${ci} batch ${batch} amp ${amp}: ${row.error}`);
          continue;
        }
        env.log(`pretrain ${row.label}, batch ${batch}, ${amp ? "AMP (f16 matmuls)" : "f32"}`);
        try {
          await timeCase(p, env, c, row, save);
          if (!amp) f32Ok = true;
        } catch (e) {
          row.error = (e as Error).message;
          env.log(`  FAILED: ${row.error}`);
        }
        await save();
      }
      if (f32Ok) break; // the fallback batch only runs when the configured one failed
    }
  }
}

/** The profile part: legacy then current kernel set on the profile case → ours_profile.json. */
export async function partProfile(p: Profile, env: PartEnv): Promise<void> {
  const pc = p.pretrain[p.profile.case];
  const results: KernelProfile[] = [];
  const save = () =>
    env.writeJson("ours_profile.json", {
      profile: env.profileName,
      case: pc,
      label: caseLabel(pc),
      warmup: p.profile.warmup,
      timed: p.profile.timed,
      date: new Date().toISOString(),
      results,
    });
  for (const kernels of ["legacy", "current"] as const) {
    if (results.length > 0 && env.elapsed() > env.budget) {
      env.log(`profile ${kernels}: skipped, part budget spent`);
      break;
    }
    // like the pretrain part, the paper's batch falls back to 8 when it fails
    for (const batch of pc.batch > 8 ? [pc.batch, 8] : [pc.batch]) {
      env.log(`profile ${caseLabel(pc)}, batch ${batch}, ${kernels} kernels`);
      const r = await profileStep({ key: "profile", ...pc, batch, accumulate: 1 }, kernels, {
        warmup: p.profile.warmup,
        timed: p.profile.timed,
        log: env.log,
      });
      results.push(r);
      await save();
      if (!r.error) break;
    }
  }
}
