/**
 * `virtex demo`: the end-to-end run on the embedded synthetic data — generate → tokenize →
 * augment → pretrain (VirTex bicaptioning and token classification) → extract → evaluate — ending
 * in a report (markdown + SVG charts) comparing them with a random-init backbone.
 */
import { DEVICE_NAMES, isDeviceName } from "../engine/device.ts";
import { Cache } from "../pipeline/cache/store.ts";
import { FULL_DEMO, QUICK_DEMO, runDemo } from "../pipeline/demo/plan.ts";
import { writeDemoReport } from "../pipeline/demo/report.ts";
import { err, out, parseFlags, printJsonSummary, UsageError } from "./common.ts";

/** The `demo --help` text. */
export const DEMO_HELP = `usage: ./virtex demo [options]

Generates the synthetic captioned scenes, then tokenize → augment → pretrain → extract → evaluate,
ending in a report comparing a random-init backbone with VirTex bicaptioning and token
classification pretraining (VOC07 SVM mAP). Every step is cached: a second run takes seconds.

options:
  --out DIR        where the report goes (default demo-out/)
  --quick          tiny sizes (a minute; for tests)
  --finetune       also fine-tune the VirTex and a random-init backbone end to end on the
                   shape set (mAP per epoch; about 7 more minutes at full size, 2 cores)
  --device NAME    auto | wasm | webgpu | ref (default auto)
  --json           print a final one-line JSON summary`;

function machineDescription(): string {
  let cpu = "unknown CPU";
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    cpu = /model name\s*:\s*(.*)/.exec(info)?.[1]?.trim() ?? cpu;
  } catch { /* not Linux */ }
  return `${navigator.hardwareConcurrency} cores (${cpu})`;
}

/** Runs the demo; returns the exit code. */
export async function demoCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    out: { type: "string" },
    quick: { type: "boolean" },
    finetune: { type: "boolean" },
    device: { type: "string" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, "demo");
  if (values.help) {
    out(DEMO_HELP);
    return 0;
  }
  if (positionals.length) throw new UsageError(`demo: unexpected argument "${positionals[0]}"`);
  const device = values.device ?? "auto";
  if (!isDeviceName(device)) {
    throw new UsageError(
      `demo: --device must be one of ${DEVICE_NAMES.join(", ")}, not "${device}"`,
    );
  }
  const settings = { ...(values.quick ? QUICK_DEMO : FULL_DEMO), device };
  const t0 = performance.now();
  const result = await runDemo(settings, new Cache(), (m) => err(`[demo] ${m}`), {
    finetune: values.finetune,
  });
  const seconds = (performance.now() - t0) / 1000;
  const report = await writeDemoReport(
    result,
    values.out ?? "demo-out",
    seconds,
    machineDescription(),
  );
  err("");
  for (const row of result.rows) {
    err(
      `  ${row.downstream.padEnd(14)} ${
        (row.method + (row.seed === null ? "" : ` (seed ${row.seed})`)).padEnd(22)
      } mAP ${row.mAP.toFixed(2)}${
        row.mAPCI ? ` [${row.mAPCI[0].toFixed(2)}, ${row.mAPCI[1].toFixed(2)}]` : ""
      }  11-pt ${row.mAP11.toFixed(2)}`,
    );
  }
  for (const f of result.finetune) {
    err(
      `  ${f.downstream.padEnd(14)} ${`${f.method} fine-tuned`.padEnd(22)} mAP ${f.mAP.toFixed(2)}`,
    );
  }
  err(
    `\n[demo] ${result.hits}/${result.steps} steps from the cache, ${
      seconds.toFixed(0)
    } s; report: ${report}`,
  );
  if (values.json) {
    printJsonSummary({
      stage: "demo",
      key: null,
      hit: result.hits === result.steps,
      summary: { rows: result.rows, finetune: result.finetune, seconds, report },
    });
  }
  return 0;
}
