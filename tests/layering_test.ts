/**
 * The architecture's import rules, checked over the source tree so they cannot regress:
 * cli -> pipeline (+ fixtures) -> engine -> kernels, arrows pointing down only; nothing in those
 * imports bench/, tests/ or tools/; and no import cycle among modules. Type-only imports
 * (`import type`, `export type`) are erased when compiled: they count for the layer rule, not for
 * cycles.
 */
import { deepStrictEqual as assertEquals } from "node:assert";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");

/** Layer of each source folder: a module may import its own layer and those below. */
const LAYERS: Record<string, number> = { kernels: 1, engine: 2, pipeline: 3, fixtures: 3, cli: 4 };

interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(join(ROOT, dir))) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory && e.name !== "build" && e.name !== "node_modules") {
      out.push(...sourceFiles(rel));
    } else if (e.isFile && e.name.endsWith(".ts")) out.push(rel);
  }
  return out;
}

/** Static imports and re-exports of one module (relative specifiers only). */
export function importsOf(file: string, text: string): Edge[] {
  const edges: Edge[] = [];
  const re = /^\s*(import|export)\s+(type\s+)?([^;]*?)\s*from\s+"(\.[^"]+)"/gms;
  for (const m of text.matchAll(re)) {
    const clause = m[3];
    // `import { type A, type B }` is type-only too; one value name makes it a runtime import.
    const names = clause.startsWith("{") ? clause.slice(1, -1).split(",").map((n) => n.trim()) : [];
    const allTypes = names.length > 0 && names.filter((n) => n).every((n) => n.startsWith("type "));
    const to = relative(ROOT, resolve(ROOT, dirname(file), m[4]));
    edges.push({ from: file, to, typeOnly: m[2] !== undefined || allTypes });
  }
  for (const m of text.matchAll(/^\s*import\s+"(\.[^"]+)"/gm)) {
    edges.push({
      from: file,
      to: relative(ROOT, resolve(ROOT, dirname(file), m[1])),
      typeOnly: false,
    });
  }
  return edges;
}

function topFolder(path: string): string {
  return path.split("/")[0];
}

function allEdges(): Edge[] {
  const files = Object.keys(LAYERS).flatMap(sourceFiles);
  return files.flatMap((f) => importsOf(f, Deno.readTextFileSync(join(ROOT, f))));
}

/** Every cycle of runtime imports, each as the list of modules around it. */
function runtimeCycles(edges: Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) {
    if (e.typeOnly) continue;
    next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  }
  const cycles: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (m: string) => {
    state.set(m, "open");
    stack.push(m);
    for (const n of next.get(m) ?? []) {
      if (state.get(n) === "open") cycles.push([...stack.slice(stack.indexOf(n)), n]);
      else if (!state.has(n)) visit(n);
    }
    stack.pop();
    state.set(m, "done");
  };
  for (const m of next.keys()) if (!state.has(m)) visit(m);
  return cycles;
}

Deno.test("layering: cli -> pipeline -> engine -> kernels, nothing imports bench/tests/tools", () => {
  const upward = allEdges().filter((e) => {
    const to = LAYERS[topFolder(e.to)];
    return to === undefined || to > LAYERS[topFolder(e.from)];
  }).map((e) => `${e.from} imports ${e.to}`);
  assertEquals(upward, []);
});

Deno.test("layering: no runtime import cycle among the source modules", () => {
  assertEquals(runtimeCycles(allEdges()).map((c) => c.join(" -> ")), []);
});

Deno.test("layering checker finds an upward import and a cycle", () => {
  const edges = [
    ...importsOf("engine/a.ts", 'import { x } from "./b.ts";\nimport type { T } from "./c.ts";'),
    ...importsOf("engine/b.ts", 'import { y } from "./a.ts";'),
    ...importsOf("engine/c.ts", 'import { type U, type V } from "./a.ts";'),
    ...importsOf("kernels/k.ts", 'export { z } from "../pipeline/p.ts";'),
  ];
  assertEquals(edges.map((e) => e.typeOnly), [false, true, false, true, false]);
  assertEquals(runtimeCycles(edges).map((c) => c.join(" -> ")), [
    "engine/a.ts -> engine/b.ts -> engine/a.ts",
  ]);
  assertEquals(LAYERS[topFolder(edges[4].to)] > LAYERS[topFolder(edges[4].from)], true);
});
