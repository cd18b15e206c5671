/**
 * The content-addressed artifact store. Layout under the cache root ($VIRTEX_CACHE, default
 * `.virtex-cache/` in the working directory):
 *
 *   artifacts/<key>/manifest.json   finished, immutable artifacts (key = hex SHA-256)
 *   tmp/<key>.<pid>.<rand>/         a build in progress; renamed to artifacts/<key> when done
 *   work/<key>/                     persistent scratch for resumable stages; removed on success
 *   locks/<key>.lock                O_EXCL build lock with the builder's pid
 *   refs/<name>.json                named roots for `cache gc` ({"keys": {label: key}})
 *   filehashes.json                 memo of input-file content hashes by path+size+mtime
 */
import { join, resolve } from "node:path";
import type { Artifact, Manifest, ManifestFile } from "../stage.ts";
import { canonicalJson, FileHashMemo, hashFile, listFiles, sha256Hex } from "./hash.ts";
import { acquireLock, lockHeld, processAlive } from "./lock.ts";

/** What identifies a build: everything that goes into the key. */
export interface KeyParts {
  stage: string;
  stageVersion: string;
  /** Content hash of the stage's code (pipeline/cache/code_hash.ts). */
  code: string;
  config: unknown;
  inputs: Record<string, string>; // input name -> upstream artifact key
  inputFiles: Record<string, string>; // input name -> content hash
  /** MPI ranks of a data-parallel build (absent for one process, so those keys do not change). */
  ranks?: number;
}

/** The cache key: SHA-256 over the canonical JSON of the key parts. */
export function computeKey(parts: KeyParts): string {
  return sha256Hex(canonicalJson({
    stage: parts.stage,
    stageVersion: parts.stageVersion,
    code: parts.code,
    config: parts.config,
    inputs: parts.inputs,
    inputFiles: parts.inputFiles,
    ...(parts.ranks && parts.ranks > 1 ? { ranks: parts.ranks } : {}),
  }));
}

/** One problem found by verify(). */
export interface VerifyProblem {
  key: string;
  file: string; // path inside the artifact ("" for the artifact itself)
  problem: string;
}

/** A named root: refs/<name>.json. */
export interface Ref {
  name: string;
  keys: Record<string, string>;
  created: string;
}

/** What gc() removed (or would remove on a dry run). */
export interface GcResult {
  removed: string[];
  kept: string[];
  freedBytes: number;
  tmpRemoved: string[];
  workRemoved: string[];
  /** Scratch of unfinished builds left in place (no --work): what --work would remove. */
  workKept: { key: string; bytes: number }[];
  locksRemoved: string[];
}

const KEY_RE = /^[0-9a-f]{64}$/;
const REF_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The default cache root: $VIRTEX_CACHE or `.virtex-cache` under the working directory. */
export function defaultCacheRoot(): string {
  return resolve(Deno.env.get("VIRTEX_CACHE") || ".virtex-cache");
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function dirSize(path: string): number {
  let total = 0;
  try {
    for (const e of Deno.readDirSync(path)) {
      const p = join(path, e.name);
      if (e.isDirectory) total += dirSize(p);
      else {
        try {
          total += Deno.statSync(p).size;
        } catch { /* vanished */ }
      }
    }
  } catch { /* vanished */ }
  return total;
}

/** The artifact store rooted at one folder. */
export class Cache {
  readonly root: string;
  constructor(root: string = defaultCacheRoot()) {
    this.root = resolve(root);
  }

  get artifactsDir(): string {
    return join(this.root, "artifacts");
  }

  /** Directory an artifact with this key lives in (whether or not it exists). */
  artifactDir(key: string): string {
    return join(this.artifactsDir, key);
  }

  /** Persistent scratch folder for a build of this key (resumable stages). */
  workDir(key: string): string {
    return join(this.root, "work", key);
  }

  /** The memo of input-file hashes, shared by every run on this cache. */
  fileHashMemo(): FileHashMemo {
    Deno.mkdirSync(this.root, { recursive: true });
    return new FileHashMemo(join(this.root, "filehashes.json"));
  }

  /** The finished artifact with this exact key, or null. */
  get(key: string): Artifact | null {
    if (!KEY_RE.test(key)) return null;
    const dir = this.artifactDir(key);
    let text: string;
    try {
      text = Deno.readTextFileSync(join(dir, "manifest.json"));
    } catch {
      return null;
    }
    const manifest = JSON.parse(text) as Manifest;
    return { key, dir, manifest };
  }

  /** Every finished artifact, oldest first. */
  list(): Artifact[] {
    const out: Artifact[] = [];
    if (!exists(this.artifactsDir)) return out;
    for (const e of Deno.readDirSync(this.artifactsDir)) {
      if (!e.isDirectory) continue;
      try {
        const a = this.get(e.name);
        if (a) out.push(a);
      } catch {
        // unreadable manifest: reported by verify, skipped here
      }
    }
    return out.sort((a, b) => a.manifest.created.localeCompare(b.manifest.created));
  }

  /**
   * Finds an artifact by full key, unique key prefix (≥ 6 hex digits), ref name (a ref with one
   * key) or `ref:label`. Throws a message naming what was not found or was ambiguous.
   */
  resolve(ref: string): Artifact {
    const direct = this.get(ref);
    if (direct) return direct;
    if (/^[0-9a-f]{6,63}$/.test(ref) && exists(this.artifactsDir)) {
      const matches = [...Deno.readDirSync(this.artifactsDir)]
        .map((e) => e.name)
        .filter((n) => n.startsWith(ref));
      if (matches.length > 1) {
        throw new Error(`artifact prefix "${ref}" is ambiguous (${matches.length} matches)`);
      }
      if (matches.length === 1) {
        const a = this.get(matches[0]);
        if (a) return a;
      }
    }
    const [refName, label] = ref.split(":", 2);
    const r = REF_RE.test(refName) ? this.getRef(refName) : null;
    if (r) {
      const labels = Object.keys(r.keys);
      const pick = label ?? (labels.length === 1 ? labels[0] : undefined);
      if (pick === undefined) {
        throw new Error(
          `ref "${refName}" holds several artifacts; name one as ${refName}:<label> ` +
            `(labels: ${labels.join(", ")})`,
        );
      }
      const key = r.keys[pick];
      if (!key) throw new Error(`ref "${refName}" has no label "${pick}"`);
      const a = this.get(key);
      if (!a) {
        throw new Error(`ref "${ref}" points to ${key.slice(0, 12)}, which is not in the cache`);
      }
      return a;
    }
    if (/^[0-9a-f]{1,5}$/.test(ref)) {
      throw new Error(
        `"${ref}" is too short for a key prefix (at least 6 hex digits) and is not a ref`,
      );
    }
    throw new Error(`no artifact "${ref}" in ${this.root} (not a key, key prefix or ref)`);
  }

  /**
   * Returns the artifact for `parts`, building it with `build(outDir, workDir)` when missing.
   * Exactly one intact artifact results even when several processes build the same key at once:
   * builders serialise on a per-key lock, re-check after acquiring it, and publish by renaming a
   * private temp dir (a killed build leaves only its temp dir, removed by gc, and its workDir,
   * which a later build of the same key resumes from).
   */
  async getOrBuild(
    parts: KeyParts,
    build: (outDir: string, workDir: string) => Promise<Record<string, unknown>>,
    opts: {
      force?: boolean;
      onWait?: (pid: number) => void;
      /** Called once, with whether the result is a hit, just before building or returning it. */
      onDecision?: (hit: boolean) => void;
    } = {},
  ): Promise<{ artifact: Artifact; hit: boolean }> {
    const key = computeKey(parts);
    if (!opts.force) {
      const hit = this.get(key);
      if (hit) {
        opts.onDecision?.(true);
        return { artifact: hit, hit: true };
      }
    }
    for (const d of ["artifacts", "tmp", "work", "locks"]) {
      Deno.mkdirSync(join(this.root, d), { recursive: true });
    }
    const lock = await acquireLock(join(this.root, "locks", `${key}.lock`), opts.onWait);
    try {
      if (!opts.force) {
        const hit = this.get(key);
        if (hit) {
          opts.onDecision?.(true);
          return { artifact: hit, hit: true };
        }
      }
      opts.onDecision?.(false);
      const rand = crypto.randomUUID().slice(0, 8);
      const tmp = join(this.root, "tmp", `${key}.${Deno.pid}.${rand}`);
      const workDir = this.workDir(key);
      // --force rebuilds from scratch: no resuming from an earlier build's scratch.
      if (opts.force && exists(workDir)) Deno.removeSync(workDir, { recursive: true });
      Deno.mkdirSync(tmp, { recursive: true });
      Deno.mkdirSync(workDir, { recursive: true });
      try {
        const summary = await build(tmp, workDir);
        const files = await this.#describeFiles(tmp);
        const manifest: Manifest = {
          key,
          stage: parts.stage,
          stageVersion: parts.stageVersion,
          code: parts.code,
          ...(parts.ranks && parts.ranks > 1 ? { ranks: parts.ranks } : {}),
          config: parts.config,
          inputs: parts.inputs,
          inputFiles: parts.inputFiles,
          created: new Date().toISOString(),
          files,
          summary,
        };
        Deno.writeTextFileSync(
          join(tmp, "manifest.json"),
          JSON.stringify(manifest, null, 2) + "\n",
        );
        const dest = this.artifactDir(key);
        if (opts.force && exists(dest)) {
          const trash = join(this.root, "tmp", `${key}.${Deno.pid}.${rand}.old`);
          Deno.renameSync(dest, trash);
          Deno.removeSync(trash, { recursive: true });
        }
        try {
          Deno.renameSync(tmp, dest);
        } catch (e) {
          // Another builder published first (rename onto a non-empty dir fails): keep theirs.
          if (!exists(join(dest, "manifest.json"))) throw e;
          Deno.removeSync(tmp, { recursive: true });
          const other = this.get(key);
          if (other) return { artifact: other, hit: true };
          throw e;
        }
        try {
          Deno.removeSync(workDir, { recursive: true });
        } catch { /* already gone */ }
        return { artifact: { key, dir: dest, manifest }, hit: false };
      } catch (e) {
        try {
          Deno.removeSync(tmp, { recursive: true });
        } catch { /* already moved or gone */ }
        // Keep the scratch of a failed build only when it holds something to resume from.
        try {
          if ([...Deno.readDirSync(workDir)].length === 0) Deno.removeSync(workDir);
        } catch { /* gone */ }
        throw e;
      }
    } finally {
      lock.release();
    }
  }

  async #describeFiles(dir: string): Promise<ManifestFile[]> {
    const out: ManifestFile[] = [];
    for (const rel of await listFiles(dir)) {
      if (rel === "manifest.json") continue;
      const p = join(dir, rel);
      out.push({ path: rel, size: Deno.statSync(p).size, sha256: await hashFile(p) });
    }
    return out;
  }

  /** Re-hashes every file of the given artifacts (all when none given); returns what is wrong. */
  async verify(keys?: string[]): Promise<VerifyProblem[]> {
    const problems: VerifyProblem[] = [];
    const targets = keys ??
      (exists(this.artifactsDir)
        ? [...Deno.readDirSync(this.artifactsDir)].filter((e) => e.isDirectory).map((e) => e.name)
        : []);
    for (const key of targets.sort()) {
      const dir = this.artifactDir(key);
      let manifest: Manifest;
      try {
        manifest = JSON.parse(Deno.readTextFileSync(join(dir, "manifest.json")));
      } catch (e) {
        problems.push({
          key,
          file: "manifest.json",
          problem: `unreadable manifest: ${(e as Error).message}`,
        });
        continue;
      }
      if (manifest.key !== key) {
        problems.push({
          key,
          file: "manifest.json",
          problem: `manifest key ${manifest.key} differs from the folder name`,
        });
      }
      const listed = new Set<string>();
      for (const f of manifest.files ?? []) {
        listed.add(f.path);
        const p = join(dir, f.path);
        let size: number;
        try {
          size = Deno.statSync(p).size;
        } catch {
          problems.push({ key, file: f.path, problem: "missing" });
          continue;
        }
        if (size !== f.size) {
          problems.push({ key, file: f.path, problem: `size ${size}, manifest says ${f.size}` });
          continue;
        }
        const h = await hashFile(p);
        if (h !== f.sha256) {
          problems.push({
            key,
            file: f.path,
            problem: `content changed (sha256 ${h.slice(0, 12)}…, manifest ${
              f.sha256.slice(0, 12)
            }…)`,
          });
        }
      }
      for (const rel of await listFiles(dir)) {
        if (rel !== "manifest.json" && !listed.has(rel)) {
          problems.push({ key, file: rel, problem: "not listed in the manifest" });
        }
      }
    }
    return problems;
  }

  /** Records a named root for gc (overwrites). */
  setRef(name: string, keys: Record<string, string>): void {
    if (!REF_RE.test(name)) throw new Error(`bad ref name "${name}" (letters, digits, . _ -)`);
    const dir = join(this.root, "refs");
    Deno.mkdirSync(dir, { recursive: true });
    const ref: Ref = { name, keys, created: new Date().toISOString() };
    const tmp = join(dir, `.${name}.${Deno.pid}.tmp`);
    Deno.writeTextFileSync(tmp, JSON.stringify(ref, null, 2) + "\n");
    Deno.renameSync(tmp, join(dir, `${name}.json`));
  }

  /**
   * setRef that does not fail the command when the cache cannot be written (a read-only cache
   * served a hit): returns a warning to print, or null when the ref was recorded.
   */
  tryRecordRef(name: string, keys: Record<string, string>): string | null {
    try {
      this.setRef(name, keys);
      return null;
    } catch (e) {
      return `warning: could not record ref "${name}" in ${this.root} (${
        (e as Error).message
      }); \`cache gc\` will not keep these artifacts for it`;
    }
  }

  /** The named root, or null. */
  getRef(name: string): Ref | null {
    try {
      return JSON.parse(Deno.readTextFileSync(join(this.root, "refs", `${name}.json`))) as Ref;
    } catch {
      return null;
    }
  }

  /** Every named root. */
  refs(): Ref[] {
    const dir = join(this.root, "refs");
    if (!exists(dir)) return [];
    const out: Ref[] = [];
    for (const e of Deno.readDirSync(dir)) {
      if (!e.name.endsWith(".json") || e.name.startsWith(".")) continue;
      const r = this.getRef(e.name.slice(0, -5));
      if (r) out.push(r);
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Removes a named root; true when it existed. */
  removeRef(name: string): boolean {
    try {
      Deno.removeSync(join(this.root, "refs", `${name}.json`));
      return true;
    } catch {
      return false;
    }
  }

  /** Keys reachable from the refs plus `extraRoots`, following each manifest's inputs. */
  reachable(extraRoots: string[] = []): Set<string> {
    const seen = new Set<string>();
    const stack = [...extraRoots];
    for (const r of this.refs()) stack.push(...Object.values(r.keys));
    while (stack.length) {
      const k = stack.pop()!;
      if (seen.has(k)) continue;
      seen.add(k);
      const a = (() => {
        try {
          return this.get(k);
        } catch {
          return null;
        }
      })();
      if (a) stack.push(...Object.values(a.manifest.inputs ?? {}));
    }
    return seen;
  }

  /**
   * Removes artifacts that no ref (nor `keep`) reaches, temp dirs of builders that are no longer
   * running, stale locks, and — with `work` — scratch dirs no live build holds.
   */
  gc(opts: { keep?: string[]; dryRun?: boolean; work?: boolean } = {}): GcResult {
    const live = this.reachable(opts.keep ?? []);
    const res: GcResult = {
      removed: [],
      kept: [],
      freedBytes: 0,
      tmpRemoved: [],
      workRemoved: [],
      workKept: [],
      locksRemoved: [],
    };
    const rm = (p: string) => {
      if (!opts.dryRun) Deno.removeSync(p, { recursive: true });
    };
    if (exists(this.artifactsDir)) {
      for (const e of Deno.readDirSync(this.artifactsDir)) {
        if (live.has(e.name)) {
          res.kept.push(e.name);
          continue;
        }
        const p = join(this.artifactsDir, e.name);
        res.freedBytes += dirSize(p);
        rm(p);
        res.removed.push(e.name);
      }
    }
    const tmpDir = join(this.root, "tmp");
    if (exists(tmpDir)) {
      for (const e of Deno.readDirSync(tmpDir)) {
        const pid = Number(e.name.split(".")[1]);
        if (processAlive(pid)) continue;
        const p = join(tmpDir, e.name);
        res.freedBytes += dirSize(p);
        rm(p);
        res.tmpRemoved.push(e.name);
      }
    }
    const lockDir = join(this.root, "locks");
    if (exists(lockDir)) {
      for (const e of Deno.readDirSync(lockDir)) {
        const p = join(lockDir, e.name);
        if (!lockHeld(p)) {
          rm(p);
          res.locksRemoved.push(e.name);
        }
      }
    }
    const workRoot = join(this.root, "work");
    if (exists(workRoot)) {
      for (const e of Deno.readDirSync(workRoot)) {
        if (lockHeld(join(lockDir, `${e.name}.lock`))) continue;
        const p = join(workRoot, e.name);
        if (!opts.work) {
          res.workKept.push({ key: e.name, bytes: dirSize(p) });
          continue;
        }
        res.freedBytes += dirSize(p);
        rm(p);
        res.workRemoved.push(e.name);
      }
    }
    return res;
  }
}
