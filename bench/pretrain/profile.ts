/**
 * Where a pretraining step's time goes on the wasm backend: every Backend method call is timed
 * (the wasm kernels run synchronously, so a call's wall time is its kernel time) and summed by
 * method and, for matmul / conv, by shape. The rest of the step is host-side work (autograd,
 * tensor bookkeeping, JS between kernels).
 *
 *   deno run -A bench/pretrain/profile.ts [--case a|b|demo] [--visual NAME] [--threads 2]
 *                                         [--warmup 2] [--steps 3] [--top 25]
 *
 * Wrap in `flock /tmp/virtex-bench.lock` on a shared machine.
 */
import { parseArgs } from "node:util";
import type { Backend } from "../../engine/backend.ts";
import { callShape } from "../common.ts";
import { createWasmBackend } from "../../engine/backends/wasm.ts";
import { buildStep, CASES } from "./step.ts";

interface Acc {
  calls: number;
  ms: number;
  flops: number;
}

/** Wraps every method of `be` so each call's time is added to `table` under a key. */
export function profiledBackend(be: Backend, table: Map<string, Acc>): Backend {
  const add = (key: string, ms: number, flops = 0) => {
    const a = table.get(key) ?? { calls: 0, ms: 0, flops: 0 };
    a.calls++;
    a.ms += ms;
    a.flops += flops;
    table.set(key, a);
  };
  return new Proxy(be, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== "function" || typeof prop !== "string") return v;
      return (...args: unknown[]) => {
        const t0 = performance.now();
        const r = v.apply(target, args);
        const ms = performance.now() - t0;
        const { shape, flops } = callShape(prop, args);
        add(prop, ms, flops);
        if (shape) add(`${prop} ${shape}`, ms, flops);
        return r;
      };
    },
  });
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      case: { type: "string", default: "a" },
      threads: { type: "string", default: "2" },
      warmup: { type: "string", default: "2" },
      steps: { type: "string", default: "3" },
      top: { type: "string", default: "25" },
      visual: { type: "string" },
    },
  });
  const known = CASES[values.case];
  if (!known) {
    console.error(
      `bench/pretrain/profile: unknown case "${values.case}" (${Object.keys(CASES).join(", ")})`,
    );
    Deno.exit(2);
  }
  // --visual swaps the case's backbone (e.g. resnet18_w32) to see where a smaller net's time goes.
  const c = { ...known, visual: values.visual ?? known.visual };
  const warmup = Number(values.warmup), steps = Number(values.steps), top = Number(values.top);
  const raw = await createWasmBackend({ threads: Number(values.threads) });
  const table = new Map<string, Acc>();
  const be = profiledBackend(raw, table);
  const runner = await buildStep(be, c);
  for (let s = 0; s < warmup; s++) await runner.step(s);
  table.clear();
  const t0 = performance.now();
  for (let s = warmup; s < warmup + steps; s++) await runner.step(s);
  const wall = (performance.now() - t0) / steps;
  runner.dispose();
  raw.destroy();

  const methods = [...table].filter(([k]) => !k.includes(" "));
  const kernelMs = methods.reduce((a, [, v]) => a + v.ms, 0) / steps;
  console.log(
    `profile (${values.case}) ${c.visual} ${c.size} px + ${c.textual}, batch ${c.batch}: ` +
      `${(wall / 1000).toFixed(2)} s/step, backend calls ${(kernelMs / 1000).toFixed(2)} s ` +
      `(${((100 * kernelMs) / wall).toFixed(1)}%), other host work ${
        ((wall - kernelMs) / 1000).toFixed(2)
      } s; load ${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")}`,
  );
  const show = (title: string, rows: [string, Acc][]) => {
    console.log(`\n${title}`);
    console.log(
      `${"ms/step".padStart(9)} ${"share".padStart(6)} ${"calls".padStart(6)} GF/s  name`,
    );
    for (const [k, v] of rows.sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) {
      const gf = v.flops ? (v.flops / (v.ms / 1000) / 1e9).toFixed(1) : "";
      console.log(
        `${(v.ms / steps).toFixed(1).padStart(9)} ${
          ((100 * v.ms) / steps / wall).toFixed(1).padStart(5)
        }% ${
          (Number.isInteger(v.calls / steps)
            ? String(v.calls / steps)
            : (v.calls / steps).toFixed(1))
            .padStart(6)
        } ${gf.padStart(5)} ${k}`,
      );
    }
  };
  show("by backend method", methods);
  show("by shape (matmul / conv)", [...table].filter(([k]) => k.includes(" ")));
}

if (import.meta.main) await main();
