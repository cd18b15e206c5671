/**
 * Stage configuration: a JSON file (`--config FILE`), dotted overrides (`--set a.b=v`), and
 * validation against the stage's zod schema with errors that name the offending key.
 */
import { z } from "zod";
import { locateJsonError } from "./data/json_location.ts";

/** A configuration error; the message names the file and/or key. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

/** Reads a JSON config file; malformed JSON is an error naming the file, line and column. */
export function loadConfigFile(path: string): Obj {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new ConfigError(`${path}: cannot read config file (${(e as Error).message})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const where = locateJsonError(text);
    throw new ConfigError(
      `${path}${where ? `:${where.line}:${where.column}` : ""}: malformed JSON (${
        (e as Error).message.split("\n")[0]
      })`,
    );
  }
  if (!isObj(value)) throw new ConfigError(`${path}: config must be a JSON object`);
  return value;
}

/** Parses the value of `--set k=v`: JSON when it parses (numbers, true, [..]), else a string. */
export function parseSetValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Applies `a.b.c=value` overrides onto a copy of `config`, creating objects on the way. */
export function applySets(config: Obj, sets: string[]): Obj {
  const out = structuredClone(config);
  for (const s of sets) {
    const eq = s.indexOf("=");
    if (eq <= 0) throw new ConfigError(`--set "${s}": expected key=value`);
    const path = s.slice(0, eq).split(".");
    if (path.some((p) => p === "")) throw new ConfigError(`--set "${s}": empty key segment`);
    let node: Obj = out;
    for (let i = 0; i < path.length - 1; i++) {
      const next = node[path[i]];
      if (next === undefined) node[path[i]] = {};
      else if (!isObj(next)) {
        throw new ConfigError(
          `--set ${path.slice(0, i + 1).join(".")}: is not an object, cannot set ${s.slice(0, eq)}`,
        );
      }
      node = node[path[i]] as Obj;
    }
    node[path[path.length - 1]] = parseSetValue(s.slice(eq + 1));
  }
  return out;
}

/** Dotted key paths present in `raw` but dropped by parsing (i.e. not in the schema). */
function unknownKeys(raw: unknown, parsed: unknown, prefix: string[] = []): string[] {
  if (!isObj(raw) || !isObj(parsed)) return [];
  const out: string[] = [];
  for (const k of Object.keys(raw)) {
    if (!(k in parsed)) out.push([...prefix, k].join("."));
    else out.push(...unknownKeys(raw[k], parsed[k], [...prefix, k]));
  }
  return out;
}

/**
 * Validates `raw` against `schema` and fills defaults. Unknown keys (at any depth) and wrong types
 * are ConfigErrors naming the dotted key path; `what` prefixes the message (e.g. "tokenize config").
 */
export function validateConfig<C>(schema: z.ZodType<C>, raw: unknown, what = "config"): C {
  const r = schema.safeParse(raw ?? {});
  if (!r.success) {
    const msgs = r.error.issues.map((iss) => {
      const path = iss.path.map(String).join(".");
      if (iss.code === "unrecognized_keys") {
        const keys = iss.keys.map((k) => (path ? `${path}.${k}` : k));
        return `unknown key${keys.length > 1 ? "s" : ""} ${keys.map((k) => `"${k}"`).join(", ")}`;
      }
      return `key "${path || "(root)"}": ${iss.message}`;
    });
    throw new ConfigError(`${what}: ${msgs.join("; ")}`);
  }
  const unknown = unknownKeys(raw, r.data);
  if (unknown.length) {
    throw new ConfigError(
      `${what}: unknown key${unknown.length > 1 ? "s" : ""} ${
        unknown.map((k) => `"${k}"`).join(", ")
      }`,
    );
  }
  return r.data;
}

/** One line of `--help` output for a config key. */
export interface KeyHelp {
  key: string;
  type: string;
  default?: string;
  description?: string;
}

interface JsonSchemaNode {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  description?: string;
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode;
  anyOf?: JsonSchemaNode[];
  oneOf?: JsonSchemaNode[];
  minimum?: number;
  maximum?: number;
}

function typeOf(n: JsonSchemaNode): string {
  if (n.enum) return n.enum.map((v) => JSON.stringify(v)).join("|");
  if (n.const !== undefined) return JSON.stringify(n.const);
  const alts = n.anyOf ?? n.oneOf;
  if (alts) return alts.map(typeOf).join("|");
  if (n.type === "array") return `${n.items ? typeOf(n.items) : "any"}[]`;
  let t = Array.isArray(n.type) ? n.type.join("|") : n.type ?? "any";
  if (t === "integer" || t === "number") {
    // z.int() implies ±MAX_SAFE_INTEGER bounds: not worth showing
    const min = n.minimum !== undefined && n.minimum > -Number.MAX_SAFE_INTEGER
      ? n.minimum
      : undefined;
    const max = n.maximum !== undefined && n.maximum < Number.MAX_SAFE_INTEGER
      ? n.maximum
      : undefined;
    if (min !== undefined || max !== undefined) t += ` [${min ?? ""}..${max ?? ""}]`;
  }
  return t;
}

/** The keys of a stage schema with types, defaults and descriptions (nested keys dotted). */
export function describeSchema(schema: z.ZodType): KeyHelp[] {
  let js: JsonSchemaNode;
  try {
    js = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonSchemaNode;
  } catch {
    return [];
  }
  const out: KeyHelp[] = [];
  const walk = (n: JsonSchemaNode, prefix: string) => {
    for (const [k, child] of Object.entries(n.properties ?? {})) {
      const key = prefix ? `${prefix}.${k}` : k;
      if (child.properties && child.type === "object") {
        if (child.description) out.push({ key, type: "object", description: child.description });
        walk(child, key);
        continue;
      }
      out.push({
        key,
        type: typeOf(child),
        default: child.default === undefined ? undefined : JSON.stringify(child.default),
        description: child.description,
      });
    }
  };
  walk(js, "");
  return out;
}
