/** `virtex <stage> [--config FILE] [--set k=v]… [--input name=REF|PATH]… [--json]`. */
import { Cache } from "../pipeline/cache/store.ts";
import { applySets, ConfigError, describeSchema, loadConfigFile } from "../pipeline/config.ts";
import { currentWorld } from "../pipeline/dist.ts";
import { runStage } from "../pipeline/runner.ts";
import type { Stage } from "../pipeline/stage.ts";
import { checkSetFlags, err, out, parseFlags, printJsonSummary, UsageError } from "./common.ts";

/** Options every stage command accepts. */
export const STAGE_FLAGS = {
  config: { type: "string" },
  set: { type: "string", multiple: true },
  input: { type: "string", multiple: true },
  json: { type: "boolean" },
  force: { type: "boolean" },
  "skip-bad": { type: "boolean" },
  ref: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** The `--help` text of a stage command, with its config keys from the zod schema. */
export function stageHelp(stage: Stage<unknown>): string {
  const keys = describeSchema(stage.schema);
  const rows = keys.map((k) => [
    k.key,
    k.type,
    k.default === undefined
      ? "(required)"
      : k.default.length > 40
      ? "default: see right"
      : `default ${k.default}`,
    k.description ?? "",
  ]);
  // column widths, capped so one long enum does not push every row far right
  const w = [0, 1, 2].map((c) => Math.min(32, Math.max(4, ...rows.map((r) => r[c].length))));
  const table = rows.map((r) =>
    `  ${r[0].padEnd(w[0])}  ${r[1].padEnd(w[1])}  ${r[2].padEnd(w[2])}  ${r[3]}`.trimEnd()
  );
  const inputs = Object.entries(stage.artifactInputs ?? {}).map(([name, s]) => {
    const kind = typeof s.kind === "string" ? s.kind : s.kind.join("|");
    return `  --input ${`${name}=<${kind} artifact>`.padEnd(34)} ${s.description}${
      s.needed ? "" : " (required)"
    }`;
  });
  return [
    `usage: ./virtex ${stage.name} [options]`,
    "",
    "Runs the stage through the cache: same config + inputs + code → same artifact key,",
    "and a second run is a cache hit.",
    "",
    "options:",
    "  --config FILE         JSON file with config keys (below)",
    "  --set KEY=VALUE       override one key (dotted for nested; VALUE parsed as JSON if it can be)",
    "  --input NAME=REF      an input artifact (key, key prefix or ref) or file/folder path",
    "  --skip-bad            skip and count bad input records instead of failing (sets skipBad)",
    "  --force               rebuild even if the artifact is cached",
    `  --ref NAME            name of the cache ref recorded for gc (default "${stage.name}")`,
    "  --json                print a final one-line JSON summary {stage, key, hit, summary}",
    "",
    ...(inputs.length ? ["inputs (checked before any work):", ...inputs, ""] : []),
    `config keys (stage version ${stage.version}):`,
    ...(table.length ? table : ["  (none)"]),
  ].join("\n");
}

/** Turns `--input name=value` flags into artifact refs and file paths. */
export function parseInputs(
  specs: string[],
): { inputs: Record<string, string>; inputFiles: Record<string, string> } {
  const inputs: Record<string, string> = {};
  const inputFiles: Record<string, string> = {};
  for (const s of specs) {
    const eq = s.indexOf("=");
    if (eq <= 0) throw new UsageError(`--input "${s}": expected NAME=REF or NAME=PATH`);
    const name = s.slice(0, eq), value = s.slice(eq + 1);
    let isPath = false;
    try {
      Deno.statSync(value);
      isPath = true;
    } catch { /* not a path: an artifact ref */ }
    if (isPath) inputFiles[name] = value;
    else inputs[name] = value;
  }
  return { inputs, inputFiles };
}

/** Hash-free check that the schema declares a top-level key. */
function schemaHasKey(stage: Stage<unknown>, key: string): boolean {
  return describeSchema(stage.schema).some((k) => k.key === key);
}

/** Runs one stage command; returns the exit code. */
export async function stageCommand(stage: Stage<unknown>, args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, STAGE_FLAGS, stage.name);
  if (values.help) {
    out(stageHelp(stage));
    return 0;
  }
  if (positionals.length) {
    throw new UsageError(`${stage.name}: unexpected argument "${positionals[0]}" (see --help)`);
  }
  let raw = values.config ? loadConfigFile(values.config) : {};
  raw = applySets(raw, checkSetFlags(values.set ?? [], stage.name));
  if (values["skip-bad"]) {
    if (!schemaHasKey(stage, "skipBad")) {
      throw new ConfigError(`${stage.name}: this stage has no skipBad option (--skip-bad)`);
    }
    raw.skipBad = true;
  }
  const { inputs, inputFiles } = parseInputs(values.input ?? []);
  const cache = new Cache();
  const { artifact, hit } = await runStage(stage, raw, {
    cache,
    inputs,
    inputFiles,
    force: values.force,
  });
  // Under MPI only rank 0 reports (and records the ref); the others ran in step with it.
  if (currentWorld().rank !== 0) return 0;
  const warning = cache.tryRecordRef(values.ref ?? stage.name, { [stage.name]: artifact.key });
  if (warning) err(warning);
  const summary = artifact.manifest.summary ?? {};
  if (values.json) {
    printJsonSummary({ stage: stage.name, key: artifact.key, hit, summary });
  } else {
    out(`${stage.name} ${artifact.key}${hit ? " (cache hit)" : ""}`);
    out(`  artifact: ${artifact.dir}`);
    for (const [k, v] of Object.entries(summary)) out(`  ${k}: ${JSON.stringify(v)}`);
  }
  return 0;
}
