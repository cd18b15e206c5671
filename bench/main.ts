/**
 * The one benchmark command (`make bench`): runs every bench/<name>/main.ts, or the named ones,
 * one after another, each under `flock /tmp/virtex-bench.lock` (VIRTEX_BENCH_LOCK) so timings do
 * not overlap other benchmarks, and prints where each report went (the files under bench/out that
 * the run wrote).
 *
 *   deno run -A bench/main.ts [NAME…] [--list] [-- ARGS…]
 *
 * ARGS after `--` are passed to every selected benchmark (e.g. `pretrain -- --cases a`).
 * Exits non-zero when a benchmark fails; the others still run.
 */
import { join, relative } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
const BENCH = join(ROOT, "bench");
const OUT = join(BENCH, "out");
const LOCK = Deno.env.get("VIRTEX_BENCH_LOCK") ?? "/tmp/virtex-bench.lock";

/** Names of the benchmarks: directories of bench/ holding a main.ts, sorted. */
export function listBenchmarks(dir = BENCH): string[] {
  const names: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    if (!e.isDirectory || e.name === "out") continue;
    try {
      if (Deno.statSync(join(dir, e.name, "main.ts")).isFile) names.push(e.name);
    } catch { /* no main.ts: not a benchmark */ }
  }
  return names.sort();
}

/** Path -> mtime (ms) of every file under `dir`, recursively; {} when it does not exist. */
export function snapshot(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (d: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(d)];
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory) walk(p);
      else if (e.isFile) out.set(p, Deno.statSync(p).mtime?.getTime() ?? 0);
    }
  };
  walk(dir);
  return out;
}

/**
 * Files under `dir` that are new or have a different mtime than in `before` (file mtimes come
 * from a coarse kernel clock, so comparing against a start time would miss fresh writes).
 */
export function writtenSince(dir: string, before: Map<string, number>): string[] {
  return [...snapshot(dir)].filter(([p, t]) => before.get(p) !== t).map(([p]) => p).sort();
}

function haveFlock(): boolean {
  try {
    return Deno.statSync("/usr/bin/flock").isFile;
  } catch {
    return false;
  }
}

async function main(): Promise<number> {
  const dash = Deno.args.indexOf("--");
  const own = dash < 0 ? Deno.args : Deno.args.slice(0, dash);
  const passArgs = dash < 0 ? [] : Deno.args.slice(dash + 1);
  const known = listBenchmarks();
  if (own.includes("-h") || own.includes("--help")) {
    console.log(
      "usage: deno run -A bench/main.ts [NAME…] [--list] [-- ARGS…]\n" +
        `benchmarks: ${known.join(", ")}`,
    );
    return 0;
  }
  if (own.includes("--list")) {
    console.log(known.join("\n"));
    return 0;
  }
  const bad = own.filter((a) => a.startsWith("-") || !known.includes(a));
  if (bad.length) {
    console.error(`bench: unknown benchmark or flag ${bad.map((b) => `"${b}"`).join(", ")}`);
    console.error(`       known benchmarks: ${known.join(", ")} (see bench/README.md)`);
    return 2;
  }
  const selected = own.length ? own : known;
  const flock = haveFlock();
  if (!flock) console.warn("bench: /usr/bin/flock not found; running without the bench lock");

  const summary: { name: string; code: number; seconds: number; files: string[] }[] = [];
  for (const name of selected) {
    const script = join(BENCH, name, "main.ts");
    const cmd = [Deno.execPath(), "run", "-A", script, ...passArgs];
    console.log(`\n=== bench/${name} ${flock ? `(under ${LOCK})` : ""}`);
    const start = Date.now(), before = snapshot(OUT);
    let code: number;
    try {
      const child = new Deno.Command(flock ? "/usr/bin/flock" : cmd[0], {
        args: flock ? [LOCK, ...cmd] : cmd.slice(1),
        cwd: ROOT,
        env: { VIRTEX_BENCH_LOCKED: flock ? "1" : "0" },
        stdout: "inherit",
        stderr: "inherit",
      }).spawn();
      code = (await child.status).code;
    } catch (e) {
      console.error(`bench/${name}: cannot start: ${(e as Error).message}`);
      code = 127;
    }
    const files = writtenSince(OUT, before).map((p) => relative(ROOT, p));
    summary.push({ name, code, seconds: (Date.now() - start) / 1000, files });
  }

  console.log("\n=== bench summary");
  for (const s of summary) {
    const status = s.code === 0 ? "ok" : `FAILED (exit ${s.code})`;
    console.log(`bench/${s.name}: ${status}, ${s.seconds.toFixed(0)} s`);
    if (s.files.length) { for (const f of s.files) console.log(`  report: ${f}`); }
    else console.log("  report: none written under bench/out");
  }
  return summary.every((s) => s.code === 0) ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
