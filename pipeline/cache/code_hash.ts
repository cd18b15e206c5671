/**
 * Content hash of the code a stage runs, for its cache key: the stage's module and every local
 * module it can load, followed from static imports and re-exports, dynamic `import("...")`, and
 * relative paths written as string literals (`new URL("./worker.ts", import.meta.url)`, the
 * backends the device chooser loads by name), plus the `.wasm` kernels they name and, when any
 * module imports an npm package, package-lock.json (which pins every package version). Type-only
 * imports are skipped: they are erased before the code runs. Any change to what a stage runs
 * changes its key, and a change elsewhere leaves it alone. Computed once per module per process.
 */
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { sha256Hex } from "./hash.ts";

/** The repository root (two levels above this file). */
const ROOT = resolve(dirname(fromFileUrl(import.meta.url)), "..", "..");
const memo = new Map<string, string>();

/** Local specifiers one module's code can load at run time. */
export function loadedSpecifiers(source: string): { local: string[]; npm: boolean } {
  const local = new Set<string>();
  let npm = false;
  const add = (spec: string) => {
    if (spec.startsWith("./") || spec.startsWith("../")) local.add(spec);
    else if (!spec.startsWith("node:") && !/^[a-z]+:\/\//.test(spec)) npm = true;
  };
  // import ... from "x" / export ... from "x", unless type-only (`import type`, `export type`,
  // or `import { type A, type B }`).
  const re = /^\s*(import|export)\s+(type\s+)?([^;]*?)\s*from\s+"([^"]+)"/gms;
  for (const m of source.matchAll(re)) {
    const clause = m[3].trim();
    const names = clause.startsWith("{") ? clause.slice(1, -1).split(",").map((n) => n.trim()) : [];
    const typeOnly = m[2] !== undefined ||
      (names.filter((n) => n).length > 0 &&
        names.filter((n) => n).every((n) => n.startsWith("type ")));
    if (!typeOnly) add(m[4]);
  }
  for (const m of source.matchAll(/^\s*import\s+"([^"]+)"/gm)) add(m[1]);
  for (const m of source.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g)) add(m[1]);
  // Relative paths of code or kernels held in other string literals (workers, wasm, backends
  // loaded by name), once the import statements themselves are taken out.
  const rest = source.replace(re, "").replace(/^\s*import\s+"[^"]+"/gm, "");
  for (const m of rest.matchAll(/["'`](\.\.?\/[^"'`\s]+\.(?:ts|js|wasm))["'`]/g)) local.add(m[1]);
  return { local: [...local], npm };
}

/** Every file the module at `path` can load (itself included), relative to the repository root. */
export function codeFiles(path: string): string[] {
  const seen = new Set<string>();
  let npm = false;
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    if (!file.endsWith(".ts") && !file.endsWith(".js")) return; // .wasm: a leaf
    let source: string;
    try {
      source = Deno.readTextFileSync(file);
    } catch {
      return; // a path in a comment or an optional file: nothing runs from it
    }
    const found = loadedSpecifiers(source);
    npm ||= found.npm;
    for (const spec of found.local) {
      const target = resolve(dirname(file), spec);
      try {
        if (Deno.statSync(target).isFile) visit(target);
      } catch { /* not a file: a literal that only looks like a path */ }
    }
  };
  visit(resolve(path));
  if (npm) seen.add(join(ROOT, "package-lock.json"));
  return [...seen].filter((f) => {
    try {
      return Deno.statSync(f).isFile;
    } catch {
      return false;
    }
  }).map((f) => relative(ROOT, f)).sort();
}

/**
 * SHA-256 over the relative path and content hash of every file `moduleUrl` can load; the same
 * tree gives the same hash wherever it is checked out.
 */
export function codeHash(moduleUrl: string): string {
  const path = moduleUrl.startsWith("file:") ? fromFileUrl(moduleUrl) : moduleUrl;
  const cached = memo.get(path);
  if (cached) return cached;
  const lines = codeFiles(path).map((f) => `${f} ${sha256Hex(Deno.readFileSync(join(ROOT, f)))}`);
  const h = sha256Hex(lines.join("\n"));
  memo.set(path, h);
  return h;
}
