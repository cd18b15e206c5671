/**
 * The contract every pipeline stage implements. A stage is a pure function of its config, its
 * input artifacts and its input files: the cache keys its output by exactly those (plus the
 * stage's code version), so the same inputs + config + code give the same key and are reused.
 */
import type { z } from "zod";
import type { World } from "./dist.ts";

/** One file inside an artifact, as recorded in its manifest. */
export interface ManifestFile {
  path: string; // relative to the artifact directory, "/"-separated
  size: number;
  sha256: string;
}

/** manifest.json at the root of every artifact directory. */
export interface Manifest {
  key: string; // hex SHA-256, also the directory name
  stage: string;
  stageVersion: string;
  /** Content hash of the code that built it (pipeline/cache/code_hash.ts); part of the key. */
  code?: string;
  /** MPI ranks that built it (data parallel; absent for one process). */
  ranks?: number;
  config: unknown; // the fully defaulted config the stage ran with
  inputs: Record<string, string>; // input name -> upstream artifact key
  inputFiles: Record<string, string>; // input name -> content hash of the external file/folder
  created: string; // ISO time
  files: ManifestFile[];
  summary: Record<string, unknown>; // what the stage returned (metrics, counts)
}

/** A finished, immutable artifact in the cache. */
export interface Artifact {
  key: string;
  dir: string; // absolute path of the artifact directory
  manifest: Manifest;
}

/** Reports progress of long work (a bar with rate and ETA on a terminal, lines otherwise). */
export interface Progress {
  tick(n?: number, info?: Record<string, string | number>): void;
  done(): void;
}

/** What a stage's run() receives. */
export interface StageContext<C> {
  /** The ranks this build runs on (a single process unless the stage's `world` says MPI). */
  world: World;
  config: C;
  inputs: Record<string, Artifact>; // upstream artifacts, by input name
  inputFiles: Record<string, string>; // external input paths (files or folders), by input name
  outDir: string; // temporary directory: everything written here becomes the artifact
  workDir: string; // persistent per-key scratch (survives a kill; used to resume long jobs)
  /** A progress reporter; `initial` units were done before (a resumed job starts there). */
  progress(label: string, total: number, unit?: string, initial?: number): Progress;
  log(message: string): void;
}

/** One upstream artifact a stage reads (`--input NAME=REF`), declared so it is checked early. */
export interface ArtifactInput<C> {
  /** The stage(s) whose artifacts this input accepts, e.g. "tokenize". */
  kind: string | readonly string[];
  /** One line for --help. */
  description: string;
  /** Whether this config needs the input (default: always). */
  needed?: (config: C) => boolean;
}

/** A pipeline stage: `tokenize`, `augment`, `pretrain`, `extract`, `evaluate`. */
export interface Stage<C> {
  name: string;
  /**
   * Bump on a deliberate change of the output format; part of the cache key. (Code changes need
   * no bump: the key also holds a hash of the code the stage runs, from `module`.)
   */
  version: string;
  /** The stage module's URL (`import.meta.url`): its module graph is hashed into the key. */
  module: string;
  /** Dotted config key of the stage's random seed, for `seeds` in pipeline files (e.g. "seed"). */
  seedKey?: string;
  /** zod schema whose defaults are the paper's values; unknown keys are errors. */
  schema: z.ZodType<C>;
  /**
   * The upstream artifacts the stage reads, by input name, with the kind each must be: checked
   * (missing, unknown name, wrong kind) before the build lock is taken or any work is done.
   */
  artifactInputs?: Record<string, ArtifactInput<C>>;
  /**
   * The process group a config runs on (data parallel over MPI ranks). When it has more than one
   * rank, every rank runs `run` in step; rank 0 alone builds and publishes the artifact (the
   * others work in private scratch), and the key holds the rank count, since per-rank batch norm
   * and the reduction order change the arithmetic.
   */
  world?: (config: C) => World;
  /** Names the upstream artifacts and external files this config reads. */
  inputs(config: C): { artifacts: Record<string, string>; files: Record<string, string> };
  /** Does the work, writing into ctx.outDir; returns a summary stored in the manifest. */
  run(ctx: StageContext<C>): Promise<Record<string, unknown>>;
}
