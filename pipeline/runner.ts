/**
 * Runs one stage through the cache: validate the config, resolve inputs, compute the key, and
 * either return the cached artifact (a hit, announced on stderr) or run the stage into a fresh
 * artifact.
 */
import { join, resolve } from "node:path";
import { Cache, computeKey, type KeyParts } from "./cache/store.ts";
import { currentWorld, type World } from "./dist.ts";
import { codeHash } from "./cache/code_hash.ts";
import { hashPath } from "./cache/hash.ts";
import { validateConfig } from "./config.ts";
import { createProgress } from "./progress.ts";
import type { Artifact, Manifest, Stage, StageContext } from "./stage.ts";

/** Options for runStage. */
export interface RunStageOptions {
  /** The cache to use (default: $VIRTEX_CACHE or .virtex-cache/). */
  cache?: Cache;
  /**
   * Upstream artifacts by input name, as Artifact objects or refs (key, key prefix, ref name).
   * They add to / override what `stage.inputs(config).artifacts` names.
   */
  inputs?: Record<string, Artifact | string>;
  /** External files or folders by input name; add to / override `stage.inputs(config).files`. */
  inputFiles?: Record<string, string>;
  /** Rebuild even when the artifact exists (replaces it). */
  force?: boolean;
  /** Where log lines go (default: stderr, prefixed with the stage name). */
  log?: (message: string) => void;
}

/** What runStage returns: the artifact and whether it came from the cache. */
export interface RunStageResult {
  artifact: Artifact;
  hit: boolean;
}

/** A failure attributable to the user's input (config, files): the CLI exits 1 with the message. */
export class InputError extends Error {
  override name = "InputError";
}

/**
 * A non-zero rank of a data-parallel build: learns from rank 0 whether the artifact is built,
 * runs the stage in step with it in private scratch (rank 0 alone writes the cache), and waits
 * until rank 0 has published the artifact.
 */
async function followRank0<C>(
  world: World,
  cache: Cache,
  key: string,
  stage: Stage<C>,
  context: (outDir: string, workDir: string) => StageContext<C>,
): Promise<RunStageResult> {
  const decision = new Float64Array(1);
  world.mpi!.broadcast(decision, 0);
  if (decision[0] === 0) {
    const scratch = await Deno.makeTempDir({ prefix: `virtex-rank${world.rank}-` });
    try {
      await Deno.mkdir(join(scratch, "out"));
      await Deno.mkdir(join(scratch, "work"));
      await stage.run({
        ...context(join(scratch, "out"), join(scratch, "work")),
        log: () => {},
        progress: () => ({ tick() {}, done() {} }),
      });
    } finally {
      await Deno.remove(scratch, { recursive: true }).catch(() => {});
    }
  }
  world.mpi!.barrier();
  // On a shared file system the artifact is visible here too; elsewhere only its key is.
  const artifact = cache.get(key) ??
    { key, dir: "", manifest: { key, stage: stage.name, summary: {} } as unknown as Manifest };
  return { artifact, hit: decision[0] === 1 };
}

function kinds(spec: { kind: string | readonly string[] }): string[] {
  return typeof spec.kind === "string" ? [spec.kind] : [...spec.kind];
}

function unknownInput<C>(stage: Stage<C>, name: string, files: string[]): string {
  const known = [...Object.keys(stage.artifactInputs ?? {}), ...files];
  return `${stage.name}: unknown input "${name}" (${
    known.length ? `inputs: ${known.join(", ")}` : "this stage takes no --input"
  })`;
}

/**
 * Checks the resolved artifact inputs against the stage's declaration: no unknown name, every
 * input this config needs present, each of the declared kind. Throws an InputError naming the
 * input (and both kinds).
 */
function checkArtifactInputs<C>(
  stage: Stage<C>,
  config: C,
  inputs: Record<string, Artifact>,
  fileInputs: string[],
): void {
  const spec = stage.artifactInputs ?? {};
  for (const [name, art] of Object.entries(inputs)) {
    const s = spec[name];
    if (!s) throw new InputError(unknownInput(stage, name, fileInputs));
    const want = kinds(s);
    if (!want.includes(art.manifest.stage)) {
      throw new InputError(
        `${stage.name}: input "${name}" is a ${art.manifest.stage} artifact (${
          art.key.slice(0, 12)
        }), expected a ${want.join(" or ")} artifact`,
      );
    }
  }
  for (const [name, s] of Object.entries(spec)) {
    if (inputs[name] || (s.needed && !s.needed(config))) continue;
    throw new InputError(
      `${stage.name}: missing input "${name}" (${s.description}): ` +
        `--input ${name}=<${kinds(s).join("|")} artifact>`,
    );
  }
}

function stderrLog(stage: string): (m: string) => void {
  const enc = new TextEncoder();
  return (m) => Deno.stderr.writeSync(enc.encode(`[${stage}] ${m}\n`));
}

/**
 * Runs `stage` with `rawConfig` (validated and defaulted by the stage's zod schema; unknown keys
 * and wrong types throw a ConfigError naming the key). Returns `{artifact, hit}`.
 */
export async function runStage<C>(
  stage: Stage<C>,
  rawConfig: unknown,
  opts: RunStageOptions = {},
): Promise<RunStageResult> {
  const cache = opts.cache ?? new Cache();
  const log = opts.log ?? stderrLog(stage.name);
  const config = validateConfig(stage.schema, rawConfig, `${stage.name} config`);
  const declared = stage.inputs(config);

  const artifactRefs: Record<string, Artifact | string> = {
    ...declared.artifacts,
    ...opts.inputs,
  };
  const inputs: Record<string, Artifact> = {};
  for (const [name, ref] of Object.entries(artifactRefs)) {
    if (ref === undefined || ref === "") continue;
    if (typeof ref !== "string") {
      inputs[name] = ref;
      continue;
    }
    try {
      inputs[name] = cache.resolve(ref);
    } catch (e) {
      throw new InputError(`${stage.name}: input "${name}": ${(e as Error).message}`);
    }
  }

  checkArtifactInputs(stage, config, inputs, Object.keys(declared.files));
  for (const name of Object.keys(opts.inputFiles ?? {})) {
    if (!(name in declared.files) && !(name in (stage.artifactInputs ?? {}))) {
      throw new InputError(unknownInput(stage, name, Object.keys(declared.files)));
    }
  }

  const filePaths: Record<string, string> = { ...declared.files, ...opts.inputFiles };
  const inputFiles: Record<string, string> = {};
  const fileHashes: Record<string, string> = {};
  const memo = cache.fileHashMemo();
  for (const [name, path] of Object.entries(filePaths)) {
    if (path === undefined || path === "") continue;
    const abs = resolve(path);
    try {
      Deno.statSync(abs);
    } catch {
      throw new InputError(`${stage.name}: input "${name}": ${path}: no such file or folder`);
    }
    inputFiles[name] = abs;
    // A progress bar for big folders (first hash of a dataset; later runs hit the memo).
    fileHashes[name] = await hashPath(
      abs,
      memo,
      (n) => n >= 2000 ? createProgress(`[${stage.name}] hash ${name}`, n, "files") : undefined,
    );
  }
  memo.save();

  const inputKeys = Object.fromEntries(Object.entries(inputs).map(([n, a]) => [n, a.key]));
  const world = stage.world?.(config) ?? currentWorld();
  const parts: KeyParts = {
    stage: stage.name,
    stageVersion: stage.version,
    code: codeHash(stage.module),
    config,
    inputs: inputKeys,
    inputFiles: fileHashes,
    ...(world.size > 1 ? { ranks: world.size } : {}),
  };
  let started = false;
  const key = computeKey(parts), key12 = key.slice(0, 12);
  const context = (outDir: string, workDir: string): StageContext<C> => ({
    world,
    config,
    inputs,
    inputFiles,
    outDir,
    workDir,
    progress: (label, total, unit, initial) =>
      createProgress(`[${stage.name}] ${label}`, total, unit, { initial }),
    log,
  });
  if (world.size > 1 && world.rank !== 0) {
    return await followRank0(world, cache, key, stage, context);
  }
  const result = await cache.getOrBuild(parts, async (outDir, workDir) => {
    started = true;
    log(`running ${stage.name} ${key12}${world.size > 1 ? ` on ${world.size} ranks` : ""}`);
    return await stage.run(context(outDir, workDir));
  }, {
    force: opts.force,
    onWait: (pid) =>
      log(`waiting for process ${pid}, which is building ${stage.name} with the same key`),
    // Under MPI, rank 0 tells the other ranks whether they build with it.
    onDecision: world.mpi ? (hit) => world.mpi!.broadcast(Float64Array.of(hit ? 1 : 0)) : undefined,
  });
  world.mpi?.barrier(); // the others return once the artifact is published
  if (result.hit) {
    log(`cache hit: ${stage.name} ${key12}${started ? " (built concurrently elsewhere)" : ""}`);
  } else log(`done: ${stage.name} ${key12}`);
  return result;
}
