/**
 * Hashing for the cache: canonical JSON, SHA-256 of bytes / files / folders. Folder hashes are
 * built from per-file content hashes that are memoised by (path, size, mtime), so re-hashing an
 * unchanged 7,000-image folder costs one stat per file.
 */
import { createHash } from "node:crypto";
import { join, relative, resolve } from "node:path";

/** JSON with object keys sorted at every level: equal values give equal strings. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/** Hex SHA-256 of a string (UTF-8) or bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Hex SHA-256 of a file's content, streamed in 1 MiB chunks. */
export async function hashFile(path: string): Promise<string> {
  const h = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(1 << 20);
  while (true) {
    const n = await file.read(buf);
    if (n === null) break;
    h.update(buf.subarray(0, n));
  }
  return h.digest("hex");
}

/** Memo of file content hashes keyed by absolute path + size + mtime, persisted as JSON. */
export class FileHashMemo {
  #entries = new Map<string, string>();
  #touched = new Set<string>();
  #dirty = false;
  /** Above this many entries, save() keeps only those used by this process. */
  static readonly MAX_ENTRIES = 200_000;
  constructor(readonly path?: string) {
    if (!path) return;
    try {
      const raw = JSON.parse(Deno.readTextFileSync(path)) as Record<string, string>;
      for (const [k, v] of Object.entries(raw)) this.#entries.set(k, v);
    } catch {
      // missing or unreadable memo: start empty (it is only an accelerator)
    }
  }

  /** Content hash of one file, from the memo when path, size and mtime are unchanged. */
  async hash(absPath: string, info?: Deno.FileInfo): Promise<string> {
    const st = info ?? await Deno.stat(absPath);
    const memoKey = `${absPath}\t${st.size}\t${st.mtime?.getTime() ?? 0}`;
    this.#touched.add(memoKey);
    const known = this.#entries.get(memoKey);
    if (known) return known;
    const h = await hashFile(absPath);
    this.#entries.set(memoKey, h);
    this.#dirty = true;
    return h;
  }

  /** Writes the memo atomically (temp file + rename); losing a concurrent update is harmless. */
  save(): void {
    if (!this.path || !this.#dirty) return;
    const tmp = `${this.path}.${Deno.pid}.tmp`;
    if (this.#entries.size > FileHashMemo.MAX_ENTRIES) {
      for (const k of [...this.#entries.keys()]) if (!this.#touched.has(k)) this.#entries.delete(k);
    }
    try {
      Deno.writeTextFileSync(tmp, JSON.stringify(Object.fromEntries(this.#entries)));
      Deno.renameSync(tmp, this.path);
      this.#dirty = false;
    } catch {
      try {
        Deno.removeSync(tmp);
      } catch { /* ignore */ }
    }
  }
}

/** Lists regular files under a folder recursively, sorted, as "/"-separated relative paths. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string): Promise<void> {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile) out.push(relative(dir, p).split("\\").join("/"));
      else if (e.isSymlink) {
        const st = await Deno.stat(p);
        if (st.isDirectory) await walk(p);
        else if (st.isFile) out.push(relative(dir, p).split("\\").join("/"));
      }
    }
  }
  await walk(dir);
  return out.sort();
}

/**
 * Content hash of a file or a folder. A folder's hash covers every file's relative path, size and
 * content hash, so renaming, adding, removing or editing any file changes it. `onStart`, called
 * with a folder's file count, may return a progress reporter ticked once per file.
 */
export async function hashPath(
  path: string,
  memo = new FileHashMemo(),
  onStart?: (files: number) => { tick(): void; done(): void } | undefined,
): Promise<string> {
  const abs = resolve(path);
  const st = await Deno.stat(abs);
  if (st.isFile) return "file:" + await memo.hash(abs, st);
  if (!st.isDirectory) throw new Error(`${path}: not a file or folder`);
  const h = createHash("sha256");
  const files = await listFiles(abs);
  const bar = onStart?.(files.length);
  for (const rel of files) {
    const p = join(abs, rel);
    const fst = await Deno.stat(p);
    h.update(`${rel}\t${fst.size}\t${await memo.hash(p, fst)}\n`);
    bar?.tick();
  }
  bar?.done();
  return "dir:" + h.digest("hex");
}
