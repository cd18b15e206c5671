/** Shared CLI plumbing: errors with exit codes, output helpers, argument parsing. */
import { parseArgs as nodeParseArgs } from "node:util";

/** A command-line usage error (unknown command or flag, missing argument): exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

const enc = new TextEncoder();

/** Writes a line to stdout (results, --json summaries). */
export function out(line: string): void {
  Deno.stdout.writeSync(enc.encode(line + "\n"));
}

/** Writes a line to stderr (logs, errors). */
export function err(line: string): void {
  Deno.stderr.writeSync(enc.encode(line + "\n"));
}

/** The one-line JSON summary `--json` prints last. */
export interface JsonSummary {
  stage: string;
  key: string | null;
  hit: boolean;
  summary: Record<string, unknown>;
}

/** Prints the final `--json` line. */
export function printJsonSummary(s: JsonSummary): void {
  out(JSON.stringify(s));
}

type OptionSpec = Record<
  string,
  { type: "string" | "boolean"; multiple?: boolean; short?: string }
>;

/** parseArgs with strict flags; an unknown flag is a UsageError naming it. */
export function parseFlags<T extends OptionSpec>(args: string[], options: T, command: string) {
  try {
    return nodeParseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${command}: ${(e as Error).message.split("\n")[0]}`);
  }
}

/** `--set` values must read KEY=VALUE (a usage error, exit 2, otherwise); returns them. */
export function checkSetFlags(sets: string[], command: string): string[] {
  for (const s of sets) {
    const eq = s.indexOf("=");
    if (eq <= 0) throw new UsageError(`${command}: --set "${s}": expected KEY=VALUE`);
  }
  return sets;
}

/** Formats a byte count (1.2 MB). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024, u = 0;
  while (v >= 1024 && u < units.length - 1) (v /= 1024, u++);
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}
