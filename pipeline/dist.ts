/**
 * The process group a stage runs in: one process (the default), or the ranks of an MPI job
 * started by `mpirun` / `srun`. The launcher is recognised from its environment (OpenMPI's
 * OMPI_COMM_WORLD_*, PMIx, Slurm, PMI); only then is libmpi loaded, so single-process users need
 * no MPI at all.
 */
import { Mpi } from "../engine/dist/mpi.ts";

/** Where this process sits in its job, as the launcher describes it. */
export interface LaunchInfo {
  launcher: string;
  size: number;
  rank: number;
  localSize: number; // ranks on this node
  localRank: number;
}

/** The ranks a stage runs on; `mpi` is null for a single process. */
export interface World {
  size: number;
  rank: number;
  localSize: number;
  localRank: number;
  mpi: Mpi | null;
}

/** How a stage picks its world: auto (MPI when a launcher started N > 1 ranks), mpi, off. */
export type DistMode = "auto" | "mpi" | "off";

export const DIST_MODES = ["auto", "mpi", "off"] as const;

const SINGLE: World = { size: 1, rank: 0, localSize: 1, localRank: 0, mpi: null };
let world: World | null = null;

function int(env: Record<string, string>, ...names: string[]): number | null {
  for (const n of names) {
    const v = env[n];
    if (v !== undefined && /^\d+$/.test(v)) return Number(v);
  }
  return null;
}

/** The launcher's description of this process, or null when no known launcher started it. */
export function launchInfo(env: Record<string, string> = Deno.env.toObject()): LaunchInfo | null {
  const candidates: [string, string[], string[], string[], string[]][] = [
    ["OpenMPI", ["OMPI_COMM_WORLD_SIZE"], ["OMPI_COMM_WORLD_RANK"], [
      "OMPI_COMM_WORLD_LOCAL_SIZE",
    ], ["OMPI_COMM_WORLD_LOCAL_RANK"]],
    ["Slurm", ["SLURM_NTASKS", "SLURM_NPROCS"], ["SLURM_PROCID"], ["SLURM_NTASKS_PER_NODE"], [
      "SLURM_LOCALID",
    ]],
    ["PMIx", ["PMIX_SIZE"], ["PMIX_RANK"], ["PMIX_LOCAL_SIZE"], ["PMIX_LOCAL_RANK"]],
    ["PMI", ["PMI_SIZE"], ["PMI_RANK"], ["MPI_LOCALNRANKS"], ["MPI_LOCALRANKID"]],
  ];
  for (const [launcher, sizeV, rankV, lsizeV, lrankV] of candidates) {
    const size = int(env, ...sizeV), rank = int(env, ...rankV);
    if (size === null || rank === null) continue;
    return {
      launcher,
      size,
      rank,
      localSize: int(env, ...lsizeV) ?? 1,
      localRank: int(env, ...lrankV) ?? 0,
    };
  }
  return null;
}

/**
 * The world for `mode`, set up once per process. Under a launcher that reports N > 1 ranks, MPI
 * must report the same N: a launcher and MPI that do not talk (e.g. `srun` without `--mpi=pmix`)
 * would otherwise start N independent single-process runs, so that is an error.
 */
export function worldFor(mode: DistMode): World {
  if (world) return world;
  const info = launchInfo();
  if (mode === "off" || (mode === "auto" && (!info || info.size <= 1))) return (world = SINGLE);
  const mpi = Mpi.init();
  if (info && info.size > 1 && mpi.size !== info.size) {
    throw new Error(
      `MPI reports a world of ${mpi.size} process(es) but ${info.launcher} started ${info.size}: ` +
        "the launcher and MPI are not connected (under Slurm use `srun --mpi=pmix`, or mpirun)",
    );
  }
  world = {
    size: mpi.size,
    rank: mpi.rank,
    localSize: info?.localSize ?? 1,
    localRank: info?.localRank ?? 0,
    mpi,
  };
  return world;
}

/** The world set up so far in this process (single until a stage asked for MPI). */
export function currentWorld(): World {
  return world ?? SINGLE;
}
